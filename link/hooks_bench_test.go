package link_test

import (
	"fmt"
	"testing"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/tapstack/tapstack/link"
	"github.com/tapstack/tapstack/link/memory"
)

// nopDispatcher stands in for the stack above a link.
type nopDispatcher struct{}

func (nopDispatcher) DeliverNetworkPacket(tcpip.NetworkProtocolNumber, *gstack.PacketBuffer) {}
func (nopDispatcher) DeliverLinkPacket(tcpip.NetworkProtocolNumber, *gstack.PacketBuffer)    {}

// hookPath is a link whose hooks are driven directly: inbound packets are
// handed to the hook endpoint as the device would, outbound ones written
// to it as the stack would. The device's carrier is down, so the write
// path below the hooks only counts a drop and costs no allocation.
type hookPath struct {
	l       *link.Link
	deliver gstack.NetworkDispatcher // the hook endpoint, as the device sees it
	in      *gstack.PacketBuffer     // an inbound frame, link header consumed
	out     gstack.PacketBufferList  // one outbound frame, link header pushed
}

func newHookPath(tb testing.TB) *hookPath {
	tb.Helper()
	l, peer := memory.NewPair("a0", "b0", 1500, nil, nil)
	tb.Cleanup(func() { l.Close(); peer.Close() })
	l.Device().(*memory.Device).SetCarrier(false)
	ep := l.Endpoint()
	ep.Attach(nopDispatcher{})
	tb.Cleanup(func() { ep.Attach(nil) })

	payload := make([]byte, 1000) // an IPv4 packet, as far as the hooks care
	frame := append(make([]byte, header.EthernetMinimumSize), payload...)
	header.Ethernet(frame).Encode(&header.EthernetFields{Type: header.IPv4ProtocolNumber, DstAddr: "\xff\xff\xff\xff\xff\xff"})
	in := gstack.NewPacketBuffer(gstack.PacketBufferOptions{Payload: buffer.MakeWithData(frame)})
	in.LinkHeader().Consume(header.EthernetMinimumSize)
	out := gstack.NewPacketBuffer(gstack.PacketBufferOptions{
		ReserveHeaderBytes: header.EthernetMinimumSize,
		Payload:            buffer.MakeWithData(payload),
	})
	copy(out.LinkHeader().Push(header.EthernetMinimumSize), frame)
	out.NetworkProtocolNumber = header.IPv4ProtocolNumber
	h := &hookPath{l: l, deliver: ep.(gstack.NetworkDispatcher), in: in}
	h.out.PushBack(out)
	tb.Cleanup(func() { in.DecRef(); out.DecRef() })
	return h
}

func (h *hookPath) inbound()  { h.deliver.DeliverNetworkPacket(header.IPv4ProtocolNumber, h.in) }
func (h *hookPath) outbound() { h.l.Endpoint().WritePackets(h.out) }

// TestHooksCostNothingWhenOff: with no tap and no diverter the hooks
// allocate nothing per packet, either way. A tap does (its copy), which
// shows the measurement sees the hooks at all.
func TestHooksCostNothingWhenOff(t *testing.T) {
	h := newHookPath(t)
	for _, tc := range []struct {
		name string
		f    func()
	}{{"inbound", h.inbound}, {"outbound", h.outbound}} {
		if n := testing.AllocsPerRun(100, tc.f); n != 0 {
			t.Errorf("%s with no tap: %v allocations per packet, want 0", tc.name, n)
		}
		remove := h.l.AddTap(func(link.Direction, []byte) {})
		if n := testing.AllocsPerRun(100, tc.f); n == 0 {
			t.Errorf("%s with a tap: no allocations; is the tap running?", tc.name)
		}
		remove()
		if n := testing.AllocsPerRun(100, tc.f); n != 0 {
			t.Errorf("%s after removing the tap: %v allocations per packet, want 0", tc.name, n)
		}
	}
}

// BenchmarkHooks measures one 1014-byte frame through the hook endpoint,
// each way, against calling the layer below (inbound: the dispatcher;
// outbound: the device) directly, with no tap and with one (a snoop's).
func BenchmarkHooks(b *testing.B) {
	h := newHookPath(b)
	below := h.l.Device().Endpoint()
	for _, dir := range []struct {
		name   string
		direct func()
		hooked func()
	}{
		{"inbound", func() { nopDispatcher{}.DeliverNetworkPacket(header.IPv4ProtocolNumber, h.in) }, h.inbound},
		{"outbound", func() { below.WritePackets(h.out) }, h.outbound},
	} {
		for _, mode := range []string{"direct", "no-tap", "tap"} {
			b.Run(fmt.Sprintf("%s/%s", dir.name, mode), func(b *testing.B) {
				f := dir.hooked
				switch mode {
				case "direct":
					f = dir.direct
				case "tap":
					defer h.l.AddTap(func(link.Direction, []byte) {})()
				}
				b.ReportAllocs()
				n := 0
				for b.Loop() {
					f()
					n++
				}
				b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "pkts/s")
			})
		}
	}
}
