package iperf

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/waiter"
)

// graceTime is added to a timed test's duration before the server gives
// up on it (iperf3: 4 s for each of 10 state changes).
const graceTime = 40 * time.Second

// untimedLimit bounds a test that ends by bytes or blocks (-n, -k).
const untimedLimit = (maxTime + maxOmit) * time.Second

// terminateTimeout bounds the write of stateServerTerminate on Close.
const terminateTimeout = time.Second

// Keepalive on the control connection, so that a client that vanishes
// without closing does not keep the server busy: about a minute.
const (
	keepaliveIdle     = 30 * time.Second
	keepaliveInterval = 10 * time.Second
	keepaliveCount    = 3
)

// errServerClosed is returned by the session's I/O once Close was called.
var errServerClosed = errors.New("iperf: server closed")

// session is one test, from the control connection's cookie to its close.
// Its goroutine is the one that read the cookie; it runs the state machine
// and owns the control connection.
//
// Locking: mu guards accepting and streams; streams only grows, and only
// while accepting. p is written before accepting is first set and not
// after. failIE and failErrno are written once, before failed is closed.
type session struct {
	srv    *Server
	ctrl   *gonet.TCPConn
	cookie [cookieSize]byte
	// client is the control connection's remote end.
	client tcpip.FullAddress
	p      params

	// stop is closed to halt the streams and UDP acceptors.
	stop     chan struct{}
	stopOnce sync.Once
	// failed is closed on the first stream error.
	failed            chan struct{}
	failOnce          sync.Once
	failIE, failErrno int32
	// ready is closed when the last stream has been added.
	ready chan struct{}
	// wg counts the goroutines of the session other than its own.
	wg sync.WaitGroup

	// udpListeners is written and read only by the session goroutine.
	udpListeners []*listener

	mu sync.Mutex
	// +checklocks:mu
	accepting bool
	// +checklocks:mu
	streams []*stream
}

// ctrlMsg is a state the client sent, or why none could be read.
type ctrlMsg struct {
	st  state
	err error
}

func newSession(srv *Server, c *gonet.TCPConn, ep tcpip.Endpoint, cookie [cookieSize]byte) *session {
	ss := &session{
		srv:    srv,
		ctrl:   c,
		cookie: cookie,
		stop:   make(chan struct{}),
		failed: make(chan struct{}),
		ready:  make(chan struct{}),
	}
	if a, err := ep.GetRemoteAddress(); err == nil {
		ss.client = a
	}
	// As iperf3 does: states are single bytes that must not wait.
	ep.SocketOptions().SetDelayOption(false)
	ep.SocketOptions().SetKeepAlive(true)
	idle := tcpip.KeepaliveIdleOption(keepaliveIdle)
	ep.SetSockOpt(&idle)
	intvl := tcpip.KeepaliveIntervalOption(keepaliveInterval)
	ep.SetSockOpt(&intvl)
	ep.SetSockOptInt(tcpip.KeepaliveCountOption, keepaliveCount)
	return ss
}

// run runs the test to its end and releases everything it holds.
func (ss *session) run() {
	ok := ss.runTest()
	if !ok {
		select {
		case <-ss.srv.done:
			ss.ctrl.SetWriteDeadline(time.Now().Add(terminateTimeout))
			ss.ctrl.Write([]byte{stateServerTerminate.byte()})
		default:
		}
	}
	ss.halt()
	ss.closeUDPListeners()
	ss.mu.Lock()
	ss.accepting = false
	streams := ss.streams
	ss.mu.Unlock()
	for _, st := range streams {
		st.ep.Close()
	}
	ss.ctrl.Close()
	ss.wg.Wait()

	// The totals and the end of the test change together for Stats.
	rx, tx := ss.bytes()
	ss.srv.mu.Lock()
	ss.srv.bytesRx.Add(rx)
	ss.srv.bytesTx.Add(tx)
	ss.srv.active = nil
	ss.srv.mu.Unlock()
	if ok {
		ss.srv.completed.Add(1)
	} else {
		ss.srv.failed.Add(1)
	}
}

// interrupt wakes the session from any control I/O it waits for; it sees
// the server's done channel next. Called by Close.
func (ss *session) interrupt() {
	ss.ctrl.SetDeadline(time.Now())
}

// halt stops the streams and UDP acceptors.
func (ss *session) halt() {
	ss.stopOnce.Do(func() { close(ss.stop) })
}

// fail records the first stream error, to be reported to the client.
func (ss *session) fail(ie, errno int32) {
	ss.failOnce.Do(func() {
		ss.failIE, ss.failErrno = ie, errno
		close(ss.failed)
	})
}

// bytes sums the bytes the streams received and sent.
func (ss *session) bytes() (rx, tx uint64) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, st := range ss.streams {
		if st.send {
			tx += st.bytes.Load()
		} else {
			rx += st.bytes.Load()
		}
	}
	return rx, tx
}

// armRead sets the control connection's read deadline d from now. It
// returns errServerClosed if Close has been called: checked after setting
// the deadline, so that an interrupt cannot fall between the two.
func (ss *session) armRead(d time.Duration) error {
	ss.ctrl.SetReadDeadline(time.Now().Add(d))
	return ss.closing()
}

func (ss *session) closing() error {
	select {
	case <-ss.srv.done:
		return errServerClosed
	default:
		return nil
	}
}

// send writes b on the control connection.
func (ss *session) send(b []byte) error {
	ss.ctrl.SetWriteDeadline(time.Now().Add(ss.srv.opts.Timeout))
	if err := ss.closing(); err != nil {
		return err
	}
	_, err := ss.ctrl.Write(b)
	return err
}

func (ss *session) sendState(s state) error { return ss.send([]byte{byte(s)}) }

// runTest runs the protocol; true if the test got to the end.
func (ss *session) runTest() bool {
	timeout := ss.srv.opts.Timeout

	// Parameters.
	if ss.sendState(stateParamExchange) != nil || ss.armRead(timeout) != nil {
		return false
	}
	b, err := readJSON(ss.ctrl)
	if err != nil {
		if errors.Is(err, errTooLong) {
			ss.send(serverError(ieRecvParams, errnoInval))
		}
		return false
	}
	p, err := parseParams(b)
	if pe := (*paramError)(nil); errors.As(err, &pe) {
		ss.send(serverError(pe.ie, pe.errno))
		return false
	}
	ss.p = p
	if p.udp {
		if err := ss.openUDPListeners(); err != nil {
			ss.send(serverError(ieStreamListen, errnoAddrInUse))
			return false
		}
	}

	// Streams.
	ss.mu.Lock()
	ss.accepting = true
	ss.mu.Unlock()
	if ss.sendState(stateCreateStreams) != nil {
		return false
	}
	ctrl := make(chan ctrlMsg, 1)
	ss.ctrl.SetReadDeadline(time.Time{})
	if ss.closing() != nil {
		return false
	}
	ss.wg.Go(func() { ctrl <- ss.readState() })
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-ss.ready:
	case <-ctrl:
		return false // the client gave up
	case <-timer.C:
		ss.send(serverError(ieStreamAccept, errnoTimedOut))
		return false
	case <-ss.failed:
		ss.send(serverError(ss.failIE, ss.failErrno))
		return false
	case <-ss.srv.done:
		return false
	}
	ss.closeUDPListeners()
	streams := ss.numberStreams()

	// The test.
	cpu0 := cpuNow()
	start := time.Now()
	if ss.sendState(stateTestStart) != nil || ss.sendState(stateTestRunning) != nil {
		return false
	}
	if p.bidir && !p.udp {
		ss.bidirRoles(streams)
	}
	var omitAt time.Time
	if p.omit > 0 {
		omitAt = start.Add(time.Duration(p.omit) * time.Second)
	}
	for _, st := range streams {
		st.prepare(ss, start, omitAt)
		ss.wg.Go(st.run)
	}
	limit := untimedLimit
	if p.duration > 0 {
		limit = time.Duration(p.duration+p.omit)*time.Second + graceTime
	}
	timer.Reset(limit)
	select {
	case m := <-ctrl:
		if m.err != nil || m.st != stateTestEnd {
			return false // CLIENT_TERMINATE, or gone
		}
	case <-ss.failed:
		ss.send(serverError(ss.failIE, ss.failErrno))
		return false
	case <-timer.C:
		return false
	case <-ss.srv.done:
		return false
	}
	end := time.Now()
	cpu1 := cpuNow()
	ss.halt()
	ss.wg.Wait() // the streams; the state reader has returned
	res := ss.report(streams, end, cpu1.sub(cpu0, end.Sub(start)))
	for _, st := range streams {
		st.ep.Close()
	}

	// Results: the client's first, then ours.
	if ss.sendState(stateExchangeResults) != nil || ss.armRead(timeout) != nil {
		return false
	}
	if _, err := readJSON(ss.ctrl); err != nil {
		return false
	}
	msg, err := frameJSON(res)
	if err != nil || ss.send(msg) != nil || ss.sendState(stateDisplayResults) != nil {
		return false
	}
	// The client answers IPERF_DONE and closes; either will do.
	if ss.armRead(timeout) == nil {
		var done [1]byte
		ss.ctrl.Read(done[:])
	}
	return true
}

// readState reads the next state the client sends that matters to the
// server: TEST_END, CLIENT_TERMINATE or anything unexpected. It is the only
// reader of the control connection while it runs.
func (ss *session) readState() ctrlMsg {
	var b [1]byte
	for {
		if _, err := io.ReadFull(ss.ctrl, b[:]); err != nil {
			return ctrlMsg{err: err}
		}
		switch s := state(int8(b[0])); s {
		case stateTestStart, stateTestRunning:
			// Harmless echoes; iperf3's server ignores them too.
		default:
			return ctrlMsg{st: s}
		}
	}
}

// roleTimeout bounds the wait of bidirRoles.
const roleTimeout = 2 * time.Second

// bidirRoles gives the streams of a bidirectional TCP test their
// directions by what the client does, rather than by the order in which
// they were accepted. That order follows the client's only as far as the
// stack's handshakes complete in the order they began, which gVisor does
// not promise: it processes the segments of different connections on
// different goroutines. Numbering streams in the wrong order only mixes up
// which stream's figures are which, but a wrong direction would have both
// ends send on one stream and neither on another. The client's sending
// streams carry data as soon as it has read TEST_RUNNING, and its
// receiving ones never do: the first p.parallel streams with data to read
// are the ones the server receives on. It waits at most roleTimeout, then
// keeps the order of acceptance.
func (ss *session) bidirRoles(streams []*stream) {
	ch := make(waiter.ChannelNotifier, 1)
	entries := make([]waiter.Entry, len(streams))
	queues := make([]*waiter.Queue, len(streams)) // streams is reordered below
	for i, st := range streams {
		entries[i].Init(ch, waiter.ReadableEvents)
		queues[i] = st.wq
		st.wq.EventRegister(&entries[i])
	}
	defer func() {
		for i, q := range queues {
			q.EventUnregister(&entries[i])
		}
	}()
	timer := time.NewTimer(roleTimeout)
	defer timer.Stop()
	for {
		var recv, send []*stream
		for _, st := range streams {
			if st.ep.Readiness(waiter.ReadableEvents) != 0 {
				recv = append(recv, st)
			} else {
				send = append(send, st)
			}
		}
		if len(recv) == ss.p.parallel {
			ss.mu.Lock()
			for i, st := range append(recv, send...) {
				st.id = streamID(i)
				st.send = i >= ss.p.parallel
				streams[i] = st
			}
			ss.mu.Unlock()
			return
		}
		select {
		case <-ch:
		case <-timer.C:
			return
		case <-ss.srv.done:
			return
		}
	}
}

// addTCPStream takes a new connection whose cookie is cookie as a data
// stream, if the test is creating TCP streams and the cookie is its. order
// is the connection's place in the order of arrival. On true the session
// owns ep.
func (ss *session) addTCPStream(ep tcpip.Endpoint, wq *waiter.Queue, cookie [cookieSize]byte, order uint64) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if !ss.accepting || ss.p.udp || cookie != ss.cookie || len(ss.streams) >= ss.p.streams() {
		return false
	}
	remote, _ := ep.GetRemoteAddress()
	proto := header.IPv4ProtocolNumber
	if remote.Addr.Len() == header.IPv6AddressSize {
		proto = header.IPv6ProtocolNumber
	}
	configure(ep, &ss.p, proto, false)
	ss.addStreamLocked(&stream{order: order, ep: ep, wq: wq, remote: remote})
	return true
}

// addStreamLocked appends st, and closes ready after the last stream.
//
// +checklocks:ss.mu
func (ss *session) addStreamLocked(st *stream) {
	st.udp = ss.p.udp
	ss.streams = append(ss.streams, st)
	if len(ss.streams) == ss.p.streams() {
		close(ss.ready)
	}
}

// numberStreams ends stream creation and gives the streams their ids and
// directions in the order the client opened them: its cookie-reading
// goroutines may have added them in another. iperf3 numbers both ends'
// streams in that order, and in a bidirectional test the client's sending
// streams come first.
func (ss *session) numberStreams() []*stream {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.accepting = false
	slices.SortFunc(ss.streams, func(a, b *stream) int { return cmp.Compare(a.order, b.order) })
	for i, st := range ss.streams {
		st.id = streamID(i)
		st.send = ss.p.serverSends(i)
	}
	return ss.streams
}

// openUDPListeners opens the wildcard UDP sockets on which clients say
// hello to open UDP streams, one per network protocol, and starts reading
// them.
func (ss *session) openUDPListeners() error {
	for _, proto := range networkProtocols(ss.srv.s) {
		wq := new(waiter.Queue)
		ep, terr := ss.srv.s.NewEndpoint(header.UDPProtocolNumber, proto, wq)
		if terr != nil {
			ss.closeUDPListeners()
			return fmt.Errorf("socket %s: %s", netName("udp", proto), terr)
		}
		if proto == header.IPv6ProtocolNumber {
			ep.SocketOptions().SetV6Only(true)
		}
		ep.SocketOptions().SetReuseAddress(true)
		ep.SocketOptions().SetReceiveOriginalDstAddress(true)
		if terr := ep.Bind(tcpip.FullAddress{Port: ss.srv.opts.Port}); terr != nil {
			ep.Close()
			ss.closeUDPListeners()
			return fmt.Errorf("bind %s port %d: %s", netName("udp", proto), ss.srv.opts.Port, terr)
		}
		ss.udpListeners = append(ss.udpListeners, &listener{ep: ep, wq: wq})
	}
	for i, l := range ss.udpListeners {
		proto := networkProtocols(ss.srv.s)[i]
		ss.wg.Go(func() { ss.acceptUDP(l, proto) })
	}
	return nil
}

func (ss *session) closeUDPListeners() {
	for _, l := range ss.udpListeners {
		l.ep.Close()
	}
	ss.udpListeners = nil
}

// acceptUDP reads hellos on l until it is closed or the session halts.
func (ss *session) acceptUDP(l *listener, proto tcpip.NetworkProtocolNumber) {
	entry, notify := waiter.NewChannelEntry(waiter.ReadableEvents)
	l.wq.EventRegister(&entry)
	defer l.wq.EventUnregister(&entry)
	var buf [64]byte
	for {
		w := tcpip.SliceWriter(buf[:])
		res, terr := l.ep.Read(&w, tcpip.ReadOptions{NeedRemoteAddr: true})
		if _, ok := terr.(*tcpip.ErrWouldBlock); ok {
			select {
			case <-notify:
				continue
			case <-ss.stop:
				return
			}
		}
		if terr != nil {
			return // closed
		}
		if !res.ControlMessages.HasOriginalDstAddress {
			continue
		}
		ss.addUDPStream(proto, res.RemoteAddr, res.ControlMessages.OriginalDstAddress, buf[:min(res.Count, len(buf))])
	}
}

// addUDPStream opens the UDP stream a hello from remote to local asks for:
// an endpoint bound to local and the port, connected to remote, so that it
// alone receives the stream's datagrams and sends from the address the
// client expects. It answers the hello from there.
func (ss *session) addUDPStream(proto tcpip.NetworkProtocolNumber, remote, local tcpip.FullAddress, hello []byte) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if !ss.accepting || len(ss.streams) >= ss.p.streams() {
		return
	}
	for _, st := range ss.streams {
		if st.remote == remote {
			return // a repeated hello
		}
	}
	wq := new(waiter.Queue)
	ep, terr := ss.srv.s.NewEndpoint(header.UDPProtocolNumber, proto, wq)
	if terr != nil {
		ss.fail(ieStreamAccept, errnoNone)
		return
	}
	if proto == header.IPv6ProtocolNumber {
		ep.SocketOptions().SetV6Only(true)
	}
	ep.SocketOptions().SetReuseAddress(true)
	configure(ep, &ss.p, proto, true)
	// A NIC only where the address needs one to mean anything.
	bind := tcpip.FullAddress{Addr: local.Addr, Port: ss.srv.opts.Port}
	if header.IsV6LinkLocalUnicastAddress(local.Addr) {
		bind.NIC = local.NIC
	}
	if !header.IsV6LinkLocalUnicastAddress(remote.Addr) {
		remote.NIC = 0
	}
	if terr := ep.Bind(bind); terr != nil {
		// Not one of our unicast addresses (a broadcast hello): no
		// stream can come of it.
		ep.Close()
		return
	}
	if terr := ep.Connect(remote); terr != nil {
		ep.Close()
		ss.fail(ieStreamAccept, errnoOf(terr))
		return
	}
	reply := udpReply(hello)
	var r bytesPayload
	r.b = reply[:]
	if _, terr := ep.Write(&r, tcpip.WriteOptions{}); terr != nil {
		ep.Close()
		ss.fail(ieStreamAccept, errnoOf(terr))
		return
	}
	ss.addStreamLocked(&stream{order: ss.srv.accepted.Add(1), ep: ep, wq: wq, remote: remote})
}

// bytesPayload is a tcpip.Payloader over a byte slice.
type bytesPayload struct{ b []byte }

func (p *bytesPayload) Read(b []byte) (int, error) {
	if len(p.b) == 0 {
		return 0, io.EOF
	}
	n := copy(b, p.b)
	p.b = p.b[n:]
	return n, nil
}

func (p *bytesPayload) Len() int { return len(p.b) }

// report builds the server's results for the client. The streams have
// stopped.
func (ss *session) report(streams []*stream, end time.Time, cpu cpuUtil) *results {
	p := &ss.p
	res := &results{
		CPUUtilTotal:  cpu.total,
		CPUUtilUser:   cpu.user,
		CPUUtilSystem: cpu.system,
		Streams:       make([]streamResult, 0, len(streams)),
	}
	// As iperf3 reports it: -1 when the server only receives, 1 when it
	// sends TCP (it knows its retransmissions), 0 for UDP.
	switch {
	case !p.reverse && !p.bidir:
		res.SenderHasRetransmits = -1
	case !p.udp:
		res.SenderHasRetransmits = 1
	}
	if !p.udp && len(streams) > 0 {
		var cc tcpip.CongestionControlOption
		if streams[0].ep.GetSockOpt(&cc) == nil {
			res.CongestionUsed = string(cc)
		}
	}
	for _, st := range streams {
		stEnd := end
		if !st.ended.IsZero() && st.ended.Before(end) {
			stEnd = st.ended
		}
		if st.omitPending {
			st.snapshot(stEnd)
		}
		r := streamResult{
			ID:             st.id,
			Bytes:          st.bytes.Load() - st.omitBytes,
			Retransmits:    -1,
			Jitter:         st.rx.jitter,
			Errors:         st.rx.lost,
			OmittedErrors:  st.omitLost,
			Packets:        max(st.packets, st.rx.highest),
			OmittedPackets: st.omitPackets,
			EndTime:        max(stEnd.Sub(st.start).Seconds(), 0),
		}
		if st.send && res.SenderHasRetransmits == 1 {
			r.Retransmits = int64(st.retransmits() - st.retransBase)
		}
		res.Streams = append(res.Streams, r)
	}
	if p.serverOutput {
		res.ServerOutputText = ss.outputText(streams, res)
	}
	return res
}

// outputText is the server's account of the test for --get-server-output,
// in the spirit of iperf3 -s's own.
func (ss *session) outputText(streams []*stream, res *results) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Accepted connection from %s, port %d (tapstack in-stack iperf3 server)\n", addrString(ss.client.Addr), ss.client.Port)
	for i, st := range streams {
		fmt.Fprintf(&b, "[%3d] connected to %s port %d\n", res.Streams[i].ID, addrString(st.remote.Addr), st.remote.Port)
	}
	fmt.Fprintf(&b, "[ ID] Interval           Transfer     Bitrate\n")
	var total uint64
	var secs float64
	for _, r := range res.Streams {
		total += r.Bytes
		secs = max(secs, r.EndTime)
		fmt.Fprintf(&b, "[%3d] %6.2f-%-6.2f sec  %s  %s\n", r.ID, r.StartTime, r.EndTime, humanBytes(float64(r.Bytes)), humanBits(rate(r.Bytes, r.EndTime)))
	}
	if len(res.Streams) > 1 {
		fmt.Fprintf(&b, "[SUM] %6.2f-%-6.2f sec  %s  %s\n", 0.0, secs, humanBytes(float64(total)), humanBits(rate(total, secs)))
	}
	fmt.Fprintf(&b, "CPU utilization: %.1f%% (%.1f%% user, %.1f%% system)\n", res.CPUUtilTotal, res.CPUUtilUser, res.CPUUtilSystem)
	return b.String()
}

func addrString(a tcpip.Address) string {
	if ip, ok := netip.AddrFromSlice(a.AsSlice()); ok {
		return ip.Unmap().String()
	}
	return a.String()
}

func rate(bytes uint64, secs float64) float64 {
	if secs <= 0 {
		return 0
	}
	return float64(bytes) * 8 / secs
}

func humanBytes(v float64) string {
	units := []string{"Bytes", "KBytes", "MBytes", "GBytes", "TBytes"}
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%6.4g %s", v, units[i])
}

func humanBits(v float64) string {
	units := []string{"bits/sec", "Kbits/sec", "Mbits/sec", "Gbits/sec", "Tbits/sec"}
	i := 0
	for v >= 1000 && i < len(units)-1 {
		v /= 1000
		i++
	}
	return fmt.Sprintf("%6.4g %s", v, units[i])
}
