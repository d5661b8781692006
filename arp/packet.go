package arp

import (
	"net"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// Op is the ARP operation.
type Op uint16

// ARP operations.
const (
	OpRequest Op = 1
	OpReply   Op = 2
)

// Packet is one IPv4-over-Ethernet ARP packet, decoded.
type Packet struct {
	Op                     Op
	SenderHW, TargetHW     net.HardwareAddr
	SenderAddr, TargetAddr netip.Addr
}

// IsProbe reports whether p is an RFC 5227 probe: a request from a host
// that has no address yet (sender 0.0.0.0).
func (p Packet) IsProbe() bool {
	return p.Op == OpRequest && p.SenderAddr.IsUnspecified()
}

// Parse decodes an ARP packet (the ARP header, without the Ethernet
// header). It reports false for anything but IPv4 over Ethernet.
func Parse(b []byte) (Packet, bool) {
	h := header.ARP(b)
	if !h.IsValid() {
		return Packet{}, false
	}
	op := Op(h.Op())
	if op != OpRequest && op != OpReply {
		return Packet{}, false
	}
	sa, _ := netip.AddrFromSlice(h.ProtocolAddressSender())
	ta, _ := netip.AddrFromSlice(h.ProtocolAddressTarget())
	return Packet{
		Op:         op,
		SenderHW:   append(net.HardwareAddr(nil), h.HardwareAddressSender()...),
		TargetHW:   append(net.HardwareAddr(nil), h.HardwareAddressTarget()...),
		SenderAddr: sa,
		TargetAddr: ta,
	}, true
}

// Marshal encodes p as an ARP header (28 bytes). Hardware addresses that
// are not 6 bytes long are written as zeros.
func (p Packet) Marshal() []byte {
	b := make([]byte, header.ARPSize)
	h := header.ARP(b)
	h.SetIPv4OverEthernet()
	h.SetOp(header.ARPOp(p.Op))
	if len(p.SenderHW) == header.EthernetAddressSize {
		copy(h.HardwareAddressSender(), p.SenderHW)
	}
	if len(p.TargetHW) == header.EthernetAddressSize {
		copy(h.HardwareAddressTarget(), p.TargetHW)
	}
	if p.SenderAddr.Is4() {
		a := p.SenderAddr.As4()
		copy(h.ProtocolAddressSender(), a[:])
	}
	if p.TargetAddr.Is4() {
		a := p.TargetAddr.As4()
		copy(h.ProtocolAddressTarget(), a[:])
	}
	return b
}

// probe is the RFC 5227 probe for addr from hw.
func probe(hw net.HardwareAddr, addr netip.Addr) Packet {
	return Packet{Op: OpRequest, SenderHW: hw, SenderAddr: netip.IPv4Unspecified(), TargetAddr: addr}
}

// announcement is a gratuitous ARP request claiming addr for hw (sender
// and target address both addr), as illumos sends after DAD and to
// defend.
func announcement(hw net.HardwareAddr, addr netip.Addr) Packet {
	return Packet{Op: OpRequest, SenderHW: hw, SenderAddr: addr, TargetAddr: addr}
}
