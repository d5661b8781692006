package ifmgr

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/tapstack/tapstack/arp"
	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/link"
	"github.com/tapstack/tapstack/link/memory"
	"github.com/tapstack/tapstack/stack"
)

var (
	tapMAC   = net.HardwareAddr{2, 0, 0, 0, 0, 1}
	otherMAC = net.HardwareAddr{2, 0, 0, 0, 0, 0x42}
	bcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
)

// The fast-probe defaults (spec §6.2): every tapstack link reports its
// state.
const (
	probeDelay    = 100 * time.Millisecond
	probeInterval = 150 * time.Millisecond
	probeCount    = 3
	dadTime       = probeDelay + probeCount*probeInterval
)

// dadFixture is a fixture with DAD on, a manual clock, the ARP frames
// tap0 sends (seen at its peer), the events, and the log.
type dadFixture struct {
	*fixture
	clock  *arp.ManualClock
	wire   *arpWire
	events chan Event
	logBuf *syncBuffer
}

func newDADFixture(t *testing.T) *dadFixture {
	t.Helper()
	st := stack.New()
	reg := &link.Registry{}
	a, b := memory.NewPair("tap0", "tap0-peer", 1500, tapMAC, otherMAC)
	if err := reg.Add(a); err != nil {
		t.Fatal(err)
	}
	w := &arpWire{t: t, peer: b, arrived: make(chan struct{}, 4096)}
	b.Endpoint().Attach(w)
	clk := arp.NewManualClock()
	logBuf := &syncBuffer{}
	m, err := New(Config{Stack: st, Links: reg, DAD: true, Clock: clk, Log: slog.New(slog.NewTextHandler(logBuf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	f := &dadFixture{
		fixture: &fixture{t: t, m: m, st: st, links: reg, peers: map[string]*link.Link{"tap0": b}},
		clock:   clk, wire: w, events: make(chan Event, 1024), logBuf: logBuf,
	}
	cancel := m.Subscribe(func(e Event) {
		// Subscribers must not block (they run inside every request); a
		// test that generates more events than it reads loses the rest.
		select {
		case f.events <- e:
		default:
		}
	})
	t.Cleanup(func() {
		cancel()
		reg.CloseAll()
		b.Close()
		st.Close()
	})
	f.plumb("tap0")
	return f
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// arpWire is the peer's end: it records the ARP packets tap0 sends and
// injects packets as another host.
type arpWire struct {
	t       *testing.T
	peer    *link.Link
	mu      sync.Mutex
	frames  []arp.Packet
	arrived chan struct{}
}

func (w *arpWire) DeliverNetworkPacket(proto tcpip.NetworkProtocolNumber, pkt *gstack.PacketBuffer) {
	if proto != header.ARPProtocolNumber {
		return
	}
	if p, ok := arp.Parse(pkt.Data().AsRange().ToSlice()); ok {
		w.mu.Lock()
		w.frames = append(w.frames, p)
		w.mu.Unlock()
		w.arrived <- struct{}{}
	}
}

func (w *arpWire) DeliverLinkPacket(tcpip.NetworkProtocolNumber, *gstack.PacketBuffer) {}

// waitFrames returns once tap0 has sent n ARP packets matching keep.
func (w *arpWire) waitFrames(n int, keep func(arp.Packet) bool) []arp.Packet {
	w.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		var got []arp.Packet
		w.mu.Lock()
		for _, p := range w.frames {
			if keep(p) {
				got = append(got, p)
			}
		}
		w.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-w.arrived:
		case <-deadline:
			w.t.Fatalf("tap0 sent %d matching ARP packets, want %d", len(got), n)
		}
	}
}

// send injects p as the other host would send it, broadcast.
func (w *arpWire) send(p arp.Packet) {
	w.t.Helper()
	eth := make([]byte, header.EthernetMinimumSize)
	header.Ethernet(eth).Encode(&header.EthernetFields{
		SrcAddr: tcpip.LinkAddress(p.SenderHW), DstAddr: tcpip.LinkAddress(bcastMAC), Type: header.ARPProtocolNumber,
	})
	pkt := gstack.NewPacketBuffer(gstack.PacketBufferOptions{Payload: buffer.MakeWithData(append(eth, p.Marshal()...))})
	defer pkt.DecRef()
	var l gstack.PacketBufferList
	l.PushBack(pkt)
	if _, err := w.peer.Endpoint().WritePackets(l); err != nil {
		w.t.Fatalf("inject: %s", err)
	}
}

func isProbeFor(a netip.Addr) func(arp.Packet) bool {
	return func(p arp.Packet) bool { return p.IsProbe() && p.TargetAddr == a && bytes.Equal(p.SenderHW, tapMAC) }
}

func isAnnouncementOf(a netip.Addr) func(arp.Packet) bool {
	return func(p arp.Packet) bool {
		return p.Op == arp.OpRequest && p.SenderAddr == a && p.TargetAddr == a && bytes.Equal(p.SenderHW, tapMAC)
	}
}

// claim is a packet by which the other host says it has a.
func claim(a netip.Addr) arp.Packet {
	return arp.Packet{Op: arp.OpRequest, SenderHW: otherMAC, SenderAddr: a, TargetAddr: a}
}

// drain returns the events delivered so far.
func (f *dadFixture) drain() []Event {
	var out []Event
	for {
		select {
		case e := <-f.events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// waitEvent waits for an event of kind k (events are delivered when the
// goroutine that caused them releases the manager's lock).
func (f *dadFixture) waitEvent(k EventKind) Event {
	f.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e := <-f.events:
			if e.Kind == k {
				return e
			}
		case <-deadline:
			f.t.Fatalf("no %s event", k)
		}
	}
}

// eventsUntil returns the events delivered up to and including the first
// of kind k, waiting for it: a waiter released by DAD's end may run before
// the goroutine that ended it has delivered the events.
func (f *dadFixture) eventsUntil(k EventKind) []Event {
	f.t.Helper()
	deadline := time.After(10 * time.Second)
	var out []Event
	for {
		select {
		case e := <-f.events:
			out = append(out, e)
			if e.Kind == k {
				return out
			}
		case <-deadline:
			f.t.Fatalf("no %s event; got %v", k, kinds(out))
		}
	}
}

func kinds(evs []Event) []EventKind {
	var out []EventKind
	for _, e := range evs {
		out = append(out, e.Kind)
	}
	return out
}

func (f *dadFixture) dadState(name string) int {
	f.t.Helper()
	return f.must("SIOCGLIFDADSTATE", ctl.AF_INET, ctl.Lifreq{Name: name}).DADState
}

// stackHas reports whether gVisor has address a on NIC tap0.
func (f *dadFixture) stackHas(a netip.Addr) bool {
	id, _ := f.st.NICID("tap0")
	for _, pa := range f.st.GVisor().NICInfo()[id].ProtocolAddresses {
		if pa.AddressWithPrefix.Address == tcpip.AddrFromSlice(a.AsSlice()) {
			return true
		}
	}
	return false
}

func (f *dadFixture) setProp(name, val string) {
	f.t.Helper()
	if err := f.m.Do(root, "SIOCSETPROP", ctl.AF_INET, &ctl.Prop{Proto: "ip", Name: name, Flags: ctl.MOD_PROP_ACTIVE, Val: val}); err != nil {
		f.t.Fatal(err)
	}
}

// Appendix C20: up → UP at once but tentative (DAD_IN_PROGRESS, no stack
// address, no RTM_ADD); probes at the tunables' times; then DAD_DONE,
// the address in the stack, RTM_IFINFO and RTM_ADD, and announcements.
func TestDADBringUp(t *testing.T) {
	f := newDADFixture(t)
	a := addr("10.1.0.1")
	f.drain()
	f.configure("tap0", a.String(), 24)
	if f.flags("tap0", ctl.AF_INET)&ctl.IFF_UP == 0 {
		t.Fatal("unit is not UP while DAD runs")
	}
	if got := f.dadState("tap0"); got != 1 {
		t.Fatalf("SIOCGLIFDADSTATE = %d during DAD, want 1 (DAD_IN_PROGRESS)", got)
	}
	if f.stackHas(a) {
		t.Fatal("the stack has the address before DAD ended")
	}
	for _, e := range f.drain() {
		if e.Kind == RTM_ADD {
			t.Fatal("RTM_ADD before DAD ended")
		}
	}
	f.clock.Advance(dadTime - time.Millisecond)
	if got := f.dadState("tap0"); got != 1 {
		t.Fatalf("DAD over %v early", time.Millisecond)
	}
	f.wire.waitFrames(probeCount, isProbeFor(a))
	f.clock.Advance(time.Millisecond)
	if got := f.dadState("tap0"); got != 2 || !f.stackHas(a) {
		t.Fatalf("after DAD: state %d, stack has address %v; want 2 and true", got, f.stackHas(a))
	}
	if got := kinds(f.drain()); len(got) != 2 || got[0] != RTM_IFINFO || got[1] != RTM_ADD {
		t.Errorf("events when DAD ended: %v, want [RTM_IFINFO RTM_ADD]", got)
	}
	// _arp_publish_count (5) announcements, _arp_publish_interval (2 s) apart.
	f.clock.Advance(4 * 2 * time.Second)
	f.wire.waitFrames(5, isAnnouncementOf(a))
	if n := len(f.wire.waitFrames(0, isProbeFor(a))); n != probeCount {
		t.Errorf("%d probes sent, want %d", n, probeCount)
	}
}

// The slow tunables apply when changed; count and spacing follow them.
func TestDADFollowsTunables(t *testing.T) {
	f := newDADFixture(t)
	f.setProp("_arp_fastprobe_delay", "500")
	f.setProp("_arp_fastprobe_interval", "1000")
	f.setProp("_arp_fastprobe_count", "5")
	f.configure("tap0", "10.1.0.1", 24)
	f.clock.Advance(500*time.Millisecond + 5*time.Second - time.Millisecond)
	if f.dadState("tap0") != 1 {
		t.Fatal("DAD ended before 5 probes and 5 intervals")
	}
	f.clock.Advance(time.Millisecond)
	if f.dadState("tap0") != 2 {
		t.Fatal("DAD not over after 5 probes and 5 intervals")
	}
	f.wire.waitFrames(5, isProbeFor(addr("10.1.0.1")))

	// Count 0: no probing, ready at once.
	f.setProp("_arp_fastprobe_count", "0")
	f.must("SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0"})
	f.configure("tap0:1", "10.1.0.2", 24)
	if f.dadState("tap0:1") != 2 || !f.stackHas(addr("10.1.0.2")) {
		t.Error("probe count 0 still left the address tentative")
	}
}

// [CHECK-24] A conflicting reply during probing: DUPLICATE, not UP, an
// event and a log line naming the holder; after _dup_recovery, with the
// conflict gone, UP again and RTM_ADD.
func TestDADConflictAndRecovery(t *testing.T) {
	f := newDADFixture(t)
	a := addr("10.1.0.1")
	f.setProp("_dup_recovery", "10000")
	f.configure("tap0", a.String(), 24)
	f.clock.Advance(probeDelay)
	f.wire.waitFrames(1, isProbeFor(a))
	f.wire.send(arp.Packet{Op: arp.OpReply, SenderHW: otherMAC, SenderAddr: a, TargetHW: tapMAC, TargetAddr: netip.IPv4Unspecified()})
	ev := f.waitEvent(DAD_DUPLICATE)
	if ev.HWAddr != "2:0:0:0:0:42" || ev.Name != "tap0" || ev.Addr != a {
		t.Errorf("DAD_DUPLICATE event %+v, want tap0 %s held by 2:0:0:0:0:42", ev, a)
	}
	fl := f.flags("tap0", ctl.AF_INET)
	if fl&ctl.IFF_DUPLICATE == 0 || fl&ctl.IFF_UP != 0 {
		t.Fatalf("flags %s, want DUPLICATE and not UP", fl)
	}
	if f.stackHas(a) {
		t.Error("the stack has a duplicate address")
	}
	if log := f.logBuf.String(); !strings.Contains(log, "tap0 has duplicate address 10.1.0.1 (in use by 2:0:0:0:0:42); disabled") {
		t.Errorf("log lacks the duplicate line:\n%s", log)
	}
	f.drain()

	f.clock.Advance(10*time.Second - time.Millisecond)
	if f.flags("tap0", ctl.AF_INET)&ctl.IFF_UP != 0 {
		t.Fatal("recovered before _dup_recovery")
	}
	f.clock.Advance(time.Millisecond) // recovery: re-probe
	fl = f.flags("tap0", ctl.AF_INET)
	if fl&ctl.IFF_UP == 0 || fl&ctl.IFF_DUPLICATE != 0 || f.dadState("tap0") != 1 {
		t.Fatalf("at recovery: flags %s, DAD state %d; want UP, probing", fl, f.dadState("tap0"))
	}
	f.clock.Advance(dadTime)
	if !f.stackHas(a) || f.dadState("tap0") != 2 {
		t.Fatal("not recovered after a clean re-probe")
	}
	if got := kinds(f.drain()); len(got) < 2 || got[len(got)-1] != RTM_ADD {
		t.Errorf("events at recovery %v, want RTM_ADD last", got)
	}
}

// A duplicate with recovery off stays down until the administrator
// brings it up again (what ipadm refresh-addr does): re-probed, then up.
func TestDADRefreshAfterDuplicate(t *testing.T) {
	f := newDADFixture(t)
	a := addr("10.1.0.1")
	f.setProp("_dup_recovery", "0")
	f.configure("tap0", a.String(), 24)
	f.clock.Advance(probeDelay)
	f.wire.send(arp.Packet{Op: arp.OpRequest, SenderHW: otherMAC, SenderAddr: netip.IPv4Unspecified(), TargetAddr: a})
	f.waitEvent(DAD_DUPLICATE)
	if f.clock.Pending() != 0 {
		t.Fatalf("%d timers armed with recovery off", f.clock.Pending())
	}
	f.setUp("tap0", ctl.AF_INET, true)
	if fl := f.flags("tap0", ctl.AF_INET); fl&ctl.IFF_DUPLICATE != 0 || f.dadState("tap0") != 1 {
		t.Fatalf("refresh: flags %s, DAD state %d", fl, f.dadState("tap0"))
	}
	f.clock.Advance(dadTime)
	if !f.stackHas(a) {
		t.Error("refreshed address not ready")
	}
}

// Appendix C21: conflicts after DAD are defended _max_defend (3) times
// within _defend_interval; the next one makes the unit DUPLICATE.
func TestDADDefence(t *testing.T) {
	f := newDADFixture(t)
	a := addr("10.1.0.1")
	f.setProp("_arp_publish_count", "1")
	f.setProp("_dad_announce_interval", "0")
	f.configure("tap0", a.String(), 24)
	f.clock.Advance(dadTime)
	f.wire.waitFrames(1, isAnnouncementOf(a))
	for n := 1; n <= 3; n++ {
		f.wire.send(claim(a))
		f.wire.waitFrames(1+n, isAnnouncementOf(a)) // defended
	}
	if fl := f.flags("tap0", ctl.AF_INET); fl&ctl.IFF_DUPLICATE != 0 || !f.stackHas(a) {
		t.Fatalf("lost the address after 3 conflicts: %s", fl)
	}
	f.wire.send(claim(a))
	ev := f.waitEvent(DAD_DUPLICATE)
	if ev.HWAddr != "2:0:0:0:0:42" {
		t.Errorf("holder %q", ev.HWAddr)
	}
	if f.stackHas(a) || f.flags("tap0", ctl.AF_INET)&ctl.IFF_UP != 0 {
		t.Error("duplicate address still up")
	}
}

// Appendix C22: link down makes the address unready; link up re-probes.
func TestDADLinkDownUp(t *testing.T) {
	f := newDADFixture(t)
	a := addr("10.1.0.1")
	f.configure("tap0", a.String(), 24)
	f.clock.Advance(dadTime)
	dev := f.m.links.(*link.Registry)
	l, _ := dev.Get("tap0")
	mem := l.Device().(*memory.Device)
	mem.SetCarrier(false)
	if f.flags("tap0", ctl.AF_INET)&ctl.IFF_RUNNING != 0 || f.dadState("tap0") != 1 || f.stackHas(a) {
		t.Fatalf("link down: flags %s, DAD state %d; want not RUNNING, not ready", f.flags("tap0", ctl.AF_INET), f.dadState("tap0"))
	}
	mem.SetCarrier(true)
	f.clock.Advance(dadTime - time.Millisecond)
	if f.dadState("tap0") != 1 {
		t.Fatal("DAD not re-run at link up")
	}
	f.clock.Advance(time.Millisecond)
	if f.dadState("tap0") != 2 || !f.stackHas(a) {
		t.Fatal("address not ready after the re-probe")
	}
	f.wire.waitFrames(2*probeCount, isProbeFor(a))
}

// WaitDAD returns when DAD ends: nil when the address is ready,
// EADDRINUSE naming the holder for a duplicate.
func TestWaitDAD(t *testing.T) {
	f := newDADFixture(t)
	f.configure("tap0", "10.1.0.1", 24)
	done := make(chan error, 1)
	go func() { done <- f.m.WaitDAD(context.Background(), "tap0", ctl.AF_INET) }()
	select {
	case err := <-done:
		t.Fatalf("WaitDAD returned %v during DAD", err)
	default:
	}
	f.clock.Advance(dadTime)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	f.must("SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0"})
	f.configure("tap0:1", "10.1.0.2", 24)
	go func() { done <- f.m.WaitDAD(context.Background(), "tap0:1", ctl.AF_INET) }()
	f.clock.Advance(probeDelay)
	f.wire.send(claim(addr("10.1.0.2")))
	err := <-done
	if ctl.ErrnoOf(err) != ctl.EADDRINUSE || !strings.Contains(err.Error(), "2:0:0:0:0:42") {
		t.Errorf("WaitDAD on a duplicate: %v, want EADDRINUSE naming 2:0:0:0:0:42", err)
	}
}
