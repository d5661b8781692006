package iperf

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
)

// The wire protocol of iperf3, as this server speaks it. The values are
// iperf3's (src/iperf_api.h, src/iperf.h); nothing here is specific to
// gVisor.

// state is one byte of the control connection: the state the sender has
// entered (a signed char on the wire).
type state int8

// Control states. Those marked "server" are sent by the server, "client"
// by the client.
const (
	stateTestStart       state = 1  // server: streams created, test begins
	stateTestRunning     state = 2  // server: streams may carry data
	stateTestEnd         state = 4  // client: the test is over
	stateParamExchange   state = 9  // server: send the parameters
	stateCreateStreams   state = 10 // server: open the data streams
	stateServerTerminate state = 11 // server: the server is going away
	stateClientTerminate state = 12 // client: the client was interrupted
	stateExchangeResults state = 13 // server: send your results
	stateDisplayResults  state = 14 // server: results sent, print them
	stateIperfDone       state = 16 // client: done, closing
	stateAccessDenied    state = -1 // server: busy, or a stream with a wrong cookie
	stateServerError     state = -2 // server: followed by two big-endian int32, i_errno and errno
)

// byte returns s as sent on the wire.
func (s state) byte() byte { return byte(s) }

// cookieSize is the length of the cookie that opens the control connection
// and every TCP data stream: 36 characters of a UUID and a NUL.
const cookieSize = 37

// iperf3 error numbers (i_errno) the server reports with stateServerError.
// The client prints its own message for each.
const (
	ieDuration     = 5   // "test duration too long"
	ieNumStreams   = 6   // "number of parallel streams too large"
	ieBlockSize    = 7   // "block size too large"
	ieOmit         = 12  // "bogus value for --omit"
	ieUDPBlockSize = 20  // "block size invalid"
	ieReverseBidir = 25  // "cannot be both reverse and bidirectional"
	ieRecvParams   = 114 // "unable to receive parameters from client"
	ieProtocol     = 131 // "protocol does not exist"
	ieStreamListen = 202 // "unable to start stream listener"
	ieStreamAccept = 204 // "unable to accept stream connection"
	ieStreamWrite  = 205 // "unable to write to stream socket"
	ieStreamRead   = 206 // "unable to read from stream socket"
)

// Limits iperf3 itself applies to parameters.
const (
	maxStreams      = 128       // MAX_STREAMS
	maxTime         = 86400     // MAX_TIME, seconds
	maxOmit         = 600       // MAX_OMIT_TIME, seconds
	maxTCPBlock     = 1 << 20   // MAX_BLOCKSIZE
	maxUDPBlock     = 65507     // MAX_UDP_BLOCKSIZE: 65535 - 8 - 20
	defaultTCPBlock = 128 << 10 // DEFAULT_TCP_BLKSIZE
	defaultUDPBlock = 1460      // DEFAULT_UDP_BLKSIZE
	defaultPacing   = 1000      // DEFAULT_PACING_TIMER, microseconds
	maxJSON         = 1 << 20   // the largest JSON message accepted
	maxRate         = 1 << 50   // bits/s; anything above means unthrottled
	udpHeader32     = 12        // sec, usec, 32-bit packet count
	udpHeader64     = 16        // sec, usec, 64-bit packet count
	udpHello        = 4         // the datagram that opens a UDP stream
	pacingMin       = 100       // microseconds: the shortest pacing interval honoured
	pacingMax       = 1000000   // microseconds: the longest
	legacyHello     = 123456789 // the hello of iperf3 < 3.11, in the client's byte order
	legacyReply     = 987654321 // and its reply
)

// Linux errno values, sent with stateServerError (the client runs
// strerror on them).
const (
	errnoNone        = 0
	errnoPipe        = 32  // EPIPE
	errnoInval       = 22  // EINVAL
	errnoProtoNoSup  = 93  // EPROTONOSUPPORT
	errnoAddrInUse   = 98  // EADDRINUSE
	errnoConnReset   = 104 // ECONNRESET
	errnoTimedOut    = 110 // ETIMEDOUT
	errnoConnRefused = 111 // ECONNREFUSED
)

// The datagram that opens a UDP stream, and the reply. iperf3 ≥ 3.11 sends
// "9876" and expects "6789" (the same bytes on every host); older clients
// send 123456789 in their host's byte order and expect 987654321 in it.
var (
	udpHelloMsg   = [udpHello]byte{'9', '8', '7', '6'}
	udpHelloReply = [udpHello]byte{'6', '7', '8', '9'}
)

// udpReply returns the reply to the hello datagram hello: the legacy value
// in the byte order the client used, or the current reply for anything
// else (iperf3's own server does not look at the hello either).
func udpReply(hello []byte) [udpHello]byte {
	var r [udpHello]byte
	if len(hello) == udpHello {
		switch {
		case binary.LittleEndian.Uint32(hello) == legacyHello:
			binary.LittleEndian.PutUint32(r[:], legacyReply)
			return r
		case binary.BigEndian.Uint32(hello) == legacyHello:
			binary.BigEndian.PutUint32(r[:], legacyReply)
			return r
		}
	}
	return udpHelloReply
}

// params are the test parameters the client sends after stateParamExchange,
// as far as this server uses them. Numbers are validated by check.
type params struct {
	udp           bool
	omit          int    // seconds
	duration      int    // seconds; 0 when the test ends by bytes or blocks
	parallel      int    // streams per direction
	reverse       bool   // the server sends
	bidir         bool   // both send
	window        int    // socket buffer size, bytes; 0: the stack's default
	blockSize     int    // bytes per write (TCP) or datagram (UDP)
	rate          uint64 // bits/s per stream; 0: unthrottled
	pacingUs      int    // pacing interval, microseconds
	noDelay       bool
	tos           int
	congestion    string
	serverOutput  bool
	counters64    bool
	repeating     bool
	skipRxCopy    bool
	clientVersion string
}

// wireParams is the JSON object of the parameters. Flags are present or
// absent (cJSON_AddTrueToObject); iperf3 tests them for presence only, and
// so does this server: json.RawMessage is non-nil when the key is there.
type wireParams struct {
	TCP              json.RawMessage `json:"tcp"`
	UDP              json.RawMessage `json:"udp"`
	SCTP             json.RawMessage `json:"sctp"`
	MPTCP            json.RawMessage `json:"mptcp"`
	Omit             float64         `json:"omit"`
	Time             float64         `json:"time"`
	Num              float64         `json:"num"`
	BlockCount       float64         `json:"blockcount"`
	MSS              float64         `json:"MSS"`
	NoDelay          json.RawMessage `json:"nodelay"`
	Parallel         float64         `json:"parallel"`
	Reverse          json.RawMessage `json:"reverse"`
	Bidirectional    json.RawMessage `json:"bidirectional"`
	Window           float64         `json:"window"`
	Len              float64         `json:"len"`
	Bandwidth        float64         `json:"bandwidth"`
	PacingTimer      float64         `json:"pacing_timer"`
	TOS              float64         `json:"TOS"`
	Congestion       string          `json:"congestion"`
	GetServerOutput  json.RawMessage `json:"get_server_output"`
	UDPCounters64    json.RawMessage `json:"udp_counters_64bit"`
	RepeatingPayload json.RawMessage `json:"repeating_payload"`
	SkipRxCopy       float64         `json:"skip_rx_copy"`
	ClientVersion    string          `json:"client_version"`
}

// paramError is a parameter the server refuses: the iperf3 error number
// and errno it reports to the client, and a description for Go callers.
type paramError struct {
	ie, errno int32
	msg       string
}

func (e *paramError) Error() string { return e.msg }

// parseParams decodes and checks the parameter JSON. A *paramError says
// what to report to the client.
func parseParams(b []byte) (params, error) {
	var w wireParams
	if err := json.Unmarshal(b, &w); err != nil {
		return params{}, &paramError{ieRecvParams, errnoInval, "parameters: " + err.Error()}
	}
	var p params
	switch {
	case w.SCTP != nil || w.MPTCP != nil:
		return params{}, &paramError{ieProtocol, errnoProtoNoSup, "parameters: only TCP and UDP are supported"}
	case w.UDP != nil:
		p.udp = true
	}
	ints := []struct {
		dst      *int
		v        float64
		min, max int
		ie       int32
		name     string
	}{
		{&p.omit, w.Omit, 0, maxOmit, ieOmit, "omit"},
		{&p.duration, w.Time, 0, maxTime, ieDuration, "time"},
		{&p.parallel, w.Parallel, 0, maxStreams, ieNumStreams, "parallel"},
		{&p.window, w.Window, 0, math.MaxInt32, ieBlockSize, "window"},
		{&p.blockSize, w.Len, 0, maxTCPBlock, ieBlockSize, "len"},
		{&p.pacingUs, w.PacingTimer, 0, math.MaxInt32, ieRecvParams, "pacing_timer"},
		{&p.tos, w.TOS, 0, 255, ieRecvParams, "TOS"},
	}
	for _, f := range ints {
		if f.v != math.Trunc(f.v) || f.v < float64(f.min) || f.v > float64(f.max) {
			return params{}, &paramError{f.ie, errnoInval, fmt.Sprintf("parameters: %s %v out of range [%d, %d]", f.name, f.v, f.min, f.max)}
		}
		*f.dst = int(f.v)
	}
	if w.Bandwidth < 0 || math.IsNaN(w.Bandwidth) {
		return params{}, &paramError{ieRecvParams, errnoInval, fmt.Sprintf("parameters: bandwidth %v", w.Bandwidth)}
	}
	if w.Bandwidth < maxRate {
		p.rate = uint64(w.Bandwidth)
	}
	p.reverse = w.Reverse != nil
	p.bidir = w.Bidirectional != nil
	if p.reverse && p.bidir {
		return params{}, &paramError{ieReverseBidir, errnoInval, "parameters: both reverse and bidirectional"}
	}
	if p.parallel == 0 {
		p.parallel = 1
	}
	p.noDelay = w.NoDelay != nil
	p.congestion = w.Congestion
	p.serverOutput = w.GetServerOutput != nil
	p.counters64 = w.UDPCounters64 != nil
	p.repeating = w.RepeatingPayload != nil
	p.skipRxCopy = w.SkipRxCopy != 0
	p.clientVersion = w.ClientVersion
	if p.pacingUs == 0 {
		p.pacingUs = defaultPacing
	}
	p.pacingUs = min(max(p.pacingUs, pacingMin), pacingMax)
	if p.udp {
		if p.blockSize == 0 {
			p.blockSize = defaultUDPBlock
		}
		if p.blockSize > maxUDPBlock || p.blockSize < p.udpHeaderLen() {
			return params{}, &paramError{ieUDPBlockSize, errnoInval, fmt.Sprintf("parameters: UDP len %d out of range [%d, %d]", p.blockSize, p.udpHeaderLen(), maxUDPBlock)}
		}
	} else if p.blockSize == 0 {
		p.blockSize = defaultTCPBlock
	}
	return p, nil
}

// udpHeaderLen is the length of the header of each UDP datagram.
func (p *params) udpHeaderLen() int {
	if p.counters64 {
		return udpHeader64
	}
	return udpHeader32
}

// streams is the number of data streams the client opens.
func (p *params) streams() int {
	if p.bidir {
		return 2 * p.parallel
	}
	return p.parallel
}

// serverSends reports whether the i'th stream the client opens (from 0) is
// one the server sends on. The client opens its sending streams first.
func (p *params) serverSends(i int) bool {
	switch {
	case p.reverse:
		return true
	case p.bidir:
		return i >= p.parallel
	}
	return false
}

// streamID is iperf3's id of the i'th stream (from 0): 1, 3, 4, 5, …
// (iperf_add_stream skips 2, and both ends must agree).
func streamID(i int) int {
	if i == 0 {
		return 1
	}
	return i + 2
}

// results is the JSON object each side sends after stateExchangeResults.
// The client requires the cpu_util_* and sender_has_retransmits numbers
// and, in each stream, id, bytes, retransmits, jitter, errors and packets.
type results struct {
	CPUUtilTotal         float64        `json:"cpu_util_total"`
	CPUUtilUser          float64        `json:"cpu_util_user"`
	CPUUtilSystem        float64        `json:"cpu_util_system"`
	SenderHasRetransmits int            `json:"sender_has_retransmits"`
	CongestionUsed       string         `json:"congestion_used,omitempty"`
	ServerOutputText     string         `json:"server_output_text,omitempty"`
	Streams              []streamResult `json:"streams"`
}

// streamResult is one stream of results. Seconds are since the stream's
// start (after the omitted period).
type streamResult struct {
	ID             int     `json:"id"`
	Bytes          uint64  `json:"bytes"`
	Retransmits    int64   `json:"retransmits"` // -1: not known
	Jitter         float64 `json:"jitter"`      // seconds
	Errors         int64   `json:"errors"`      // datagrams lost
	OmittedErrors  int64   `json:"omitted_errors"`
	Packets        uint64  `json:"packets"`
	OmittedPackets uint64  `json:"omitted_packets"`
	StartTime      float64 `json:"start_time"`
	EndTime        float64 `json:"end_time"`
}

// frameJSON encodes v as iperf3 frames JSON: a big-endian uint32 length,
// then the text.
func frameJSON(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	msg := make([]byte, 4+len(b))
	binary.BigEndian.PutUint32(msg, uint32(len(b)))
	copy(msg[4:], b)
	return msg, nil
}

// errTooLong is a JSON message longer than maxJSON.
var errTooLong = errors.New("JSON message too long")

// readJSON reads one length-prefixed JSON message and returns its text.
func readJSON(r io.Reader) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(h[:])
	if n > maxJSON {
		return nil, fmt.Errorf("%w: %d bytes", errTooLong, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// serverError is the frame of stateServerError: the state byte, then the
// iperf3 error number and errno as big-endian int32.
func serverError(ie, errno int32) []byte {
	b := make([]byte, 9)
	b[0] = stateServerError.byte()
	binary.BigEndian.PutUint32(b[1:], uint32(ie))
	binary.BigEndian.PutUint32(b[5:], uint32(errno))
	return b
}

// udpHeader is the start of every UDP data datagram: the sender's clock
// (seconds and microseconds) and the datagram's sequence number, from 1.
type udpHeader struct {
	sec, usec uint32
	seq       uint64
}

// putUDPHeader writes h at the start of b, which is at least udpHeader64
// (udpHeader32 without counters64) bytes long.
func putUDPHeader(b []byte, h udpHeader, counters64 bool) {
	binary.BigEndian.PutUint32(b[0:], h.sec)
	binary.BigEndian.PutUint32(b[4:], h.usec)
	if counters64 {
		binary.BigEndian.PutUint64(b[8:], h.seq)
	} else {
		binary.BigEndian.PutUint32(b[8:], uint32(h.seq))
	}
}

// parseUDPHeader reads the header at the start of b; ok is false if b is
// too short to hold one.
func parseUDPHeader(b []byte, counters64 bool) (h udpHeader, ok bool) {
	n := udpHeader32
	if counters64 {
		n = udpHeader64
	}
	if len(b) < n {
		return udpHeader{}, false
	}
	h.sec = binary.BigEndian.Uint32(b[0:])
	h.usec = binary.BigEndian.Uint32(b[4:])
	if counters64 {
		h.seq = binary.BigEndian.Uint64(b[8:])
	} else {
		h.seq = uint64(binary.BigEndian.Uint32(b[8:]))
	}
	return h, true
}
