// Package services runs the classic inetd "small servers" inside tapstack's
// gVisor stack: echo (RFC 862, port 7) and discard (RFC 863, port 9), over
// both TCP and UDP, for IPv4 and IPv6, on the wildcard address of every NIC.
// They give a peer in the namespace something to talk to (`socat - TCP:
// 10.99.0.1:7`) without any host socket being involved. By name it also
// starts servers with an engine of their own: "iperf3" (package iperf, on
// port 5201), so that `iperf3 -c` from the namespace measures the stack.
//
// It is not an inetd: there is no configuration beyond the service names, no
// per-service limits and no logging (counting is the caller's business).
//
// TCP uses gVisor's gonet adapter: one goroutine per connection, at most
// Options.MaxConns connections at once, idle connections closed after
// Options.IdleTimeout. UDP uses the tcpip.Endpoint directly, one goroutine
// per socket, and sends each reply through a gVisor route of its own rather
// than the endpoint's Write: a wildcard-bound endpoint cannot choose the
// IPv4 source address, so a reply to a request for a secondary address (an
// addif'd ipif) would leave from whatever address gVisor picks, and the
// client, whose socket is connected to the address it asked, would drop it.
// A reply leaves from the address the request was sent to (from an address
// of the receiving NIC when that was a broadcast or multicast address),
// through the NIC it came in on; gonet's UDPConn loses both.
package services

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/tapstack/tapstack/internal/services/iperf"
)

// Well-known ports of the services.
const (
	EchoPort    = 7
	DiscardPort = 9
)

// Defaults for Options fields left zero.
const (
	DefaultIdleTimeout = 5 * time.Minute
	DefaultMaxConns    = 256
)

// listenBacklog is the accept queue length of each TCP listener.
const listenBacklog = 128

// maxDatagram is the largest UDP payload the services read whole (the
// IPv6 limit without jumbograms); anything larger cannot arrive.
const maxDatagram = 65527

// Options tunes the services. The zero value means the defaults.
type Options struct {
	// IdleTimeout closes a TCP connection that has received nothing for
	// this long, or whose echo has been blocked that long by a peer that
	// does not read. The deadline is re-armed at most every IdleTimeout/8,
	// so a connection may be closed up to that much early. Zero means
	// DefaultIdleTimeout.
	IdleTimeout time.Duration

	// MaxConns bounds the TCP connections served at once, over all services
	// and address families; each costs one goroutine. A connection accepted
	// beyond it is closed at once. Zero means DefaultMaxConns.
	MaxConns int
}

// service describes one named service.
type service struct {
	port uint16
	// serveTCP handles one accepted connection until it ends; the caller
	// closes the connection.
	serveTCP func(sv *Services, c net.Conn)
	// echoUDP says whether a datagram is sent back (echo) or dropped.
	echoUDP bool
}

var known = map[string]service{
	"echo":    {port: EchoPort, serveTCP: (*Services).echo, echoUDP: true},
	"discard": {port: DiscardPort, serveTCP: (*Services).discard, echoUDP: false},
}

// servers are the services with an engine of their own: start opens their
// sockets (or fails with nothing left open) and returns what stops them,
// waiting for their goroutines.
var servers = map[string]func(s *gstack.Stack) (stop func(), err error){
	"iperf3": func(s *gstack.Stack) (func(), error) {
		srv, err := iperf.Serve(s, iperf.Options{})
		if err != nil {
			return nil, err
		}
		return srv.Close, nil
	},
}

// Names returns the valid service names, sorted.
func Names() []string {
	names := make([]string, 0, len(known)+len(servers))
	for n := range known {
		names = append(names, n)
	}
	for n := range servers {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Services is a set of running services. Close stops them.
//
// Locking: mu guards closed and conns. The listener and socket slices are
// written only by StartWithOptions, before any goroutine starts.
type Services struct {
	opts Options
	// done is closed by Close; every goroutine watches it.
	done chan struct{}
	wg   sync.WaitGroup

	listeners []*gonet.TCPListener
	udp       []*udpSocket
	// stops stops the servers (see servers).
	stops []func()

	closeOnce sync.Once

	mu sync.Mutex
	// +checklocks:mu
	closed bool
	// +checklocks:mu
	conns map[net.Conn]struct{}
}

// udpSocket is one wildcard-bound UDP endpoint. Only its serving goroutine
// reads it (Close closes ep from outside, which gVisor allows).
type udpSocket struct {
	s     *gstack.Stack
	ep    tcpip.Endpoint
	wq    *waiter.Queue
	proto tcpip.NetworkProtocolNumber
	port  uint16
	echo  bool
}

// Start starts the named services ("echo", "discard", "iperf3") with
// default options on the wildcard address of s for every network protocol
// s has (IPv4, IPv6), over TCP and UDP. See StartWithOptions.
func Start(s *gstack.Stack, names []string) (*Services, error) {
	return StartWithOptions(s, names, Options{})
}

// StartWithOptions is Start with options. Names may repeat; an unknown name
// is an error that lists the valid names, and nothing is started. If any
// listener cannot be opened (the port is taken) everything opened so far is
// closed and the error says which service, protocol and address failed.
func StartWithOptions(s *gstack.Stack, names []string, opts Options) (*Services, error) {
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = DefaultMaxConns
	}

	var wanted, wantedServers []string
	for _, n := range names {
		_, isServer := servers[n]
		if _, ok := known[n]; !ok && !isServer {
			return nil, fmt.Errorf("services: unknown service %q (valid: %s)", n, strings.Join(Names(), ", "))
		}
		switch {
		case isServer && !slices.Contains(wantedServers, n):
			wantedServers = append(wantedServers, n)
		case !isServer && !slices.Contains(wanted, n):
			wanted = append(wanted, n)
		}
	}

	var protos []tcpip.NetworkProtocolNumber
	for _, p := range []tcpip.NetworkProtocolNumber{header.IPv4ProtocolNumber, header.IPv6ProtocolNumber} {
		if s.NetworkProtocolInstance(p) != nil {
			protos = append(protos, p)
		}
	}
	if len(wanted) > 0 && len(protos) == 0 {
		return nil, errors.New("services: the stack has neither IPv4 nor IPv6")
	}

	sv := &Services{
		opts:  opts,
		done:  make(chan struct{}),
		conns: make(map[net.Conn]struct{}),
	}
	for _, n := range wanted {
		svc := known[n]
		for _, p := range protos {
			l, err := listenTCP(s, p, svc.port)
			if err != nil {
				sv.Close()
				return nil, fmt.Errorf("services: %s: %w", n, err)
			}
			sv.listeners = append(sv.listeners, l)
			u, err := listenUDP(s, p, svc.port)
			if err != nil {
				sv.Close()
				return nil, fmt.Errorf("services: %s: %w", n, err)
			}
			u.echo = svc.echoUDP
			sv.udp = append(sv.udp, u)
		}
	}
	for _, n := range wantedServers {
		stop, err := servers[n](s)
		if err != nil {
			sv.Close()
			return nil, fmt.Errorf("services: %s: %w", n, err)
		}
		sv.stops = append(sv.stops, stop)
	}

	// Start serving only once everything is open, so a failed start never
	// has served anything.
	i := 0
	for _, n := range wanted {
		svc := known[n]
		for range protos {
			l := sv.listeners[i]
			u := sv.udp[i]
			i++
			sv.wg.Go(func() { sv.acceptLoop(l, svc.serveTCP) })
			sv.wg.Go(func() { sv.serveUDP(u) })
		}
	}
	return sv, nil
}

// Close stops the listeners, closes every connection and socket, and waits
// until every goroutine the services started has returned. It may be called
// more than once and from several goroutines; each call returns only when
// everything has stopped.
func (sv *Services) Close() {
	sv.closeOnce.Do(func() {
		sv.mu.Lock()
		sv.closed = true
		conns := make([]net.Conn, 0, len(sv.conns))
		for c := range sv.conns {
			conns = append(conns, c)
		}
		sv.mu.Unlock()

		close(sv.done)
		for _, l := range sv.listeners {
			l.Shutdown() // wakes a blocked Accept
			l.Close()
		}
		for _, u := range sv.udp {
			u.ep.Close()
		}
		for _, c := range conns {
			c.Close() // wakes a blocked Read or Write
		}
		for _, stop := range sv.stops {
			stop()
		}
	})
	sv.wg.Wait()
}

func netName(transport string, p tcpip.NetworkProtocolNumber) string {
	if p == header.IPv6ProtocolNumber {
		return transport + "6"
	}
	return transport + "4"
}

func wildcard(p tcpip.NetworkProtocolNumber, port uint16) string {
	if p == header.IPv6ProtocolNumber {
		return fmt.Sprintf("[::]:%d", port)
	}
	return fmt.Sprintf("0.0.0.0:%d", port)
}

// listenTCP opens a TCP listener on the wildcard address of protocol p. An
// IPv6 listener is V6ONLY so that it and the IPv4 one can share the port.
func listenTCP(s *gstack.Stack, p tcpip.NetworkProtocolNumber, port uint16) (*gonet.TCPListener, error) {
	var wq waiter.Queue
	ep, terr := s.NewEndpoint(header.TCPProtocolNumber, p, &wq)
	if terr != nil {
		return nil, fmt.Errorf("socket %s: %s", netName("tcp", p), terr)
	}
	if p == header.IPv6ProtocolNumber {
		ep.SocketOptions().SetV6Only(true)
	}
	// SO_REUSEADDR, as every server sets: connections of an earlier
	// listener that are still closing must not keep the port.
	ep.SocketOptions().SetReuseAddress(true)
	if terr := ep.Bind(tcpip.FullAddress{Port: port}); terr != nil {
		ep.Close()
		return nil, fmt.Errorf("bind %s %s: %s", netName("tcp", p), wildcard(p, port), terr)
	}
	if terr := ep.Listen(listenBacklog); terr != nil {
		ep.Close()
		return nil, fmt.Errorf("listen %s %s: %s", netName("tcp", p), wildcard(p, port), terr)
	}
	return gonet.NewTCPListener(s, &wq, ep), nil
}

// listenUDP opens a UDP socket on the wildcard address of protocol p.
func listenUDP(s *gstack.Stack, p tcpip.NetworkProtocolNumber, port uint16) (*udpSocket, error) {
	wq := new(waiter.Queue)
	ep, terr := s.NewEndpoint(header.UDPProtocolNumber, p, wq)
	if terr != nil {
		return nil, fmt.Errorf("socket %s: %s", netName("udp", p), terr)
	}
	if p == header.IPv6ProtocolNumber {
		ep.SocketOptions().SetV6Only(true)
	}
	// The destination of a request (address and NIC) is where its reply
	// comes from.
	ep.SocketOptions().SetReceiveOriginalDstAddress(true)
	if terr := ep.Bind(tcpip.FullAddress{Port: port}); terr != nil {
		ep.Close()
		return nil, fmt.Errorf("bind %s %s: %s", netName("udp", p), wildcard(p, port), terr)
	}
	return &udpSocket{s: s, ep: ep, wq: wq, proto: p, port: port}, nil
}

// acceptLoop accepts connections on l until it is closed, serving each on
// its own goroutine.
func (sv *Services) acceptLoop(l *gonet.TCPListener, serve func(*Services, net.Conn)) {
	for {
		c, err := l.Accept()
		if err != nil {
			// Closed by Close, or the endpoint failed; gVisor reports
			// no transient accept errors.
			return
		}
		if !sv.track(c) {
			c.Close()
			continue
		}
		// Safe to Add here: this goroutine's own count keeps the group
		// above zero until it returns.
		sv.wg.Go(func() {
			defer sv.untrack(c)
			defer c.Close()
			serve(sv, c)
		})
	}
}

// track registers c for Close; false if closing or at the connection limit.
func (sv *Services) track(c net.Conn) bool {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if sv.closed || len(sv.conns) >= sv.opts.MaxConns {
		return false
	}
	sv.conns[c] = struct{}{}
	return true
}

func (sv *Services) untrack(c net.Conn) {
	sv.mu.Lock()
	delete(sv.conns, c)
	sv.mu.Unlock()
}

// bufPool holds the per-connection copy buffers.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 32<<10)
	return &b
}}

// idleDeadline re-arms a connection's deadline as it shows activity, at
// most every idle/8 so that a busy connection does not reset a timer for
// every segment.
type idleDeadline struct {
	c    net.Conn
	idle time.Duration
	last time.Time
}

func (d *idleDeadline) touch() error {
	now := time.Now()
	if now.Sub(d.last) < d.idle/8 {
		return nil
	}
	d.last = now
	return d.c.SetDeadline(now.Add(d.idle))
}

// echo writes back everything it reads until the peer closes its side, an
// error, the idle timeout or Close.
func (sv *Services) echo(c net.Conn) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	d := idleDeadline{c: c, idle: sv.opts.IdleTimeout}
	for {
		if d.touch() != nil {
			return
		}
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// discard reads and drops everything until the peer closes its side, an
// error, the idle timeout or Close.
func (sv *Services) discard(c net.Conn) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	d := idleDeadline{c: c, idle: sv.opts.IdleTimeout}
	for {
		if d.touch() != nil {
			return
		}
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

// loopPorts are source ports never answered: replying to another echo or
// chargen server (or to port 0, which cannot be a real sender) would start
// an endless ping-pong.
var loopPorts = [...]uint16{0, 7, 19}

// serveUDP reads datagrams from u until Close, echoing or dropping each.
func (sv *Services) serveUDP(u *udpSocket) {
	entry, notify := waiter.NewChannelEntry(waiter.ReadableEvents)
	u.wq.EventRegister(&entry)
	defer u.wq.EventUnregister(&entry)

	buf := make([]byte, maxDatagram)
	for {
		w := tcpip.SliceWriter(buf)
		res, err := u.ep.Read(&w, tcpip.ReadOptions{NeedRemoteAddr: u.echo})
		if _, ok := err.(*tcpip.ErrWouldBlock); ok {
			select {
			case <-notify:
				continue
			case <-sv.done:
				return
			}
		}
		if err != nil {
			// ErrClosedForReceive after Close; nothing else is expected
			// from an unconnected UDP endpoint.
			return
		}
		if !u.echo || res.Count != res.Total || slices.Contains(loopPorts[:], res.RemoteAddr.Port) {
			continue
		}
		u.reply(buf[:res.Count], &res)
	}
}

// reply sends p back to the sender of the datagram res describes, from
// the address and NIC it was sent to (see the package comment). A reply
// that cannot be routed or sent is dropped, as a datagram may be; the
// stack's UDP counters count it either way.
func (u *udpSocket) reply(p []byte, res *tcpip.ReadResult) {
	stats := u.s.Stats().UDP
	to := res.RemoteAddr
	dst := res.ControlMessages.OriginalDstAddress
	src := u.sourceFor(dst.NIC, dst.Addr)

	// Prefer the receiving NIC and address; fall back to what the route
	// table says if that fails (an asymmetric route).
	r, err := u.s.FindRoute(to.NIC, src, to.Addr, u.proto, false /* multicastLoop */)
	if err != nil && to.NIC != 0 {
		r, err = u.s.FindRoute(0, tcpip.Address{}, to.Addr, u.proto, false)
	}
	if err != nil {
		stats.PacketSendErrors.Increment()
		return
	}
	defer r.Release()

	pkt := gstack.NewPacketBuffer(gstack.PacketBufferOptions{
		ReserveHeaderBytes: header.UDPMinimumSize + int(r.MaxHeaderLength()),
		Payload:            buffer.MakeWithData(p),
	})
	defer pkt.DecRef()
	udp := header.UDP(pkt.TransportHeader().Push(header.UDPMinimumSize))
	pkt.TransportProtocolNumber = header.UDPProtocolNumber
	length := uint16(pkt.Size())
	udp.Encode(&header.UDPFields{SrcPort: u.port, DstPort: to.Port, Length: length})
	if r.RequiresTXTransportChecksum() {
		xsum := udp.CalculateChecksum(checksum.Combine(
			header.PseudoHeaderChecksum(header.UDPProtocolNumber, r.LocalAddress(), r.RemoteAddress(), length),
			pkt.Data().Checksum(),
		))
		// A computed zero is sent as all ones (RFC 768): zero means "no
		// checksum".
		if xsum != 0xffff {
			xsum = ^xsum
		}
		udp.SetChecksum(xsum)
	}
	if err := r.WritePacket(gstack.NetworkHeaderParams{
		Protocol: header.UDPProtocolNumber,
		TTL:      r.DefaultTTL(),
	}, pkt); err != nil {
		stats.PacketSendErrors.Increment()
		return
	}
	stats.PacketsSent.Increment()
}

// sourceFor returns the source address for a reply to a request sent to
// dst on nic: dst when it is a unicast address of ours, else the empty
// address (the stack picks one of nic's).
func (u *udpSocket) sourceFor(nic tcpip.NICID, dst tcpip.Address) tcpip.Address {
	if u.proto == header.IPv6ProtocolNumber {
		if header.IsV6MulticastAddress(dst) {
			return tcpip.Address{}
		}
		return dst // IPv6 has no broadcast: what reached us is ours
	}
	if dst == header.IPv4Broadcast || header.IsV4MulticastAddress(dst) {
		return tcpip.Address{}
	}
	// A subnet-directed broadcast is accepted as local too; only an
	// address assigned as such may be a source.
	for _, pa := range u.s.AllAddresses()[nic] {
		if pa.AddressWithPrefix.Address == dst {
			return dst
		}
	}
	return tcpip.Address{}
}
