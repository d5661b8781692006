package iperf

import (
	"bytes"
	crand "crypto/rand"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// tcpReadSize is how much a receiving TCP stream reads at a time when it
// copies (iperf3's default block).
const tcpReadSize = 128 << 10

// udpReadSize holds any UDP datagram.
const udpReadSize = 1 << 16

// stream is one data stream of a test: a TCP connection or a connected UDP
// endpoint, on which the server either sends or receives.
//
// The session creates it; from start until its goroutine returns, the
// goroutine alone uses the fields below "owned"; the session reads them
// after. bytes is atomic for Stats.
type stream struct {
	// order is the stream's place among the connections the server
	// accepted; the session numbers streams in this order.
	order uint64
	id    int
	send  bool // the server sends on it
	udp   bool
	ep    tcpip.Endpoint
	wq    *waiter.Queue
	// remote is the client's end, for the server output text.
	remote tcpip.FullAddress

	// bytes counts payload sent or received since the start of the test,
	// the omitted period included.
	bytes atomic.Uint64

	// owned by the stream's goroutine while it runs.
	ss      *session
	buf     []byte
	sw      tcpip.SliceWriter
	sink    countingWriter
	rd      bytes.Reader
	pace    pacer
	packets uint64 // UDP datagrams sent
	rx      udpRecvStats
	// start is when measurement starts: the test's start, or the end of
	// the omitted period once passed.
	start time.Time
	// omitAt is the end of the omitted period; omitPending until the
	// goroutine has taken the snapshot below.
	omitAt      time.Time
	omitPending bool
	omitBytes   uint64
	omitPackets uint64
	omitLost    int64
	// retransBase is the count of TCP retransmissions not to report:
	// those before the test (the handshake's), then before the end of
	// the omitted period.
	retransBase uint64
	// ended is when the peer closed the stream, if it did before the end
	// of the test.
	ended time.Time
}

// countingWriter is an io.Writer that keeps nothing: --skip-rx-copy.
type countingWriter struct{}

func (countingWriter) Write(b []byte) (int, error) { return len(b), nil }

// configure applies the test's socket options to a new data stream's
// endpoint. Failures are ignored, as iperf3 ignores an unknown congestion
// control: the test runs with the stack's defaults.
func configure(ep tcpip.Endpoint, p *params, proto tcpip.NetworkProtocolNumber, udp bool) {
	if p.window > 0 {
		ep.SocketOptions().SetReceiveBufferSize(int64(p.window), true /* notify */)
		ep.SocketOptions().SetSendBufferSize(int64(p.window), true /* notify */)
	}
	if p.tos != 0 {
		if proto == header.IPv6ProtocolNumber {
			ep.SetSockOptInt(tcpip.IPv6TrafficClassOption, p.tos)
		} else {
			ep.SetSockOptInt(tcpip.IPv4TOSOption, p.tos)
		}
	}
	if udp {
		return
	}
	if p.noDelay {
		ep.SocketOptions().SetDelayOption(false)
	}
	if p.congestion != "" {
		cc := tcpip.CongestionControlOption(p.congestion)
		ep.SetSockOpt(&cc)
	}
}

// prepare readies the stream to run from start, with the omitted period
// (if any) ending at omitAt.
func (st *stream) prepare(ss *session, start, omitAt time.Time) {
	p := &ss.p
	st.ss = ss
	st.start = start
	st.omitAt = omitAt
	st.omitPending = !omitAt.IsZero()
	if !st.udp {
		st.retransBase = st.retransmits()
	}
	switch {
	case st.send:
		st.buf = make([]byte, p.blockSize)
		fillPayload(st.buf, p.repeating)
		st.pace = newPacer(p.rate, time.Duration(p.pacingUs)*time.Microsecond, start)
	case st.udp:
		st.buf = make([]byte, udpReadSize)
	case !p.skipRxCopy:
		st.buf = make([]byte, tcpReadSize)
	}
}

// fillPayload fills b as iperf3 does: random bytes, or "0123456789…" for
// --repeating-payload.
func fillPayload(b []byte, repeating bool) {
	if repeating {
		for i := range b {
			b[i] = '0' + byte(i%10)
		}
		return
	}
	crand.Read(b)
}

// run moves data until the session halts the stream, the peer closes it,
// or an error, which fails the test.
func (st *stream) run() {
	switch {
	case st.send && st.udp:
		st.sendUDP()
	case st.send:
		st.sendTCP()
	case st.udp:
		st.recvUDP()
	default:
		st.recvTCP()
	}
}

// checkOmit takes the omitted period's snapshot once it has ended: before
// the data that follows is counted. A stream sees the end of the period
// when it next moves data, which counts for after it either way.
func (st *stream) checkOmit() {
	if st.omitPending {
		st.snapshot(time.Now())
	}
}

// snapshot takes the omitted period's counters if it has ended by now.
func (st *stream) snapshot(now time.Time) {
	if now.Before(st.omitAt) {
		return
	}
	st.omitPending = false
	st.start = st.omitAt
	st.omitBytes = st.bytes.Load()
	st.omitPackets = max(st.packets, st.rx.highest)
	st.omitLost = st.rx.lost
	st.rx.jitter = 0
	st.retransBase = st.retransmits()
}

// retransmits returns the TCP segments the stream's endpoint has
// retransmitted.
func (st *stream) retransmits() uint64 {
	if s, ok := st.ep.Stats().(*tcp.Stats); ok {
		return s.SendErrors.Retransmits.Value()
	}
	return 0
}

// stopped reports whether the session has halted the stream.
func (st *stream) stopped() bool {
	select {
	case <-st.ss.stop:
		return true
	default:
		return false
	}
}

// wait blocks until notify fires or the session halts the stream; false
// on halt.
func (st *stream) wait(notify <-chan struct{}) bool {
	select {
	case <-notify:
		return true
	case <-st.ss.stop:
		return false
	}
}

func (st *stream) recvTCP() {
	entry, notify := waiter.NewChannelEntry(waiter.ReadableEvents | waiter.EventHUp | waiter.EventErr)
	st.wq.EventRegister(&entry)
	defer st.wq.EventUnregister(&entry)
	skip := st.buf == nil
	for !st.stopped() {
		st.checkOmit()
		var res tcpip.ReadResult
		var err tcpip.Error
		if skip {
			res, err = st.ep.Read(&st.sink, tcpip.ReadOptions{})
		} else {
			st.sw = st.buf
			res, err = st.ep.Read(&st.sw, tcpip.ReadOptions{})
		}
		switch err.(type) {
		case nil:
			st.bytes.Add(uint64(res.Count))
			st.ep.ModerateRecvBuf(res.Count)
		case *tcpip.ErrWouldBlock:
			if !st.wait(notify) {
				return
			}
		case *tcpip.ErrClosedForReceive:
			st.ended = time.Now()
			return
		default:
			st.ss.fail(ieStreamRead, errnoOf(err))
			return
		}
	}
}

func (st *stream) sendTCP() {
	entry, notify := waiter.NewChannelEntry(waiter.WritableEvents | waiter.EventHUp | waiter.EventErr)
	st.wq.EventRegister(&entry)
	defer st.wq.EventUnregister(&entry)
	st.rd.Reset(st.buf)
	for !st.stopped() {
		st.checkOmit()
		if !st.pace.wait(st.bytes.Load(), st.ss.stop) {
			return
		}
		n, err := st.ep.Write(&st.rd, tcpip.WriteOptions{})
		switch err.(type) {
		case nil:
			st.bytes.Add(uint64(n))
			if st.rd.Len() == 0 {
				st.rd.Reset(st.buf)
			}
		case *tcpip.ErrWouldBlock:
			if !st.wait(notify) {
				return
			}
		default:
			st.ss.fail(ieStreamWrite, errnoOf(err))
			return
		}
	}
}

func (st *stream) sendUDP() {
	entry, notify := waiter.NewChannelEntry(waiter.WritableEvents | waiter.EventHUp | waiter.EventErr)
	st.wq.EventRegister(&entry)
	defer st.wq.EventUnregister(&entry)
	c64 := st.ss.p.counters64
	for !st.stopped() {
		st.checkOmit()
		if !st.pace.wait(st.bytes.Load(), st.ss.stop) {
			return
		}
		now := time.Now()
		putUDPHeader(st.buf, udpHeader{
			sec:  uint32(now.Unix()),
			usec: uint32(now.Nanosecond() / 1000),
			seq:  st.packets + 1,
		}, c64)
		st.rd.Reset(st.buf)
		n, err := st.ep.Write(&st.rd, tcpip.WriteOptions{})
		switch err.(type) {
		case nil:
			st.packets++
			st.bytes.Add(uint64(n))
		case *tcpip.ErrWouldBlock:
			if !st.wait(notify) {
				return
			}
		case *tcpip.ErrNoBufferSpace:
			// A datagram dropped for want of buffers is lost, as
			// iperf3 counts it: the sequence number is used.
			st.packets++
		default:
			st.ss.fail(ieStreamWrite, errnoOf(err))
			return
		}
	}
}

func (st *stream) recvUDP() {
	entry, notify := waiter.NewChannelEntry(waiter.ReadableEvents | waiter.EventHUp | waiter.EventErr)
	st.wq.EventRegister(&entry)
	defer st.wq.EventUnregister(&entry)
	c64 := st.ss.p.counters64
	for !st.stopped() {
		st.checkOmit()
		st.sw = st.buf
		res, err := st.ep.Read(&st.sw, tcpip.ReadOptions{})
		switch err.(type) {
		case nil:
			st.bytes.Add(uint64(res.Count))
			now := time.Now()
			if h, ok := parseUDPHeader(st.buf[:res.Count], c64); ok {
				st.rx.add(h.seq, transit(now, h))
			}
		case *tcpip.ErrWouldBlock:
			if !st.wait(notify) {
				return
			}
		case *tcpip.ErrClosedForReceive:
			return
		case *tcpip.ErrConnectionRefused:
			// An ICMP error for something we never sent on a
			// receiving stream: nothing to do.
		default:
			st.ss.fail(ieStreamRead, errnoOf(err))
			return
		}
	}
}

// transit returns the transit time, in seconds, of a datagram sent at h
// by the sender's clock that arrived at now by ours. The clocks need not
// agree (iperf3 sends its monotonic clock): jitter uses differences only.
func transit(now time.Time, h udpHeader) float64 {
	return now.Sub(time.Unix(int64(h.sec), int64(h.usec)*1000)).Seconds()
}

// errnoOf maps a gVisor error to the errno iperf3 reports with a stream
// error (0 when there is none to say).
func errnoOf(err tcpip.Error) int32 {
	switch err.(type) {
	case *tcpip.ErrConnectionReset:
		return errnoConnReset
	case *tcpip.ErrClosedForSend, *tcpip.ErrClosedForReceive:
		return errnoPipe
	case *tcpip.ErrTimeout:
		return errnoTimedOut
	case *tcpip.ErrConnectionRefused:
		return errnoConnRefused
	}
	return errnoNone
}

// pacer holds a sender to a rate, as iperf3 does: it may send while its
// average rate since the start is below the target, and otherwise sleeps
// at least one pacing interval (so it sends in bursts of about
// rate × interval).
type pacer struct {
	bytesPerSec float64 // 0: unthrottled
	interval    time.Duration
	start       time.Time
	timer       *time.Timer
}

func newPacer(bitsPerSec uint64, interval time.Duration, start time.Time) pacer {
	if bitsPerSec == 0 {
		return pacer{}
	}
	t := time.NewTimer(time.Hour)
	t.Stop()
	return pacer{bytesPerSec: float64(bitsPerSec) / 8, interval: interval, start: start, timer: t}
}

// wait returns once sent bytes are within the rate, true, or false if stop
// is closed first.
func (p *pacer) wait(sent uint64, stop <-chan struct{}) bool {
	if p.bytesPerSec == 0 {
		return true
	}
	ahead := time.Duration(float64(sent)/p.bytesPerSec*float64(time.Second)) - time.Since(p.start)
	if ahead <= 0 {
		return true
	}
	p.timer.Reset(max(ahead, p.interval))
	select {
	case <-p.timer.C:
		return true
	case <-stop:
		p.timer.Stop()
		return false
	}
}
