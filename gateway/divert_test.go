package gateway

import (
	"net/netip"
	"testing"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

// ipv4Packet builds an IPv4 packet carrying payload.
func ipv4Packet(src, dst string, proto tcpip.TransportProtocolNumber, flags uint8, fragOff uint16, payload []byte) []byte {
	b := make([]byte, header.IPv4MinimumSize+len(payload))
	ip := header.IPv4(b)
	ip.Encode(&header.IPv4Fields{
		TotalLength:    uint16(len(b)),
		TTL:            64,
		Protocol:       uint8(proto),
		SrcAddr:        toTCPIP(netip.MustParseAddr(src)),
		DstAddr:        toTCPIP(netip.MustParseAddr(dst)),
		Flags:          flags,
		FragmentOffset: fragOff,
	})
	ip.SetChecksum(^ip.CalculateChecksum())
	copy(b[header.IPv4MinimumSize:], payload)
	return b
}

// icmp4 builds an ICMPv4 message with a valid checksum.
func icmp4(typ header.ICMPv4Type, id, seq uint16, data string) []byte {
	b := make([]byte, header.ICMPv4MinimumSize+len(data))
	h := header.ICMPv4(b)
	h.SetType(typ)
	h.SetIdent(id)
	h.SetSequence(seq)
	copy(b[header.ICMPv4MinimumSize:], data)
	h.SetChecksum(^checksum.Checksum(b, 0))
	return b
}

// ipv6Packet builds an IPv6 packet; payload starts with the header
// identified by next.
func ipv6Packet(src, dst string, next uint8, payload []byte) []byte {
	b := make([]byte, header.IPv6MinimumSize+len(payload))
	header.IPv6(b).Encode(&header.IPv6Fields{
		PayloadLength:     uint16(len(payload)),
		TransportProtocol: tcpip.TransportProtocolNumber(next),
		HopLimit:          64,
		SrcAddr:           toTCPIP(netip.MustParseAddr(src)),
		DstAddr:           toTCPIP(netip.MustParseAddr(dst)),
	})
	copy(b[header.IPv6MinimumSize:], payload)
	return b
}

// icmp6 builds an ICMPv6 message from src to dst with a valid checksum.
func icmp6(src, dst string, typ header.ICMPv6Type, id, seq uint16, data string) []byte {
	b := make([]byte, header.ICMPv6EchoMinimumSize+len(data))
	h := header.ICMPv6(b)
	h.SetType(typ)
	h.SetIdent(id)
	h.SetSequence(seq)
	copy(b[header.ICMPv6EchoMinimumSize:], data)
	h.SetChecksum(header.ICMPv6Checksum(header.ICMPv6ChecksumParams{
		Header: h,
		Src:    toTCPIP(netip.MustParseAddr(src)),
		Dst:    toTCPIP(netip.MustParseAddr(dst)),
	}))
	return b
}

// TestDiverter checks which packets the ICMP diverter takes, and what it
// queues for the host sockets. No sockets are opened: the worker is not
// running.
func TestDiverter(t *testing.T) {
	cfg := Config{
		V4: Addrs{Gateway: gw4, DNS: dns4, Guest: guest4, Prefix: 24},
		V6: Addrs{Gateway: gw6, DNS: dns6, Guest: guest6, Prefix: 64},
	}
	echo4 := func(dst string) []byte {
		return ipv4Packet("10.0.2.100", dst, header.ICMPv4ProtocolNumber, 0, 0, icmp4(header.ICMPv4Echo, 7, 9, "ping"))
	}
	echo6 := func(dst string) []byte {
		return ipv6Packet("fd00::100", dst, ipv6ICMP, icmp6("fd00::100", dst, header.ICMPv6EchoRequest, 7, 9, "ping"))
	}
	badSum := echo4("192.0.2.1")
	badSum[len(badSum)-1] ^= 0xff
	// An echo request behind a hop-by-hop options header (PadN).
	hbh := append([]byte{ipv6ICMP, 0, 1, 4, 0, 0, 0, 0}, icmp6("fd00::100", "2001:db8::1", header.ICMPv6EchoRequest, 7, 9, "ping")...)
	frag6 := append([]byte{ipv6ICMP, 0, 0, 1, 0, 0, 0, 1}, icmp6("fd00::100", "2001:db8::1", header.ICMPv6EchoRequest, 7, 9, "ping")...)
	ns := ipv6Packet("fd00::100", "ff02::1:ff00:2", ipv6ICMP, icmp6("fd00::100", "ff02::1:ff00:2", header.ICMPv6NeighborSolicit, 0, 0, "xxxxxxxxxxxxxxxx"))

	for _, tc := range []struct {
		name     string
		loopback bool
		proto    tcpip.NetworkProtocolNumber
		pkt      []byte
		take     bool
		queued   string // destination of the queued request, if any
	}{
		{name: "echo4 to another host", proto: header.IPv4ProtocolNumber, pkt: echo4("192.0.2.1"), take: true, queued: "192.0.2.1"},
		{name: "echo4 to the gateway", proto: header.IPv4ProtocolNumber, pkt: echo4("10.0.2.2")},
		{name: "echo4 to the DNS address", proto: header.IPv4ProtocolNumber, pkt: echo4("10.0.2.3")},
		{name: "echo4 to the subnet broadcast", proto: header.IPv4ProtocolNumber, pkt: echo4("10.0.2.255")},
		{name: "echo4 to the limited broadcast", proto: header.IPv4ProtocolNumber, pkt: echo4("255.255.255.255")},
		{name: "echo4 to a multicast group", proto: header.IPv4ProtocolNumber, pkt: echo4("224.0.0.1")},
		{name: "echo4 to 127.0.0.1", proto: header.IPv4ProtocolNumber, pkt: echo4("127.0.0.1"), take: true},
		{name: "echo4 to 127.0.0.1 allowed", loopback: true, proto: header.IPv4ProtocolNumber, pkt: echo4("127.0.0.1"), take: true, queued: "127.0.0.1"},
		{name: "echo4 with a bad checksum", proto: header.IPv4ProtocolNumber, pkt: badSum, take: true},
		{name: "fragment of ICMP to another host", proto: header.IPv4ProtocolNumber,
			pkt: ipv4Packet("10.0.2.100", "192.0.2.1", header.ICMPv4ProtocolNumber, header.IPv4FlagMoreFragments, 0, icmp4(header.ICMPv4Echo, 7, 9, "ping")), take: true},
		{name: "echo reply to another host", proto: header.IPv4ProtocolNumber,
			pkt: ipv4Packet("10.0.2.100", "192.0.2.1", header.ICMPv4ProtocolNumber, 0, 0, icmp4(header.ICMPv4EchoReply, 7, 9, "pong"))},
		{name: "ICMP error to another host", proto: header.IPv4ProtocolNumber,
			pkt: ipv4Packet("10.0.2.100", "192.0.2.1", header.ICMPv4ProtocolNumber, 0, 0, icmp4(header.ICMPv4DstUnreachable, 0, 0, "orig"))},
		{name: "TCP to another host", proto: header.IPv4ProtocolNumber,
			pkt: ipv4Packet("10.0.2.100", "192.0.2.1", header.TCPProtocolNumber, 0, 0, make([]byte, header.TCPMinimumSize))},
		{name: "UDP to another host", proto: header.IPv4ProtocolNumber,
			pkt: ipv4Packet("10.0.2.100", "192.0.2.1", header.UDPProtocolNumber, 0, 0, make([]byte, header.UDPMinimumSize))},
		{name: "ARP", proto: header.ARPProtocolNumber, pkt: make([]byte, header.ARPSize)},
		{name: "truncated IPv4", proto: header.IPv4ProtocolNumber, pkt: echo4("192.0.2.1")[:10]},
		{name: "echo6 to another host", proto: header.IPv6ProtocolNumber, pkt: echo6("2001:db8::1"), take: true, queued: "2001:db8::1"},
		{name: "echo6 behind hop-by-hop options", proto: header.IPv6ProtocolNumber, pkt: ipv6Packet("fd00::100", "2001:db8::1", ipv6HopByHop, hbh), take: true, queued: "2001:db8::1"},
		{name: "fragment of ICMPv6 to another host", proto: header.IPv6ProtocolNumber, pkt: ipv6Packet("fd00::100", "2001:db8::1", ipv6Fragment, frag6), take: true},
		{name: "echo6 to the gateway", proto: header.IPv6ProtocolNumber, pkt: echo6("fd00::2")},
		{name: "echo6 to the DNS address", proto: header.IPv6ProtocolNumber, pkt: echo6("fd00::3")},
		{name: "echo6 to a link-local address", proto: header.IPv6ProtocolNumber, pkt: echo6("fe80::2")},
		{name: "echo6 to all nodes", proto: header.IPv6ProtocolNumber, pkt: echo6("ff02::1")},
		{name: "echo6 to ::1", proto: header.IPv6ProtocolNumber, pkt: echo6("::1"), take: true},
		{name: "echo6 to ::1 allowed", loopback: true, proto: header.IPv6ProtocolNumber, pkt: echo6("::1"), take: true, queued: "::1"},
		{name: "neighbour solicitation", proto: header.IPv6ProtocolNumber, pkt: ns},
		{name: "echo6 reply to another host", proto: header.IPv6ProtocolNumber,
			pkt: ipv6Packet("fd00::100", "2001:db8::1", ipv6ICMP, icmp6("fd00::100", "2001:db8::1", header.ICMPv6EchoReply, 7, 9, "pong"))},
		{name: "UDP6 to another host", proto: header.IPv6ProtocolNumber,
			pkt: ipv6Packet("fd00::100", "2001:db8::1", uint8(header.UDPProtocolNumber), make([]byte, header.UDPMinimumSize))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			c.AllowHostLoopback = tc.loopback
			p := &icmpProxy{pol: newPolicy(c), reqs: make(chan echoRequest, 1), done: make(chan struct{})}
			pkt := gstack.NewPacketBuffer(gstack.PacketBufferOptions{Payload: buffer.MakeWithData(tc.pkt)})
			defer pkt.DecRef()
			if got := p.divert(tc.proto, pkt); got != tc.take {
				t.Fatalf("divert took it: %v, want %v", got, tc.take)
			}
			select {
			case req := <-p.reqs:
				if tc.queued == "" {
					t.Fatalf("queued a request to %s, want none", req.dst)
				}
				if req.dst.String() != tc.queued || req.id != 7 || req.seq != 9 || string(req.data) != "ping" {
					t.Errorf("queued %+v, want to %s id 7 seq 9 data ping", req, tc.queued)
				}
			default:
				if tc.queued != "" {
					t.Fatalf("queued nothing, want a request to %s", tc.queued)
				}
			}
			if pkt.Data().Size() != len(tc.pkt) {
				t.Errorf("divert changed the packet: %d bytes, want %d", pkt.Data().Size(), len(tc.pkt))
			}
		})
	}
}
