//go:build linux && !race

// Allocation counts need a build without -race: under the race detector
// sync.Pool drops items at random. `make test` runs them in a second,
// non-race pass (go test -run Allocs ./link/...).

package tap

// Allocation budgets and copy counts of the data path, over socket pairs.

import (
	"testing"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/tapstack/tapstack/link/vnet"
)

var tso4 = stack.GSO{Type: stack.GSOTCPv4, NeedsCsum: true, CsumOffset: 16, MSS: 1448, L3HdrLen: 20, MaxSize: vnet.GSOMaxSize}

// txCases are the packets the transmit tests and benchmarks write.
var txCases = []struct {
	name string
	p    packet
}{
	{"udp-1472", packet{proto: header.UDPProtocolNumber, payload: 1472}},
	{"tcp-ack", packet{proto: header.TCPProtocolNumber}},
	{"tso-65000", packet{proto: header.TCPProtocolNumber, payload: 65000, gso: tso4}},
}

// rxCases are the frames the receive tests and benchmarks read.
var rxCases = []struct {
	name string
	f    vnet.Fields
	// frame builds the frame.
	frame func() []byte
}{
	{"udp-1472-unflagged", vnet.Fields{}, func() []byte { return frameOf(false, header.UDPProtocolNumber, 1472, ourMAC) }},
	{"tcp-1448-partial", vnet.Fields{Flags: vnet.FlagNeedsCsum, CsumStart: 34, CsumOffset: 16}, func() []byte {
		b := frameOf(false, header.TCPProtocolNumber, 1448, ourMAC)
		partial(b, false, 16)
		return b
	}},
	{"tso-65000", vnet.Fields{Flags: vnet.FlagNeedsCsum, GSOType: vnet.GSOTCPv4, GSOSize: 1448, CsumStart: 34, CsumOffset: 16, HdrLen: 54}, func() []byte {
		b := frameOf(false, header.TCPProtocolNumber, 65000, ourMAC)
		partial(b, false, 16)
		return b
	}},
	{"uso-8x1000", vnet.Fields{Flags: vnet.FlagNeedsCsum, GSOType: vnet.GSOUDPL4, GSOSize: 1000, CsumStart: 34, CsumOffset: 6, HdrLen: 42}, func() []byte {
		b := frameOf(false, header.UDPProtocolNumber, 8000, ourMAC)
		partial(b, false, 6)
		return b
	}},
}

// message is a virtio-net header and frame as one write.
func message(f vnet.Fields, frame []byte) []byte {
	m := make([]byte, vnet.Size+len(frame))
	vnet.Header(m).Encode(&f)
	copy(m[vnet.Size:], frame)
	return m
}

// TestTransmitAllocs: writing a packet allocates nothing.
func TestTransmitAllocs(t *testing.T) {
	for _, tc := range txCases {
		t.Run(tc.name, func(t *testing.T) {
			e, peers := testEndpoint(t, 1, allOffloads)
			pkt := buildPacket(e, tc.p)
			defer pkt.DecRef()
			var pkts stack.PacketBufferList
			pkts.PushBack(pkt)
			buf := make([]byte, 1<<17)
			allocs := testing.AllocsPerRun(200, func() {
				if _, err := e.WritePackets(pkts); err != nil {
					t.Fatal(err)
				}
				if _, err := unix.Read(peers[0], buf); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("%v allocations per packet, want 0", allocs)
			}
		})
	}
}

// TestReceiveAllocs: reading and delivering a frame allocates nothing
// once the pools are warm.
func TestReceiveAllocs(t *testing.T) {
	for _, tc := range rxCases {
		t.Run(tc.name, func(t *testing.T) {
			e, peers := testEndpoint(t, 1, allOffloads)
			m := message(tc.f, tc.frame())
			s := &sink{}
			allocs := testing.AllocsPerRun(200, func() {
				if _, err := unix.Write(peers[0], m); err != nil {
					t.Fatal(err)
				}
				e.rings[0].receiveInto(s)
			})
			if allocs != 0 {
				t.Errorf("%v allocations per frame, want 0", allocs)
			}
			if st := e.stats(); st.RXDropped != 0 || s.n.Load() == 0 {
				t.Errorf("delivered %d, stats %+v", s.n.Load(), st)
			}
		})
	}
}

// BenchmarkTransmit writes packets through the endpoint into a socket
// pair (reading each back) and reports the userspace payload copies per
// packet, which must be 0.
func BenchmarkTransmit(b *testing.B) {
	for _, tc := range txCases {
		b.Run(tc.name, func(b *testing.B) {
			e, peers := testEndpoint(b, 1, allOffloads)
			pkt := buildPacket(e, tc.p)
			defer pkt.DecRef()
			var pkts stack.PacketBufferList
			pkts.PushBack(pkt)
			buf := make([]byte, 1<<17)
			b.SetBytes(int64(pkt.Size()))
			b.ReportAllocs()
			for b.Loop() {
				e.WritePackets(pkts)
				unix.Read(peers[0], buf)
			}
			b.ReportMetric(float64(e.stats().Copies)/float64(b.N), "copies/op")
		})
	}
}

// BenchmarkReceive writes frames into a socket pair and has the endpoint
// read and deliver each, reporting payload copies per frame (0) and
// header copies (one per USO segment).
func BenchmarkReceive(b *testing.B) {
	for _, tc := range rxCases {
		b.Run(tc.name, func(b *testing.B) {
			e, peers := testEndpoint(b, 1, allOffloads)
			m := message(tc.f, tc.frame())
			s := &sink{}
			b.SetBytes(int64(len(m) - vnet.Size))
			b.ReportAllocs()
			for b.Loop() {
				unix.Write(peers[0], m)
				e.rings[0].receiveInto(s)
			}
			st := e.stats()
			b.ReportMetric(float64(st.Copies)/float64(b.N), "copies/op")
			b.ReportMetric(float64(st.HeaderCopies)/float64(b.N), "hdrcopies/op")
			b.ReportMetric(float64(s.n.Load())/float64(b.N), "pkts/op")
		})
	}
}

// TestPolledReceiveAllocs: a polled reader's path (the poller's callback,
// drain, through to delivery) allocates nothing per frame either.
func TestPolledReceiveAllocs(t *testing.T) {
	testReaders = ReadersPolled
	defer func() { testReaders = ReadersPinned }()
	for _, tc := range rxCases {
		t.Run(tc.name, func(t *testing.T) {
			e, peers := testEndpoint(t, 1, allOffloads)
			m := message(tc.f, tc.frame())
			s := &sink{}
			r := e.rings[0]
			e.disp.Store(&dispatcherBox{s}) // delivering without starting the reader
			allocs := testing.AllocsPerRun(200, func() {
				if _, err := unix.Write(peers[0], m); err != nil {
					t.Fatal(err)
				}
				// drain reads the frame, finds the queue empty and parks;
				// stop it there so that Wait returns.
				r.stop.Store(false)
				go r.waiter.Stop()
				if err := r.waiter.Wait(r.drainFn); err == nil {
					t.Fatal("Wait returned without a stop")
				}
				r.waiter.Rearm()
			})
			if allocs > 1 { // the goroutine that stops the wait
				t.Errorf("%v allocations per frame, want at most 1 (the test's goroutine)", allocs)
			}
			if st := e.stats(); st.RXDropped != 0 || s.n.Load() == 0 {
				t.Errorf("delivered %d, stats %+v", s.n.Load(), st)
			}
		})
	}
}
