// Package loopstack builds the gVisor stack that tests of the in-stack
// services talk to: one loopback NIC with 127.0.0.1/8 and ::1/128, so a
// client and a server on the same stack need no root and no kernel.
package loopstack

import (
	"net"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/loopback"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// NICID is the loopback NIC's id.
const NICID = 1

// The loopback addresses the NIC holds.
var (
	V4 = tcpip.AddrFrom4([4]byte{127, 0, 0, 1})
	V6 = tcpip.AddrFrom16Slice(net.IPv6loopback)
)

// New returns the stack, closed (and waited for) when the test ends.
func New(t testing.TB) *stack.Stack {
	t.Helper()
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol},
	})
	t.Cleanup(func() {
		s.Close()
		s.Wait()
	})
	if err := s.CreateNIC(NICID, loopback.New()); err != nil {
		t.Fatalf("CreateNIC: %s", err)
	}
	for _, pa := range []tcpip.ProtocolAddress{
		{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: tcpip.AddressWithPrefix{Address: V4, PrefixLen: 8}},
		{Protocol: ipv6.ProtocolNumber, AddressWithPrefix: tcpip.AddressWithPrefix{Address: V6, PrefixLen: 128}},
	} {
		if err := s.AddProtocolAddress(NICID, pa, stack.AddressProperties{}); err != nil {
			t.Fatalf("AddProtocolAddress(%s): %s", pa.AddressWithPrefix, err)
		}
	}
	s.SetRouteTable([]tcpip.Route{
		{Destination: header.IPv4EmptySubnet, NIC: NICID},
		{Destination: header.IPv6EmptySubnet, NIC: NICID},
	})
	return s
}
