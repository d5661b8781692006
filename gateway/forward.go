package gateway

// Inbound port forwards: host sockets that carry connections and datagrams
// into the namespace.
//
// A forward listens on the host (HostAddr:HostPort; a zero HostAddr means
// both 0.0.0.0 and [::], the latter where the host has IPv6). For each
// accepted TCP connection, and for each UDP client address, it opens an
// endpoint in the stack on the namespace's NIC whose source is the real
// client address and port, and connects it to the guest. The namespace
// sees who really connected; its reply follows its default route to the
// stack, whose NIC is promiscuous (it takes packets for any address) and
// may spoof (it sends from any address): gateway.New sets both.
//
// The source is the gateway address instead (the connection is
// masqueraded) when:
//   - Config.MasqueradeForwards is set;
//   - the client's family differs from the guest address's (an IPv4 client
//     forwarded to an IPv6-only namespace, or the reverse);
//   - the client address cannot be routed back from the namespace: a
//     loopback address (a client on the host itself, 127.0.0.1 or ::1: the
//     namespace would answer to its own loopback), an unspecified,
//     multicast or link-local address, or an address inside the
//     namespace's own subnet (the namespace would look for it on the link
//     rather than send it to its router);
//   - the client's address and port are already bound in the stack (the
//     same client through two forwards to the same guest port, or a
//     4-tuple still in TIME-WAIT).
//
// Not supported: forwarding to a namespace address outside the link's
// subnet without a route in the stack, per-forward source address
// preservation switches (the switch is gateway-wide), and SCTP.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/tapstack/tapstack/ctl"
)

// Limits of one forward.
const (
	// fwdMaxConns bounds the TCP connections a forward carries at
	// once (each costs two goroutines); a connection accepted beyond it
	// is reset.
	fwdMaxConns = 1024
	// fwdMaxFlows bounds the UDP flows a forward keeps at once (each
	// costs a goroutine and a stack endpoint); a datagram that would
	// start one more is dropped.
	fwdMaxFlows = 1024
	// fwdDialTimeout bounds the connection to the guest.
	fwdDialTimeout = 10 * time.Second
	// fwdMaxDatagram is the largest UDP payload (IPv6 without jumbograms;
	// IPv4 allows less).
	fwdMaxDatagram = 65535
)

// forwarder is one inbound port forward: its host listeners, and the TCP
// connections and UDP flows it carries.
//
// Locking: mu guards closed, conns and flows; it is never held across a
// call that blocks. The listener slices and spec are written only before
// the goroutines start. A forwarder never takes Gateway.mu, but close
// waits for its goroutines, so callers do not hold Gateway.mu across
// close (LOCK ORDERING: Gateway.mu, then forwarder.mu).
type forwarder struct {
	g    *Gateway
	spec ctl.Forward
	nic  tcpip.NICID

	tcpLns []*net.TCPListener
	udpLns []*fwdHostUDP

	active atomic.Int32 // TCP connections being served (fwdMaxConns)

	ctx    context.Context // cancelled by close: ends dials in progress
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	mu sync.Mutex
	// +checklocks:mu
	closed bool
	// +checklocks:mu
	conns map[*tcpSplice]struct{}
	// +checklocks:mu
	flows map[fwdFlowKey]*fwdFlow
}

// ParseForward parses a port-forward spec,
// [HOSTADDR:]HOSTPORT:GUESTPORT[/tcp|/udp]: the protocol defaults to tcp,
// an IPv6 host address is written in brackets ("[::1]:8080:80"), ports are
// 1..65535. A missing host address means every host address, IPv4 and
// IPv6. Every malformed spec is a *ctl.Error with EINVAL saying what is
// wrong. The syntax is that of `docker run -p` / `podman run -p`.
func ParseForward(spec string) (ctl.Forward, error) {
	bad := func(format string, args ...any) (ctl.Forward, error) {
		return ctl.Forward{}, ctl.Errorf(ctl.EINVAL, "port forward %q: "+format, append([]any{spec}, args...)...)
	}
	if spec == "" {
		return ctl.Forward{}, ctl.Errorf(ctl.EINVAL, "empty port forward; want [HOSTADDR:]HOSTPORT:GUESTPORT[/tcp|/udp]")
	}
	f := ctl.Forward{Proto: "tcp"}
	rest := spec
	if i := strings.LastIndexByte(rest, '/'); i >= 0 {
		switch p := strings.ToLower(rest[i+1:]); p {
		case "tcp", "udp":
			f.Proto = p
		case "":
			return bad("empty protocol after /; want tcp or udp")
		default:
			return bad("unknown protocol %q; want tcp or udp", rest[i+1:])
		}
		rest = rest[:i]
	}
	var host string
	hasHost, bracketed := false, false
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return bad("missing ] after the IPv6 host address")
		}
		host, rest = rest[1:end], rest[end+1:]
		if !strings.HasPrefix(rest, ":") {
			return bad("want : after ]")
		}
		rest = rest[1:]
		hasHost, bracketed = true, true
	}
	parts := strings.Split(rest, ":")
	if !hasHost && len(parts) == 3 {
		host, parts, hasHost = parts[0], parts[1:], true
	}
	if len(parts) != 2 {
		if !bracketed && len(parts) > 3 {
			return bad("too many colons; want [HOSTADDR:]HOSTPORT:GUESTPORT[/tcp|/udp] (an IPv6 host address goes in brackets, as in [::1]:8080:80)")
		}
		return bad("want [HOSTADDR:]HOSTPORT:GUESTPORT[/tcp|/udp]")
	}
	if hasHost {
		if host == "" {
			return bad("empty host address")
		}
		a, err := netip.ParseAddr(host)
		if err != nil {
			return bad("host address %q is not an IP address", host)
		}
		if bracketed && !a.Is6() {
			return bad("brackets are for IPv6 addresses; write an IPv4 host address without them")
		}
		f.HostAddr = a.Unmap()
		if f.HostAddr.IsMulticast() {
			return bad("host address %s is multicast", f.HostAddr)
		}
	}
	var err error
	if f.HostPort, err = fwdParsePort("host", parts[0]); err != nil {
		return bad("%v", err)
	}
	if f.GuestPort, err = fwdParsePort("guest", parts[1]); err != nil {
		return bad("%v", err)
	}
	return f, nil
}

// fwdParsePort parses a decimal port number, 1..65535.
func fwdParsePort(what, s string) (uint16, error) {
	if s == "" {
		return 0, fmt.Errorf("empty %s port", what)
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%s port %q is not a number", what, s)
		}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%s port %s is out of range 1-65535", what, s)
	}
	return uint16(n), nil
}

// fwdString formats a forward for messages: "tcp 127.0.0.1:8080 -> :80".
func fwdString(f ctl.Forward) string {
	host := "*"
	if f.HostAddr.IsValid() {
		host = f.HostAddr.String()
		if f.HostAddr.Is6() {
			host = "[" + host + "]"
		}
	}
	guest := ""
	if f.GuestAddr.IsValid() {
		guest = netip.AddrPortFrom(f.GuestAddr, 0).String()
		guest = guest[:len(guest)-2] // drop ":0"
	}
	return fmt.Sprintf("%s %s:%d -> %s:%d", f.Proto, host, f.HostPort, guest, f.GuestPort)
}

// AddForward starts forward f and returns it with its ID assigned. Proto
// "" means tcp. A forward that is the same as, or fwdOverlaps (same protocol
// and port, and the same host address or either on every address), an
// existing one is EEXIST; a host port already in use is EADDRINUSE; a
// protocol other than tcp or udp, a zero port or an unusable address is
// EINVAL; after Close, ENXIO. On error nothing has changed.
// Equivalent to: `tapadm gateway add-forward 8080:80`.
func (g *Gateway) AddForward(f ctl.Forward) (ctl.Forward, error) {
	f.ID = 0
	if err := g.fwdCheck(&f); err != nil {
		return ctl.Forward{}, err
	}
	nic, ok := g.stack.NICID(g.cfg.NIC)
	if !ok {
		return ctl.Forward{}, ctl.Errorf(ctl.ENXIO, "port forward %s: no NIC %s", fwdString(f), g.cfg.NIC)
	}

	// g.mu is held while the host sockets open (a few system calls) so
	// that two concurrent adds of one forward cannot both pass the
	// duplicate check.
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return ctl.Forward{}, ctl.Errorf(ctl.ENXIO, "port forward %s: the gateway is closed", fwdString(f))
	}
	for _, o := range g.forwards {
		if fwdOverlaps(o.spec, f) {
			return ctl.Forward{}, ctl.Errorf(ctl.EEXIST, "port forward %s: host port already forwarded by forward %d (%s)", fwdString(f), o.spec.ID, fwdString(o.spec))
		}
	}
	fw := &forwarder{
		g:     g,
		spec:  f,
		nic:   nic,
		conns: map[*tcpSplice]struct{}{},
		flows: map[fwdFlowKey]*fwdFlow{},
	}
	if err := fw.listen(); err != nil {
		return ctl.Forward{}, err
	}
	fw.spec.ID = g.nextID
	g.nextID++
	fw.ctx, fw.cancel = context.WithCancel(context.Background())
	g.forwards[fw.spec.ID] = fw
	fw.start()
	g.log.Debug("port forward added", "id", fw.spec.ID, "forward", fwdString(fw.spec))
	return fw.spec, nil
}

// fwdCheck validates f and normalises it (protocol, unmapped
// addresses).
func (g *Gateway) fwdCheck(f *ctl.Forward) error {
	switch f.Proto {
	case "":
		f.Proto = "tcp"
	case "tcp", "udp":
	default:
		return ctl.Errorf(ctl.EINVAL, "port forward: unknown protocol %q; want tcp or udp", f.Proto)
	}
	f.HostAddr = f.HostAddr.Unmap()
	f.GuestAddr = f.GuestAddr.Unmap()
	switch {
	case f.HostPort == 0:
		return ctl.Errorf(ctl.EINVAL, "port forward %s: host port 0; want 1-65535", fwdString(*f))
	case f.GuestPort == 0:
		return ctl.Errorf(ctl.EINVAL, "port forward %s: guest port 0; want 1-65535", fwdString(*f))
	case f.HostAddr.IsMulticast():
		return ctl.Errorf(ctl.EINVAL, "port forward %s: host address %s is multicast", fwdString(*f), f.HostAddr)
	}
	if !f.GuestAddr.IsValid() {
		if !fwdUsable(g.cfg.V4) && !fwdUsable(g.cfg.V6) {
			return ctl.Errorf(ctl.EINVAL, "port forward %s: the gateway knows no namespace address; give a guest address", fwdString(*f))
		}
		return nil
	}
	a := g.fwdAddrs(f.GuestAddr)
	switch ga := f.GuestAddr; {
	case ga.IsUnspecified() || ga.IsMulticast() || ga.IsLoopback() || (ga.Is4() && ga == netip.AddrFrom4([4]byte{255, 255, 255, 255})):
		return ctl.Errorf(ctl.EINVAL, "port forward %s: guest address %s is not a unicast address", fwdString(*f), ga)
	case !a.Gateway.IsValid():
		return ctl.Errorf(ctl.EINVAL, "port forward %s: guest address %s is %s but the gateway has no %s address", fwdString(*f), ga, fwdFamily(ga), fwdFamily(ga))
	case ga == a.Gateway || ga == a.DNS:
		return ctl.Errorf(ctl.EINVAL, "port forward %s: guest address %s is the gateway's own", fwdString(*f), ga)
	}
	return nil
}

func fwdFamily(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// fwdUsable reports whether a family has what a forward with no guest
// address needs: a gateway (masquerade source) and a guest address.
func fwdUsable(a Addrs) bool { return a.Gateway.IsValid() && a.Guest.IsValid() }

// fwdAddrs returns the addresses of a's family.
func (g *Gateway) fwdAddrs(a netip.Addr) Addrs {
	if a.Is4() {
		return g.cfg.V4
	}
	return g.cfg.V6
}

// fwdOverlaps reports whether a and b would listen on the same host socket:
// same protocol and port, and the same host address or either on all.
func fwdOverlaps(a, b ctl.Forward) bool {
	if a.Proto != b.Proto || a.HostPort != b.HostPort {
		return false
	}
	return !a.HostAddr.IsValid() || !b.HostAddr.IsValid() || a.HostAddr == b.HostAddr
}

// RemoveForward stops forward id: its host listeners close and every
// connection and flow it carries is ended. It returns once they have.
// An unknown id is ENOENT; after Close, ENXIO.
// Equivalent to: `tapadm gateway remove-forward 1`.
func (g *Gateway) RemoveForward(id int) error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return ctl.Errorf(ctl.ENXIO, "remove port forward %d: the gateway is closed", id)
	}
	fw, ok := g.forwards[id]
	if !ok {
		g.mu.Unlock()
		return ctl.Errorf(ctl.ENOENT, "remove port forward %d: no such forward", id)
	}
	delete(g.forwards, id)
	g.mu.Unlock()
	fw.close() // outside g.mu: it waits for the forward's goroutines
	g.log.Debug("port forward removed", "id", id, "forward", fwdString(fw.spec))
	return nil
}

// Forwards returns the forwards, sorted by ID.
func (g *Gateway) Forwards() []ctl.Forward {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]ctl.Forward, 0, len(g.forwards))
	for _, fw := range g.forwards {
		out = append(out, fw.spec)
	}
	slices.SortFunc(out, func(a, b ctl.Forward) int { return a.ID - b.ID })
	return out
}

// fwdListenAddrs returns the host addresses f listens on and whether
// failing for lack of the family may be skipped.
func fwdListenAddrs(f ctl.Forward) []struct {
	addr     netip.Addr
	optional bool
} {
	type la = struct {
		addr     netip.Addr
		optional bool
	}
	if f.HostAddr.IsValid() {
		return []la{{f.HostAddr, false}}
	}
	return []la{{netip.IPv4Unspecified(), false}, {netip.IPv6Unspecified(), true}}
}

// listen opens the host sockets. On error it closes those it opened and
// returns a *ctl.Error.
func (fw *forwarder) listen() error {
	var lc net.ListenConfig
	for _, la := range fwdListenAddrs(fw.spec) {
		network := fw.spec.Proto + "4"
		if la.addr.Is6() {
			network = fw.spec.Proto + "6" // V6ONLY: [::] and 0.0.0.0 coexist
		}
		ap := netip.AddrPortFrom(la.addr, fw.spec.HostPort)
		var err error
		if fw.spec.Proto == "tcp" {
			var l net.Listener
			if l, err = lc.Listen(context.Background(), network, ap.String()); err == nil {
				fw.tcpLns = append(fw.tcpLns, l.(*net.TCPListener))
			}
		} else {
			var h *fwdHostUDP
			if h, err = fwdListenUDP(network, ap); err == nil {
				fw.udpLns = append(fw.udpLns, h)
			}
		}
		if err == nil {
			continue
		}
		if la.optional && (errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, syscall.EADDRNOTAVAIL)) {
			continue // the host has no IPv6
		}
		fw.closeListeners()
		return fwdListenError(fw.spec, network, ap, err)
	}
	return nil
}

// fwdListenError turns a host listen error into a *ctl.Error with its errno.
func fwdListenError(f ctl.Forward, network string, ap netip.AddrPort, err error) error {
	var se syscall.Errno
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return ctl.Errorf(ctl.EADDRINUSE, "port forward %s: host port %s %s is already in use", fwdString(f), network, ap)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return ctl.Errorf(ctl.EADDRNOTAVAIL, "port forward %s: %s is not an address of this host", fwdString(f), ap.Addr())
	case errors.Is(err, syscall.EACCES):
		return ctl.Errorf(ctl.EACCES, "port forward %s: no permission to listen on %s %s (ports below 1024 need privilege)", fwdString(f), network, ap)
	case errors.As(err, &se):
		return ctl.Errorf(ctl.Errno(se), "port forward %s: listen %s %s: %v", fwdString(f), network, ap, err)
	}
	return ctl.Errorf(ctl.EINVAL, "port forward %s: listen %s %s: %v", fwdString(f), network, ap, err)
}

func (fw *forwarder) closeListeners() {
	for _, l := range fw.tcpLns {
		l.Close()
	}
	for _, h := range fw.udpLns {
		h.conn.Close()
	}
}

// start runs the accept and read loops.
func (fw *forwarder) start() {
	for _, l := range fw.tcpLns {
		fw.wg.Go(func() { fw.acceptLoop(l) })
	}
	for _, h := range fw.udpLns {
		fw.wg.Go(func() { fw.readLoop(h) })
	}
}

// close stops the listeners, ends every connection and flow, and waits for
// the forward's goroutines. It may be called more than once.
func (fw *forwarder) close() {
	fw.once.Do(func() {
		fw.mu.Lock()
		fw.closed = true
		conns := make([]*tcpSplice, 0, len(fw.conns))
		for c := range fw.conns {
			conns = append(conns, c)
		}
		flows := make([]*fwdFlow, 0, len(fw.flows))
		for _, fl := range fw.flows {
			flows = append(flows, fl)
		}
		fw.mu.Unlock()
		if fw.cancel != nil {
			fw.cancel()
		}
		fw.closeListeners()
		for _, c := range conns {
			c.abort()
		}
		for _, fl := range flows {
			fl.stop()
		}
	})
	fw.wg.Wait()
}

// path returns where traffic from client goes: the source in the stack
// (the client itself, or the gateway address when masqueraded; port 0
// then means an ephemeral port), the guest address and port, and whether
// the source is masqueraded.
func (fw *forwarder) path(client netip.AddrPort) (src, dst netip.AddrPort, masq bool) {
	cfg := &fw.g.cfg
	guest := fw.spec.GuestAddr
	if !guest.IsValid() {
		v4 := client.Addr().Is4()
		switch {
		case v4 && fwdUsable(cfg.V4), !v4 && !fwdUsable(cfg.V6):
			guest = cfg.V4.Guest
		default:
			guest = cfg.V6.Guest
		}
	}
	a := fw.g.fwdAddrs(guest)
	dst = netip.AddrPortFrom(guest, fw.spec.GuestPort)
	if cfg.MasqueradeForwards || client.Addr().Is4() != guest.Is4() || !fwdRoutableSource(a, client.Addr()) {
		return netip.AddrPortFrom(a.Gateway, 0), dst, true
	}
	return client, dst, false
}

// fwdRoutableSource reports whether the namespace, whose link addresses are
// a, can answer to addr through its default route to the stack.
func fwdRoutableSource(a Addrs, addr netip.Addr) bool {
	if addr.IsLoopback() || addr.IsUnspecified() || addr.IsMulticast() ||
		addr.IsLinkLocalUnicast() || addr == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return false
	}
	if addr == a.Gateway || addr == a.DNS || addr == a.Guest {
		return false
	}
	if a.Prefix > 0 {
		if p, err := a.Gateway.Prefix(a.Prefix); err == nil && p.Contains(addr) {
			return false
		}
	}
	return true
}

// fwdFullAddr converts ap to a gVisor address on nic.
func fwdFullAddr(nic tcpip.NICID, ap netip.AddrPort) tcpip.FullAddress {
	return tcpip.FullAddress{NIC: nic, Addr: tcpip.AddrFromSlice(ap.Addr().AsSlice()), Port: ap.Port()}
}

func fwdNetProto(a netip.Addr) tcpip.NetworkProtocolNumber {
	if a.Is4() {
		return header.IPv4ProtocolNumber
	}
	return header.IPv6ProtocolNumber
}

// fwdStackError is a gVisor error with the operation that failed; errors.As
// finds it, and fwdAddrInUse looks at its type.
type fwdStackError struct {
	op  string
	err tcpip.Error
}

func (e *fwdStackError) Error() string { return e.op + ": " + e.err.String() }

// fwdAddrInUse reports whether err is gVisor's "port in use".
func fwdAddrInUse(err error) bool {
	var te *fwdStackError
	if !errors.As(err, &te) {
		return false
	}
	switch te.err.(type) {
	case *tcpip.ErrPortInUse, *tcpip.ErrDuplicateAddress:
		return true
	}
	return false
}

// ---- TCP ----

// acceptLoop accepts host connections on l until the forward closes.
func (fw *forwarder) acceptLoop(l *net.TCPListener) {
	var backoff time.Duration
	for {
		c, err := l.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || fw.ctx.Err() != nil {
				return
			}
			// EMFILE and the like: wait, as net/http does, then retry.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			select {
			case <-time.After(backoff):
			case <-fw.ctx.Done():
				return
			}
			continue
		}
		backoff = 0
		if fw.active.Add(1) > fwdMaxConns {
			fw.active.Add(-1)
			c.SetLinger(0)
			c.Close()
			continue
		}
		fw.wg.Go(func() {
			defer fw.active.Add(-1)
			fw.serveTCP(c)
		})
	}
}

// serveTCP connects an accepted host connection to the guest and splices
// the two until both directions are done.
func (fw *forwarder) serveTCP(host *net.TCPConn) {
	ra := host.RemoteAddr().(*net.TCPAddr).AddrPort()
	client := netip.AddrPortFrom(ra.Addr().Unmap(), ra.Port()) // a [::] socket may see ::ffff:a.b.c.d
	ctx, cancel := context.WithTimeout(fw.ctx, fwdDialTimeout)
	ep, wq, err := fw.dialGuest(ctx, client)
	cancel()
	if err != nil {
		// Refused or unreachable in the namespace: the client sees a
		// reset, as close to "connection refused" as it can get once
		// accepted.
		fw.g.log.Debug("port forward: connect to guest failed", "forward", fwdString(fw.spec), "client", client, "err", err)
		host.SetLinger(0)
		host.Close()
		return
	}
	c, err := newTCPSplice(ep, wq, host)
	if err != nil {
		ep.Abort()
		ep.Close()
		abortHost(host)
		return
	}
	fw.mu.Lock()
	if fw.closed {
		fw.mu.Unlock()
		c.discard()
		return
	}
	fw.conns[c] = struct{}{}
	fw.mu.Unlock()
	defer func() {
		fw.mu.Lock()
		delete(fw.conns, c)
		fw.mu.Unlock()
	}()
	c.run()
}

// dialGuest opens the stack side of a connection from client: from the
// client's own address when it can be (see path), else from the gateway
// address.
func (fw *forwarder) dialGuest(ctx context.Context, client netip.AddrPort) (tcpip.Endpoint, *waiter.Queue, error) {
	src, dst, masq := fw.path(client)
	ep, wq, err := fwdConnectTCP(ctx, fw.g, fw.nic, src, dst)
	if err != nil && !masq && fwdAddrInUse(err) {
		// The client's address and port are taken in the stack: fall
		// back to the gateway address.
		a := fw.g.fwdAddrs(dst.Addr())
		ep, wq, err = fwdConnectTCP(ctx, fw.g, fw.nic, netip.AddrPortFrom(a.Gateway, 0), dst)
	}
	return ep, wq, err
}

// fwdConnectTCP creates a TCP endpoint in the stack bound to src on nic and
// connects it to dst. Binding a non-local src works because the NIC may
// spoof.
func fwdConnectTCP(ctx context.Context, g *Gateway, nic tcpip.NICID, src, dst netip.AddrPort) (tcpip.Endpoint, *waiter.Queue, error) {
	wq := new(waiter.Queue)
	ep, terr := g.stack.GVisor().NewEndpoint(tcp.ProtocolNumber, fwdNetProto(dst.Addr()), wq)
	if terr != nil {
		return nil, nil, &fwdStackError{"socket", terr}
	}
	// A 4-tuple of an earlier connection may still be closing.
	ep.SocketOptions().SetReuseAddress(true)
	// Before Connect: the SYN's window scale is chosen from it.
	ep.SocketOptions().SetReceiveBufferSize(relayReceiveBuffer, true)
	if terr := ep.Bind(fwdFullAddr(nic, src)); terr != nil {
		ep.Close()
		return nil, nil, &fwdStackError{fmt.Sprintf("bind %s", src), terr}
	}
	entry, notify := waiter.NewChannelEntry(waiter.WritableEvents)
	wq.EventRegister(&entry)
	defer wq.EventUnregister(&entry)
	terr = ep.Connect(fwdFullAddr(nic, dst))
	if _, ok := terr.(*tcpip.ErrConnectStarted); ok {
		select {
		case <-ctx.Done():
			ep.Abort()
			ep.Close()
			return nil, nil, fmt.Errorf("connect %s from %s: %w", dst, src, ctx.Err())
		case <-notify:
		}
		terr = ep.LastError()
	}
	if terr != nil {
		ep.Close()
		return nil, nil, &fwdStackError{fmt.Sprintf("connect %s from %s", dst, src), terr}
	}
	return ep, wq, nil
}

// ---- UDP ----

// fwdHostUDP is one host UDP socket of a forward. A wildcard socket reads
// each datagram's destination address (IP_PKTINFO / IPV6_RECVPKTINFO) so
// that replies leave from the address the client sent to; on a
// multi-homed host the routing table's choice could differ, and the
// client's connected socket would drop the reply.
type fwdHostUDP struct {
	conn *net.UDPConn
	p4   *ipv4.PacketConn // set for a 0.0.0.0 socket
	p6   *ipv6.PacketConn // set for a [::] socket
}

func fwdListenUDP(network string, ap netip.AddrPort) (*fwdHostUDP, error) {
	c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return nil, err
	}
	h := &fwdHostUDP{conn: c}
	if ap.Addr().IsUnspecified() {
		if ap.Addr().Is4() {
			h.p4 = ipv4.NewPacketConn(c)
			err = h.p4.SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true)
		} else {
			h.p6 = ipv6.NewPacketConn(c)
			err = h.p6.SetControlMessage(ipv6.FlagDst|ipv6.FlagInterface, true)
		}
		if err != nil {
			c.Close()
			return nil, err
		}
	}
	return h, nil
}

// fwdLocal is where a datagram was sent on the host: the address (invalid
// when the socket is bound to one) and interface.
type fwdLocal struct {
	addr    netip.Addr
	ifindex int
}

// read reads one datagram: its length, sender and local address.
func (h *fwdHostUDP) read(buf []byte) (int, netip.AddrPort, fwdLocal, error) {
	var (
		n    int
		from net.Addr
		err  error
		loc  fwdLocal
	)
	switch {
	case h.p4 != nil:
		var cm *ipv4.ControlMessage
		n, cm, from, err = h.p4.ReadFrom(buf)
		if cm != nil {
			loc.addr, _ = netip.AddrFromSlice(cm.Dst)
			loc.ifindex = cm.IfIndex
		}
	case h.p6 != nil:
		var cm *ipv6.ControlMessage
		n, cm, from, err = h.p6.ReadFrom(buf)
		if cm != nil {
			loc.addr, _ = netip.AddrFromSlice(cm.Dst)
			loc.ifindex = cm.IfIndex
		}
	default:
		var ap netip.AddrPort
		n, ap, err = h.conn.ReadFromUDPAddrPort(buf)
		return n, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), loc, err
	}
	if err != nil {
		return 0, netip.AddrPort{}, loc, err
	}
	ua, ok := from.(*net.UDPAddr)
	if !ok {
		return 0, netip.AddrPort{}, loc, fmt.Errorf("datagram from %v", from)
	}
	ap := ua.AddrPort()
	loc.addr = loc.addr.Unmap()
	return n, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), loc, nil
}

// write sends b to client from loc.
func (h *fwdHostUDP) write(b []byte, client netip.AddrPort, loc fwdLocal) error {
	var err error
	to := net.UDPAddrFromAddrPort(client)
	switch {
	case h.p4 != nil && loc.addr.IsValid():
		_, err = h.p4.WriteTo(b, &ipv4.ControlMessage{Src: loc.addr.AsSlice()}, to)
	case h.p6 != nil && loc.addr.IsValid():
		cm := &ipv6.ControlMessage{Src: loc.addr.AsSlice()}
		if loc.addr.IsLinkLocalUnicast() {
			cm.IfIndex = loc.ifindex
		}
		_, err = h.p6.WriteTo(b, cm, to)
	default:
		_, err = h.conn.WriteToUDPAddrPort(b, client)
	}
	return err
}

// fwdFlowKey names a UDP flow: the host socket and the client.
type fwdFlowKey struct {
	h      *fwdHostUDP
	client netip.AddrPort
}

// fwdFlow is one client's UDP flow: a connected endpoint in the stack and
// the goroutine that relays the guest's replies. lastNano is the time of
// the latest datagram either way.
type fwdFlow struct {
	fw       *forwarder
	key      fwdFlowKey
	loc      fwdLocal
	ep       tcpip.Endpoint
	wq       *waiter.Queue
	done     chan struct{}
	stopOnce sync.Once
	lastNano atomic.Int64
}

func (fl *fwdFlow) touch() { fl.lastNano.Store(time.Now().UnixNano()) }

// stop ends the flow's goroutine, which closes the endpoint.
func (fl *fwdFlow) stop() { fl.stopOnce.Do(func() { close(fl.done) }) }

// readLoop reads client datagrams from h and passes each to its flow,
// creating the flow on a client's first datagram.
func (fw *forwarder) readLoop(h *fwdHostUDP) {
	buf := make([]byte, fwdMaxDatagram)
	var r bytes.Reader
	for {
		n, client, loc, err := h.read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || fw.ctx.Err() != nil {
				return
			}
			continue // ICMP errors reported on the socket, truncation
		}
		fl := fw.flow(h, client, loc)
		if fl == nil {
			continue // at the flow limit, closing, or no route: dropped
		}
		fl.touch()
		r.Reset(buf[:n])
		// A full send buffer drops the datagram, as UDP may.
		fl.ep.Write(&r, tcpip.WriteOptions{})
	}
}

// flow returns client's flow on h, creating it if needed; nil if the
// datagram must be dropped.
func (fw *forwarder) flow(h *fwdHostUDP, client netip.AddrPort, loc fwdLocal) *fwdFlow {
	key := fwdFlowKey{h, client}
	fw.mu.Lock()
	fl, ok := fw.flows[key]
	full := len(fw.flows) >= fwdMaxFlows
	closed := fw.closed
	fw.mu.Unlock()
	if ok {
		return fl
	}
	if full || closed {
		return nil
	}
	// Only this goroutine creates flows for h, so nobody adds key
	// meanwhile.
	ep, wq, err := fw.openFlow(client)
	if err != nil {
		fw.g.log.Debug("port forward: open UDP flow failed", "forward", fwdString(fw.spec), "client", client, "err", err)
		return nil
	}
	fl = &fwdFlow{fw: fw, key: key, loc: loc, ep: ep, wq: wq, done: make(chan struct{})}
	fl.touch()
	fw.mu.Lock()
	if fw.closed {
		fw.mu.Unlock()
		ep.Close()
		return nil
	}
	fw.flows[key] = fl
	fw.mu.Unlock()
	fw.wg.Go(fl.run)
	return fl
}

// openFlow creates the stack endpoint of a flow from client, connected to
// the guest.
func (fw *forwarder) openFlow(client netip.AddrPort) (tcpip.Endpoint, *waiter.Queue, error) {
	src, dst, masq := fw.path(client)
	ep, wq, err := fwdConnectUDP(fw.g, fw.nic, src, dst)
	if err != nil && !masq && fwdAddrInUse(err) {
		a := fw.g.fwdAddrs(dst.Addr())
		ep, wq, err = fwdConnectUDP(fw.g, fw.nic, netip.AddrPortFrom(a.Gateway, 0), dst)
	}
	return ep, wq, err
}

// fwdConnectUDP creates a UDP endpoint in the stack bound to src on nic and
// connected to dst.
func fwdConnectUDP(g *Gateway, nic tcpip.NICID, src, dst netip.AddrPort) (tcpip.Endpoint, *waiter.Queue, error) {
	wq := new(waiter.Queue)
	ep, terr := g.stack.GVisor().NewEndpoint(udp.ProtocolNumber, fwdNetProto(dst.Addr()), wq)
	if terr != nil {
		return nil, nil, &fwdStackError{"socket", terr}
	}
	if terr := ep.Bind(fwdFullAddr(nic, src)); terr != nil {
		ep.Close()
		return nil, nil, &fwdStackError{fmt.Sprintf("bind %s", src), terr}
	}
	if terr := ep.Connect(fwdFullAddr(nic, dst)); terr != nil {
		ep.Close()
		return nil, nil, &fwdStackError{fmt.Sprintf("connect %s from %s", dst, src), terr}
	}
	return ep, wq, nil
}

// run relays the guest's datagrams to the client until the flow has been
// idle for UDPIdleTimeout (both directions count) or is stopped; then it
// removes the flow and closes its endpoint.
func (fl *fwdFlow) run() {
	fw := fl.fw
	defer func() {
		fw.mu.Lock()
		if fw.flows[fl.key] == fl {
			delete(fw.flows, fl.key)
		}
		fw.mu.Unlock()
		fl.ep.Close()
	}()
	entry, notify := waiter.NewChannelEntry(waiter.ReadableEvents)
	fl.wq.EventRegister(&entry)
	defer fl.wq.EventUnregister(&entry)

	idle := fw.g.cfg.UDPIdleTimeout
	timer := time.NewTimer(idle)
	defer timer.Stop()
	for {
		if !fl.drain() {
			return
		}
		select {
		case <-notify:
		case <-fl.done:
			return
		case <-timer.C:
			last := time.Unix(0, fl.lastNano.Load())
			if rest := idle - time.Since(last); rest > 0 {
				timer.Reset(rest)
				continue
			}
			return
		}
	}
}

// fwdDatagramBufs holds the buffers flows read into only while they drain,
// so an idle flow holds no buffer.
var fwdDatagramBufs = sync.Pool{New: func() any {
	b := make([]byte, fwdMaxDatagram)
	return &b
}}

// drain relays every datagram the guest has queued to the client; false
// once the endpoint is closed.
func (fl *fwdFlow) drain() bool {
	bp := fwdDatagramBufs.Get().(*[]byte)
	defer fwdDatagramBufs.Put(bp)
	buf := *bp
	for {
		w := tcpip.SliceWriter(buf)
		res, err := fl.ep.Read(&w, tcpip.ReadOptions{})
		switch err.(type) {
		case nil:
			fl.touch()
			if res.Count == res.Total { // a truncated datagram is dropped
				// A send error (the client's host unreachable) drops
				// the datagram; the flow lives on until idle.
				fl.key.h.write(buf[:res.Count], fl.key.client, fl.loc)
			}
		case *tcpip.ErrWouldBlock:
			return true
		case *tcpip.ErrConnectionRefused:
			// ICMP port unreachable from the guest: keep the flow.
		default:
			return false // closed
		}
	}
}
