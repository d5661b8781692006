package gateway

// The outbound paths (tcp.go, udp.go, icmp.go) share what is here: the
// policy that says where traffic from the namespace may go (policy,
// decide), the dial through the configured HostDialer with the outbound
// binding, and the per-gVisor-stack default transport handlers.
//
// Policy, in the order it is applied (slirp4netns semantics, with
// --disable-host-loopback unless AllowHostLoopback):
//
//	destination                                   TCP        UDP                 ICMP echo
//	unspecified, multicast, broadcast             drop       drop                gVisor answers
//	IPv6 link-local                               drop       drop                gVisor answers
//	IPv4-mapped IPv6                              drop       drop                no reply
//	the gateway address (AllowHostLoopback)       127.0.0.1 / ::1, same port     gVisor answers
//	the gateway address (otherwise)               RST        port unreachable    gVisor answers
//	the DNS address (no listener on the port)     RST        port unreachable    gVisor answers
//	127.0.0.0/8, ::1 (AllowHostLoopback)          dialled as is                  proxied
//	127.0.0.0/8, ::1 (otherwise)                  RST        port unreachable    no reply
//	another address of the namespace's subnet     drop       drop                no reply
//	anything else                                 dialled from OutboundAddr4/6 and OutboundIf
//
// gVisor drops packets with a loopback destination that arrive on a
// non-loopback NIC (martian packets) before TCP and UDP see them, so the
// loopback rows matter for TCP and UDP only on a stack built to accept
// them; the ICMP diverter sees packets before that check.
//
// Sockets towards the host's loopback (the first and the 127/8 rows) are
// never bound to OutboundAddr4/6 or OutboundIf: bound, they could not
// reach it.

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"weak"

	"gvisor.dev/gvisor/pkg/tcpip"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// verdict is what the policy says about one destination.
type verdict uint8

const (
	// forward: re-originate from a host socket to the target.
	forward verdict = iota
	// refuse: answer as a host without the service would (TCP RST, ICMP
	// port unreachable; no echo reply).
	refuse
	// drop: say nothing, as a network that loses the packet would.
	drop
)

func (v verdict) String() string {
	switch v {
	case forward:
		return "forward"
	case refuse:
		return "refuse"
	}
	return "drop"
}

// target is where a flow goes on the host: the address to connect to (the
// port never changes) and whether it is the host's loopback, which is
// reached without the outbound binding.
type target struct {
	addr     netip.Addr
	loopback bool
}

// policy is the gateway's outbound policy, computed once from Config.
// It is immutable, so the data path reads it without locks.
type policy struct {
	allowLoopback      bool
	gw4, dns4          netip.Addr
	gw6, dns6          netip.Addr
	subnet4, subnet6   netip.Prefix // invalid when the family is off
	bcast4             netip.Addr   // subnet-directed broadcast
	outAddr4, outAddr6 netip.Addr
	outIf              string
}

func newPolicy(cfg Config) policy {
	p := policy{
		allowLoopback: cfg.AllowHostLoopback,
		gw4:           cfg.V4.Gateway, dns4: cfg.V4.DNS,
		gw6: cfg.V6.Gateway, dns6: cfg.V6.DNS,
		outAddr4: cfg.OutboundAddr4, outAddr6: cfg.OutboundAddr6,
		outIf: cfg.OutboundIf,
	}
	if cfg.V4.Gateway.IsValid() {
		if pfx, err := cfg.V4.Gateway.Prefix(cfg.V4.Prefix); err == nil && cfg.V4.Prefix > 0 {
			p.subnet4 = pfx
			if cfg.V4.Prefix < 31 {
				b := pfx.Addr().As4()
				host := ^uint32(0) >> cfg.V4.Prefix
				b[0] |= byte(host >> 24)
				b[1] |= byte(host >> 16)
				b[2] |= byte(host >> 8)
				b[3] |= byte(host)
				p.bcast4 = netip.AddrFrom4(b)
			}
		}
	}
	if cfg.V6.Gateway.IsValid() {
		if pfx, err := cfg.V6.Gateway.Prefix(cfg.V6.Prefix); err == nil && cfg.V6.Prefix > 0 {
			p.subnet6 = pfx
		}
	}
	return p
}

// own reports whether dst is one of the gateway's own addresses on the
// namespace's link (the gateway and DNS addresses), which the stack
// itself serves.
func (p *policy) own(dst netip.Addr) bool {
	if !dst.IsValid() {
		return false
	}
	return dst == p.gw4 || dst == p.dns4 || dst == p.gw6 || dst == p.dns6
}

// decide applies the policy to traffic from the namespace for dst (see
// the table at the top of this file).
func (p *policy) decide(dst netip.Addr) (target, verdict) {
	switch {
	case !dst.IsValid() || dst.IsUnspecified() || dst.IsMulticast():
		return target{}, drop
	case dst.Is4() && (dst == netip.AddrFrom4([4]byte{255, 255, 255, 255}) || dst == p.bcast4):
		return target{}, drop
	case dst.Is4In6() || (dst.Is6() && dst.IsLinkLocalUnicast()):
		return target{}, drop
	case dst == p.gw4 || dst == p.gw6:
		if !p.allowLoopback {
			return target{}, refuse
		}
		if dst.Is4() {
			return target{addr: netip.AddrFrom4([4]byte{127, 0, 0, 1}), loopback: true}, forward
		}
		return target{addr: netip.IPv6Loopback(), loopback: true}, forward
	case dst == p.dns4 || dst == p.dns6:
		return target{}, refuse
	case dst.IsLoopback():
		if !p.allowLoopback {
			return target{}, refuse
		}
		return target{addr: dst, loopback: true}, forward
	case p.subnet4.IsValid() && p.subnet4.Contains(dst), p.subnet6.IsValid() && p.subnet6.Contains(dst):
		return target{}, drop
	}
	return target{addr: dst}, forward
}

// binding returns the local address and device outbound sockets to t use.
func (p *policy) binding(t target) (netip.Addr, string) {
	if t.loopback {
		return netip.Addr{}, ""
	}
	if t.addr.Is4() {
		return p.outAddr4, p.outIf
	}
	return p.outAddr6, p.outIf
}

// dial connects a host socket of kind "tcp" or "udp" to t, port port, with
// the outbound binding.
func (g *Gateway) dial(ctx context.Context, p *policy, kind string, t target, port uint16) (net.Conn, error) {
	network := kind + "4"
	if t.addr.Is6() {
		network = kind + "6"
	}
	laddr, dev := p.binding(t)
	return g.dialer().Dial(ctx, network, laddr, dev, netip.AddrPortFrom(t.addr, port))
}

// refusedError reports whether a failed connect was answered by the
// destination or a local rule (the namespace should see a reset) rather
// than lost on the way (it should see nothing and time out, as it would
// if a router's ICMP error never came back).
func refusedError(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ETIMEDOUT, syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.EHOSTDOWN, syscall.ENETDOWN:
			return false
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return true
}

// fromTCPIP converts a gVisor address (4 or 16 bytes) to a netip.Addr.
func fromTCPIP(a tcpip.Address) netip.Addr {
	ip, _ := netip.AddrFromSlice(a.AsSlice())
	return ip
}

// toTCPIP converts a netip.Addr to a gVisor address.
func toTCPIP(a netip.Addr) tcpip.Address {
	return tcpip.AddrFromSlice(a.AsSlice())
}

// transportHandler is a gVisor per-stack default transport handler: it
// sees the TCP segments and UDP datagrams no endpoint took. It returns
// false to let the protocol answer as for a closed port (TCP RST, ICMP
// port unreachable).
type transportHandler = func(gstack.TransportEndpointID, *gstack.PacketBuffer) bool

// nicHandlers maps NIC ids to the handler of the gateway on that NIC.
type nicHandlers map[tcpip.NICID]transportHandler

// transportHooks are the default TCP and UDP handlers of one gVisor stack.
// gVisor allows setting those only once, before the stack carries traffic
// (SetTransportProtocolHandler is unsynchronised), while gateways come and
// go on a running stack, several on one stack (one per namespace, each on
// its own NIC). So the hooks are installed once per stack and dispatch on
// the packet's NIC to the gateway there, through copy-on-write maps read
// with one atomic load per packet. (The one installation still races, in
// principle, with packets already flowing when the first gateway starts
// on a busy stack; it is a single pointer store.)
type transportHooks struct {
	mu       sync.Mutex // serialises writers of tcp and udp
	tcp, udp atomic.Pointer[nicHandlers]
}

var (
	hooksMu sync.Mutex
	// hooks holds one entry per gVisor stack that has had a gateway,
	// dropped when the stack is garbage collected.
	hooks = map[weak.Pointer[gstack.Stack]]*transportHooks{}
)

// hooksFor returns the hooks of s, installing them on first use.
func hooksFor(s *gstack.Stack) *transportHooks {
	hooksMu.Lock()
	defer hooksMu.Unlock()
	k := weak.Make(s)
	if h, ok := hooks[k]; ok {
		return h
	}
	h := &transportHooks{}
	s.SetTransportProtocolHandler(tcp.ProtocolNumber, func(id gstack.TransportEndpointID, pkt *gstack.PacketBuffer) bool {
		return dispatch(&h.tcp, id, pkt)
	})
	s.SetTransportProtocolHandler(udp.ProtocolNumber, func(id gstack.TransportEndpointID, pkt *gstack.PacketBuffer) bool {
		return dispatch(&h.udp, id, pkt)
	})
	hooks[k] = h
	runtime.AddCleanup(s, func(k weak.Pointer[gstack.Stack]) {
		hooksMu.Lock()
		delete(hooks, k)
		hooksMu.Unlock()
	}, k)
	return h
}

func dispatch(m *atomic.Pointer[nicHandlers], id gstack.TransportEndpointID, pkt *gstack.PacketBuffer) bool {
	hs := m.Load()
	if hs == nil {
		return false
	}
	if f := (*hs)[pkt.NICID]; f != nil {
		return f(id, pkt)
	}
	return false
}

// set installs f as the handler for nic in m (nil removes it).
func (h *transportHooks) set(m *atomic.Pointer[nicHandlers], nic tcpip.NICID, f transportHandler) {
	h.mu.Lock()
	defer h.mu.Unlock()
	next := nicHandlers{}
	if cur := m.Load(); cur != nil {
		for k, v := range *cur {
			next[k] = v
		}
	}
	if f == nil {
		delete(next, nic)
	} else {
		next[nic] = f
	}
	m.Store(&next)
}
