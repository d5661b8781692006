package afpacket

import (
	"encoding/binary"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// Frames for unit tests, built with gVisor's header package (not with the
// code under test).

var (
	testMAC = tcpip.LinkAddress("\x02\x00\x00\x00\x00\x01")
	peerMAC = tcpip.LinkAddress("\x02\x00\x00\x00\x00\x02")
	src4    = tcpip.AddrFrom4([4]byte{10, 0, 0, 2})
	dst4    = tcpip.AddrFrom4([4]byte{10, 0, 0, 1})
	src6    = tcpip.AddrFrom16([16]byte{0xfd, 15: 2})
	dst6    = tcpip.AddrFrom16([16]byte{0xfd, 15: 1})
)

// transport returns a transport header plus n payload bytes of proto, its
// checksum field zero, and the offset of that field.
func transport(proto uint8, n int) ([]byte, int) {
	switch proto {
	case ipProtoTCP:
		b := make([]byte, header.TCPMinimumSize+n)
		header.TCP(b).Encode(&header.TCPFields{SrcPort: 40000, DstPort: 80, SeqNum: 1, AckNum: 1, DataOffset: header.TCPMinimumSize, Flags: header.TCPFlagAck, WindowSize: 65535})
		fill(b[header.TCPMinimumSize:])
		return b, header.TCPChecksumOffset
	case ipProtoUDP:
		b := make([]byte, header.UDPMinimumSize+n)
		header.UDP(b).Encode(&header.UDPFields{SrcPort: 40000, DstPort: 53, Length: uint16(len(b))})
		fill(b[header.UDPMinimumSize:])
		return b, 6
	default: // ICMP, ICMPv6: an echo request
		b := make([]byte, 8+n)
		b[0] = 8
		if proto == ipProtoICMPv6 {
			b[0] = 128
		}
		fill(b[8:])
		return b, 2
	}
}

func fill(b []byte) {
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
}

// ipv4Frame is an Ethernet frame to dst carrying an IPv4 packet of proto
// with n payload bytes, every checksum correct.
func ipv4Frame(dst tcpip.LinkAddress, proto uint8, n int) []byte {
	t, csumOff := transport(proto, n)
	b := make([]byte, header.EthernetMinimumSize+header.IPv4MinimumSize+len(t))
	header.Ethernet(b).Encode(&header.EthernetFields{SrcAddr: peerMAC, DstAddr: dst, Type: header.IPv4ProtocolNumber})
	ip := header.IPv4(b[header.EthernetMinimumSize:])
	ip.Encode(&header.IPv4Fields{
		TotalLength: uint16(header.IPv4MinimumSize + len(t)), TTL: 64,
		Protocol: proto, SrcAddr: src4, DstAddr: dst4,
	})
	ip.SetChecksum(^ip.CalculateChecksum())
	xsum := uint16(0)
	if proto != ipProtoICMP {
		xsum = header.PseudoHeaderChecksum(tcpip.TransportProtocolNumber(proto), src4, dst4, uint16(len(t)))
	}
	binary.BigEndian.PutUint16(t[csumOff:], ^checksum.Checksum(t, xsum))
	copy(ip[header.IPv4MinimumSize:], t)
	return b
}

// ipv6Frame is ipv4Frame for IPv6.
func ipv6Frame(dst tcpip.LinkAddress, proto uint8, n int) []byte {
	t, csumOff := transport(proto, n)
	b := make([]byte, header.EthernetMinimumSize+header.IPv6MinimumSize+len(t))
	header.Ethernet(b).Encode(&header.EthernetFields{SrcAddr: peerMAC, DstAddr: dst, Type: header.IPv6ProtocolNumber})
	ip := header.IPv6(b[header.EthernetMinimumSize:])
	ip.Encode(&header.IPv6Fields{
		PayloadLength: uint16(len(t)), TransportProtocol: tcpip.TransportProtocolNumber(proto),
		HopLimit: 64, SrcAddr: src6, DstAddr: dst6,
	})
	xsum := header.PseudoHeaderChecksum(tcpip.TransportProtocolNumber(proto), src6, dst6, uint16(len(t)))
	binary.BigEndian.PutUint16(t[csumOff:], ^checksum.Checksum(t, xsum))
	copy(ip[header.IPv6MinimumSize:], t)
	return b
}
