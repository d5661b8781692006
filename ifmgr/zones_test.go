package ifmgr

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/route"
)

// zoneadm runs a zoneadm request as root.
func (f *fixture) zoneadm(op, name string) (ctl.Zone, error) {
	z := ctl.Zone{Name: name}
	err := f.m.Do(root, "zoneadm."+op, "", &z)
	return z, err
}

// newZone creates zone name and moves it to state ("" leaves it
// configured); it returns the zone's id.
func (f *fixture) newZone(name, state string) int32 {
	f.t.Helper()
	z, err := f.zoneadm("create", name)
	if err != nil {
		f.t.Fatalf("zoneadm create %s: %v", name, err)
	}
	switch state {
	case ctl.ZoneReady:
		_, err = f.zoneadm("ready", name)
	case ctl.ZoneRunning:
		_, err = f.zoneadm("boot", name)
	}
	if err != nil {
		f.t.Fatalf("zoneadm %s %s: %v", state, name, err)
	}
	return z.ID
}

func (f *fixture) zoneList(caller Caller) []ctl.Zone {
	f.t.Helper()
	var l ctl.ZoneList
	if err := f.m.Do(caller, "zoneadm.list", "", &l); err != nil {
		f.t.Fatal(err)
	}
	return l.Zones
}

// zoneState is what the common snapshot leaves out: each unit's zone (as
// the global zone sees it), the zone of every IRE, and the zone registry.
func (f *fixture) zoneState() []string {
	f.t.Helper()
	var out []string
	for _, fam := range []ctl.Family{ctl.AF_INET, ctl.AF_INET6} {
		lc := ctl.Lifconf{Family: fam, Flags: 0xff}
		if err := f.m.Do(root, "SIOCGLIFCONF", fam, &lc); err != nil {
			f.t.Fatal(err)
		}
		for _, r := range lc.Req {
			z := f.must("SIOCGLIFZONE", fam, ctl.Lifreq{Name: r.Name})
			fl := f.flags(r.Name, fam)
			out = append(out, fmt.Sprintf("unit %s zone=%d/%q up=%v", r.Name, z.ZoneID, z.Zone, fl&ctl.IFF_UP != 0))
		}
	}
	var ires []string // a set: re-adding an IRE may change the table's order
	for _, e := range f.m.Routes().All() {
		ires = append(ires, fmt.Sprintf("ire %s %s %s zone=%q", e.Type, e.Dest, e.Ill, e.Zone))
	}
	slices.Sort(ires)
	out = append(out, ires...)
	for _, z := range f.zoneList(root) {
		out = append(out, fmt.Sprintf("zone %d %s %s", z.ID, z.Name, z.State))
	}
	return out
}

// failsAs runs a LIF request as caller; it has to fail with errno want
// and change nothing, zones included.
func (f *fixture) failsAs(caller Caller, op string, fam ctl.Family, r ctl.Lifreq, want ctl.Errno) error {
	f.t.Helper()
	before, zbefore := f.snapshot(), f.zoneState()
	err := f.m.Do(caller, op, fam, &r)
	if got := ctl.ErrnoOf(err); got != want {
		f.t.Fatalf("%s %+v as %+v: errno %v (%v), want %v", op, r, caller, got, err, want)
	}
	if !strings.Contains(err.Error(), op) {
		f.t.Errorf("error %q does not name the request", err)
	}
	if diff := cmp.Diff(before, f.snapshot()); diff != "" {
		f.t.Fatalf("%s failed but changed state (-before +after):\n%s", op, diff)
	}
	if diff := cmp.Diff(zbefore, f.zoneState()); diff != "" {
		f.t.Fatalf("%s failed but changed zones (-before +after):\n%s", op, diff)
	}
	return err
}

// zoneFails is fails (errno and the common snapshot) plus the zone state.
func (f *fixture) zoneFails(name string, id int32, want ctl.Errno) error {
	f.t.Helper()
	before := f.zoneState()
	f.fails("SIOCSLIFZONE", ctl.AF_INET, ctl.Lifreq{Name: name, ZoneID: id}, want)
	if diff := cmp.Diff(before, f.zoneState()); diff != "" {
		f.t.Fatalf("SIOCSLIFZONE %s %d failed but changed zones (-before +after):\n%s", name, id, diff)
	}
	_, err := f.do("SIOCSLIFZONE", ctl.AF_INET, ctl.Lifreq{Name: name, ZoneID: id})
	return err
}

// zoneOfIREs returns the zones of the IREs of type t with destination
// dest, sorted.
func (f *fixture) zoneOfIREs(t route.Type, dest string) []string {
	var out []string
	for _, e := range f.m.Routes().All() {
		if e.Type == t && e.Dest.Addr() == addr(dest) {
			out = append(out, e.Zone)
		}
	}
	slices.Sort(out)
	return out
}

// TestSLifZoneErrors covers every refusal of SIOCSLIFZONE (spec §11, and
// Appendix C 29) in the spec's order of checks.
func TestSLifZoneErrors(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	f.configure("tap0", "10.0.0.1", 24)
	f.must("SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Addr: addr("10.0.0.2")})
	f.setUp("tap0:1", ctl.AF_INET, true)
	running := f.newZone("web", ctl.ZoneRunning)
	configured := f.newZone("idle", "")
	const missing = 4242

	for _, tc := range []struct {
		name    string
		unit    string
		id      int32
		want    ctl.Errno
		mention string // a word the message must contain
	}{
		{"ALL_ZONES on a logical unit", "tap0:1", ctl.ALL_ZONES, ctl.ENOTSUP, "labeled"},
		{"ALL_ZONES before the unit-0 check", "tap0", ctl.ALL_ZONES, ctl.ENOTSUP, "labeled"},
		{"unit 0 to a running zone", "tap0", running, ctl.ENOTSUP, "unit 0"},
		{"unit 0 check before the zone exists", "tap0", missing, ctl.ENOTSUP, "unit 0"},
		{"no such zone", "tap0:1", missing, ctl.EINVAL, "no zone"},
		{"negative id", "tap0:1", -7, ctl.EINVAL, "no zone"},
		{"zone only configured", "tap0:1", configured, ctl.EINVAL, "configured"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.t = t
			err := f.zoneFails(tc.unit, tc.id, tc.want)
			if !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("message %q does not say %q", err, tc.mention)
			}
		})
	}
	f.t = t
	// Unit 0 may be "moved" to the global zone, where it is.
	f.must("SIOCSLIFZONE", ctl.AF_INET, ctl.Lifreq{Name: "tap0", ZoneID: ctl.GLOBAL_ZONEID})

	moveWeb := ctl.Lifreq{Name: "tap0:1", ZoneID: running}
	f.failsAs(Caller{}, "SIOCSLIFZONE", ctl.AF_INET, moveWeb, ctl.EPERM)
	err := f.failsAs(Caller{Privileged: true, Zone: "web"}, "SIOCSLIFZONE", ctl.AF_INET, moveWeb, ctl.EPERM)
	if !strings.Contains(err.Error(), "web") {
		t.Errorf("EPERM for a zone caller does not name the zone: %v", err)
	}
	f.failsAs(root, "SIOCSLIFZONE", ctl.AF_INET, ctl.Lifreq{Name: "tap0:9", ZoneID: running}, ctl.ENXIO)
	f.failsAs(root, "SIOCSLIFZONE", ctl.AF_INET6, moveWeb, ctl.ENXIO) // no IPv6 tap0
}

// TestSLifZoneMovesIREs: an UP unit changes zone by going down and up, so
// its IREs are re-made in the new zone; SIOCGLIFZONE reports the move.
func TestSLifZoneMovesIREs(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	f.configure("tap0", "10.0.0.1", 24)
	f.must("SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Addr: addr("10.0.1.2")})
	f.must("SIOCSLIFNETMASK", ctl.AF_INET, ctl.Lifreq{Name: "tap0:1", Addr: addr("255.255.255.0")})
	f.setUp("tap0:1", ctl.AF_INET, true)
	web := f.newZone("web", ctl.ZoneRunning)

	if got := f.zoneOfIREs(route.IRE_LOCAL, "10.0.1.2"); !slices.Equal(got, []string{""}) {
		t.Fatalf("before: LOCAL IRE zones %q", got)
	}
	f.must("SIOCSLIFZONE", ctl.AF_INET, ctl.Lifreq{Name: "tap0:1", ZoneID: web})
	if f.flags("tap0:1", ctl.AF_INET)&ctl.IFF_UP == 0 {
		t.Fatal("tap0:1 is not up after the zone change")
	}
	g := f.must("SIOCGLIFZONE", ctl.AF_INET, ctl.Lifreq{Name: "tap0:1"})
	if g.ZoneID != web || g.Zone != "web" {
		t.Errorf("SIOCGLIFZONE = %d %q, want %d web", g.ZoneID, g.Zone, web)
	}
	for _, c := range []struct {
		t    route.Type
		dest string
		want []string
	}{
		{route.IRE_LOCAL, "10.0.1.2", []string{"web"}},
		{route.IRE_IF_RESOLVER, "10.0.1.0", []string{"web"}},
		{route.IRE_BROADCAST, "10.0.1.255", []string{"web"}},
		{route.IRE_LOCAL, "10.0.0.1", []string{""}},                   // tap0 stays global
		{route.IRE_BROADCAST, "255.255.255.255", []string{"", "web"}}, // one per zone
	} {
		if got := f.zoneOfIREs(c.t, c.dest); !slices.Equal(got, c.want) {
			t.Errorf("%s %s in zones %q, want %q", c.t, c.dest, got, c.want)
		}
	}

	// A down unit changes zone without IREs and takes the zone up with it.
	f.setUp("tap0:1", ctl.AF_INET, false)
	f.must("SIOCSLIFZONE", ctl.AF_INET, ctl.Lifreq{Name: "tap0:1", ZoneID: ctl.GLOBAL_ZONEID})
	if got := f.zoneOfIREs(route.IRE_LOCAL, "10.0.1.2"); got != nil {
		t.Errorf("a down unit has LOCAL IREs in %q", got)
	}
	f.must("SIOCSLIFZONE", ctl.AF_INET, ctl.Lifreq{Name: "tap0:1", ZoneID: web})
	f.setUp("tap0:1", ctl.AF_INET, true)
	if got := f.zoneOfIREs(route.IRE_LOCAL, "10.0.1.2"); !slices.Equal(got, []string{"web"}) {
		t.Errorf("brought up in web: LOCAL IRE zones %q", got)
	}

	// IPv6 units move the same way.
	f.must("SIOCSLIFNAME", ctl.AF_INET6, ctl.Lifreq{Name: "tap0", Flags: ctl.IFF_IPV6})
	f.must("SIOCLIFADDIF", ctl.AF_INET6, ctl.Lifreq{Name: "tap0", Addr: addr("fd00::5")})
	f.must("SIOCSLIFNETMASK", ctl.AF_INET6, ctl.Lifreq{Name: "tap0:1", Addr: maskOf(addr("fd00::5"), 64)})
	f.setUp("tap0:1", ctl.AF_INET6, true)
	f.must("SIOCSLIFZONE", ctl.AF_INET6, ctl.Lifreq{Name: "tap0:1", ZoneID: web})
	if got := f.zoneOfIREs(route.IRE_LOCAL, "fd00::5"); !slices.Equal(got, []string{"web"}) {
		t.Errorf("IPv6 LOCAL IRE zones %q", got)
	}
	checkInvariants(t, f.m)
}

// TestLoopbackPerZone: loopback addresses may repeat across zones (spec
// §4.5); moving such a unit back into the zone that already has the
// address fails and leaves it up where it was.
func TestLoopbackPerZone(t *testing.T) {
	f := newFixture(t)
	web := f.newZone("web", ctl.ZoneRunning)
	f.must("SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "lo0", Addr: addr("127.0.0.1")})
	f.must("SIOCSLIFZONE", ctl.AF_INET, ctl.Lifreq{Name: "lo0:1", ZoneID: web})
	if err := f.setUp("lo0:1", ctl.AF_INET, true); err != nil {
		t.Fatalf("127.0.0.1 up in zone web while up in the global zone: %v", err)
	}
	if got := f.zoneOfIREs(route.IRE_LOOPBACK, "127.0.0.1"); !slices.Equal(got, []string{"", "web"}) {
		t.Errorf("LOOPBACK IREs in zones %q, want one per zone", got)
	}
	f.zoneFails("lo0:1", ctl.GLOBAL_ZONEID, ctl.EADDRNOTAVAIL)
	if f.flags("lo0:1", ctl.AF_INET)&ctl.IFF_UP == 0 {
		t.Error("lo0:1 went down on a failed zone change")
	}

	// A non-loopback address may not repeat across zones.
	f2 := newFixture(t, "tap0")
	f2.plumb("tap0")
	f2.configure("tap0", "10.0.0.1", 24)
	web2 := f2.newZone("web", ctl.ZoneRunning)
	f2.must("SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Addr: addr("10.0.0.1")})
	f2.must("SIOCSLIFZONE", ctl.AF_INET, ctl.Lifreq{Name: "tap0:1", ZoneID: web2})
	if err := f2.setUp("tap0:1", ctl.AF_INET, true); ctl.ErrnoOf(err) != ctl.EADDRNOTAVAIL {
		t.Errorf("10.0.0.1 up in two zones: %v, want EADDRNOTAVAIL", err)
	}
}

// zoneFixture: tap0 10.0.0.1/24 global, tap0:1 10.0.0.2/24 in web, tap0:2
// 10.9.0.1/24 in db, all up.
func zoneFixture(t *testing.T) *fixture {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	f.configure("tap0", "10.0.0.1", 24)
	for _, u := range []struct{ zone, addr string }{{"web", "10.0.0.2"}, {"db", "10.9.0.1"}} {
		id := f.newZone(u.zone, ctl.ZoneRunning)
		r := f.must("SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Addr: addr(u.addr)})
		f.must("SIOCSLIFNETMASK", ctl.AF_INET, ctl.Lifreq{Name: r.Name, Addr: addr("255.255.255.0")})
		f.must("SIOCSLIFZONE", ctl.AF_INET, ctl.Lifreq{Name: r.Name, ZoneID: id})
		f.setUp(r.Name, ctl.AF_INET, true)
	}
	return f
}

var (
	globalCaller = Caller{}
	webCaller    = Caller{Zone: "web"}
	dbCaller     = Caller{Zone: "db"}
	ghostCaller  = Caller{Zone: "ghost"} // mapped to a zone nobody created
)

// TestZoneListing covers the zone filter of SIOCGLIFCONF/SIOCGLIFNUM
// (LIFC_ALLZONES, §2.3.4) and SIOCGIFCONF/SIOCGIFNUM (§2.3.1, §2.3.3).
func TestZoneListing(t *testing.T) {
	f := zoneFixture(t)
	for _, tc := range []struct {
		name   string
		caller Caller
		flags  int
		want   []string
		legacy []string // SIOCGIFCONF: never other zones
	}{
		{"global", globalCaller, 0, []string{"lo0", "tap0"}, []string{"lo0", "tap0"}},
		{"global ALLZONES", globalCaller, ctl.LIFC_ALLZONES, []string{"lo0", "tap0", "tap0:1", "tap0:2"}, []string{"lo0", "tap0"}},
		{"web", webCaller, 0, []string{"tap0:1"}, []string{"tap0:1"}},
		{"web ALLZONES is ignored", webCaller, ctl.LIFC_ALLZONES, []string{"tap0:1"}, []string{"tap0:1"}},
		{"db", dbCaller, ctl.LIFC_ALLZONES, []string{"tap0:2"}, []string{"tap0:2"}},
		{"zone without units", ghostCaller, ctl.LIFC_ALLZONES, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lc := ctl.Lifconf{Family: ctl.AF_INET, Flags: tc.flags}
			if err := f.m.Do(tc.caller, "SIOCGLIFCONF", ctl.AF_INET, &lc); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range lc.Req {
				got = append(got, r.Name)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("SIOCGLIFCONF (-want +got):\n%s", diff)
			}
			ln := ctl.Lifnum{Family: ctl.AF_INET, Flags: tc.flags}
			if err := f.m.Do(tc.caller, "SIOCGLIFNUM", ctl.AF_INET, &ln); err != nil || ln.Count != len(tc.want) {
				t.Errorf("SIOCGLIFNUM = %d, %v; want %d", ln.Count, err, len(tc.want))
			}
			ic := ctl.Ifconf{}
			if err := f.m.Do(tc.caller, "SIOCGIFCONF", ctl.AF_INET, &ic); err != nil {
				t.Fatal(err)
			}
			got = nil
			for _, r := range ic.Req {
				got = append(got, r.Name)
			}
			if diff := cmp.Diff(tc.legacy, got); diff != "" {
				t.Errorf("SIOCGIFCONF (-want +got):\n%s", diff)
			}
			in := ctl.Ifnum{}
			if err := f.m.Do(tc.caller, "SIOCGIFNUM", ctl.AF_INET, &in); err != nil || in.Count != len(tc.legacy) {
				t.Errorf("SIOCGIFNUM = %d, %v; want %d", in.Count, err, len(tc.legacy))
			}
		})
	}
}

// TestZoneNameLookup: a zone's caller finds only its own units by name
// (ENXIO otherwise); the global zone finds every zone's (spec §2.0.3, §11).
func TestZoneNameLookup(t *testing.T) {
	f := zoneFixture(t)
	for _, tc := range []struct {
		caller Caller
		name   string
		want   ctl.Errno // 0: found
	}{
		{globalCaller, "tap0", 0},
		{globalCaller, "tap0:1", 0},
		{globalCaller, "tap0:2", 0},
		{webCaller, "tap0:1", 0},
		{webCaller, "tap0", ctl.ENXIO},
		{webCaller, "tap0:0", ctl.ENXIO},
		{webCaller, "tap0:2", ctl.ENXIO},
		{webCaller, "lo0", ctl.ENXIO},
		{dbCaller, "tap0:2", 0},
		{dbCaller, "tap0:1", ctl.ENXIO},
		{ghostCaller, "tap0", ctl.ENXIO},
	} {
		for _, op := range []string{"SIOCGLIFADDR", "SIOCGLIFFLAGS", "SIOCGLIFZONE"} {
			r := ctl.Lifreq{Name: tc.name}
			err := f.m.Do(tc.caller, op, ctl.AF_INET, &r)
			if got := ctl.ErrnoOf(err); got != tc.want {
				t.Errorf("%s %s as zone %q: %v, want %v", op, tc.name, tc.caller.Zone, err, tc.want)
			}
		}
		ir := ctl.Ifreq{Name: tc.name}
		if got := ctl.ErrnoOf(f.m.Do(tc.caller, "SIOCGIFADDR", ctl.AF_INET, &ir)); got != tc.want {
			t.Errorf("SIOCGIFADDR %s as zone %q: %v, want %v", tc.name, tc.caller.Zone, got, tc.want)
		}
	}
	// A zone's caller may not change even its own units.
	f.failsAs(Caller{Privileged: true, Zone: "web"}, "SIOCSLIFMTU", ctl.AF_INET, ctl.Lifreq{Name: "tap0:1", MTU: 1400}, ctl.EPERM)
}

// TestZoneAddressTests: SIOCTMYADDR and SIOCTONLINK answer from the
// caller's zone only, even for the global zone (spec §2.16).
func TestZoneAddressTests(t *testing.T) {
	f := zoneFixture(t)
	for _, tc := range []struct {
		caller Caller
		op     string
		addr   string
		want   int
	}{
		{globalCaller, "SIOCTMYADDR", "10.0.0.1", 1},
		{globalCaller, "SIOCTMYADDR", "10.0.0.2", 0},
		{webCaller, "SIOCTMYADDR", "10.0.0.2", 1},
		{webCaller, "SIOCTMYADDR", "10.0.0.1", 0},
		{webCaller, "SIOCTMYADDR", "10.9.0.1", 0},
		{dbCaller, "SIOCTMYADDR", "10.9.0.1", 1},
		{globalCaller, "SIOCTONLINK", "10.0.0.77", 1},
		{globalCaller, "SIOCTONLINK", "10.9.0.77", 0},
		{webCaller, "SIOCTONLINK", "10.0.0.77", 1},
		{webCaller, "SIOCTONLINK", "10.9.0.77", 0},
		{dbCaller, "SIOCTONLINK", "10.9.0.77", 1},
		{dbCaller, "SIOCTONLINK", "10.0.0.77", 0},
	} {
		r := ctl.AddrReq{Addr: addr(tc.addr)}
		if err := f.m.Do(tc.caller, tc.op, ctl.AF_INET, &r); err != nil {
			t.Fatalf("%s %s: %v", tc.op, tc.addr, err)
		}
		if r.Res != tc.want {
			t.Errorf("%s %s as zone %q = %d, want %d", tc.op, tc.addr, tc.caller.Zone, r.Res, tc.want)
		}
	}
}

// TestZoneadm covers the zone registry: states, ids, names, and every
// refusal (nothing changes on failure).
func TestZoneadm(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	fails := func(op, name string, want ctl.Errno) {
		t.Helper()
		before := f.zoneState()
		_, err := f.zoneadm(op, name)
		if ctl.ErrnoOf(err) != want {
			t.Fatalf("zoneadm %s %q: %v, want %v", op, name, err, want)
		}
		if !strings.Contains(err.Error(), "zoneadm."+op) {
			t.Errorf("error %q does not name the request", err)
		}
		if diff := cmp.Diff(before, f.zoneState()); diff != "" {
			t.Fatalf("zoneadm %s %q failed but changed state (-before +after):\n%s", op, name, diff)
		}
	}
	web, err := f.zoneadm("create", "web")
	if err != nil || web.State != ctl.ZoneConfigured || web.ID <= 0 {
		t.Fatalf("create web = %+v, %v", web, err)
	}
	db := f.newZone("db", "")
	if db == web.ID {
		t.Fatalf("two zones share id %d", db)
	}
	for _, c := range []struct{ op, name string }{{"ready", "web"}, {"boot", "web"}, {"boot", "db"}} {
		if _, err := f.zoneadm(c.op, c.name); err != nil {
			t.Fatalf("%s %s: %v", c.op, c.name, err)
		}
	}
	want := []ctl.Zone{
		{Name: "global", ID: 0, State: ctl.ZoneRunning},
		{Name: "web", ID: web.ID, State: ctl.ZoneRunning},
		{Name: "db", ID: db, State: ctl.ZoneRunning},
	}
	if diff := cmp.Diff(want, f.zoneList(root)); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want[1:2], f.zoneList(webCaller)); diff != "" {
		t.Errorf("list from zone web (-want +got):\n%s", diff)
	}
	if got := f.zoneList(ghostCaller); len(got) != 0 {
		t.Errorf("list from a zone that does not exist: %+v", got)
	}

	f.must("SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0"})
	f.must("SIOCSLIFZONE", ctl.AF_INET, ctl.Lifreq{Name: "tap0:1", ZoneID: web.ID})
	for _, c := range []struct {
		op, name string
		want     ctl.Errno
	}{
		{"create", "web", ctl.EEXIST},
		{"create", "global", ctl.EEXIST},
		{"create", "", ctl.EINVAL},
		{"create", "-web", ctl.EINVAL},
		{"create", "a b", ctl.EINVAL},
		{"create", "a*", ctl.EINVAL},
		{"create", "SUNWdefault", ctl.EINVAL},
		{"create", strings.Repeat("z", ctl.ZONENAME_MAX), ctl.EINVAL},
		{"delete", "web", ctl.EBUSY},
		{"halt", "web", ctl.EBUSY},
		{"delete", "nosuch", ctl.EINVAL},
		{"boot", "nosuch", ctl.EINVAL},
		{"delete", "global", ctl.EINVAL},
		{"halt", "global", ctl.EINVAL},
		{"boot", "db", ctl.EALREADY},
		{"ready", "db", ctl.EALREADY},
	} {
		fails(c.op, c.name, c.want)
	}
	if _, err := f.zoneadm("create", strings.Repeat("z", ctl.ZONENAME_MAX-1)); err != nil {
		t.Errorf("longest name: %v", err)
	}

	// Privilege: set-requests need it, and no zone but the global one has it.
	for _, c := range []Caller{{}, {Privileged: true, Zone: "web"}} {
		z := ctl.Zone{Name: "new"}
		if err := f.m.Do(c, "zoneadm.create", "", &z); ctl.ErrnoOf(err) != ctl.EPERM {
			t.Errorf("create as %+v: %v, want EPERM", c, err)
		}
	}

	// Once unused, a zone halts and goes; a halted zone takes no units.
	f.must("SIOCSLIFZONE", ctl.AF_INET, ctl.Lifreq{Name: "tap0:1", ZoneID: ctl.GLOBAL_ZONEID})
	if z, err := f.zoneadm("halt", "web"); err != nil || z.State != ctl.ZoneConfigured {
		t.Fatalf("halt web = %+v, %v", z, err)
	}
	fails("halt", "web", ctl.EALREADY)
	f.zoneFails("tap0:1", web.ID, ctl.EINVAL)
	if _, err := f.zoneadm("delete", "web"); err != nil {
		t.Fatal(err)
	}
	f.zoneFails("tap0:1", web.ID, ctl.EINVAL)
	// Ids are not reused at once: a new zone gets a fresh one.
	if id := f.newZone("web", ""); id == web.ID || id == db {
		t.Errorf("re-created web got id %d (old %d, db %d)", id, web.ID, db)
	}
}

// TestZonesConcurrent moves a unit between zones while callers of every
// zone look it up; run with -race. Each request sees one consistent
// state: a zone's caller finds the unit only while it is in that zone.
func TestZonesConcurrent(t *testing.T) {
	f := zoneFixture(t)
	ids := map[string]int32{"": ctl.GLOBAL_ZONEID}
	for _, z := range f.zoneList(root) {
		if z.Name != "global" {
			ids[z.Name] = z.ID
		}
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 16)
	wg.Go(func() {
		defer close(stop)
		for i := range 200 {
			zone := []string{"", "web", "db"}[i%3]
			r := ctl.Lifreq{Name: "tap0:1", ZoneID: ids[zone]}
			if err := f.m.Do(root, "SIOCSLIFZONE", ctl.AF_INET, &r); err != nil {
				errs <- err
				return
			}
		}
	})
	for _, c := range []Caller{globalCaller, webCaller, dbCaller} {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := ctl.Lifreq{Name: "tap0:1"}
				err := f.m.Do(c, "SIOCGLIFZONE", ctl.AF_INET, &r)
				switch {
				case c.Zone == "" && err != nil:
					errs <- fmt.Errorf("the global zone lost tap0:1: %v", err)
					return
				case c.Zone != "" && err == nil && r.ZoneID != ids[c.Zone]:
					errs <- fmt.Errorf("zone %s found tap0:1 in zone id %d", c.Zone, r.ZoneID)
					return
				case err != nil && ctl.ErrnoOf(err) != ctl.ENXIO:
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	checkInvariants(t, f.m)
}

// TestZoneSrcOf: SIOCGLIFSRCOF resolves lifs_ifindex to a unit visible in
// the caller's zone (§2.3.5); a zone with no unit on the ill gets ENXIO
// and an unchanged reply.
func TestZoneSrcOf(t *testing.T) {
	f := zoneFixture(t)
	ix := f.must("SIOCGLIFINDEX", ctl.AF_INET, ctl.Lifreq{Name: "tap0"})
	for _, tc := range []struct {
		name   string
		caller Caller
		want   ctl.Errno
	}{
		{"global", globalCaller, 0},
		{"web sees tap0:1", webCaller, 0},
		{"zone without units", ghostCaller, ctl.ENXIO},
	} {
		before := f.snapshot()
		s := ctl.Lifsrcof{Ifindex: ix.Index}
		err := f.m.Do(tc.caller, "SIOCGLIFSRCOF", ctl.AF_INET, &s)
		if got := ctl.ErrnoOf(err); got != tc.want {
			t.Errorf("%s: SIOCGLIFSRCOF = %v, want errno %v", tc.name, err, tc.want)
		}
		if diff := cmp.Diff(before, f.snapshot()); diff != "" {
			t.Errorf("%s: state changed (-before +after):\n%s", tc.name, diff)
		}
	}
}

// TestZoneGetProp: a per-interface property of an ill with no unit in the
// caller's zone is ENXIO there (§11 visibility), as name lookups are.
func TestZoneGetProp(t *testing.T) {
	f := zoneFixture(t)
	for _, tc := range []struct {
		name   string
		caller Caller
		want   ctl.Errno
	}{
		{"global", globalCaller, 0},
		{"web sees tap0:1", webCaller, 0},
		{"zone without units", ghostCaller, ctl.ENXIO},
	} {
		// forwarding's current value; mtu is read-only and answers DEFAULT.
		for prop, flags := range map[string]int{"forwarding": ctl.MOD_PROP_ACTIVE, "mtu": ctl.MOD_PROP_DEFAULT} {
			p := ctl.Prop{Proto: "ipv4", Name: prop, Ifname: "tap0", Flags: flags}
			err := f.m.Do(tc.caller, "SIOCGETPROP", ctl.AF_INET, &p)
			if got := ctl.ErrnoOf(err); got != tc.want {
				t.Errorf("%s: SIOCGETPROP %s = %v, want errno %v", tc.name, prop, err, tc.want)
			}
		}
	}
}
