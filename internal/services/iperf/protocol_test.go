package iperf

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestStateBytes pins the wire values: they are iperf3's, not ours to
// choose.
func TestStateBytes(t *testing.T) {
	for _, tc := range []struct {
		s    state
		want byte
	}{
		{stateTestStart, 1}, {stateTestRunning, 2}, {stateTestEnd, 4},
		{stateParamExchange, 9}, {stateCreateStreams, 10}, {stateServerTerminate, 11},
		{stateClientTerminate, 12}, {stateExchangeResults, 13}, {stateDisplayResults, 14},
		{stateIperfDone, 16}, {stateAccessDenied, 0xff}, {stateServerError, 0xfe},
	} {
		if got := tc.s.byte(); got != tc.want {
			t.Errorf("state %d on the wire: %#x, want %#x", tc.s, got, tc.want)
		}
	}
}

func TestParseParams(t *testing.T) {
	for _, tc := range []struct {
		name string
		json string
		want params
		// ie is the iperf3 error expected instead, if not 0.
		ie int32
	}{
		{
			name: "iperf3 3.12 TCP defaults",
			json: `{"tcp":true,"omit":0,"time":10,"num":0,"blockcount":0,"parallel":1,"len":131072,"pacing_timer":1000,"client_version":"3.12"}`,
			want: params{duration: 10, parallel: 1, blockSize: 128 << 10, pacingUs: 1000, clientVersion: "3.12"},
		},
		{
			name: "UDP reverse, 64-bit counters, rate",
			json: `{"udp":true,"omit":2,"time":5,"parallel":4,"reverse":true,"len":1448,"bandwidth":50000000,"pacing_timer":1000,"udp_counters_64bit":1,"repeating_payload":1,"get_server_output":1,"TOS":16}`,
			want: params{udp: true, omit: 2, duration: 5, parallel: 4, reverse: true, blockSize: 1448, rate: 50_000_000,
				pacingUs: 1000, counters64: true, repeating: true, serverOutput: true, tos: 16},
		},
		{
			name: "bidir, window, nodelay, congestion, skip copy",
			json: `{"tcp":true,"time":1,"parallel":2,"bidirectional":true,"window":2097152,"nodelay":true,"congestion":"reno","skip_rx_copy":1}`,
			want: params{duration: 1, parallel: 2, bidir: true, window: 2 << 20, blockSize: 128 << 10, pacingUs: 1000,
				noDelay: true, congestion: "reno", skipRxCopy: true},
		},
		{
			name: "defaults: parallel 1, UDP block 1460, pacing clamped",
			json: `{"udp":true,"pacing_timer":1}`,
			want: params{udp: true, parallel: 1, blockSize: 1460, pacingUs: pacingMin},
		},
		{name: "sctp", json: `{"sctp":true}`, ie: ieProtocol},
		{name: "mptcp", json: `{"tcp":true,"mptcp":true}`, ie: ieProtocol},
		{name: "too many streams", json: `{"tcp":true,"parallel":129}`, ie: ieNumStreams},
		{name: "fractional streams", json: `{"tcp":true,"parallel":1.5}`, ie: ieNumStreams},
		{name: "negative time", json: `{"tcp":true,"time":-1}`, ie: ieDuration},
		{name: "time too long", json: `{"tcp":true,"time":86401}`, ie: ieDuration},
		{name: "omit too long", json: `{"tcp":true,"omit":601}`, ie: ieOmit},
		{name: "TCP block too large", json: `{"tcp":true,"len":1048577}`, ie: ieBlockSize},
		{name: "UDP block too large", json: `{"udp":true,"len":65508}`, ie: ieUDPBlockSize},
		{name: "UDP block shorter than the header", json: `{"udp":true,"len":11}`, ie: ieUDPBlockSize},
		{name: "UDP 64-bit block shorter than the header", json: `{"udp":true,"len":15,"udp_counters_64bit":1}`, ie: ieUDPBlockSize},
		{name: "reverse and bidir", json: `{"tcp":true,"reverse":true,"bidirectional":true}`, ie: ieReverseBidir},
		{name: "not JSON", json: `{"tcp":`, ie: ieRecvParams},
		{name: "number as string", json: `{"tcp":true,"time":"10"}`, ie: ieRecvParams},
		{name: "negative bandwidth", json: `{"udp":true,"bandwidth":-1}`, ie: ieRecvParams},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseParams([]byte(tc.json))
			if tc.ie != 0 {
				var pe *paramError
				if !errors.As(err, &pe) || pe.ie != tc.ie {
					t.Fatalf("parseParams(%s) = %+v, %v; want iperf3 error %d", tc.json, got, err, tc.ie)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseParams(%s): %v", tc.json, err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(params{})); diff != "" {
				t.Errorf("parseParams(%s) (-want +got):\n%s", tc.json, diff)
			}
		})
	}
}

func TestStreamLayout(t *testing.T) {
	// iperf3 numbers streams 1, 3, 4, … and the client opens its sending
	// streams first.
	for i, want := range []int{1, 3, 4, 5, 6} {
		if got := streamID(i); got != want {
			t.Errorf("streamID(%d) = %d, want %d", i, got, want)
		}
	}
	for _, tc := range []struct {
		name string
		p    params
		want []bool
	}{
		{"forward", params{parallel: 2}, []bool{false, false}},
		{"reverse", params{parallel: 2, reverse: true}, []bool{true, true}},
		{"bidir", params{parallel: 2, bidir: true}, []bool{false, false, true, true}},
	} {
		var got []bool
		for i := range tc.p.streams() {
			got = append(got, tc.p.serverSends(i))
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s: server sends (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestUDPReply(t *testing.T) {
	le := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	be := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	for _, tc := range []struct {
		name  string
		hello []byte
		want  []byte
	}{
		{"iperf3 ≥ 3.11", []byte("9876"), []byte("6789")},
		{"legacy, little-endian client", le(123456789), le(987654321)},
		{"legacy, big-endian client", be(123456789), be(987654321)},
		{"anything else", []byte{1, 2, 3}, []byte("6789")},
	} {
		if got := udpReply(tc.hello); !bytes.Equal(got[:], tc.want) {
			t.Errorf("%s: udpReply(% x) = % x, want % x", tc.name, tc.hello, got, tc.want)
		}
	}
}

func TestUDPHeader(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    udpHeader
		c64  bool
		wire []byte
	}{
		{"32-bit", udpHeader{sec: 0x01020304, usec: 999999, seq: 0x0a0b0c0d}, false,
			[]byte{1, 2, 3, 4, 0, 0x0f, 0x42, 0x3f, 0x0a, 0x0b, 0x0c, 0x0d}},
		{"64-bit", udpHeader{sec: 1, usec: 2, seq: 0x0102030405060708}, true,
			[]byte{0, 0, 0, 1, 0, 0, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := make([]byte, len(tc.wire)+3) // a datagram carries payload after it
			putUDPHeader(b, tc.h, tc.c64)
			if !bytes.Equal(b[:len(tc.wire)], tc.wire) {
				t.Errorf("putUDPHeader: % x, want % x", b[:len(tc.wire)], tc.wire)
			}
			got, ok := parseUDPHeader(b, tc.c64)
			if !ok || got != tc.h {
				t.Errorf("parseUDPHeader = %+v, %v; want %+v", got, ok, tc.h)
			}
			if _, ok := parseUDPHeader(tc.wire[:len(tc.wire)-1], tc.c64); ok {
				t.Error("parseUDPHeader accepted a short datagram")
			}
		})
	}
}

func TestUDPRecvStats(t *testing.T) {
	for _, tc := range []struct {
		name       string
		seqs       []uint64
		transits   []float64 // nil: all equal
		highest    uint64
		lost       int64
		outOfOrder uint64
		jitter     float64
	}{
		{name: "in order", seqs: []uint64{1, 2, 3, 4}, highest: 4},
		{name: "first datagrams lost", seqs: []uint64{3, 4}, highest: 4, lost: 2},
		{name: "gap", seqs: []uint64{1, 2, 5, 6}, highest: 6, lost: 2},
		{name: "reordered", seqs: []uint64{1, 3, 2, 4}, highest: 4, lost: 0, outOfOrder: 1},
		{name: "duplicate", seqs: []uint64{1, 2, 2, 3}, highest: 3, outOfOrder: 1},
		{name: "late after gap", seqs: []uint64{1, 5, 2}, highest: 5, lost: 2, outOfOrder: 1},
		{
			name: "jitter", seqs: []uint64{1, 2, 3},
			// transit changes by 16 ms, then 0: J = 16/16 = 1 ms, then
			// 1 - 1/16 ms.
			transits: []float64{0.100, 0.116, 0.116},
			highest:  3, jitter: 0.001 * 15 / 16,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var u udpRecvStats
			for i, s := range tc.seqs {
				tr := 0.05
				if tc.transits != nil {
					tr = tc.transits[i]
				}
				u.add(s, tr)
			}
			if u.highest != tc.highest || u.lost != tc.lost || u.outOfOrder != tc.outOfOrder || math.Abs(u.jitter-tc.jitter) > 1e-12 {
				t.Errorf("got highest %d lost %d out of order %d jitter %g; want %d %d %d %g",
					u.highest, u.lost, u.outOfOrder, u.jitter, tc.highest, tc.lost, tc.outOfOrder, tc.jitter)
			}
		})
	}
}

// TestHotPathsDoNotAllocate: what runs per datagram or per block.
func TestHotPathsDoNotAllocate(t *testing.T) {
	b := make([]byte, 1460)
	var u udpRecvStats
	var seq uint64
	p := newPacer(0, 0, time.Time{})
	if n := testing.AllocsPerRun(1000, func() {
		seq++
		putUDPHeader(b, udpHeader{sec: 1, usec: 2, seq: seq}, true)
		h, _ := parseUDPHeader(b, true)
		u.add(h.seq, 0.001)
		p.wait(uint64(seq), nil)
	}); n != 0 {
		t.Errorf("%v allocations per datagram, want 0", n)
	}
}

func TestJSONFraming(t *testing.T) {
	msg, err := frameJSON(map[string]int{"a": 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := append([]byte{0, 0, 0, 7}, `{"a":1}`...); !bytes.Equal(msg, want) {
		t.Errorf("frameJSON = %q, want %q", msg, want)
	}
	got, err := readJSON(bytes.NewReader(msg))
	if err != nil || string(got) != `{"a":1}` {
		t.Errorf("readJSON = %q, %v", got, err)
	}
	huge := binary.BigEndian.AppendUint32(nil, maxJSON+1)
	if _, err := readJSON(bytes.NewReader(huge)); !errors.Is(err, errTooLong) {
		t.Errorf("readJSON of a %d-byte message: %v, want errTooLong", maxJSON+1, err)
	}
	if _, err := readJSON(bytes.NewReader(msg[:6])); err == nil {
		t.Error("readJSON of a truncated message succeeded")
	}
}

// TestResultsJSON: the keys iperf3's get_results requires, with the types
// it requires (numbers; cJSON reads them as such).
func TestResultsJSON(t *testing.T) {
	msg, err := frameJSON(&results{
		SenderHasRetransmits: -1,
		Streams:              []streamResult{{ID: 1, Bytes: 1 << 40, Retransmits: -1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(msg[4:], &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"cpu_util_total", "cpu_util_user", "cpu_util_system", "sender_has_retransmits"} {
		if _, ok := got[k].(float64); !ok {
			t.Errorf("results: %q is %v, want a number", k, got[k])
		}
	}
	streams, _ := got["streams"].([]any)
	if len(streams) != 1 {
		t.Fatalf("results: streams is %v, want one stream", got["streams"])
	}
	st := streams[0].(map[string]any)
	for _, k := range []string{"id", "bytes", "retransmits", "jitter", "errors", "packets", "start_time", "end_time", "omitted_errors", "omitted_packets"} {
		if _, ok := st[k].(float64); !ok {
			t.Errorf("results stream: %q is %v, want a number", k, st[k])
		}
	}
	// Byte counts beyond 2^32 are written as integers, not 1.0995e+12.
	if !strings.Contains(string(msg), `"bytes":1099511627776`) {
		t.Errorf("bytes not written as an integer: %s", msg[4:])
	}
}

// FuzzParseParams: no input panics, and what is accepted is within the
// limits the server relies on.
func FuzzParseParams(f *testing.F) {
	f.Add([]byte(`{"tcp":true,"omit":0,"time":10,"parallel":1,"len":131072,"pacing_timer":1000}`))
	f.Add([]byte(`{"udp":true,"time":2,"parallel":4,"reverse":true,"len":1448,"bandwidth":1e6,"udp_counters_64bit":1}`))
	f.Add([]byte(`{"tcp":true,"bidirectional":true,"window":1e300,"bandwidth":1e300}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseParams(b)
		if err != nil {
			var pe *paramError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *paramError", err)
			}
			return
		}
		switch {
		case p.parallel < 1 || p.parallel > maxStreams:
			t.Fatalf("parallel %d accepted", p.parallel)
		case p.udp && (p.blockSize < udpHeader32 || p.blockSize > maxUDPBlock):
			t.Fatalf("UDP len %d accepted", p.blockSize)
		case !p.udp && (p.blockSize < 1 || p.blockSize > maxTCPBlock):
			t.Fatalf("TCP len %d accepted", p.blockSize)
		case p.pacingUs < pacingMin || p.pacingUs > pacingMax:
			t.Fatalf("pacing %d µs accepted", p.pacingUs)
		case p.reverse && p.bidir:
			t.Fatal("reverse and bidir accepted")
		}
	})
}
