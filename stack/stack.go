// Package stack constructs and owns tapstack's gVisor netstack instance and
// applies to it what ifmgr and route decide: NICs, their enabled state and
// MTU, addresses, and the forwarding table. It never decides anything.
//
// NICs are known by name (the phyint name, "tap0", "lo0"); gVisor NIC ids
// stay inside this package.
package stack

import (
	"crypto/rand"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/loopback"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// Stack is the gVisor stack plus the name → NIC id mapping.
//
// Locking: mu guards nics and nextID. gVisor's own locking covers the rest.
type Stack struct {
	s *gstack.Stack

	mu     sync.Mutex
	nics   map[string]tcpip.NICID
	nextID tcpip.NICID
}

// Route is one forwarding entry as gVisor sees it: traffic for Dest leaves
// through NIC, to Gateway if set, else directly.
type Route struct {
	Dest    netip.Prefix
	Gateway netip.Addr
	NIC     string
}

// Options tunes NewWithOptions. The zero value is what New builds.
type Options struct {
	// NoHandleLocal turns gVisor's HandleLocal off: traffic from the
	// stack to its own addresses on a non-loopback NIC then leaves through
	// that NIC instead of looping inside the stack. A stack with a
	// namespace gateway on it needs this: with HandleLocal on, gVisor
	// drops every packet that arrives on a promiscuous NIC as "from a
	// local address" (its martian-source check creates a temporary
	// address for the source on a promiscuous NIC, then finds it).
	NoHandleLocal bool

	// NDPDispatcher receives gVisor's neighbour-discovery events (router
	// advertisements, SLAAC addresses; package ndp). gVisor takes it only
	// at creation. Router advertisements are still ignored until a NIC is
	// configured to handle them (ndp.Configure).
	NDPDispatcher ipv6.NDPDispatcher
}

// New creates a stack with IPv4, IPv6, ARP, TCP, UDP and ICMP. gVisor's
// own IPv6 DAD (until ndp.SetDAD turns it on for a NIC) and link-local
// generation are off, and it ignores router
// advertisements (so does no SLAAC) until ndp.Configure turns them on for
// a NIC: ifmgr and ndp own those decisions.
func New() *Stack { return NewWithOptions(Options{}) }

// NewWithOptions is New with options.
func NewWithOptions(o Options) *Stack {
	s := gstack.New(gstack.Options{
		NetworkProtocols: []gstack.NetworkProtocolFactory{
			ipv4.NewProtocol,
			ipv6.NewProtocolWithOptions(ipv6.Options{
				NDPConfigs:       ipv6.NDPConfigurations{HandleRAs: ipv6.HandlingRAsDisabled},
				DADConfigs:       gstack.DADConfigurations{DupAddrDetectTransmits: 0},
				AutoGenLinkLocal: false,
				NDPDisp:          o.NDPDispatcher,
				TempIIDSeed:      tempIIDSeed(),
			}),
			arp.NewProtocol,
		},
		TransportProtocols: []gstack.TransportProtocolFactory{
			tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6,
		},
		HandleLocal: !o.NoHandleLocal,
	})
	// Loss recovery by duplicate ACKs (with SACK) and the retransmission
	// timer, not RACK: gVisor's tail loss probe fires after twice the
	// smoothed RTT with no floor (Linux keeps one of milliseconds), and
	// the RTT to a peer over a TAP or a veth is tens of microseconds. Any
	// pause of the daemon longer than that sent a probe, whose ACK made
	// RACK declare everything sent before it lost: 230–400 spurious
	// retransmissions in 3 s of four streams to the namespace and a
	// halved congestion window each time (measured: 1500-byte MTU,
	// host→ns, 8.7–12.2 → 16.6–17.0 Gbit/s without RACK).
	recovery := tcpip.TCPRecovery(0)
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &recovery); err != nil {
		panic("stack: TCP loss recovery option refused: " + err.String())
	}
	return &Stack{s: s, nics: make(map[string]tcpip.NICID), nextID: 1}
}

// tempIIDSeed seeds the interface identifiers of RFC 4941 temporary
// addresses: random, so they cannot be predicted across runs.
func tempIIDSeed() []byte {
	b := make([]byte, header.IIDSize)
	rand.Read(b)
	return b
}

// GVisor returns the underlying gVisor stack, for endpoints built on it
// (services, the gateway, tests).
func (s *Stack) GVisor() *gstack.Stack { return s.s }

// Close shuts the stack down and waits for its goroutines.
func (s *Stack) Close() {
	s.s.Close()
	s.s.Wait()
}

func wrap(op string, err tcpip.Error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %s", op, err)
}

// AddNIC registers ep as NIC name, disabled: it carries no traffic until
// EnableNIC (the ill's first bind).
func (s *Stack) AddNIC(name string, ep gstack.LinkEndpoint) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.nics[name]; ok {
		return fmt.Errorf("NIC %s already exists", name)
	}
	id := s.nextID
	if err := s.s.CreateNICWithOptions(id, ep, gstack.NICOptions{Name: name, Disabled: true}); err != nil {
		return wrap("create NIC "+name, err)
	}
	s.nextID++
	s.nics[name] = id
	return nil
}

// AddLoopbackNIC registers a gVisor loopback endpoint as NIC name (lo0:
// there is no driver below it).
func (s *Stack) AddLoopbackNIC(name string) error {
	return s.AddNIC(name, loopback.New())
}

// RemoveNIC removes NIC name and everything gVisor attached to it.
func (s *Stack) RemoveNIC(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.nics[name]
	if !ok {
		return fmt.Errorf("no NIC %s", name)
	}
	delete(s.nics, name)
	return wrap("remove NIC "+name, s.s.RemoveNIC(id))
}

func (s *Stack) id(name string) (tcpip.NICID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.nics[name]
	if !ok {
		return 0, fmt.Errorf("no NIC %s", name)
	}
	return id, nil
}

// NICID returns gVisor's id for NIC name (for code that builds gVisor
// endpoints bound to a NIC).
func (s *Stack) NICID(name string) (tcpip.NICID, bool) {
	id, err := s.id(name)
	return id, err == nil
}

// EnableNIC lets NIC name carry traffic.
func (s *Stack) EnableNIC(name string) error {
	id, err := s.id(name)
	if err != nil {
		return err
	}
	return wrap("enable NIC "+name, s.s.EnableNIC(id))
}

// DisableNIC stops NIC name carrying traffic (addresses are kept).
func (s *Stack) DisableNIC(name string) error {
	id, err := s.id(name)
	if err != nil {
		return err
	}
	return wrap("disable NIC "+name, s.s.DisableNIC(id))
}

// SetMTU sets the IP MTU gVisor uses on NIC name.
func (s *Stack) SetMTU(name string, mtu uint32) error {
	id, err := s.id(name)
	if err != nil {
		return err
	}
	return wrap("set MTU on "+name, s.s.SetNICMTU(id, mtu))
}

func protoOf(a netip.Addr) tcpip.NetworkProtocolNumber {
	if a.Is4() {
		return ipv4.ProtocolNumber
	}
	return ipv6.ProtocolNumber
}

// AddressProps are what source-address selection weighs besides scope and
// prefix (the unit's DEPRECATED, TEMPORARY and PREFERRED flags).
type AddressProps struct {
	Deprecated bool // chosen only when no other address will do
	Temporary  bool // preferred over a stable address (RFC 6724 rule 7)
	Preferred  bool // first among otherwise equal candidates
	// Dispatcher, if set, hears the address's assignment state (tentative
	// while IPv6 DAD runs, then assigned) and its removal.
	Dispatcher gstack.AddressDispatcher
}

// AddAddress assigns p.Addr() with prefix length p.Bits() to NIC name.
// The prefix tells gVisor the subnet (directed broadcast, on-link).
func (s *Stack) AddAddress(name string, p netip.Prefix) error {
	return s.AddAddressWithProps(name, p, AddressProps{})
}

// AddAddressWithProps is AddAddress with source-selection properties.
func (s *Stack) AddAddressWithProps(name string, p netip.Prefix, props AddressProps) error {
	id, err := s.id(name)
	if err != nil {
		return err
	}
	pa := tcpip.ProtocolAddress{
		Protocol: protoOf(p.Addr()),
		AddressWithPrefix: tcpip.AddressWithPrefix{
			Address:   tcpip.AddrFromSlice(p.Addr().AsSlice()),
			PrefixLen: p.Bits(),
		},
	}
	ap := gstack.AddressProperties{Temporary: props.Temporary, Disp: props.Dispatcher}
	ap.Lifetimes.Deprecated = props.Deprecated
	if props.Preferred {
		ap.PEB = gstack.FirstPrimaryEndpoint
	}
	return wrap(fmt.Sprintf("add address %s to %s", p, name), s.s.AddProtocolAddress(id, pa, ap))
}

// RemoveAddress removes a from NIC name.
func (s *Stack) RemoveAddress(name string, a netip.Addr) error {
	id, err := s.id(name)
	if err != nil {
		return err
	}
	return wrap(fmt.Sprintf("remove address %s from %s", a, name), s.s.RemoveAddress(id, tcpip.AddrFromSlice(a.AsSlice())))
}

// SetRoutes replaces gVisor's forwarding table with routes. gVisor takes the
// first matching entry, so routes are installed longest prefix first;
// routes naming an unknown NIC are skipped.
func (s *Stack) SetRoutes(routes []Route) {
	sorted := slices.Clone(routes)
	slices.SortStableFunc(sorted, func(a, b Route) int { return b.Dest.Bits() - a.Dest.Bits() })
	table := make([]tcpip.Route, 0, len(sorted))
	s.mu.Lock()
	for _, r := range sorted {
		id, ok := s.nics[r.NIC]
		if !ok {
			continue
		}
		tr := tcpip.Route{Destination: subnetOf(r.Dest), NIC: id}
		if r.Gateway.IsValid() {
			tr.Gateway = tcpip.AddrFromSlice(r.Gateway.AsSlice())
		}
		table = append(table, tr)
	}
	s.mu.Unlock()
	s.s.SetRouteTable(table)
}

// subnetOf converts a netip prefix to a gVisor subnet.
func subnetOf(p netip.Prefix) tcpip.Subnet {
	p = p.Masked()
	n := p.Addr().BitLen() / 8
	mask := make([]byte, n)
	for i := 0; i < p.Bits(); i++ {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	sub, err := tcpip.NewSubnet(tcpip.AddrFromSlice(p.Addr().AsSlice()), tcpip.MaskFromBytes(mask))
	if err != nil {
		panic(fmt.Sprintf("subnet %s: %v", p, err)) // cannot happen: p is masked
	}
	return sub
}

// SetPromiscuous makes NIC name accept packets for any destination address
// (the gateway terminates connections to the whole Internet on it).
func (s *Stack) SetPromiscuous(name string, on bool) error {
	id, err := s.id(name)
	if err != nil {
		return err
	}
	return wrap("promiscuous mode on "+name, s.s.SetPromiscuousMode(id, on))
}

// SetSpoofing lets endpoints on NIC name send from addresses the NIC does
// not own (replies from the remote address a connection was made to).
func (s *Stack) SetSpoofing(name string, on bool) error {
	id, err := s.id(name)
	if err != nil {
		return err
	}
	return wrap("spoofing on "+name, s.s.SetSpoofing(id, on))
}

// SetForwarding turns IP forwarding for one family on or off on NIC name
// (the ill's ROUTER flag).
func (s *Stack) SetForwarding(name string, v6, on bool) error {
	id, err := s.id(name)
	if err != nil {
		return err
	}
	proto := ipv4.ProtocolNumber
	if v6 {
		proto = ipv6.ProtocolNumber
	}
	_, terr := s.s.SetNICForwarding(id, proto, on)
	return wrap("forwarding on "+name, terr)
}
