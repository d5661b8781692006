package ifmgr

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"

	"github.com/tapstack/tapstack/arp"
	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/link"
	"github.com/tapstack/tapstack/link/memory"
	"github.com/tapstack/tapstack/ndp"
	"github.com/tapstack/tapstack/stack"
)

var peerMAC = net.HardwareAddr{2, 0, 0, 0, 0x10, 1}

// dad6Interval is the ill retransmit interval the tests set
// (lir_reachretrans): gVisor's DAD runs on real time, so it is short, but
// long enough that DAD is still running when the test looks right after
// bring-up.
const dad6Interval = 200 // ms

// newDAD6Fixture is a manager with DAD on and gVisor's NDP events wired
// (as tapstackd runs), a manual clock for _dup_recovery, events and log;
// tap0 is plumbed for IPv6 (unit 0 down) with a short retransmit
// interval.
func newDAD6Fixture(t *testing.T) *dadFixture {
	t.Helper()
	disp := ndp.NewDispatcher()
	st := stack.NewWithOptions(stack.Options{NDPDispatcher: disp})
	reg := &link.Registry{}
	a, b := memory.NewPair("tap0", "tap0-peer", 1500, tapMAC, peerMAC)
	if err := reg.Add(a); err != nil {
		t.Fatal(err)
	}
	clk := arp.NewManualClock()
	logBuf := &syncBuffer{}
	m, err := New(Config{Stack: st, Links: reg, DAD: true, NDP: disp, Clock: clk, Log: slog.New(slog.NewTextHandler(logBuf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	f := &dadFixture{
		fixture: &fixture{t: t, m: m, st: st, links: reg, peers: map[string]*link.Link{"tap0": b}},
		clock:   clk, events: make(chan Event, 1024), logBuf: logBuf,
	}
	cancel := m.Subscribe(func(e Event) {
		select {
		case f.events <- e:
		default:
		}
	})
	t.Cleanup(func() {
		cancel()
		reg.CloseAll()
		b.Close()
		disp.Close()
		st.Close()
	})
	f.must("SIOCSLIFNAME", ctl.AF_INET6, ctl.Lifreq{Name: "tap0", Flags: ctl.IFF_IPV6})
	f.must("SIOCSLIFLNKINFO", ctl.AF_INET6, ctl.Lifreq{Name: "tap0", Ifinfo: &ctl.Ifinfo{ReachRetrans: dad6Interval}})
	return f
}

func (f *dadFixture) dadState6(name string) int {
	f.t.Helper()
	return f.must("SIOCGLIFDADSTATE", ctl.AF_INET6, ctl.Lifreq{Name: name}).DADState
}

// assigned6 reports whether gVisor holds a on tap0 as a usable (not
// tentative) address.
func (f *dadFixture) assigned6(a netip.Addr) bool {
	return f.st.GVisor().CheckLocalAddress(0, ipv6.ProtocolNumber, tcpip.AddrFromSlice(a.AsSlice())) != 0
}

// up6 adds unit tap0:1 with a/64 and brings it up.
func (f *dadFixture) up6(a netip.Addr) {
	f.t.Helper()
	f.must("SIOCLIFADDIF", ctl.AF_INET6, ctl.Lifreq{Name: "tap0"})
	f.must("SIOCSLIFADDR", ctl.AF_INET6, ctl.Lifreq{Name: "tap0:1", Addr: a, Addrlen: 64})
	if err := f.setUp("tap0:1", ctl.AF_INET6, true); err != nil {
		f.t.Fatal(err)
	}
}

func (f *dadFixture) waitDAD6(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return f.m.WaitDAD(ctx, name, ctl.AF_INET6)
}

// Appendix C20 for IPv6, link-local included: UP at once but tentative
// (DAD in progress, not usable in gVisor, no RTM_ADD); gVisor sends
// _ndp_dad_transmits solicitations from :: to the solicited-node group;
// with no answer the address becomes ready, then RTM_IFINFO and RTM_ADD.
func TestDAD6BringUp(t *testing.T) {
	f := newDAD6Fixture(t)
	w := newWire(t, f.peers["tap0"], peerMAC)
	ll := addr("fe80::ff:fe00:1") // modified EUI-64 of tapMAC
	f.drain()
	if err := f.setUp("tap0", ctl.AF_INET6, true); err != nil {
		t.Fatal(err)
	}
	if fl := f.flags("tap0", ctl.AF_INET6); fl&ctl.IFF_UP == 0 {
		t.Fatalf("flags %s during DAD, want UP", fl)
	}
	if got := f.dadState6("tap0"); got != 1 {
		t.Fatalf("SIOCGLIFDADSTATE = %d right after up, want 1 (DAD_IN_PROGRESS)", got)
	}
	if f.assigned6(ll) {
		t.Fatal("the link-local address is usable before DAD ended")
	}
	for _, e := range f.drain() {
		if e.Kind == RTM_ADD {
			t.Fatal("RTM_ADD before DAD ended")
		}
	}
	if err := f.waitDAD6("tap0"); err != nil {
		t.Fatal(err)
	}
	if got := f.dadState6("tap0"); got != 2 || !f.assigned6(ll) {
		t.Fatalf("after DAD: state %d, usable %v; want 2 and true", got, f.assigned6(ll))
	}
	if got := kinds(f.eventsUntil(RTM_ADD)); len(got) < 2 || got[len(got)-2] != RTM_IFINFO || got[len(got)-1] != RTM_ADD {
		t.Errorf("events when DAD ended: %v, want RTM_IFINFO, RTM_ADD last", got)
	}
	if n := len(dadProbes(t, w, ll)); n != ndMaxUnicastSolicit {
		t.Errorf("%d DAD solicitations for %s, want %d", n, ll, ndMaxUnicastSolicit)
	}
}

// dadProbes returns the DAD solicitations for target seen on the wire so
// far: neighbour solicitations from :: to target's solicited-node group.
func dadProbes(t *testing.T, w *wire, target netip.Addr) []*layers.ICMPv6NeighborSolicitation {
	t.Helper()
	var out []*layers.ICMPv6NeighborSolicitation
	for {
		select {
		case frame := <-w.in:
			p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
			ip, _ := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
			ns, _ := p.Layer(layers.LayerTypeICMPv6NeighborSolicitation).(*layers.ICMPv6NeighborSolicitation)
			if ip == nil || ns == nil || !ip.SrcIP.IsUnspecified() {
				continue
			}
			tgt, _ := netip.AddrFromSlice(ns.TargetAddress)
			b := target.As16()
			snm := net.IP{0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, b[13], b[14], b[15]}
			if tgt == target && ip.DstIP.Equal(snm) {
				out = append(out, ns)
			}
		default:
			return out
		}
	}
}

// CHECK-24 for IPv6: another node (a gVisor stack on the far end) holds
// the address: DUPLICATE and down, a DAD_DUPLICATE event and a log line
// naming its MAC, WaitDAD says EADDRINUSE, gVisor keeps no copy; after
// _dup_recovery, with the other node gone, the unit is re-probed and
// comes up.
func TestDAD6ConflictAndRecovery(t *testing.T) {
	f := newDAD6Fixture(t)
	f.setProp("_dup_recovery", "10000")
	a := addr("2001:db8:6::1")
	peer := stack.New()
	t.Cleanup(peer.Close)
	if err := peer.AddNIC("peer", f.peers["tap0"].Endpoint()); err != nil {
		t.Fatal(err)
	}
	if err := peer.EnableNIC("peer"); err != nil {
		t.Fatal(err)
	}
	if err := peer.AddAddress("peer", netip.PrefixFrom(a, 64)); err != nil {
		t.Fatal(err)
	}

	f.up6(a)
	err := f.waitDAD6("tap0:1")
	if ctl.ErrnoOf(err) != ctl.EADDRINUSE || !strings.Contains(err.Error(), "2:0:0:0:10:1") {
		t.Fatalf("WaitDAD = %v, want EADDRINUSE naming 2:0:0:0:10:1", err)
	}
	ev := f.waitEvent(DAD_DUPLICATE)
	if ev.Name != "tap0:1" || ev.Addr != a || ev.HWAddr != "2:0:0:0:10:1" {
		t.Errorf("DAD_DUPLICATE event %+v, want tap0:1 %s held by 2:0:0:0:10:1", ev, a)
	}
	fl := f.flags("tap0:1", ctl.AF_INET6)
	if fl&ctl.IFF_DUPLICATE == 0 || fl&ctl.IFF_UP != 0 {
		t.Fatalf("flags %s, want DUPLICATE and not UP", fl)
	}
	if f.stackHas(a) {
		t.Error("gVisor still has the duplicate address")
	}
	if log := f.logBuf.String(); !strings.Contains(log, "tap0:1 has duplicate address 2001:db8:6::1 (in use by 2:0:0:0:10:1); disabled") {
		t.Errorf("log lacks the duplicate line:\n%s", log)
	}

	if err := peer.RemoveAddress("peer", a); err != nil {
		t.Fatal(err)
	}
	f.drain()
	f.clock.Advance(10*time.Second - time.Millisecond)
	if f.flags("tap0:1", ctl.AF_INET6)&ctl.IFF_UP != 0 {
		t.Fatal("recovered before _dup_recovery")
	}
	f.clock.Advance(time.Millisecond)
	if fl := f.flags("tap0:1", ctl.AF_INET6); fl&ctl.IFF_UP == 0 || fl&ctl.IFF_DUPLICATE != 0 {
		t.Fatalf("at recovery: flags %s, want UP and not DUPLICATE", fl)
	}
	if err := f.waitDAD6("tap0:1"); err != nil {
		t.Fatalf("re-probe: %v", err)
	}
	if !f.assigned6(a) {
		t.Fatal("recovered address not usable")
	}
	if got := kinds(f.eventsUntil(RTM_ADD)); len(got) == 0 || got[len(got)-1] != RTM_ADD {
		t.Errorf("events at recovery %v, want RTM_ADD last", got)
	}
}

// Another node probing for the same address at the same time (an NS
// from ::) is a conflict too; it names no holder.
func TestDAD6SimultaneousProbe(t *testing.T) {
	f := newDAD6Fixture(t)
	w := newWire(t, f.peers["tap0"], peerMAC)
	a := addr("2001:db8:6::2")
	f.up6(a)
	b := a.As16()
	snm := net.IP{0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, b[13], b[14], b[15]}
	ip := &layers.IPv6{Version: 6, HopLimit: 255, NextHeader: layers.IPProtocolICMPv6, SrcIP: net.IPv6unspecified, DstIP: snm}
	w.send(net.HardwareAddr{0x33, 0x33, 0xff, b[13], b[14], b[15]}, ip,
		&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborSolicitation, 0)},
		&layers.ICMPv6NeighborSolicitation{TargetAddress: net.IP(a.AsSlice())})
	if err := f.waitDAD6("tap0:1"); ctl.ErrnoOf(err) != ctl.EADDRINUSE {
		t.Fatalf("WaitDAD = %v, want EADDRINUSE", err)
	}
	if fl := f.flags("tap0:1", ctl.AF_INET6); fl&ctl.IFF_DUPLICATE == 0 {
		t.Errorf("flags %s, want DUPLICATE", fl)
	}
	if log := f.logBuf.String(); !strings.Contains(log, "in use by a node probing for it") {
		t.Errorf("log lacks the duplicate line:\n%s", log)
	}
}

// _ndp_dad_transmits 0 turns IPv6 DAD off: ready at once, no probe.
func TestDAD6TransmitsZero(t *testing.T) {
	f := newDAD6Fixture(t)
	w := newWire(t, f.peers["tap0"], peerMAC)
	f.setProp("_ndp_dad_transmits", "0")
	a := addr("2001:db8:6::3")
	f.up6(a)
	if got := f.dadState6("tap0:1"); got != 2 || !f.assigned6(a) {
		t.Fatalf("state %d, usable %v; want 2 and true at once", got, f.assigned6(a))
	}
	if n := len(dadProbes(t, w, a)); n != 0 {
		t.Errorf("%d DAD solicitations with DAD off", n)
	}
}

// SLAAC addresses go through gVisor's DAD once: the ADDRCONF unit is up
// but pending until gVisor's verdict, then ready; ifmgr sends no second
// round of solicitations.
func TestDAD6SLAACWaitsForGVisor(t *testing.T) {
	f := newDAD6Fixture(t)
	w := newWire(t, f.peers["tap0"], peerMAC)
	if err := f.setUp("tap0", ctl.AF_INET6, true); err != nil {
		t.Fatal(err)
	}
	if err := f.waitDAD6("tap0"); err != nil {
		t.Fatal(err)
	}
	stable := addr("2001:db8:7::ff:fe00:1")
	w.routerAdvert(netip.MustParsePrefix("2001:db8:7::/64"), 86400, 14400)
	waitFor(t, "an ADDRCONF unit", func() bool { return len(f.unitsWith(ctl.IFF_ADDRCONF|ctl.IFF_UP)) == 1 })
	if got := f.dadState6("tap0:1"); got != 1 || f.assigned6(stable) {
		t.Fatalf("new SLAAC unit: DAD state %d, usable %v; want 1 and false", got, f.assigned6(stable))
	}
	if err := f.waitDAD6("tap0:1"); err != nil {
		t.Fatal(err)
	}
	if !f.assigned6(stable) {
		t.Fatal("SLAAC address not usable after DAD")
	}
	if n := len(dadProbes(t, w, stable)); n != ndMaxUnicastSolicit {
		t.Errorf("%d DAD solicitations for the SLAAC address, want %d (one round)", n, ndMaxUnicastSolicit)
	}
}

// Appendix C22 for IPv6: link down makes the address unready (gone from
// gVisor); link up probes it again, then it is ready.
func TestDAD6LinkDownUp(t *testing.T) {
	f := newDAD6Fixture(t)
	w := newWire(t, f.peers["tap0"], peerMAC)
	a := addr("2001:db8:6::4")
	if err := f.setUp("tap0", ctl.AF_INET6, true); err != nil {
		t.Fatal(err)
	}
	f.up6(a)
	if err := f.waitDAD6("tap0:1"); err != nil {
		t.Fatal(err)
	}
	dadProbes(t, w, a) // the first round
	l, _ := f.m.links.Get("tap0")
	mem := l.Device().(*memory.Device)
	mem.SetCarrier(false)
	if f.dadState6("tap0:1") != 1 || f.assigned6(a) {
		t.Fatalf("link down: DAD state %d, usable %v; want 1 and false", f.dadState6("tap0:1"), f.assigned6(a))
	}
	mem.SetCarrier(true)
	if err := f.waitDAD6("tap0:1"); err != nil {
		t.Fatal(err)
	}
	if f.dadState6("tap0:1") != 2 || !f.assigned6(a) {
		t.Fatal("address not ready after the re-probe")
	}
	if n := len(dadProbes(t, w, a)); n != ndMaxUnicastSolicit {
		t.Errorf("%d solicitations after link up, want %d", n, ndMaxUnicastSolicit)
	}
}
