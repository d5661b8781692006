package gateway

// Writing ICMP messages into the namespace: echo replies (icmp.go) and
// the port-unreachable errors of UDP flows (udp.go). The message goes
// through a gVisor route from the remote address (the NIC spoofs) to the
// namespace's address, so gVisor builds the IP header, resolves the link
// address and frames it as for its own traffic.

import (
	"net/netip"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

// icmpMessage is one ICMP message without its checksum: type, code, the
// four type-specific bytes (echo identifier and sequence; unused for
// errors) and the body after them.
type icmpMessage struct {
	typ, code uint8
	rest      [4]byte
	body      []byte
}

// writeICMP sends m from src to dst (the namespace) through nic. ICMPv4
// or ICMPv6 follows the addresses' family. A message that cannot be
// routed is lost, as on a network.
func writeICMP(s *gstack.Stack, nic tcpip.NICID, src, dst netip.Addr, m icmpMessage) {
	proto := header.IPv4ProtocolNumber
	if dst.Is6() {
		proto = header.IPv6ProtocolNumber
	}
	r, terr := s.FindRoute(nic, toTCPIP(src), toTCPIP(dst), proto, false /* multicastLoop */)
	if terr != nil {
		return
	}
	defer r.Release()
	const hdrLen = header.ICMPv4MinimumSize // == ICMPv6 type, code, checksum and 4 bytes
	pkt := gstack.NewPacketBuffer(gstack.PacketBufferOptions{
		ReserveHeaderBytes: int(r.MaxHeaderLength()) + hdrLen,
		Payload:            buffer.MakeWithData(m.body),
	})
	defer pkt.DecRef()
	h := pkt.TransportHeader().Push(hdrLen)
	h[0], h[1] = m.typ, m.code
	copy(h[4:8], m.rest[:])
	params := gstack.NetworkHeaderParams{TTL: r.DefaultTTL()}
	if proto == header.IPv4ProtocolNumber {
		pkt.TransportProtocolNumber = header.ICMPv4ProtocolNumber
		header.ICMPv4(h).SetChecksum(header.ICMPv4Checksum(h, pkt.Data().Checksum()))
		params.Protocol = header.ICMPv4ProtocolNumber
	} else {
		pkt.TransportProtocolNumber = header.ICMPv6ProtocolNumber
		header.ICMPv6(h).SetChecksum(header.ICMPv6Checksum(header.ICMPv6ChecksumParams{
			Header:      h,
			Src:         r.LocalAddress(),
			Dst:         r.RemoteAddress(),
			PayloadCsum: pkt.Data().Checksum(),
			PayloadLen:  pkt.Data().Size(),
		}))
		params.Protocol = header.ICMPv6ProtocolNumber
	}
	r.WritePacket(params, pkt)
}

// udpQuote rebuilds the start of a datagram the namespace sent (IP
// header and UDP header, as an ICMP error quotes them) from its flow and
// payload length: the namespace's stack matches the error to its socket
// by these addresses and ports.
func udpQuote(from, to netip.AddrPort, payloadLen int) []byte {
	udpLen := header.UDPMinimumSize + payloadLen
	if from.Addr().Is4() {
		b := make([]byte, header.IPv4MinimumSize+header.UDPMinimumSize)
		ip := header.IPv4(b)
		ip.Encode(&header.IPv4Fields{
			TotalLength: uint16(min(header.IPv4MinimumSize+udpLen, 0xffff)),
			TTL:         64,
			Protocol:    uint8(header.UDPProtocolNumber),
			SrcAddr:     toTCPIP(from.Addr()),
			DstAddr:     toTCPIP(to.Addr()),
		})
		ip.SetChecksum(^ip.CalculateChecksum())
		encodeUDP(b[header.IPv4MinimumSize:], from.Port(), to.Port(), udpLen)
		return b
	}
	b := make([]byte, header.IPv6MinimumSize+header.UDPMinimumSize)
	header.IPv6(b).Encode(&header.IPv6Fields{
		PayloadLength:     uint16(min(udpLen, 0xffff)),
		TransportProtocol: header.UDPProtocolNumber,
		HopLimit:          64,
		SrcAddr:           toTCPIP(from.Addr()),
		DstAddr:           toTCPIP(to.Addr()),
	})
	encodeUDP(b[header.IPv6MinimumSize:], from.Port(), to.Port(), udpLen)
	return b
}

func encodeUDP(b []byte, src, dst uint16, length int) {
	header.UDP(b).Encode(&header.UDPFields{SrcPort: src, DstPort: dst, Length: uint16(min(length, 0xffff))})
}
