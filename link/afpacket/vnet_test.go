package afpacket

import (
	"encoding/binary"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestVnetHdrRoundTrip(t *testing.T) {
	h := vnetHdr{
		Flags:      vnetFlagNeedsCsum,
		GSOType:    vnetGSOTCPv4 | vnetGSOECN,
		HdrLen:     66,
		GSOSize:    1448,
		CsumStart:  34,
		CsumOffset: 16,
	}
	var b [vnetHdrLen]byte
	h.encode(b[:])
	// struct virtio_net_hdr in host byte order.
	want := [vnetHdrLen]byte{1, 0x81}
	binary.NativeEndian.PutUint16(want[2:], 66)
	binary.NativeEndian.PutUint16(want[4:], 1448)
	binary.NativeEndian.PutUint16(want[6:], 34)
	binary.NativeEndian.PutUint16(want[8:], 16)
	if b != want {
		t.Errorf("encode = % x, want % x", b, want)
	}
	if d := cmp.Diff(h, decodeVnetHdr(b[:])); d != "" {
		t.Errorf("decode(encode(h)) (-want +got):\n%s", d)
	}
	if h.gso() != vnetGSOTCPv4 {
		t.Errorf("gso() = %d, want TCPv4 without ECN", h.gso())
	}
}

func TestVnetHdrValidate(t *testing.T) {
	tests := []struct {
		name  string
		h     vnetHdr
		frame int
		ok    bool
	}{
		{"plain", vnetHdr{}, 60, true},
		{"partial checksum inside", vnetHdr{Flags: vnetFlagNeedsCsum, CsumStart: 34, CsumOffset: 16}, 60, true},
		{"partial checksum at the very end", vnetHdr{Flags: vnetFlagNeedsCsum, CsumStart: 34, CsumOffset: 24}, 60, true},
		{"partial checksum outside", vnetHdr{Flags: vnetFlagNeedsCsum, CsumStart: 34, CsumOffset: 25}, 60, false},
		{"TCP GSO", vnetHdr{GSOType: vnetGSOTCPv6, GSOSize: 1440, HdrLen: 86}, 65000, true},
		{"GSO without a size", vnetHdr{GSOType: vnetGSOTCPv4, HdrLen: 66}, 65000, false},
		{"GSO headers beyond the frame", vnetHdr{GSOType: vnetGSOTCPv4, GSOSize: 1448, HdrLen: 70}, 66, false},
		{"unknown GSO type", vnetHdr{GSOType: 2, GSOSize: 1448}, 65000, false},
		{"USO is known", vnetHdr{GSOType: vnetGSOUDPL4, GSOSize: 1400, HdrLen: 42}, 9000, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.h.validate(tt.frame)
			if (err == nil) != tt.ok {
				t.Errorf("validate(%+v, %d) = %v, want ok %v", tt.h, tt.frame, err, tt.ok)
			}
		})
	}
}

// FuzzVnetHdr: any 10 bytes decode, re-encode to themselves, and validate
// without panicking.
func FuzzVnetHdr(f *testing.F) {
	f.Add([]byte{1, 1, 66, 0, 0xa8, 5, 34, 0, 16, 0}, 65000)
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0)
	f.Fuzz(func(t *testing.T, b []byte, frame int) {
		if len(b) < vnetHdrLen {
			return
		}
		h := decodeVnetHdr(b)
		var out [vnetHdrLen]byte
		h.encode(out[:])
		if string(out[:]) != string(b[:vnetHdrLen]) {
			t.Fatalf("encode(decode(% x)) = % x", b[:vnetHdrLen], out)
		}
		if err := h.validate(frame); err == nil {
			if h.Flags&vnetFlagNeedsCsum != 0 && int(h.CsumStart)+int(h.CsumOffset)+2 > frame {
				t.Fatalf("validate accepted a checksum outside the frame: %+v, %d", h, frame)
			}
		}
	})
}
