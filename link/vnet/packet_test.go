package vnet_test

import (
	"encoding/binary"
	"testing"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/tapstack/tapstack/link/vnet"
)

var (
	src4 = tcpip.AddrFrom4([4]byte{192, 0, 2, 1})
	dst4 = tcpip.AddrFrom4([4]byte{192, 0, 2, 2})
	src6 = tcpip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1})
	dst6 = tcpip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 2})
)

// udpFrame is an Ethernet frame with a UDP datagram of n payload bytes and
// a full, correct checksum.
func udpFrame(v6 bool, n int) []byte {
	l3, et, src, dst := header.IPv4MinimumSize, header.IPv4ProtocolNumber, src4, dst4
	if v6 {
		l3, et, src, dst = header.IPv6MinimumSize, header.IPv6ProtocolNumber, src6, dst6
	}
	b := make([]byte, header.EthernetMinimumSize+l3+header.UDPMinimumSize+n)
	header.Ethernet(b).Encode(&header.EthernetFields{SrcAddr: "\x02\x00\x00\x00\x00\x01", DstAddr: "\x02\x00\x00\x00\x00\x02", Type: et})
	ip := b[header.EthernetMinimumSize:]
	if v6 {
		header.IPv6(ip).Encode(&header.IPv6Fields{PayloadLength: uint16(8 + n), TransportProtocol: header.UDPProtocolNumber, HopLimit: 64, SrcAddr: src, DstAddr: dst})
	} else {
		h := header.IPv4(ip)
		h.Encode(&header.IPv4Fields{TotalLength: uint16(l3 + 8 + n), Protocol: uint8(header.UDPProtocolNumber), TTL: 64, ID: 7, SrcAddr: src, DstAddr: dst})
		h.SetChecksum(^h.CalculateChecksum())
	}
	u := header.UDP(ip[l3:])
	for i := 8; i < len(u); i++ {
		u[i] = byte(i)
	}
	u.Encode(&header.UDPFields{SrcPort: 1000, DstPort: 2000, Length: uint16(8 + n)})
	xsum := header.PseudoHeaderChecksum(header.UDPProtocolNumber, src, dst, uint16(len(u)))
	u.SetChecksum(^checksum.Checksum(u, xsum))
	return b
}

func bufOf(b []byte) buffer.Buffer { return buffer.MakeWithData(append([]byte(nil), b...)) }

func TestChecksumsValid(t *testing.T) {
	for _, tc := range []struct {
		name   string
		frame  []byte
		mangle int // byte to flip, or -1
		want   bool
	}{
		{"udp4", udpFrame(false, 100), -1, true},
		{"udp6", udpFrame(true, 101), -1, true},
		{"udp4 payload flipped", udpFrame(false, 100), 60, false},
		{"udp6 payload flipped", udpFrame(true, 100), 80, false},
		{"ipv4 header flipped", udpFrame(false, 100), 22, false},
		{"arp", make([]byte, 42), -1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.mangle >= 0 {
				tc.frame[tc.mangle] ^= 0x5a
			}
			b := bufOf(tc.frame)
			defer b.Release()
			et := binary.BigEndian.Uint16(tc.frame[12:])
			if got := vnet.ChecksumsValid(&b, header.EthernetMinimumSize, et); got != tc.want {
				t.Errorf("ChecksumsValid = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSegmentUDP(t *testing.T) {
	f := vnet.Fields{Flags: vnet.FlagNeedsCsum, GSOType: vnet.GSOUDPL4, GSOSize: 400, CsumStart: 34, CsumOffset: 6}
	var sizes []int
	err := vnet.SegmentUDP(bufOf(udpFrame(false, 1000)), &f, func(b buffer.Buffer) {
		sizes = append(sizes, int(b.Size()))
		b.Release()
	})
	if err != nil || len(sizes) != 3 || sizes[0] != 42+400 || sizes[2] != 42+200 {
		t.Errorf("segments %v, %v", sizes, err)
	}
	bad := []vnet.Fields{
		{Flags: vnet.FlagNeedsCsum, GSOType: vnet.GSOUDPL4, GSOSize: 400, CsumStart: 34, CsumOffset: 16},  // not UDP's offset
		{GSOType: vnet.GSOUDPL4, GSOSize: 400, CsumStart: 34, CsumOffset: 6},                              // no partial checksum
		{Flags: vnet.FlagNeedsCsum, GSOType: vnet.GSOUDPL4, GSOSize: 400, CsumStart: 38, CsumOffset: 6},   // not where the IPv4 header ends
		{Flags: vnet.FlagNeedsCsum, GSOType: vnet.GSOUDPL4, GSOSize: 400, CsumStart: 2000, CsumOffset: 6}, // past the frame
	}
	for _, f := range bad {
		if err := vnet.SegmentUDP(bufOf(udpFrame(false, 1000)), &f, func(b buffer.Buffer) { b.Release(); t.Errorf("%v: yielded a segment", f) }); err == nil {
			t.Errorf("%v: no error", f)
		}
	}
}

// FuzzSegmentUDP: any frame and header either fail or split into
// segments that carry the payload, each within the segment size, with
// consistent lengths.
func FuzzSegmentUDP(f *testing.F) {
	f.Add(udpFrame(false, 1000), uint16(400), uint16(34))
	f.Add(udpFrame(true, 1000), uint16(300), uint16(54))
	f.Add(udpFrame(false, 10), uint16(400), uint16(34))
	f.Fuzz(func(t *testing.T, frame []byte, gsoSize, csumStart uint16) {
		fl := vnet.Fields{Flags: vnet.FlagNeedsCsum, GSOType: vnet.GSOUDPL4, GSOSize: gsoSize, CsumStart: csumStart, CsumOffset: 6}
		if fl.Validate(len(frame)) != nil {
			return
		}
		hdr := int(csumStart) + 8
		total := 0
		err := vnet.SegmentUDP(bufOf(frame), &fl, func(b buffer.Buffer) {
			defer b.Release()
			seg := b.Flatten()
			if len(seg) < hdr {
				t.Fatalf("segment of %d bytes, headers %d", len(seg), hdr)
			}
			n := len(seg) - hdr
			if n > int(gsoSize) && len(frame)-hdr > int(gsoSize) {
				t.Fatalf("segment of %d payload bytes, size %d", n, gsoSize)
			}
			if got := int(header.UDP(seg[csumStart:]).Length()); len(frame)-hdr > int(gsoSize) && got != 8+n {
				t.Fatalf("UDP length %d, segment payload %d", got, n)
			}
			total += n
		})
		if err == nil && total != len(frame)-hdr {
			t.Fatalf("segments carry %d payload bytes of %d", total, len(frame)-hdr)
		}
	})
}

// FuzzChecksumsValid: any frame is judged without a panic.
func FuzzChecksumsValid(f *testing.F) {
	f.Add(udpFrame(false, 100))
	f.Add(udpFrame(true, 100))
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) < header.EthernetMinimumSize {
			return
		}
		b := bufOf(frame)
		defer b.Release()
		vnet.ChecksumsValid(&b, header.EthernetMinimumSize, binary.BigEndian.Uint16(frame[12:]))
	})
}

// TestForTransmitNotGSO: a packet that is not a host-GSO TCP segment gets
// an empty header and is left alone (gVisor completed its checksums).
func TestForTransmitNotGSO(t *testing.T) {
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{ReserveHeaderBytes: 64, Payload: buffer.MakeWithData(make([]byte, 100))})
	defer pkt.DecRef()
	u := header.UDP(pkt.TransportHeader().Push(header.UDPMinimumSize))
	u.SetChecksum(0x1234)
	pkt.TransportProtocolNumber = header.UDPProtocolNumber
	pkt.NetworkHeader().Push(header.IPv4MinimumSize)
	pkt.NetworkProtocolNumber = header.IPv4ProtocolNumber
	f := vnet.Fields{Flags: 0xff}
	vnet.ForTransmit(&f, pkt, 0)
	if f != (vnet.Fields{}) {
		t.Errorf("ForTransmit(UDP) = %v, want an empty header", f)
	}
	if c := header.UDP(pkt.TransportHeader().Slice()).Checksum(); c != 0x1234 {
		t.Errorf("checksum changed to %#x", c)
	}
}
