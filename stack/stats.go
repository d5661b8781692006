package stack

// Per-NIC counters for the interface statistics ifmgr keeps (ipIfStats).
// Most come from gVisor's own per-NIC IP and ICMPv6 counters, read as they
// are. What gVisor does not count per NIC (IP octets, link-layer multicast
// and broadcast, datagrams forwarded out of the NIC) is counted by a thin
// endpoint that AddCountedNIC puts between the NIC and its link.
//
// All counters run from the NIC's creation and only grow; a caller that
// wants "since X" subtracts what it read at X.

import (
	"fmt"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/loopback"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

// IPCounters are one IP version's counters on one NIC.
type IPCounters struct {
	// gVisor's per-NIC IP counters.
	Received           uint64 // IP packets from the link layer
	Malformed          uint64 // header (or fragment) failed validation
	MalformedFragments uint64 // of which fragments
	Disabled           uint64 // arrived while IP was disabled on the NIC
	InvalidDestination uint64 // not for a local address and not forwarded, or for a group not joined
	InvalidGroup       uint64 // of which: multicast for a group not joined (counting endpoint)
	InvalidSource      uint64 // source address that may not appear on a wire
	Delivered          uint64 // handed to a transport protocol or ICMP
	Sent               uint64 // written by IP, local and forwarded
	OutErrors          uint64 // the link refused the write
	FilterInDrops      uint64 // dropped by iptables on the way in (prerouting, input)
	FilterOutDrops     uint64 // dropped by iptables on the way out (forward, output, postrouting)
	ForwardErrors      uint64 // received for forwarding, not forwarded
	ForwardUnroutable  uint64 // of which: no route

	// Counted by the NIC's counting endpoint (zero for a NIC added with
	// plain AddNIC).
	Transmitted   uint64 // IP packets handed to the link
	InOctets      uint64 // IP octets received, IP header included
	OutOctets     uint64 // IP octets transmitted
	InMulticast   uint64 // received in link-layer multicast frames
	OutMulticast  uint64
	InBroadcast   uint64 // received in link-layer broadcast frames
	OutBroadcast  uint64
	Forwarded     uint64 // transmitted on behalf of another host (out of this NIC)
	ForwardOctets uint64 // their IP octets

	// ICMP is ICMPv6 on an IPv6 NIC; zero for IPv4.
	ICMP ICMPv6Counters
}

// ICMPv6Counters are one NIC's ICMPv6 counters.
type ICMPv6Counters struct {
	In, Out      ICMPv6TypeCounters
	InInvalid    uint64 // failed validation (length, checksum)
	InUnknown    uint64 // of an unknown type
	InRouterOnly uint64 // router-only messages dropped by a host
	OutDropped   uint64 // could not be sent
	OutLimited   uint64 // not sent: rate limited
}

// ICMPv6TypeCounters count ICMPv6 messages by type.
type ICMPv6TypeCounters struct {
	EchoRequest, EchoReply                          uint64
	DstUnreachable, PacketTooBig                    uint64
	TimeExceeded, ParamProblem                      uint64
	RouterSolicit, RouterAdvert                     uint64
	NeighborSolicit, NeighborAdvert, Redirect       uint64
	ListenerQuery, ListenerReport, ListenerReportV2 uint64
	ListenerDone                                    uint64
}

// LinkCounters are a NIC's frame counters, all protocols together (ARP
// included).
type LinkCounters struct {
	InPackets, InBytes   uint64
	OutPackets, OutBytes uint64
	OutNoBuffer          uint64 // dropped: the link's transmit queue was full
	InDisabled           uint64 // arrived while the NIC was disabled
}

// AddCountedNIC is AddNIC with the counting endpoint in front of ep, so
// that IPCounters reports octets, multicast, broadcast and forwarded
// datagrams too.
func (s *Stack) AddCountedNIC(name string, ep gstack.LinkEndpoint) error {
	ce := newCountingEndpoint(ep)
	if err := s.AddNIC(name, ce); err != nil {
		return err
	}
	info, err := s.nicInfo(name)
	if err != nil {
		return err
	}
	for proto, st := range info.NetworkStats {
		if ip, ok := st.(gstack.IPNetworkEndpointStats); ok {
			if fi, ok := famOf(proto); ok {
				ce.invalidDst[fi].Store(ip.IPStats().InvalidDestinationAddressesReceived)
			}
		}
	}
	return nil
}

// AddCountedLoopbackNIC is AddLoopbackNIC with the counting endpoint.
func (s *Stack) AddCountedLoopbackNIC(name string) error {
	return s.AddCountedNIC(name, loopback.New())
}

// IPCounters reads NIC name's counters for IPv4 or IPv6 (v6).
func (s *Stack) IPCounters(name string, v6 bool) (IPCounters, error) {
	var c IPCounters
	info, err := s.nicInfo(name)
	if err != nil {
		return c, err
	}
	proto := ipv4.ProtocolNumber
	if v6 {
		proto = ipv6.ProtocolNumber
	}
	ns, ok := info.NetworkStats[proto].(gstack.IPNetworkEndpointStats)
	if !ok {
		return c, fmt.Errorf("NIC %s has no IP endpoint for protocol %#x", name, proto)
	}
	ip := ns.IPStats()
	c.Received = ip.PacketsReceived.Value()
	c.Malformed = ip.MalformedPacketsReceived.Value()
	c.MalformedFragments = ip.MalformedFragmentsReceived.Value()
	c.Disabled = ip.DisabledPacketsReceived.Value()
	c.InvalidDestination = ip.InvalidDestinationAddressesReceived.Value()
	c.InvalidSource = ip.InvalidSourceAddressesReceived.Value()
	c.Delivered = ip.PacketsDelivered.Value()
	c.Sent = ip.PacketsSent.Value()
	c.OutErrors = ip.OutgoingPacketErrors.Value()
	c.FilterInDrops = ip.IPTablesPreroutingDropped.Value() + ip.IPTablesInputDropped.Value()
	c.FilterOutDrops = ip.IPTablesForwardDropped.Value() + ip.IPTablesOutputDropped.Value() +
		ip.IPTablesPostroutingDropped.Value()
	c.ForwardErrors = ip.Forwarding.Errors.Value()
	c.ForwardUnroutable = ip.Forwarding.Unrouteable.Value()
	if st, ok := info.NetworkStats[proto].(*ipv6.Stats); ok {
		c.ICMP = icmpv6Counters(&st.ICMP)
	}
	if ce, ok := s.s.GetLinkEndpointByName(name).(*countingEndpoint); ok {
		ce.fam[famIndex(v6)].read(&c)
	}
	return c, nil
}

// LinkCounters reads NIC name's frame counters.
func (s *Stack) LinkCounters(name string) (LinkCounters, error) {
	info, err := s.nicInfo(name)
	if err != nil {
		return LinkCounters{}, err
	}
	st := info.Stats
	return LinkCounters{
		InPackets:   st.Rx.Packets.Value(),
		InBytes:     st.Rx.Bytes.Value(),
		OutPackets:  st.Tx.Packets.Value(),
		OutBytes:    st.Tx.Bytes.Value(),
		OutNoBuffer: st.TxPacketsDroppedNoBufferSpace.Value(),
		InDisabled:  st.DisabledRx.Packets.Value(),
	}, nil
}

// Forwarding reports whether NIC name forwards IPv4 or IPv6 (v6).
func (s *Stack) Forwarding(name string, v6 bool) (bool, error) {
	id, err := s.id(name)
	if err != nil {
		return false, err
	}
	proto := ipv4.ProtocolNumber
	if v6 {
		proto = ipv6.ProtocolNumber
	}
	on, terr := s.s.NICForwarding(id, proto)
	return on, wrap("forwarding of "+name, terr)
}

func (s *Stack) nicInfo(name string) (*gstack.NICInfo, error) {
	id, err := s.id(name)
	if err != nil {
		return nil, err
	}
	info, ok := s.s.SingleNICInfo(id)
	if !ok {
		return nil, fmt.Errorf("no NIC %s in the stack", name)
	}
	return info, nil
}

func icmpv6Counters(st *tcpip.ICMPv6Stats) ICMPv6Counters {
	return ICMPv6Counters{
		In:           icmpv6Types(&st.PacketsReceived.ICMPv6PacketStats),
		Out:          icmpv6Types(&st.PacketsSent.ICMPv6PacketStats),
		InInvalid:    st.PacketsReceived.Invalid.Value(),
		InUnknown:    st.PacketsReceived.Unrecognized.Value(),
		InRouterOnly: st.PacketsReceived.RouterOnlyPacketsDroppedByHost.Value(),
		OutDropped:   st.PacketsSent.Dropped.Value(),
		OutLimited:   st.PacketsSent.RateLimited.Value(),
	}
}

func icmpv6Types(p *tcpip.ICMPv6PacketStats) ICMPv6TypeCounters {
	return ICMPv6TypeCounters{
		EchoRequest:      p.EchoRequest.Value(),
		EchoReply:        p.EchoReply.Value(),
		DstUnreachable:   p.DstUnreachable.Value(),
		PacketTooBig:     p.PacketTooBig.Value(),
		TimeExceeded:     p.TimeExceeded.Value(),
		ParamProblem:     p.ParamProblem.Value(),
		RouterSolicit:    p.RouterSolicit.Value(),
		RouterAdvert:     p.RouterAdvert.Value(),
		NeighborSolicit:  p.NeighborSolicit.Value(),
		NeighborAdvert:   p.NeighborAdvert.Value(),
		Redirect:         p.RedirectMsg.Value(),
		ListenerQuery:    p.MulticastListenerQuery.Value(),
		ListenerReport:   p.MulticastListenerReport.Value(),
		ListenerReportV2: p.MulticastListenerReportV2.Value(),
		ListenerDone:     p.MulticastListenerDone.Value(),
	}
}

func famIndex(v6 bool) int {
	if v6 {
		return 1
	}
	return 0
}

// famOf maps a network protocol to its counter slot; ok is false for
// everything that is not IP (ARP).
func famOf(proto tcpip.NetworkProtocolNumber) (int, bool) {
	switch proto {
	case ipv4.ProtocolNumber:
		return 0, true
	case ipv6.ProtocolNumber:
		return 1, true
	}
	return 0, false
}

// countingEndpoint sits between a NIC and its link endpoint (the child)
// and counts, per IP version, what gVisor does not count per NIC. It
// passes every call through; the cost per packet is a few atomic adds.
//
// Inbound packets reach it because it attaches itself to the child as the
// child's dispatcher; it hands them on to the NIC unchanged.
type countingEndpoint struct {
	gstack.LinkEndpoint // the child

	// dispatcher is the NIC, or nil while detached. Attach (control path)
	// stores it; the child's receive goroutines load it per packet.
	dispatcher atomic.Pointer[dispatcherRef]

	fam [2]familyCounters // [0] IPv4, [1] IPv6

	// invalidDst is gVisor's per-NIC "no such destination" counter of each
	// IP version, read around the delivery of a multicast frame to tell
	// groups not joined (an addressing error) from datagrams for another
	// host (a forwarding matter). Set once, after the NIC is made.
	invalidDst [2]atomic.Pointer[tcpip.StatCounter]
}

type dispatcherRef struct{ d gstack.NetworkDispatcher }

// familyCounters are one IP version's counts. Atomic: receive goroutines,
// writers and readers run concurrently.
type familyCounters struct {
	transmitted, inOctets, outOctets atomic.Uint64
	inMulticast, outMulticast        atomic.Uint64
	inBroadcast, outBroadcast        atomic.Uint64
	forwarded, forwardOctets         atomic.Uint64
	groupMisses                      atomic.Uint64
}

func (f *familyCounters) read(c *IPCounters) {
	c.Transmitted = f.transmitted.Load()
	c.InOctets = f.inOctets.Load()
	c.OutOctets = f.outOctets.Load()
	c.InMulticast = f.inMulticast.Load()
	c.OutMulticast = f.outMulticast.Load()
	c.InBroadcast = f.inBroadcast.Load()
	c.OutBroadcast = f.outBroadcast.Load()
	c.Forwarded = f.forwarded.Load()
	c.ForwardOctets = f.forwardOctets.Load()
	c.InvalidGroup = f.groupMisses.Load()
}

var (
	_ gstack.LinkEndpoint      = (*countingEndpoint)(nil)
	_ gstack.GSOEndpoint       = (*countingEndpoint)(nil)
	_ gstack.NetworkDispatcher = (*countingEndpoint)(nil)
)

func newCountingEndpoint(child gstack.LinkEndpoint) *countingEndpoint {
	return &countingEndpoint{LinkEndpoint: child}
}

// Attach implements gstack.LinkEndpoint: the NIC attaches to us, we attach
// to the child. A nil dispatcher (the NIC going away) detaches both.
func (e *countingEndpoint) Attach(d gstack.NetworkDispatcher) {
	if d == nil {
		e.dispatcher.Store(nil)
		e.LinkEndpoint.Attach(nil)
		return
	}
	e.dispatcher.Store(&dispatcherRef{d})
	e.LinkEndpoint.Attach(e)
}

// IsAttached implements gstack.LinkEndpoint.
func (e *countingEndpoint) IsAttached() bool { return e.dispatcher.Load() != nil }

// frameClass is whom a frame's link-layer destination addresses.
type frameClass int

const (
	unicastFrame frameClass = iota
	multicastFrame
	broadcastFrame
)

// linkClass classifies a frame by its Ethernet destination. Links without
// an Ethernet header (the loopback) carry unicast only.
func linkClass(pkt *gstack.PacketBuffer) frameClass {
	h := pkt.LinkHeader().Slice()
	if len(h) < header.EthernetMinimumSize {
		return unicastFrame
	}
	switch {
	case tcpip.LinkAddress(h[:6]) == header.EthernetBroadcastAddress:
		return broadcastFrame
	case h[0]&1 != 0:
		return multicastFrame
	}
	return unicastFrame
}

// DeliverNetworkPacket implements gstack.NetworkDispatcher: count, then
// hand the packet (still owned by the caller) to the NIC.
func (e *countingEndpoint) DeliverNetworkPacket(proto tcpip.NetworkProtocolNumber, pkt *gstack.PacketBuffer) {
	ref := e.dispatcher.Load()
	if ref == nil {
		return
	}
	fi, ok := famOf(proto)
	if !ok {
		ref.d.DeliverNetworkPacket(proto, pkt)
		return
	}
	f := &e.fam[fi]
	f.inOctets.Add(uint64(pkt.Data().Size()))
	switch linkClass(pkt) {
	case multicastFrame:
		f.inMulticast.Add(1)
		// Delivery is synchronous: if the "no such destination" counter
		// moved, this datagram was for a group the NIC has not joined. (A
		// unicast miss on another receive queue at the same instant would
		// be taken for one; multicast is rare enough not to care.)
		if c := e.invalidDst[fi].Load(); c != nil {
			before := c.Value()
			ref.d.DeliverNetworkPacket(proto, pkt)
			if c.Value() != before {
				f.groupMisses.Add(1)
			}
			return
		}
	case broadcastFrame:
		f.inBroadcast.Add(1)
	}
	ref.d.DeliverNetworkPacket(proto, pkt)
}

// DeliverLinkPacket implements gstack.NetworkDispatcher (packet sockets).
func (e *countingEndpoint) DeliverLinkPacket(proto tcpip.NetworkProtocolNumber, pkt *gstack.PacketBuffer) {
	if ref := e.dispatcher.Load(); ref != nil {
		ref.d.DeliverLinkPacket(proto, pkt)
	}
}

// WritePackets implements gstack.LinkEndpoint: count the batch, then pass
// it (and its ownership) to the child. Packets the child then fails to
// write were counted anyway; gVisor counts those failures (OutErrors).
func (e *countingEndpoint) WritePackets(pkts gstack.PacketBufferList) (int, tcpip.Error) {
	for _, pkt := range pkts.AsSlice() {
		fi, ok := famOf(pkt.NetworkProtocolNumber)
		if !ok {
			continue
		}
		f := &e.fam[fi]
		n := uint64(pkt.Size() - len(pkt.LinkHeader().Slice()))
		f.transmitted.Add(1)
		f.outOctets.Add(n)
		switch linkClass(pkt) {
		case multicastFrame:
			f.outMulticast.Add(1)
		case broadcastFrame:
			f.outBroadcast.Add(1)
		}
		if pkt.NetworkPacketInfo.IsForwardedPacket {
			f.forwarded.Add(1)
			f.forwardOctets.Add(n)
		}
	}
	return e.LinkEndpoint.WritePackets(pkts)
}

// GSOMaxSize implements gstack.GSOEndpoint for a child that offloads.
func (e *countingEndpoint) GSOMaxSize() uint32 {
	if g, ok := e.LinkEndpoint.(gstack.GSOEndpoint); ok {
		return g.GSOMaxSize()
	}
	return 0
}

// SupportedGSO implements gstack.GSOEndpoint.
func (e *countingEndpoint) SupportedGSO() gstack.SupportedGSO {
	if g, ok := e.LinkEndpoint.(gstack.GSOEndpoint); ok {
		return g.SupportedGSO()
	}
	return gstack.GSONotSupported
}
