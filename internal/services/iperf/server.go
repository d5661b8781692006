// Package iperf is an iperf3 server that runs inside tapstack's gVisor
// stack, so that `iperf3 -c <stack address>` from a namespace measures the
// stack alone: no host socket, no kernel TCP, on the stack's side.
//
// It speaks iperf3's protocol (our implementation, written from the
// protocol's description; tested against iperf3 3.12): the control
// connection on port 5201 opened with a 37-byte cookie, one-byte states,
// JSON parameters and results with a 4-byte length, TCP data streams that
// open with the cookie, UDP streams that open with a 4-byte hello. It
// serves TCP and UDP, forward, reverse (-R) and bidirectional (--bidir),
// 1 to 128 parallel streams (-P), timed (-t), byte (-n) and block (-k)
// tests, -O, -l, -b (pacing the server's side), -w, -N, -S, -C (gVisor's
// reno and cubic), --udp-counters-64bit, --repeating-payload,
// --get-server-output and --skip-rx-copy, over IPv4 and IPv6.
//
// Like iperf3 it runs one test at a time: a client that comes while a
// test runs gets the "server is busy" answer (ACCESS_DENIED).
//
// Not supported: SCTP and MPTCP (refused with "protocol does not exist"),
// authentication (--username/--rsa-public-key-path are ignored: every
// client is allowed), -M (the MSS of data streams is the stack's), -F,
// --fq-rate, and the server-side options of iperf3 -s (-1, --idle-timeout,
// --server-bitrate-limit …). The server does no logging; Stats counts.
//
// Data path: each stream has one goroutine working the gVisor endpoint
// directly (not through gonet), with buffers allocated once per stream.
// A receiving TCP stream copies into a 128 KiB buffer, as a program
// reading its socket would, unless the client asked for --skip-rx-copy;
// a sending one writes blocks of -l bytes (128 KiB by default) filled with
// random bytes. Byte counts are atomic so Stats can read them mid-test.
package iperf

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/waiter"
)

// DefaultPort is iperf3's port, for the control connection and the data
// streams, TCP and UDP.
const DefaultPort = 5201

// DefaultTimeout bounds each step of the protocol that waits for the
// client (parameters, stream creation, results, the final state).
const DefaultTimeout = 30 * time.Second

// cookieTimeout is how long a new connection has to send its cookie.
const cookieTimeout = 10 * time.Second

// maxPending bounds the connections still to send their cookie; more are
// closed at once.
const maxPending = 64

// listenBacklog is the accept queue of the TCP listeners: room for a test
// of maxStreams streams opened at once.
const listenBacklog = maxStreams + 16

// Options configures a Server. The zero value means the defaults.
type Options struct {
	// Port is the TCP and UDP port. Zero means DefaultPort.
	Port uint16
	// Timeout bounds each wait for the client between the steps of a
	// test. Zero means DefaultTimeout.
	Timeout time.Duration
}

// Stats counts what a Server has done since Serve.
type Stats struct {
	// Tests counts control connections accepted as a test.
	Tests uint64
	// Completed counts tests that ran to the exchange of results.
	Completed uint64
	// Failed counts tests that ended otherwise (refused parameters, a
	// stream error, the client going away, Close).
	Failed uint64
	// Denied counts connections answered "busy" (or, during stream
	// creation, with a wrong cookie).
	Denied uint64
	// BytesReceived and BytesSent count data-stream payload: TCP bytes,
	// or UDP datagram payloads, in the running test included.
	BytesReceived, BytesSent uint64
	// Running reports whether a test is in progress.
	Running bool
}

// Server is a running iperf3 server. Close stops it.
//
// LOCK ORDERING: Server.mu before session.mu.
type Server struct {
	s    *gstack.Stack
	opts Options
	// done is closed by Close; every goroutine watches it.
	done chan struct{}
	wg   sync.WaitGroup

	// listeners is written by Serve before any goroutine starts.
	listeners []*listener

	closeOnce sync.Once

	mu sync.Mutex
	// +checklocks:mu
	closed bool
	// +checklocks:mu
	active *session
	// pending holds the connections still to send their cookie, for
	// Close to close.
	// +checklocks:mu
	pending map[*gonet.TCPConn]struct{}

	// accepted numbers connections (and UDP hellos) in the order they
	// arrive: the order in which the client opened its streams.
	accepted atomic.Uint64

	tests, completed, failed, denied atomic.Uint64
	// bytesRx and bytesTx hold the bytes of finished tests.
	bytesRx, bytesTx atomic.Uint64
}

// listener is a TCP listening endpoint.
type listener struct {
	ep tcpip.Endpoint
	wq *waiter.Queue
}

// Serve starts an iperf3 server on s, listening on the wildcard address of
// every network protocol s has (IPv4, IPv6) at opts.Port. UDP sockets are
// opened only while a UDP test creates its streams, as iperf3 does. If a
// listener cannot be opened (the port is taken) nothing is left open and
// the error says which.
func Serve(s *gstack.Stack, opts Options) (*Server, error) {
	if opts.Port == 0 {
		opts.Port = DefaultPort
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	srv := &Server{
		s:       s,
		opts:    opts,
		done:    make(chan struct{}),
		pending: make(map[*gonet.TCPConn]struct{}),
	}
	for _, p := range networkProtocols(s) {
		l, err := listenTCP(s, p, opts.Port)
		if err != nil {
			srv.Close()
			return nil, fmt.Errorf("iperf: %w", err)
		}
		srv.listeners = append(srv.listeners, l)
	}
	if len(srv.listeners) == 0 {
		return nil, errors.New("iperf: the stack has neither IPv4 nor IPv6")
	}
	for _, l := range srv.listeners {
		srv.wg.Go(func() { srv.acceptLoop(l) })
	}
	return srv, nil
}

// Close stops the listeners, ends a running test (the client is told the
// server terminated), and waits until every goroutine of the server has
// returned. It may be called more than once, from several goroutines.
func (srv *Server) Close() {
	srv.closeOnce.Do(func() {
		srv.mu.Lock()
		srv.closed = true
		pending := make([]*gonet.TCPConn, 0, len(srv.pending))
		for c := range srv.pending {
			pending = append(pending, c)
		}
		ss := srv.active
		srv.mu.Unlock()

		close(srv.done)
		for _, l := range srv.listeners {
			l.ep.Close() // wakes the accept loop through its waiter
		}
		for _, c := range pending {
			c.Close()
		}
		if ss != nil {
			ss.interrupt()
		}
	})
	srv.wg.Wait()
}

// Stats returns the server's counters.
func (srv *Server) Stats() Stats {
	st := Stats{
		Tests:     srv.tests.Load(),
		Completed: srv.completed.Load(),
		Failed:    srv.failed.Load(),
		Denied:    srv.denied.Load(),
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	st.BytesReceived = srv.bytesRx.Load()
	st.BytesSent = srv.bytesTx.Load()
	if ss := srv.active; ss != nil {
		st.Running = true
		rx, tx := ss.bytes()
		st.BytesReceived += rx
		st.BytesSent += tx
	}
	return st
}

// networkProtocols returns the network protocols of s the server listens
// on.
func networkProtocols(s *gstack.Stack) []tcpip.NetworkProtocolNumber {
	var ps []tcpip.NetworkProtocolNumber
	for _, p := range []tcpip.NetworkProtocolNumber{header.IPv4ProtocolNumber, header.IPv6ProtocolNumber} {
		if s.NetworkProtocolInstance(p) != nil {
			ps = append(ps, p)
		}
	}
	return ps
}

func netName(transport string, p tcpip.NetworkProtocolNumber) string {
	if p == header.IPv6ProtocolNumber {
		return transport + "6"
	}
	return transport + "4"
}

// listenTCP opens a TCP listener on the wildcard address of protocol p,
// V6ONLY for IPv6 so that the IPv4 one can share the port.
func listenTCP(s *gstack.Stack, p tcpip.NetworkProtocolNumber, port uint16) (*listener, error) {
	wq := new(waiter.Queue)
	ep, terr := s.NewEndpoint(header.TCPProtocolNumber, p, wq)
	if terr != nil {
		return nil, fmt.Errorf("socket %s: %s", netName("tcp", p), terr)
	}
	if p == header.IPv6ProtocolNumber {
		ep.SocketOptions().SetV6Only(true)
	}
	ep.SocketOptions().SetReuseAddress(true)
	if terr := ep.Bind(tcpip.FullAddress{Port: port}); terr != nil {
		ep.Close()
		return nil, fmt.Errorf("bind %s port %d: %s", netName("tcp", p), port, terr)
	}
	if terr := ep.Listen(listenBacklog); terr != nil {
		ep.Close()
		return nil, fmt.Errorf("listen %s port %d: %s", netName("tcp", p), port, terr)
	}
	return &listener{ep: ep, wq: wq}, nil
}

// acceptLoop accepts connections on l until Close, handing each to a
// goroutine that reads its cookie.
func (srv *Server) acceptLoop(l *listener) {
	entry, notify := waiter.NewChannelEntry(waiter.ReadableEvents | waiter.EventHUp | waiter.EventErr)
	l.wq.EventRegister(&entry)
	defer l.wq.EventUnregister(&entry)
	for {
		ep, wq, terr := l.ep.Accept(nil)
		if _, ok := terr.(*tcpip.ErrWouldBlock); ok {
			select {
			case <-notify:
				continue
			case <-srv.done:
				return
			}
		}
		if terr != nil {
			// Closed by Close, or the listener failed; gVisor has no
			// transient accept errors.
			return
		}
		order := srv.accepted.Add(1)
		c := gonet.NewTCPConn(wq, ep)
		if !srv.addPending(c) {
			c.Close()
			continue
		}
		// Safe to Add here: this goroutine's own count keeps the group
		// above zero.
		srv.wg.Go(func() { srv.handshake(c, ep, wq, order) })
	}
}

// addPending registers c as waiting for its cookie; false if closing or
// too many are.
func (srv *Server) addPending(c *gonet.TCPConn) bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.closed || len(srv.pending) >= maxPending {
		return false
	}
	srv.pending[c] = struct{}{}
	return true
}

// handshake reads the cookie of a new connection and makes it the control
// connection of a new test, a data stream of the running one, or refuses
// it. order is the connection's place among those accepted.
func (srv *Server) handshake(c *gonet.TCPConn, ep tcpip.Endpoint, wq *waiter.Queue, order uint64) {
	var cookie [cookieSize]byte
	c.SetReadDeadline(time.Now().Add(cookieTimeout))
	_, err := io.ReadFull(c, cookie[:])
	c.SetReadDeadline(time.Time{})

	srv.mu.Lock()
	delete(srv.pending, c)
	if err != nil || srv.closed {
		srv.mu.Unlock()
		c.Close()
		return
	}
	if srv.active == nil {
		ss := newSession(srv, c, ep, cookie)
		srv.active = ss
		srv.mu.Unlock()
		srv.tests.Add(1)
		ss.run() // clears srv.active
		return
	}
	ok := srv.active.addTCPStream(ep, wq, cookie, order)
	srv.mu.Unlock()
	if ok {
		return // the session owns ep now
	}
	srv.denied.Add(1)
	c.SetWriteDeadline(time.Now().Add(time.Second))
	c.Write([]byte{stateAccessDenied.byte()})
	c.Close()
}
