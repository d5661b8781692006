package gateway

// Outbound UDP: each flow (namespace address:port → destination
// address:port) is relayed through a host UDP socket of its own, connected
// to the destination.
//
// A datagram that no endpoint in the stack takes (the DNS forwarder's
// socket, when there is one, takes its own) reaches the NIC's default UDP
// handler, udpRelay.divert, on the stack's receive path. It applies the
// policy (drop; refuse: returning false lets gVisor answer ICMP port
// unreachable; forward) and creates the flow's gVisor endpoint with
// udp.ForwarderRequest.CreateEndpoint: bound to the destination
// address:port (the NIC spoofs, so it may be any address) and connected
// to the namespace's address:port. From then on the stack delivers the
// flow's datagrams to that endpoint, and what the flow writes there
// reaches the namespace from the destination address:port, as the client
// expects. (udp.NewForwarder is not used: it clones every packet it hands
// to a handler and never releases the clone; NewForwarderRequest with the
// packet divert borrows needs no clone.)
//
// Each flow is two goroutines: one dials the host socket (so that a slow
// Dialer does not hold up the receive path; the first datagram waits in
// the endpoint) and then copies namespace → host, the other copies
// host → namespace. Neither holds a buffer while it waits. A flow ends
// when nothing has crossed it either way for Config.UDPIdleTimeout (one
// janitor goroutine checks every quarter of that), when udpMaxFlows
// flows exist and a new one needs room (the least recently used one is
// evicted), or at stop.

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/tapstack/tapstack/internal/widen"
	"github.com/tapstack/tapstack/link/busypoll"
)

// udpMaxFlows bounds the UDP flows of one gateway. A variable so that
// tests can lower it (before New).
var udpMaxFlows = 4096

const (
	// udpDialTimeout bounds creating a flow's host socket (a connect on a
	// UDP socket does not wait for the network; this covers slow Dialers).
	udpDialTimeout = 10 * time.Second
	// udpMaxDatagram is the largest datagram either way.
	udpMaxDatagram = 65535
)

// udpRelay is the UDP path of one gateway.
//
// Locking: mu guards closed and flows. Lock order: mu before a flow's mu;
// neither is held across a call into gVisor or a host socket. wg counts
// the janitor and the flow goroutines, added under mu while !closed.
type udpRelay struct {
	g        *Gateway
	s        *gstack.Stack
	nic      tcpip.NICID
	pol      policy
	idle     time.Duration
	maxFlows int
	base     time.Time       // origin of the flows' activity clocks
	ctx      context.Context // cancelled by stop
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	mu sync.Mutex
	// +checklocks:mu
	closed bool
	// +checklocks:mu
	flows map[gstack.TransportEndpointID]*udpFlow
}

// startUDP relays UDP flows from the namespace through host sockets.
func (g *Gateway) startUDP() (func(), error) {
	nic, ok := g.stack.NICID(g.cfg.NIC)
	if !ok {
		return nil, errNoNIC(g.cfg.NIC)
	}
	s := g.stack.GVisor()
	r := &udpRelay{
		g: g, s: s, nic: nic, pol: newPolicy(g.cfg),
		idle:     g.cfg.UDPIdleTimeout,
		maxFlows: udpMaxFlows,
		base:     time.Now(),
		flows:    map[gstack.TransportEndpointID]*udpFlow{},
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.wg.Go(r.janitor)
	h := hooksFor(s)
	h.set(&h.udp, nic, r.divert)
	return func() {
		h.set(&h.udp, nic, nil)
		r.stop()
	}, nil
}

// now is the flows' activity clock: monotonic nanoseconds since start.
func (r *udpRelay) now() int64 { return int64(time.Since(r.base)) }

// divert is the NIC's default UDP handler. It runs on the stack's receive
// path and borrows pkt for the call.
func (r *udpRelay) divert(id gstack.TransportEndpointID, pkt *gstack.PacketBuffer) bool {
	to, v := r.pol.decide(fromTCPIP(id.LocalAddress))
	switch v {
	case drop:
		return true
	case refuse:
		return false // gVisor sends ICMP port unreachable
	}
	f := &udpFlow{r: r, id: id, to: to, done: make(chan struct{})}
	f.last.Store(r.now())
	ep, terr := udp.NewForwarderRequest(r.s, id, pkt).CreateEndpoint(&f.wq)
	if terr != nil {
		// Cannot bind (the address is being torn down): drop.
		r.g.log.Debug("gateway: UDP flow endpoint failed", "dst", fromTCPIP(id.LocalAddress), "dport", id.LocalPort, "err", terr.String())
		return true
	}
	f.ep = ep // the datagram is queued on ep: the flow sends it

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		ep.Close()
		return true
	}
	var evicted []*udpFlow
	if old := r.flows[id]; old != nil {
		evicted = append(evicted, old) // closing already; its endpoint is gone
	} else if len(r.flows) >= r.maxFlows {
		if lru := r.lruLocked(); lru != nil {
			delete(r.flows, lru.id)
			evicted = append(evicted, lru)
		}
	}
	f.load = widen.Default().Add() // before f is shared: close ends it
	r.flows[id] = f
	r.wg.Go(f.run)
	r.mu.Unlock()
	for _, e := range evicted {
		e.close()
	}
	return true
}

// lruLocked returns the flow idle the longest.
//
// +checklocks:r.mu
func (r *udpRelay) lruLocked() *udpFlow {
	var lru *udpFlow
	var oldest int64
	for _, f := range r.flows {
		if t := f.last.Load(); lru == nil || t < oldest {
			lru, oldest = f, t
		}
	}
	return lru
}

// remove forgets f if it is still the flow for its id.
func (r *udpRelay) remove(f *udpFlow) {
	r.mu.Lock()
	if r.flows[f.id] == f {
		delete(r.flows, f.id)
	}
	r.mu.Unlock()
}

// janitor ends idle flows until stop.
func (r *udpRelay) janitor() {
	tick := time.NewTicker(max(r.idle/4, time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-tick.C:
			r.expire()
		}
	}
}

// expire ends the flows idle for longer than the idle timeout.
func (r *udpRelay) expire() {
	limit := r.now() - int64(r.idle)
	var idle []*udpFlow
	r.mu.Lock()
	for id, f := range r.flows {
		if f.last.Load() < limit {
			delete(r.flows, id)
			idle = append(idle, f)
		}
	}
	r.mu.Unlock()
	for _, f := range idle {
		f.close()
	}
}

// stop ends every flow and waits for their goroutines and the janitor.
func (r *udpRelay) stop() {
	r.mu.Lock()
	r.closed = true
	flows := r.flows
	r.flows = map[gstack.TransportEndpointID]*udpFlow{}
	r.mu.Unlock()
	r.cancel()
	for _, f := range flows {
		f.close()
	}
	r.wg.Wait()
}

// udpFlow is one relayed flow.
//
// Locking: mu guards closed and host. ep, id, to and load are set before the
// flow is shared.
type udpFlow struct {
	r    *udpRelay
	id   gstack.TransportEndpointID // local: the destination; remote: the namespace
	to   target
	ep   tcpip.Endpoint
	wq   waiter.Queue
	last atomic.Int64  // r.now() at the last datagram either way
	sent atomic.Int32  // payload length of the last datagram to the host
	done chan struct{} // closed by close
	load *widen.Flow   // bytes relayed, both ways: lets a busy loop widen

	mu sync.Mutex
	// +checklocks:mu
	closed bool
	// +checklocks:mu
	host net.Conn
}

// close ends the flow: its endpoint (the stack answers the next datagram
// of the same flow by creating a new one) and its host socket. Idempotent.
func (f *udpFlow) close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	hc := f.host
	f.mu.Unlock()
	close(f.done)
	f.ep.Close()
	if hc != nil {
		hc.Close()
	}
	f.load.Done()
}

func (f *udpFlow) touch() { f.last.Store(f.r.now()) }

// run dials the host socket, then relays until the flow ends.
func (f *udpFlow) run() {
	defer f.r.remove(f)
	defer f.close()
	ctx, cancel := context.WithTimeout(f.r.ctx, udpDialTimeout)
	hc, err := f.r.g.dial(ctx, &f.r.pol, "udp", f.to, f.id.LocalPort)
	cancel()
	if err != nil {
		f.r.g.log.Debug("gateway: outbound UDP socket failed",
			"dst", fromTCPIP(f.id.LocalAddress), "dport", f.id.LocalPort, "via", f.to.addr, "err", err)
		return
	}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		hc.Close()
		return
	}
	f.host = hc
	// Counted before run returns (run's own count keeps wg above zero).
	f.r.wg.Go(func() { f.fromHost(hc) })
	f.mu.Unlock()
	f.toHost(hc)
}

var udpBufs = sync.Pool{New: func() any {
	b := make([]byte, udpMaxDatagram)
	return &b
}}

// toHost copies datagrams from the namespace to the host socket until the
// flow ends. It holds a buffer only while datagrams are queued.
func (f *udpFlow) toHost(hc net.Conn) {
	entry, notify := waiter.NewChannelEntry(waiter.ReadableEvents)
	f.wq.EventRegister(&entry)
	defer f.wq.EventUnregister(&entry)
	var bp *[]byte
	defer func() {
		if bp != nil {
			udpBufs.Put(bp)
		}
	}()
	for {
		if bp == nil {
			bp = udpBufs.Get().(*[]byte)
		}
		w := tcpip.SliceWriter(*bp)
		res, terr := f.ep.Read(&w, tcpip.ReadOptions{})
		if _, ok := terr.(*tcpip.ErrWouldBlock); ok {
			udpBufs.Put(bp)
			bp = nil
			select {
			case <-notify:
				continue
			case <-f.done:
				return
			}
		}
		if terr != nil {
			return // closed
		}
		f.touch()
		f.load.Count(res.Count)
		f.sent.Store(int32(res.Count))
		_, err := hc.Write((*bp)[:res.Count])
		switch {
		case errors.Is(err, net.ErrClosed):
			return
		case errors.Is(err, syscall.ECONNREFUSED):
			f.unreachable()
		}
		// Errors lose the datagram, as the network may: ECONNREFUSED
		// (the destination's port unreachable for an earlier one, now
		// told to the namespace), EMSGSIZE, ENOBUFS.
	}
}

// fromHost copies datagrams from the host socket into the stack, from the
// destination address:port to the namespace, until the flow ends.
func (f *udpFlow) fromHost(hc net.Conn) {
	sc, ok := hc.(syscall.Conn)
	if !ok {
		f.fromHostBuffered(hc)
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		f.fromHostBuffered(hc)
		return
	}
	busypoll.Default().WatchConn(rc) // the answer a busy-polling loop waits for comes here
	for {
		var (
			bp   *[]byte
			n    int
			rerr error
		)
		// The buffer is taken only when the socket is readable.
		err := rc.Read(func(fd uintptr) bool {
			if bp == nil {
				bp = udpBufs.Get().(*[]byte)
			}
			n, rerr = syscall.Read(int(fd), *bp)
			if rerr == syscall.EAGAIN || rerr == syscall.EINTR {
				udpBufs.Put(bp)
				bp = nil
				return false
			}
			return true
		})
		if err == nil && rerr == nil && n >= 0 {
			f.touch()
			f.load.Count(n)
			f.toNamespace((*bp)[:n])
			busypoll.Default().Kick() // stay awake for the namespace's next datagram
		}
		if bp != nil {
			udpBufs.Put(bp)
		}
		if err != nil {
			return // closed
		}
		// rerr: ECONNREFUSED and the like report ICMP errors for earlier
		// datagrams; the flow goes on.
		if rerr == syscall.ECONNREFUSED {
			f.unreachable()
		}
	}
}

// unreachable tells the namespace what the host socket learnt from an
// ICMP error (ECONNREFUSED: the destination port is closed): an ICMP port
// unreachable from the destination, quoting the flow's last datagram, so
// the namespace's socket fails at once as it would on a network instead
// of waiting for an answer.
func (f *udpFlow) unreachable() {
	ns := netip.AddrPortFrom(fromTCPIP(f.id.RemoteAddress), f.id.RemotePort)
	dst := netip.AddrPortFrom(fromTCPIP(f.id.LocalAddress), f.id.LocalPort)
	m := icmpMessage{
		typ:  uint8(header.ICMPv4DstUnreachable),
		code: uint8(header.ICMPv4PortUnreachable),
		body: udpQuote(ns, dst, int(f.sent.Load())),
	}
	if ns.Addr().Is6() {
		m.typ, m.code = uint8(header.ICMPv6DstUnreachable), uint8(header.ICMPv6PortUnreachable)
	}
	writeICMP(f.r.s, f.r.nic, dst.Addr(), ns.Addr(), m)
}

// fromHostBuffered is fromHost for a Dialer's conn that is no
// syscall.Conn: it holds a buffer while it waits.
func (f *udpFlow) fromHostBuffered(hc net.Conn) {
	bp := udpBufs.Get().(*[]byte)
	defer udpBufs.Put(bp)
	for {
		n, err := hc.Read(*bp)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-f.done:
				return
			default:
				continue
			}
		}
		f.touch()
		f.toNamespace((*bp)[:n])
	}
}

// toNamespace writes one datagram to the namespace through the flow's
// endpoint. A full send buffer or an unresolvable neighbour loses it.
func (f *udpFlow) toNamespace(b []byte) {
	var rd bytes.Reader
	rd.Reset(b)
	f.ep.Write(&rd, tcpip.WriteOptions{})
}
