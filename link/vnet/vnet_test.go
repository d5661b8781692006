package vnet_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tapstack/tapstack/link/vnet"
)

// littleEndian reports whether this machine's byte order, the TAP's, is
// little endian; the fixtures below have one form per order.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// A TCPv4 GSO header as a TAP on each byte order writes it: NEEDS_CSUM,
// TCPV4|ECN, hdr_len 66, gso_size 1448, csum_start 34, csum_offset 16.
var (
	tsoFields = vnet.Fields{Flags: 1, GSOType: 0x81, HdrLen: 66, GSOSize: 1448, CsumStart: 34, CsumOffset: 16}
	tsoLE     = []byte{0x01, 0x81, 0x42, 0x00, 0xa8, 0x05, 0x22, 0x00, 0x10, 0x00}
	tsoBE     = []byte{0x01, 0x81, 0x00, 0x42, 0x05, 0xa8, 0x00, 0x22, 0x00, 0x10}
)

func tsoBytes() []byte {
	if littleEndian {
		return tsoLE
	}
	return tsoBE
}

func TestParse(t *testing.T) {
	h := vnet.Header(tsoBytes())
	if !h.IsValid() {
		t.Fatal("10-byte header not valid")
	}
	if diff := cmp.Diff(tsoFields, h.Decode()); diff != "" {
		t.Errorf("Decode (-want +got):\n%s", diff)
	}
	if h.Flags() != 1 || h.GSOType() != 0x81 || h.HdrLen() != 66 || h.GSOSize() != 1448 || h.CsumStart() != 34 || h.CsumOffset() != 16 {
		t.Errorf("accessors disagree with Decode: %v", h.Decode())
	}
	if vnet.Header(make([]byte, vnet.Size-1)).IsValid() {
		t.Error("9-byte header is valid")
	}
}

func TestEmit(t *testing.T) {
	b := bytes.Repeat([]byte{0xee}, vnet.Size)
	vnet.Header(b).Encode(&tsoFields)
	if !bytes.Equal(b, tsoBytes()) {
		t.Errorf("Encode = % x, want % x", b, tsoBytes())
	}
	// Encode writes every byte: a zero header clears what was there.
	vnet.Header(b).Encode(&vnet.Fields{})
	if !bytes.Equal(b, make([]byte, vnet.Size)) {
		t.Errorf("Encode(zero) = % x", b)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, f := range []vnet.Fields{
		{},
		tsoFields,
		{Flags: vnet.FlagDataValid},
		{Flags: vnet.FlagNeedsCsum, GSOType: vnet.GSOUDPL4, HdrLen: 0xffff, GSOSize: 0xfffe, CsumStart: 0x1234, CsumOffset: 0xabcd},
	} {
		b := make([]byte, vnet.Size)
		vnet.Header(b).Encode(&f)
		if got := vnet.Header(b).Decode(); got != f {
			t.Errorf("Decode(Encode(%v)) = %v", f, got)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name     string
		f        vnet.Fields
		frameLen int
		want     error
	}{
		{"empty", vnet.Fields{}, 60, nil},
		{"data valid", vnet.Fields{Flags: vnet.FlagDataValid}, 60, nil},
		{"partial csum", vnet.Fields{Flags: vnet.FlagNeedsCsum, CsumStart: 34, CsumOffset: 16}, 54, nil},
		{"partial csum at the end", vnet.Fields{Flags: vnet.FlagNeedsCsum, CsumStart: 34, CsumOffset: 16}, 52, nil},
		{"csum past the end", vnet.Fields{Flags: vnet.FlagNeedsCsum, CsumStart: 34, CsumOffset: 16}, 51, vnet.ErrCsum},
		{"csum start overflow", vnet.Fields{Flags: vnet.FlagNeedsCsum, CsumStart: 0xffff, CsumOffset: 0xffff}, 1 << 16, vnet.ErrCsum},
		{"unflagged csum fields ignored", vnet.Fields{CsumStart: 0xffff, CsumOffset: 0xffff}, 60, nil},
		{"hdr_len past the end", vnet.Fields{HdrLen: 61}, 60, vnet.ErrHdrLen},
		{"unknown flag", vnet.Fields{Flags: 4}, 60, vnet.ErrUnknownFlags},
		{"tso", tsoFields, 1000, nil},
		{"tso6", vnet.Fields{Flags: 1, GSOType: vnet.GSOTCPv6, GSOSize: 1440, CsumStart: 54, CsumOffset: 16}, 3000, nil},
		{"uso", vnet.Fields{Flags: 1, GSOType: vnet.GSOUDPL4, GSOSize: 1000, CsumStart: 34, CsumOffset: 6}, 3000, nil},
		{"gso without size", vnet.Fields{Flags: 1, GSOType: vnet.GSOTCPv4, CsumStart: 34, CsumOffset: 16}, 3000, vnet.ErrGSOSize},
		{"gso without csum", vnet.Fields{GSOType: vnet.GSOTCPv4, GSOSize: 1000}, 3000, vnet.ErrGSOCsum},
		{"unknown gso type", vnet.Fields{Flags: 1, GSOType: 2, GSOSize: 1000, CsumStart: 34, CsumOffset: 16}, 3000, vnet.ErrUnknownGSOType},
		{"ecn alone", vnet.Fields{GSOType: vnet.GSOECN}, 60, vnet.ErrECN},
		{"ecn on udp", vnet.Fields{Flags: 1, GSOType: vnet.GSOUDPL4 | vnet.GSOECN, GSOSize: 1000, CsumStart: 34, CsumOffset: 6}, 3000, vnet.ErrECN},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.f.Validate(tc.frameLen)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("Validate(%d) = %v, want %v", tc.frameLen, err, tc.want)
			}
		})
	}
}

// FuzzHeader: any 10 bytes decode; what Validate accepts never points
// outside the frame; Encode inverts Decode.
func FuzzHeader(f *testing.F) {
	f.Add(tsoLE, 1000)
	f.Add(tsoBE, 1000)
	f.Add(make([]byte, vnet.Size), 0)
	f.Add([]byte{1, 5, 0, 0, 0xe8, 3, 34, 0, 6, 0}, 3000)
	f.Fuzz(func(t *testing.T, b []byte, frameLen int) {
		h := vnet.Header(b)
		if !h.IsValid() {
			return
		}
		fl := h.Decode()
		out := make([]byte, vnet.Size)
		vnet.Header(out).Encode(&fl)
		if !bytes.Equal(out, b[:vnet.Size]) {
			t.Fatalf("Encode(Decode(% x)) = % x", b[:vnet.Size], out)
		}
		if frameLen < 0 || fl.Validate(frameLen) != nil {
			return
		}
		if int(fl.HdrLen) > frameLen {
			t.Fatalf("valid header %v has hdr_len past a %d-byte frame", fl, frameLen)
		}
		if fl.Flags&vnet.FlagNeedsCsum != 0 && int(fl.CsumStart)+int(fl.CsumOffset)+2 > frameLen {
			t.Fatalf("valid header %v puts the checksum past a %d-byte frame", fl, frameLen)
		}
		if fl.GSOType != vnet.GSONone && (fl.GSOSize == 0 || fl.Flags&vnet.FlagNeedsCsum == 0) {
			t.Fatalf("valid GSO header %v without size or partial checksum", fl)
		}
	})
}
