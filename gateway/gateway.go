// Package gateway connects an isolated network namespace to the world
// through tapstack, the job slirp4netns and pasta do: TCP and UDP from the
// namespace to any destination are terminated in the stack and
// re-originated from host sockets; ICMP echo goes through host ICMP
// sockets; inbound port forwards carry host connections into the
// namespace with the client's real address; a DNS forwarder relays to the
// host's resolvers.
//
// The gateway owns none of the interface model: the daemon plumbs and
// addresses the namespace-facing interface through ifmgr (so it shows in
// tapadm) and hands the gateway the NIC name and link.
package gateway

import (
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/tapstack/tapstack/link"
	"github.com/tapstack/tapstack/stack"
)

// Defaults, as slirp4netns uses them.
var (
	DefaultCIDR      = netip.MustParsePrefix("10.0.2.0/24")
	DefaultGatewayV4 = netip.MustParseAddr("10.0.2.2")
	DefaultDNSV4     = netip.MustParseAddr("10.0.2.3")
	DefaultGuestV4   = netip.MustParseAddr("10.0.2.100")
	DefaultCIDR6     = netip.MustParsePrefix("fd00::/64")
	DefaultGatewayV6 = netip.MustParseAddr("fd00::2")
	DefaultDNSV6     = netip.MustParseAddr("fd00::3")
	DefaultGuestV6   = netip.MustParseAddr("fd00::100")
)

// DefaultUDPIdleTimeout is how long a UDP flow lives without traffic.
const DefaultUDPIdleTimeout = 60 * time.Second

// Addrs are the addresses of one family on the namespace's link. A zero
// Gateway disables the family.
type Addrs struct {
	Gateway netip.Addr // the stack's address; the namespace's default router
	DNS     netip.Addr // the DNS forwarder's address
	Guest   netip.Addr // the namespace's own address (port-forward target)
	Prefix  int        // prefix length of the link's subnet
}

// Config configures a Gateway.
type Config struct {
	// NIC is the stack NIC facing the namespace ("tap0"); Link is its link
	// (the ICMP proxy diverts echo requests there).
	NIC  string
	Link *link.Link

	V4, V6 Addrs

	// AllowHostLoopback maps connections to the gateway address onto the
	// host's loopback (127.0.0.1 / ::1). Off: they are refused.
	AllowHostLoopback bool
	// OutboundAddr4/6 bind outbound host sockets to a source address;
	// OutboundIf binds them to a host interface (SO_BINDTODEVICE).
	OutboundAddr4, OutboundAddr6 netip.Addr
	OutboundIf                   string
	// Dialer opens the outbound host sockets; nil means DefaultDialer
	// (sockets in the daemon's own network namespace).
	Dialer HostDialer
	// UDPIdleTimeout ends a UDP flow after this long without traffic
	// (DefaultUDPIdleTimeout if zero).
	UDPIdleTimeout time.Duration
	// DisableDNS turns the DNS forwarder off. Resolvers overrides the
	// servers from /etc/resolv.conf (ResolvConf, default that path).
	DisableDNS bool
	Resolvers  []netip.AddrPort
	ResolvConf string
	// MasqueradeForwards makes port-forwarded connections come from the
	// gateway address instead of the real client address.
	MasqueradeForwards bool

	Log *slog.Logger
}

// Gateway serves one namespace.
//
// Locking: mu guards forwards and closed. The outbound paths keep their own
// state (see tcp.go, udp.go, icmp.go).
type Gateway struct {
	cfg   Config
	stack *stack.Stack
	log   *slog.Logger

	mu       sync.Mutex
	forwards map[int]*forwarder
	nextID   int
	closed   bool

	closers []func() // stop functions of started components, in start order
	wg      sync.WaitGroup
}

// New starts the gateway on cfg.NIC: the NIC becomes promiscuous (it
// accepts packets for any address) and may spoof (it answers from them),
// and the outbound TCP, UDP and ICMP paths and the DNS forwarder start.
func New(st *stack.Stack, cfg Config) (*Gateway, error) {
	if cfg.NIC == "" {
		return nil, fmt.Errorf("gateway: no NIC")
	}
	if !cfg.V4.Gateway.IsValid() && !cfg.V6.Gateway.IsValid() {
		return nil, fmt.Errorf("gateway: neither an IPv4 nor an IPv6 gateway address")
	}
	if cfg.UDPIdleTimeout == 0 {
		cfg.UDPIdleTimeout = DefaultUDPIdleTimeout
	}
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = "/etc/resolv.conf"
	}
	g := &Gateway{cfg: cfg, stack: st, log: cfg.Log, forwards: map[int]*forwarder{}, nextID: 1}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if err := st.SetPromiscuous(cfg.NIC, true); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if err := st.SetSpoofing(cfg.NIC, true); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	starts := []struct {
		name  string
		start func() (func(), error)
	}{
		{"TCP", g.startTCP},
		{"UDP", g.startUDP},
		{"ICMP", g.startICMP},
		{"DNS", g.startDNS},
	}
	for _, s := range starts {
		stop, err := s.start()
		if err != nil {
			g.Close()
			return nil, fmt.Errorf("gateway: start %s: %w", s.name, err)
		}
		if stop != nil {
			g.closers = append(g.closers, stop)
		}
	}
	return g, nil
}

// Close stops every component and forward and waits for their goroutines.
func (g *Gateway) Close() {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	g.closed = true
	fws := g.forwards
	g.forwards = nil
	g.mu.Unlock()
	for _, f := range fws {
		f.close()
	}
	for i := len(g.closers) - 1; i >= 0; i-- {
		g.closers[i]()
	}
	g.wg.Wait()
	g.stack.SetPromiscuous(g.cfg.NIC, false)
	g.stack.SetSpoofing(g.cfg.NIC, false)
}

// Config returns the configuration the gateway runs with.
func (g *Gateway) Config() Config { return g.cfg }
