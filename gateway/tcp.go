package gateway

// Outbound TCP: connections from the namespace to any destination are
// terminated in the stack and re-originated from host sockets.
//
// A SYN that no listener in the stack takes reaches the NIC's default TCP
// handler (outbound.go), which applies the policy at once: drop, refuse
// (returning false lets gVisor's TCP answer with a RST, as for a closed
// port), or hand the segment to gVisor's tcp.Forwarder. The forwarder runs
// tcpRelay.handle on a goroutine of its own per SYN (at most
// tcpMaxInFlight at once; retransmitted SYNs of a connection being set up
// are ignored). handle dials the host first and completes the handshake
// in the stack only when that succeeded, so the namespace sees what the
// destination said: a refused connect becomes a RST (connection refused),
// a connect that timed out or found no route becomes silence (the
// namespace's own connect times out).
//
// An established connection is a tcpSplice (splice.go): two goroutines
// (the forwarder's one and one more), one per direction; end of file in
// one direction is passed on as a half-close, a reset in either as a
// reset in both (SO_LINGER 0 on the host socket, Abort on the endpoint).

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// Limits of the TCP path.
const (
	// tcpMaxInFlight bounds the connects in progress (SYNs being dialled);
	// more SYNs are dropped until one completes.
	tcpMaxInFlight = 512
	// tcpMaxConns bounds connects in progress plus established
	// connections; a SYN beyond it is dropped (the client retries).
	tcpMaxConns = 4096
	// tcpDialTimeout bounds one host connect.
	tcpDialTimeout = 30 * time.Second
)

// tcpRelay is the TCP path of one gateway.
//
// Locking: mu guards closed, active and conns. wg counts the goroutines
// that handle connections (each registered under mu while !closed, so
// Wait in stop cannot race with Add).
type tcpRelay struct {
	g      *Gateway
	s      *gstack.Stack
	nic    tcpip.NICID
	pol    policy
	fwd    *tcp.Forwarder
	ctx    context.Context // cancelled by stop: aborts connects in progress
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu sync.Mutex
	// +checklocks:mu
	closed bool
	// +checklocks:mu
	active int // handlers running: dialling or splicing
	// +checklocks:mu
	conns map[*tcpSplice]struct{}
}

// startTCP terminates TCP from the namespace and re-originates it from
// host sockets.
func (g *Gateway) startTCP() (func(), error) {
	nic, ok := g.stack.NICID(g.cfg.NIC)
	if !ok {
		return nil, errNoNIC(g.cfg.NIC)
	}
	s := g.stack.GVisor()
	if s.HandleLocal() {
		return nil, errHandleLocal
	}
	t := &tcpRelay{g: g, s: s, nic: nic, pol: newPolicy(g.cfg), conns: map[*tcpSplice]struct{}{}}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.fwd = tcp.NewForwarder(s, relayReceiveBuffer, tcpMaxInFlight, t.handle)
	h := hooksFor(s)
	h.set(&h.tcp, nic, t.divert)
	return func() {
		h.set(&h.tcp, nic, nil)
		t.stop()
	}, nil
}

// divert is the NIC's default TCP handler: every segment no endpoint
// took. It runs on the stack's receive path and must not block.
func (t *tcpRelay) divert(id gstack.TransportEndpointID, pkt *gstack.PacketBuffer) bool {
	_, v := t.pol.decide(fromTCPIP(id.LocalAddress))
	switch v {
	case drop:
		return true
	case refuse:
		return false // gVisor's TCP sends the RST
	}
	return t.fwd.HandlePacket(id, pkt)
}

// enter registers a handler; false when stopping or at tcpMaxConns.
func (t *tcpRelay) enter() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || t.active >= tcpMaxConns {
		return false
	}
	t.active++
	t.wg.Add(1)
	return true
}

func (t *tcpRelay) exit() {
	t.mu.Lock()
	t.active--
	t.mu.Unlock()
	t.wg.Done()
}

// handle serves one connection request from the namespace (on a goroutine
// the forwarder started for it).
func (t *tcpRelay) handle(r *tcp.ForwarderRequest) {
	if !t.enter() {
		r.Complete(false)
		return
	}
	defer t.exit()
	id := r.ID()
	to, v := t.pol.decide(fromTCPIP(id.LocalAddress))
	if v != forward {
		// divert already refused or dropped these; the policy is fixed.
		r.Complete(v == refuse)
		return
	}
	ctx, cancel := context.WithTimeout(t.ctx, tcpDialTimeout)
	hc, err := t.g.dial(ctx, &t.pol, "tcp", to, id.LocalPort)
	cancel()
	if err != nil {
		reset := refusedError(err)
		t.g.log.Debug("gateway: outbound TCP connect failed",
			"src", fromTCPIP(id.RemoteAddress), "sport", id.RemotePort,
			"dst", fromTCPIP(id.LocalAddress), "dport", id.LocalPort,
			"via", to.addr, "reset", reset, "err", err)
		r.Complete(reset)
		return
	}
	host, ok := hc.(hostStream)
	if !ok {
		// The relay moves bytes with the socket's own system calls.
		t.g.log.Warn("gateway: the HostDialer returned no kernel TCP socket; connection refused",
			"type", fmt.Sprintf("%T", hc), "dst", fromTCPIP(id.LocalAddress), "dport", id.LocalPort)
		abortHost(hc)
		r.Complete(true)
		return
	}
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq)
	r.Complete(false)
	if terr != nil {
		// The namespace gave up (a RST) or the stack is closing.
		t.g.log.Debug("gateway: outbound TCP handshake failed",
			"dst", fromTCPIP(id.LocalAddress), "dport", id.LocalPort, "err", terr.String())
		abortHost(hc)
		return
	}
	ep.SocketOptions().SetKeepAlive(true)
	sp, err := newTCPSplice(ep, &wq, host)
	if err != nil {
		ep.Abort()
		ep.Close()
		abortHost(hc)
		return
	}
	if !t.track(sp) {
		sp.discard()
		return
	}
	defer t.untrack(sp)
	sp.run()
}

func (t *tcpRelay) track(sp *tcpSplice) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.conns[sp] = struct{}{}
	return true
}

func (t *tcpRelay) untrack(sp *tcpSplice) {
	t.mu.Lock()
	delete(t.conns, sp)
	t.mu.Unlock()
}

// stop refuses new connections, aborts connects in progress and resets
// every spliced connection (both ways: the namespace and the host peer
// see a RST), then waits for all handlers.
func (t *tcpRelay) stop() {
	t.mu.Lock()
	t.closed = true
	conns := make([]*tcpSplice, 0, len(t.conns))
	for sp := range t.conns {
		conns = append(conns, sp)
	}
	t.mu.Unlock()
	t.cancel()
	for _, sp := range conns {
		sp.abort()
	}
	t.wg.Wait()
}

// abortHost closes a host connection with a RST where it can.
func abortHost(c net.Conn) {
	if tc, ok := c.(interface{ SetLinger(int) error }); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// errHandleLocal says why a gateway cannot run on a stack built by
// stack.New: gVisor drops every packet arriving on a promiscuous NIC when
// the stack handles local traffic itself.
var errHandleLocal = errors.New("the stack has HandleLocal on, which makes gVisor drop everything arriving on a promiscuous NIC; " +
	"create it with stack.NewWithOptions(stack.Options{NoHandleLocal: true})")

// errNoNIC is the error for a Config.NIC the stack does not have.
func errNoNIC(name string) error { return errors.New("no NIC " + name) }
