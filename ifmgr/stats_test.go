package ifmgr

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/stack"
)

// ifStats runs MIB2_IP_TRAFFIC_STATS.
func (f *fixture) ifStats(fam ctl.Family, name string) (ctl.IfStatsReq, error) {
	r := ctl.IfStatsReq{Name: name}
	err := f.m.Do(Caller{}, "MIB2_IP_TRAFFIC_STATS", fam, &r)
	return r, err
}

// mib returns one interface's entry, which must exist.
func (f *fixture) mib(fam ctl.Family, name string) ctl.IfStats {
	f.t.Helper()
	r, err := f.ifStats(fam, name)
	if err != nil {
		f.t.Fatalf("statistics of %s: %v", name, err)
	}
	if len(r.Interfaces) != 1 || r.Interfaces[0].Name != name {
		f.t.Fatalf("statistics of %s: got %+v", name, r.Interfaces)
	}
	return r.Interfaces[0]
}

// settledMIB reads one interface's entry until done accepts it, or for
// ten seconds; the caller checks what it got.
func (f *fixture) settledMIB(fam ctl.Family, name string, done func(ctl.IfStats) bool) ctl.IfStats {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		e := f.mib(fam, name)
		if done(e) || time.Now().After(deadline) {
			return e
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// totals returns the stack-wide MIB of one family.
func (f *fixture) totals(fam ctl.Family) ctl.IPTotals {
	f.t.Helper()
	r, err := f.ifStats(fam, "")
	if err != nil {
		f.t.Fatal(err)
	}
	if len(r.Totals) != 1 || r.Totals[0].Family != fam {
		f.t.Fatalf("totals for %s: %+v", fam, r.Totals)
	}
	return r.Totals[0]
}

// statsPeer puts a gVisor stack on the far end of linkName with the given
// prefixes, routing everything else to the managed stack (gw per family).
func statsPeer(t *testing.T, f *fixture, linkName string, gw4, gw6 string, prefixes ...string) *stack.Stack {
	t.Helper()
	ps := stack.New()
	t.Cleanup(ps.Close)
	if err := ps.AddNIC("peer", f.peers[linkName].Endpoint()); err != nil {
		t.Fatal(err)
	}
	if err := ps.EnableNIC("peer"); err != nil {
		t.Fatal(err)
	}
	var routes []stack.Route
	for _, p := range prefixes {
		pf := netip.MustParsePrefix(p)
		if err := ps.AddAddress("peer", pf); err != nil {
			t.Fatal(err)
		}
		routes = append(routes, stack.Route{Dest: pf.Masked(), NIC: "peer"})
	}
	if gw4 != "" {
		routes = append(routes, stack.Route{Dest: netip.MustParsePrefix("0.0.0.0/0"), Gateway: addr(gw4), NIC: "peer"})
	}
	if gw6 != "" {
		routes = append(routes, stack.Route{Dest: netip.MustParsePrefix("::/0"), Gateway: addr(gw6), NIC: "peer"})
	}
	ps.SetRoutes(routes)
	return ps
}

// ping sends one echo request from s and reports whether the reply came.
// A ping expected to fail gives up after half a second.
func ping(s *stack.Stack, dst string, seq uint16, expectOK bool) error {
	timeout := 500 * time.Millisecond
	if expectOK {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err := s.Ping(ctx, addr(dst), seq)
	return err
}

func pingOK(t *testing.T, s *stack.Stack, dst string, n int) {
	t.Helper()
	for i := range n {
		if err := ping(s, dst, uint16(i+1), true); err != nil {
			t.Fatalf("ping %s #%d: %v", dst, i+1, err)
		}
	}
}

// atLeast fails the test unless counter what grew by at least min.
func atLeast(t *testing.T, what string, before, after, min uint64) {
	t.Helper()
	if after < before || after-before < min {
		t.Errorf("%s went from %d to %d; want growth of at least %d", what, before, after, min)
	}
}

// TestStatsCountTraffic pings the stack from a peer over both families
// and checks that the interface's MIBs and link counters move.
func TestStatsCountTraffic(t *testing.T) {
	const n = 5
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	f.must("SIOCSLIFNAME", ctl.AF_INET6, ctl.Lifreq{Name: "tap0", Flags: ctl.IFF_IPV6})
	f.configure("tap0", "10.70.0.1", 24)
	f.setUp("tap0", ctl.AF_INET6, true) // the link-local unit
	v6 := f.must("SIOCLIFADDIF", ctl.AF_INET6, ctl.Lifreq{Name: "tap0"}).Name
	f.configure(v6, "fd00:70::1", 64)
	peer := statsPeer(t, f, "tap0", "", "", "10.70.0.2/24", "fd00:70::2/64")

	for _, tc := range []struct {
		fam     ctl.Family
		dst     string
		minSize uint64 // an echo datagram's octets at least: IP header and ICMP header
	}{
		{ctl.AF_INET, "10.70.0.1", 20 + 8},
		{ctl.AF_INET6, "fd00:70::1", 40 + 8},
	} {
		before := f.mib(tc.fam, "tap0")
		pingOK(t, peer, tc.dst, n)
		// The stack counts a reply as sent once the link took it, which
		// may be after the peer has it: wait for the counts to settle.
		after := f.settledMIB(tc.fam, "tap0", func(e ctl.IfStats) bool {
			return e.IP.OutRequests-before.IP.OutRequests >= n &&
				(e.ICMP6 == nil || e.ICMP6.OutEchoReplies-before.ICMP6.OutEchoReplies >= n)
		})
		b, a := before.IP, after.IP
		atLeast(t, string(tc.fam)+" InReceives", b.InReceives, a.InReceives, n)
		atLeast(t, string(tc.fam)+" InDelivers", b.InDelivers, a.InDelivers, n)
		atLeast(t, string(tc.fam)+" InOctets", b.InOctets, a.InOctets, n*tc.minSize)
		atLeast(t, string(tc.fam)+" OutRequests", b.OutRequests, a.OutRequests, n)
		atLeast(t, string(tc.fam)+" OutTransmits", b.OutTransmits, a.OutTransmits, n)
		atLeast(t, string(tc.fam)+" OutOctets", b.OutOctets, a.OutOctets, n*tc.minSize)
		atLeast(t, string(tc.fam)+" link ipackets", before.LinkStats.IPackets, after.LinkStats.IPackets, n)
		atLeast(t, string(tc.fam)+" link opackets", before.LinkStats.OPackets, after.LinkStats.OPackets, n)
		if a.ForwDatagrams != 0 || a.InHdrErrors != 0 {
			t.Errorf("%s: forwarded %d, header errors %d on a host that only answered pings", tc.fam, a.ForwDatagrams, a.InHdrErrors)
		}
		if tc.fam == ctl.AF_INET6 {
			if after.ICMP6 == nil {
				t.Fatal("no ICMPv6 MIB on an IPv6 interface")
			}
			atLeast(t, "ICMPv6 InEchos", before.ICMP6.InEchos, after.ICMP6.InEchos, n)
			atLeast(t, "ICMPv6 OutEchoReplies", before.ICMP6.OutEchoReplies, after.ICMP6.OutEchoReplies, n)
			atLeast(t, "ICMPv6 InMsgs", before.ICMP6.InMsgs, after.ICMP6.InMsgs, n)
		} else if after.ICMP6 != nil {
			t.Error("an IPv4 interface has an ICMPv6 MIB")
		}
	}
	e := f.mib(ctl.AF_INET, "tap0")
	want := ctl.IfStats{Name: "tap0", Family: ctl.AF_INET, Index: e.Index, MTU: 1500, Flags: f.flags("tap0", ctl.AF_INET),
		Addr: addr("10.70.0.1"), Subnet: netip.MustParsePrefix("10.70.0.0/24"), Link: "tap0"}
	got := e
	got.IP, got.LinkStats = ctl.IPIfStats{}, ctl.LinkStats{}
	if d := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})); d != "" {
		t.Errorf("tap0 entry (-want +got):\n%s", d)
	}
}

// TestStatsUnplumbFoldsIntoTotals checks spec §13.1: an unplumbed ill's
// counts stay in its family's totals, and an ill plumbed again starts at
// zero even though its NIC (kept by the other family) counted on.
func TestStatsUnplumbFoldsIntoTotals(t *testing.T) {
	const n = 4
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	f.must("SIOCSLIFNAME", ctl.AF_INET6, ctl.Lifreq{Name: "tap0", Flags: ctl.IFF_IPV6})
	f.configure("tap0", "10.73.0.1", 24)
	peer := statsPeer(t, f, "tap0", "", "", "10.73.0.2/24")
	pingOK(t, peer, "10.73.0.1", n)

	counted := f.mib(ctl.AF_INET, "tap0").IP
	if counted.InReceives < n {
		t.Fatalf("tap0 counted %d datagrams after %d pings", counted.InReceives, n)
	}
	t1 := f.totals(ctl.AF_INET)
	if t1.IP.InReceives < counted.InReceives {
		t.Errorf("totals %d do not include tap0's %d", t1.IP.InReceives, counted.InReceives)
	}
	f.must("unplumb", ctl.AF_INET, ctl.Lifreq{Name: "tap0"})
	if _, err := f.ifStats(ctl.AF_INET, "tap0"); ctl.ErrnoOf(err) != ctl.ENXIO {
		t.Errorf("statistics of an unplumbed interface: %v, want ENXIO", err)
	}
	t2 := f.totals(ctl.AF_INET)
	atLeast(t, "IPv4 InReceives total across unplumb", t1.IP.InReceives, t2.IP.InReceives, 0)
	atLeast(t, "IPv4 InDelivers total across unplumb", t1.IP.InDelivers, t2.IP.InDelivers, 0)
	atLeast(t, "IPv4 OutRequests total across unplumb", t1.IP.OutRequests, t2.IP.OutRequests, 0)

	// The NIC stayed (IPv6 is still plumbed) and remembers; the new ill
	// must not.
	raw, err := f.st.IPCounters("tap0", false)
	if err != nil {
		t.Fatal(err)
	}
	if raw.Received < n {
		t.Fatalf("the NIC's own counter is %d; the test needs a NIC that kept counting", raw.Received)
	}
	f.plumb("tap0")
	if got := f.mib(ctl.AF_INET, "tap0").IP; got != (ctl.IPIfStats{}) {
		t.Errorf("a freshly plumbed tap0 has counts: %+v", got)
	}
	f.configure("tap0", "10.73.0.1", 24)
	pingOK(t, peer, "10.73.0.1", n)
	again := f.mib(ctl.AF_INET, "tap0").IP
	atLeast(t, "InReceives after re-plumb", 0, again.InReceives, n)
	t3 := f.totals(ctl.AF_INET)
	atLeast(t, "IPv4 InReceives total", t2.IP.InReceives, t3.IP.InReceives, n)

	// IPv6 totals keep ICMPv6 as well.
	v6 := f.mib(ctl.AF_INET6, "tap0")
	f.must("unplumb", ctl.AF_INET6, ctl.Lifreq{Name: "tap0"})
	t6 := f.totals(ctl.AF_INET6)
	if t6.ICMP6 == nil {
		t.Fatal("IPv6 totals have no ICMPv6 MIB")
	}
	atLeast(t, "ICMPv6 OutMsgs total", v6.ICMP6.OutMsgs, t6.ICMP6.OutMsgs, 0)
}

// TestForwardingCounters routes pings between two peers through the
// managed stack: nothing passes until the interfaces forward, what is
// refused counts as ForwProhibits on the interface it arrived on, and what
// passes counts as ForwDatagrams on the interface it leaves by.
func TestForwardingCounters(t *testing.T) {
	const n = 4
	f := newFixture(t, "tap0", "tap1")
	f.plumb("tap0")
	f.plumb("tap1")
	f.configure("tap0", "10.74.0.1", 24)
	f.configure("tap1", "10.75.0.1", 24)
	a := statsPeer(t, f, "tap0", "10.74.0.1", "", "10.74.0.2/24")
	statsPeer(t, f, "tap1", "10.75.0.1", "", "10.75.0.2/24")
	const far = "10.75.0.2"
	seq := uint16(100)
	try := func(expectOK bool) error { seq++; return ping(a, far, seq, expectOK) }

	before0 := f.mib(ctl.AF_INET, "tap0").IP
	if err := try(false); err == nil {
		t.Fatal("a ping crossed the stack with forwarding off")
	}
	atLeast(t, "tap0 ForwProhibits (forwarding off)", before0.ForwProhibits, f.mib(ctl.AF_INET, "tap0").IP.ForwProhibits, 1)

	f.prop("SIOCSETPROP", ctl.Prop{Proto: "ipv4", Name: "forwarding", Flags: ctl.MOD_PROP_ACTIVE, Val: "on"})
	s0, s1 := f.mib(ctl.AF_INET, "tap0").IP, f.mib(ctl.AF_INET, "tap1").IP
	pingOK(t, a, far, n)
	e0, e1 := f.mib(ctl.AF_INET, "tap0").IP, f.mib(ctl.AF_INET, "tap1").IP
	atLeast(t, "tap1 ForwDatagrams (requests out)", s1.ForwDatagrams, e1.ForwDatagrams, n)
	atLeast(t, "tap0 ForwDatagrams (replies out)", s0.ForwDatagrams, e0.ForwDatagrams, n)
	atLeast(t, "tap0 InReceives", s0.InReceives, e0.InReceives, n)
	atLeast(t, "tap1 OutTransmits", s1.OutTransmits, e1.OutTransmits, n)
	if e0.ForwProhibits != s0.ForwProhibits {
		t.Errorf("tap0 ForwProhibits moved %d → %d while forwarding", s0.ForwProhibits, e0.ForwProhibits)
	}
	if fwd, tx := e1.ForwDatagrams-s1.ForwDatagrams, e1.OutTransmits-s1.OutTransmits; tx < fwd {
		t.Errorf("tap1 transmitted %d datagrams but forwarded %d; transmits include forwarded", tx, fwd)
	}

	// Clearing ROUTER on tap1 stops the replies there.
	fl := f.flags("tap1", ctl.AF_INET)
	f.must("SIOCSLIFFLAGS", ctl.AF_INET, ctl.Lifreq{Name: "tap1", Flags: fl &^ ctl.IFF_ROUTER})
	if on, _ := f.st.Forwarding("tap1", false); on {
		t.Fatal("clearing ROUTER left gVisor forwarding on tap1")
	}
	p1 := f.mib(ctl.AF_INET, "tap1").IP.ForwProhibits
	if err := try(false); err == nil {
		t.Fatal("a ping came back through tap1 with its ROUTER flag off")
	}
	stopped := f.mib(ctl.AF_INET, "tap1").IP.ForwProhibits
	atLeast(t, "tap1 ForwProhibits", p1, stopped, 1)

	f.must("SIOCSLIFFLAGS", ctl.AF_INET, ctl.Lifreq{Name: "tap1", Flags: fl | ctl.IFF_ROUTER})
	if on, _ := f.st.Forwarding("tap1", false); !on {
		t.Fatal("setting ROUTER did not turn gVisor forwarding on for tap1")
	}
	pingOK(t, a, far, n)
	if got := f.mib(ctl.AF_INET, "tap1").IP.ForwProhibits; got != stopped {
		t.Errorf("tap1 ForwProhibits moved %d → %d while forwarding again", stopped, got)
	}
}

// TestForwardingRules checks spec §13.3: the ROUTER flag and gVisor's
// per-NIC forwarding agree whichever way forwarding is changed; the
// loopback refuses it; a global set reaches every other ill of the family
// and new ills; each change raises RTM_IFINFO for the ill it changed.
func TestForwardingRules(t *testing.T) {
	f := newFixture(t, "tap0", "tap1", "tap2")
	f.plumb("tap0")
	f.plumb("tap1")
	f.must("SIOCSLIFNAME", ctl.AF_INET6, ctl.Lifreq{Name: "tap0", Flags: ctl.IFF_IPV6})
	forwards := func(name string, v6 bool) bool {
		t.Helper()
		on, err := f.st.Forwarding(name, v6)
		if err != nil {
			t.Fatal(err)
		}
		fam := ctl.AF_INET
		if v6 {
			fam = ctl.AF_INET6
		}
		if flag := f.flags(name, fam)&ctl.IFF_ROUTER != 0; flag != on {
			t.Fatalf("%s %s: ROUTER flag %v but the stack forwards: %v", name, fam, flag, on)
		}
		return on
	}
	var mu sync.Mutex
	var ifinfo []string
	cancel := f.m.Subscribe(func(e Event) {
		if e.Kind == RTM_IFINFO {
			mu.Lock()
			ifinfo = append(ifinfo, e.Name)
			mu.Unlock()
		}
	})
	defer cancel()
	// events returns the ills RTM_IFINFO named since the last call, each
	// once: SIOCSLIFFLAGS reports a flag change besides the forwarding
	// change, as illumos does.
	events := func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := ifinfo
		ifinfo = nil
		slices.Sort(out)
		return slices.Compact(out)
	}

	// Refusals change nothing.
	for _, p := range []ctl.Prop{
		{Proto: "ipv4", Name: "forwarding", Ifname: "lo0", Flags: ctl.MOD_PROP_ACTIVE, Val: "on"},
		{Proto: "ipv4", Name: "forwarding", Flags: ctl.MOD_PROP_ACTIVE, Val: "2"},
		{Proto: "ipv6", Name: "forwarding", Ifname: "tap1", Flags: ctl.MOD_PROP_ACTIVE, Val: "on"},
	} {
		before := f.snapshot()
		_, err := f.prop("SIOCSETPROP", p)
		want := ctl.EINVAL
		if p.Ifname == "tap1" {
			want = ctl.ENXIO // tap1 has no IPv6 ill
		}
		if ctl.ErrnoOf(err) != want || !strings.Contains(err.Error(), "SIOCSETPROP") {
			t.Errorf("set %+v: %v, want %v", p, err, want)
		}
		if d := cmp.Diff(before, f.snapshot()); d != "" {
			t.Errorf("refused set %+v changed state:\n%s", p, d)
		}
	}
	f.fails("SIOCSLIFFLAGS", ctl.AF_INET, ctl.Lifreq{Name: "lo0", Flags: f.flags("lo0", ctl.AF_INET) | ctl.IFF_ROUTER}, ctl.EINVAL)
	if got := events(); len(got) != 0 {
		t.Errorf("refused requests raised RTM_IFINFO for %v", got)
	}

	// Global IPv4 on: every IPv4 ill but lo0, IPv6 untouched.
	f.prop("SIOCSETPROP", ctl.Prop{Proto: "ipv4", Name: "forwarding", Flags: ctl.MOD_PROP_ACTIVE, Val: "1"})
	if !forwards("tap0", false) || !forwards("tap1", false) || forwards("tap0", true) || forwards("lo0", false) {
		t.Error("global IPv4 forwarding did not reach exactly tap0 and tap1 (IPv4)")
	}
	if got, want := events(), []string{"tap0", "tap1"}; !slices.Equal(got, want) {
		t.Errorf("RTM_IFINFO for %v, want %v", got, want)
	}
	// Setting it again changes nothing and says nothing.
	f.prop("SIOCSETPROP", ctl.Prop{Proto: "ipv4", Name: "forwarding", Flags: ctl.MOD_PROP_ACTIVE, Val: "on"})
	if got := events(); len(got) != 0 {
		t.Errorf("an unchanged forwarding setting raised RTM_IFINFO for %v", got)
	}
	// A new ill inherits the global setting (§2.1).
	f.plumb("tap2")
	if !forwards("tap2", false) {
		t.Error("tap2 plumbed under global forwarding does not forward")
	}
	events()
	// Per interface: only that ill, both ways, through the property and
	// through the flag.
	f.prop("SIOCSETPROP", ctl.Prop{Proto: "ipv4", Name: "forwarding", Ifname: "tap1", Flags: ctl.MOD_PROP_ACTIVE, Val: "off"})
	if forwards("tap1", false) || !forwards("tap0", false) {
		t.Error("per-interface off did not reach exactly tap1")
	}
	f.must("SIOCSLIFFLAGS", ctl.AF_INET, ctl.Lifreq{Name: "tap1", Flags: f.flags("tap1", ctl.AF_INET) | ctl.IFF_ROUTER})
	if !forwards("tap1", false) {
		t.Error("SIOCSLIFFLAGS ROUTER did not turn tap1's forwarding on")
	}
	f.must("SIOCSLIFFLAGS", ctl.AF_INET6, ctl.Lifreq{Name: "tap0", Flags: f.flags("tap0", ctl.AF_INET6) | ctl.IFF_ROUTER})
	if !forwards("tap0", true) {
		t.Error("SIOCSLIFFLAGS ROUTER did not turn tap0's IPv6 forwarding on")
	}
	if got, want := events(), []string{"tap0", "tap1"}; !slices.Equal(got, want) {
		t.Errorf("RTM_IFINFO for %v, want %v", got, want)
	}
	// Global off clears every ill of the family.
	f.prop("SIOCSETPROP", ctl.Prop{Proto: "ipv4", Name: "forwarding", Flags: ctl.MOD_PROP_DEFAULT})
	for _, n := range []string{"tap0", "tap1", "tap2"} {
		if forwards(n, false) {
			t.Errorf("%s still forwards IPv4 after global forwarding was reset", n)
		}
	}
	if !forwards("tap0", true) {
		t.Error("resetting IPv4 forwarding turned IPv6 forwarding off")
	}
}

// TestStatsRequestErrors checks the refusals of MIB2_IP_TRAFFIC_STATS:
// they name what was wrong and change nothing.
func TestStatsRequestErrors(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	u := f.must("SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}).Name
	for _, tc := range []struct {
		fam  ctl.Family
		name string
		want ctl.Errno
	}{
		{ctl.AF_INET, u, ctl.EINVAL},
		{ctl.AF_INET, "tap9", ctl.ENXIO},
		{ctl.AF_INET6, "tap0", ctl.ENXIO}, // plumbed for IPv4 only
		{ctl.AF_UNSPEC, "nope0", ctl.ENXIO},
		{"ax25", "", ctl.EAFNOSUPPORT},
	} {
		before := f.snapshot()
		_, err := f.ifStats(tc.fam, tc.name)
		if ctl.ErrnoOf(err) != tc.want || !strings.Contains(err.Error(), "MIB2_IP_TRAFFIC_STATS") {
			t.Errorf("%s %q: %v, want %v naming the request", tc.fam, tc.name, err, tc.want)
		}
		if d := cmp.Diff(before, f.snapshot()); d != "" {
			t.Errorf("refused request changed state:\n%s", d)
		}
	}
	// AF_UNSPEC lists both families; a name picks its ills.
	r, err := f.ifStats(ctl.AF_UNSPEC, "")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range r.Interfaces {
		names = append(names, e.Name+"/"+string(e.Family))
	}
	if want := []string{"lo0/inet", "tap0/inet", "lo0/inet6"}; !slices.Equal(names, want) {
		t.Errorf("interfaces %v, want %v", names, want)
	}
	if len(r.Totals) != 2 || r.Totals[0].Family != ctl.AF_INET || r.Totals[1].Family != ctl.AF_INET6 {
		t.Errorf("totals %+v, want IPv4 then IPv6", r.Totals)
	}
	if r, err := f.ifStats(ctl.AF_UNSPEC, "lo0"); err != nil || len(r.Interfaces) != 2 {
		t.Errorf("lo0 in both families: %+v, %v", r.Interfaces, err)
	}
}

// TestStatsConcurrent reads statistics while interfaces are plumbed,
// configured and unplumbed (run with -race).
func TestStatsConcurrent(t *testing.T) {
	f := newFixture(t, "tap0", "tap1")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := f.ifStats(ctl.AF_UNSPEC, ""); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for i := range 20 {
		name := []string{"tap0", "tap1"}[i%2]
		f.plumb(name)
		f.configure(name, []string{"10.76.0.1", "10.77.0.1"}[i%2], 24)
		f.prop("SIOCSETPROP", ctl.Prop{Proto: "ipv4", Name: "forwarding", Flags: ctl.MOD_PROP_ACTIVE, Val: []string{"on", "off"}[i%2]})
		f.must("unplumb", ctl.AF_INET, ctl.Lifreq{Name: name})
	}
	close(stop)
	wg.Wait()
}
