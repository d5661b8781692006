package ifmgr

// The conformance suite, part 2: one test per line of spec/ifmgr.md
// Appendix C that applies to tapstack (TestC<n>_<what>). Lines with no
// test are listed in docs/conformance.md with the reason.

import (
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/link/memory"
	"github.com/tapstack/tapstack/route"
)

// confIndex is SIOCGLIFINDEX of name in family fam.
func (f *fixture) confIndex(name string, fam ctl.Family) uint32 {
	f.t.Helper()
	return f.must("SIOCGLIFINDEX", fam, ctl.Lifreq{Name: name}).Index
}

// confSetFlags ORs on into, and clears off from, the flags of unit name.
func (f *fixture) confSetFlags(name string, fam ctl.Family, on, off ctl.Flags) error {
	f.t.Helper()
	_, err := f.do("SIOCSLIFFLAGS", fam, ctl.Lifreq{Name: name, Flags: f.flags(name, fam)&^off | on})
	return err
}

// confIREs lists the IREs on ill as "TYPE dest".
func (f *fixture) confIREs(ill string) []string {
	var out []string
	for _, e := range f.m.Routes().All() {
		if e.Ill == ill {
			out = append(out, e.Type.String()+" "+e.Dest.String())
		}
	}
	slices.Sort(out)
	return out
}

// C2: the IPv6 ill of a plumbed name joins its phyint: same index, listed
// in both families.
func TestC2_IPv6PlumbSharesIndex(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	i4 := f.confIndex("tap0", ctl.AF_INET)
	f.confPlumb6("tap0")
	if i6 := f.confIndex("tap0", ctl.AF_INET6); i6 != i4 || i4 == 0 {
		t.Errorf("index IPv4 %d IPv6 %d, want one non-zero index", i4, i6)
	}
	for _, fam := range []ctl.Family{ctl.AF_INET, ctl.AF_INET6} {
		if !slices.Contains(f.confUnits(fam), "tap0") {
			t.Errorf("tap0 not listed for %s: %v", fam, f.confUnits(fam))
		}
	}
	ln := ctl.Lifnum{Family: ctl.AF_UNSPEC, Flags: ctl.LIFC_ALLZONES}
	if err := f.m.Do(root, "SIOCGLIFNUM", ctl.AF_INET, &ln); err != nil || ln.Count != 4 {
		t.Errorf("SIOCGLIFNUM = %d, %v; want 4 (lo0 and tap0 in each family)", ln.Count, err)
	}
}

// C3: name syntax and PPA rules of SIOCSLIFNAME.
func TestC3_PlumbNameAndPPA(t *testing.T) {
	cases := []struct {
		name string
		req  ctl.Lifreq
		want ctl.Errno
	}{
		{"leading-zero PPA", ctl.Lifreq{Name: "tap01", Link: "tap3"}, ctl.EINVAL},
		{"PPA 00", ctl.Lifreq{Name: "tap00", Link: "tap3"}, ctl.EINVAL},
		{"PPA differs from the name", ctl.Lifreq{Name: "tap3", PPA: 4}, ctl.EINVAL},
		{"PPA in use", ctl.Lifreq{Name: "tap0", Link: "tap0"}, ctl.EEXIST},
		{"PPA in use on another link", ctl.Lifreq{Name: "tap0", Link: "tap3"}, ctl.EEXIST},
		{"no PPA digits", ctl.Lifreq{Name: "tap", Link: "tap3"}, ctl.EINVAL},
		{"starts with a digit", ctl.Lifreq{Name: "3tap3", Link: "tap3"}, ctl.EINVAL},
		{"bad character", ctl.Lifreq{Name: "ta-p3", Link: "tap3"}, ctl.EINVAL},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, "tap0", "tap3")
			f.plumb("tap0")
			r := tc.req
			r.Flags = ctl.IFF_IPV4
			f.confFails("SIOCSLIFNAME", ctl.AF_INET, r, tc.want)
		})
	}
	// The matching PPA is accepted.
	f := newFixture(t, "tap0", "tap3")
	f.must("SIOCSLIFNAME", ctl.AF_INET, ctl.Lifreq{Name: "tap3", PPA: 3, Flags: ctl.IFF_IPV4})
	// tapstack extension: a phyint is one link, so the IPv6 ill of tap3
	// cannot be plumbed from another link.
	f.confFails("SIOCSLIFNAME", ctl.AF_INET6, ctl.Lifreq{Name: "tap3", Link: "tap0", Flags: ctl.IFF_IPV6}, ctl.EINVAL)
}

// C4: unplumbing both families frees the index (another interface may
// take it); plumbing again gets a new, larger one.
func TestC4_IndexFreedNotReused(t *testing.T) {
	f := newFixture(t, "tap0", "tap1")
	f.plumb("tap0")
	f.confPlumb6("tap0")
	f.plumb("tap1")
	old := f.confIndex("tap0", ctl.AF_INET)
	highest := f.confIndex("tap1", ctl.AF_INET)
	f.must("unplumb", ctl.AF_INET, ctl.Lifreq{Name: "tap0"})
	if got := f.confIndex("tap0", ctl.AF_INET6); got != old {
		t.Fatalf("IPv6 ill index %d after the IPv4 unplumb, want %d", got, old)
	}
	f.confFails("SIOCSLIFINDEX", ctl.AF_INET, ctl.Lifreq{Name: "tap1", Index: old}, ctl.EEXIST)
	f.must("unplumb", ctl.AF_INET6, ctl.Lifreq{Name: "tap0"})
	for _, fam := range []ctl.Family{ctl.AF_INET, ctl.AF_INET6} {
		f.confFails("SIOCGLIFINDEX", fam, ctl.Lifreq{Name: "tap0"}, ctl.ENXIO)
	}
	f.must("SIOCSLIFINDEX", ctl.AF_INET, ctl.Lifreq{Name: "tap1", Index: old}) // freed
	f.plumb("tap0")
	if got := f.confIndex("tap0", ctl.AF_INET); got <= highest {
		t.Errorf("re-plumbed index %d, want above every earlier index (%d)", got, highest)
	}
}

// C5: SIOCLIFADDIF and SIOCLIFREMOVEIF refusals.
func TestC5_AddRemoveIfErrors(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	f.confPlumb6("tap0")
	f.configure("tap0", "10.5.0.1", 24)
	f.confAddIf(ctl.AF_INET, "tap0:5")
	cases := []struct {
		name string
		op   string
		fam  ctl.Family
		req  ctl.Lifreq
		want ctl.Errno
	}{
		{"ADDIF unit 0", "SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0:0"}, ctl.EINVAL},
		{"ADDIF leading zero", "SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0:05"}, ctl.EINVAL},
		{"ADDIF not a number", "SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0:x"}, ctl.EINVAL},
		{"ADDIF empty name", "SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{}, ctl.EINVAL},
		{"ADDIF existing unit", "SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0:5"}, ctl.EEXIST},
		{"ADDIF no such interface", "SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap9"}, ctl.ENXIO},
		{"REMOVEIF IPv6 address on IPv4", "SIOCLIFREMOVEIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Addr: addr("fe80::1")}, ctl.EAFNOSUPPORT},
		{"REMOVEIF no address on IPv4", "SIOCLIFREMOVEIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}, ctl.EAFNOSUPPORT},
		{"REMOVEIF IPv4 address on IPv6", "SIOCLIFREMOVEIF", ctl.AF_INET6, ctl.Lifreq{Name: "tap0", Addr: addr("10.5.0.1")}, ctl.EAFNOSUPPORT},
		{"REMOVEIF unknown address", "SIOCLIFREMOVEIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Addr: addr("10.5.0.99")}, ctl.EADDRNOTAVAIL},
		{"REMOVEIF unknown IPv6 address", "SIOCLIFREMOVEIF", ctl.AF_INET6, ctl.Lifreq{Name: "tap0", Addr: addr("fe80::99")}, ctl.EADDRNOTAVAIL},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f.confSub(t).confFails(tc.op, tc.fam, tc.req, tc.want)
		})
	}
}

// C6: with _addrs_per_if 3, units 1 and 2 can be added, the fourth unit
// (id 3) cannot.
func TestC6_AddrsPerIfTunable(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	if err := f.m.Do(root, "SIOCSETPROP", ctl.AF_INET, &ctl.Prop{Proto: "ip", Name: "_addrs_per_if", Flags: ctl.MOD_PROP_ACTIVE, Val: "3"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"tap0:1", "tap0:2"} {
		if got := f.confAddIf(ctl.AF_INET, "tap0"); got != want {
			t.Fatalf("ADDIF → %s, want %s", got, want)
		}
	}
	f.confFails("SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}, ctl.ERANGE)
	f.confFails("SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0:3"}, ctl.ERANGE)
}

// C7: the class mask and broadcast are derived when the address is set;
// a later netmask does not recompute the broadcast, bring-up resets a
// broadcast with no IRE, and re-setting the address recomputes it.
func TestC7_DefaultMaskAndStaleBroadcast(t *testing.T) {
	for _, reset := range []string{"bring-up", "address set again"} {
		t.Run(reset, func(t *testing.T) {
			f := newFixture(t, "tap0")
			f.plumb("tap0")
			get := func() (mask, brd netip.Addr) {
				return f.must("SIOCGLIFNETMASK", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}).Addr,
					f.must("SIOCGLIFBRDADDR", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}).Broadaddr
			}
			f.must("SIOCSLIFADDR", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Addr: addr("192.168.10.5")})
			if m, b := get(); m != addr("255.255.255.0") || b != addr("192.168.10.255") {
				t.Fatalf("after the address: mask %v broadcast %v", m, b)
			}
			f.must("SIOCSLIFNETMASK", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Addr: addr("255.255.0.0")})
			if m, b := get(); m != addr("255.255.0.0") || b != addr("192.168.10.255") {
				t.Fatalf("after the netmask: mask %v broadcast %v (must not be recomputed)", m, b)
			}
			if reset == "bring-up" {
				f.setUp("tap0", ctl.AF_INET, true)
			} else {
				f.must("SIOCSLIFADDR", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Addr: addr("192.168.10.5")})
			}
			if _, b := get(); b != addr("192.168.255.255") {
				t.Errorf("broadcast %v, want 192.168.255.255", b)
			}
		})
	}
}

// C8: on an UP unit SIOCSLIFBRDADDR accepts only addresses that already
// have a broadcast IRE on the ill; a down unit takes any.
func TestC8_BroadcastMustHaveIRE(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	f.configure("tap0", "10.1.2.3", 24)
	down := f.confAddIf(ctl.AF_INET, "tap0")
	cases := []struct {
		unit, brd string
		want      ctl.Errno
	}{
		{"tap0", "10.1.2.255", 0},
		{"tap0", "10.255.255.255", 0},
		{"tap0", "255.255.255.255", 0},
		{"tap0", "10.1.3.255", ctl.EINVAL},
		{"tap0", "192.168.0.255", ctl.EINVAL},
		{"tap0", "fd00::ff", ctl.EAFNOSUPPORT},
		{down, "192.168.0.255", 0},
		{"lo0", "127.255.255.255", ctl.EADDRNOTAVAIL},
	}
	for _, tc := range cases {
		t.Run(tc.unit+" "+tc.brd, func(t *testing.T) {
			f := f.confSub(t)
			r := ctl.Lifreq{Name: tc.unit, Broadaddr: addr(tc.brd)}
			if tc.want != 0 {
				f.confFails("SIOCSLIFBRDADDR", ctl.AF_INET, r, tc.want)
				return
			}
			ires := f.confIREs("tap0")
			f.must("SIOCSLIFBRDADDR", ctl.AF_INET, r)
			if got := f.must("SIOCGLIFBRDADDR", ctl.AF_INET, ctl.Lifreq{Name: tc.unit}).Broadaddr; got != addr(tc.brd) {
				t.Errorf("broadcast %v", got)
			}
			if diff := cmp.Diff(ires, f.confIREs("tap0")); diff != "" {
				t.Errorf("SIOCSLIFBRDADDR changed the IREs (-before +after):\n%s", diff)
			}
		})
	}
}

// C9: SIOCGLIFDSTADDR on a unit that is not point-to-point.
func TestC9_GetDstAddrNotPointToPoint(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	f.confPlumb6("tap0")
	f.configure("tap0", "10.9.0.1", 24)
	for _, tc := range []struct {
		name string
		fam  ctl.Family
	}{{"tap0", ctl.AF_INET}, {"tap0", ctl.AF_INET6}, {"lo0", ctl.AF_INET}} {
		t.Run(string(tc.fam)+" "+tc.name, func(t *testing.T) {
			f.confSub(t).confFails("SIOCGLIFDSTADDR", tc.fam, ctl.Lifreq{Name: tc.name}, ctl.EADDRNOTAVAIL)
		})
	}
}

// C10: SIOCSLIFDSTADDR on an Ethernet unit makes it point-to-point:
// BROADCAST goes, the subnet is the destination, and (up) the interface
// IRE is the destination's host route.
func TestC10_DstAddrMakesPointToPoint(t *testing.T) {
	for _, up := range []bool{false, true} {
		t.Run(map[bool]string{false: "down", true: "up"}[up], func(t *testing.T) {
			f := newFixture(t, "tap0")
			f.plumb("tap0")
			f.must("SIOCSLIFADDR", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Addr: addr("10.10.0.1")})
			if up {
				f.setUp("tap0", ctl.AF_INET, true)
			}
			f.must("SIOCSLIFDSTADDR", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Dstaddr: addr("10.10.0.2")})
			fl := f.flags("tap0", ctl.AF_INET)
			if fl&ctl.IFF_POINTOPOINT == 0 || fl&ctl.IFF_BROADCAST != 0 || (fl&ctl.IFF_UP != 0) != up {
				t.Errorf("flags %s, want POINTOPOINT, no BROADCAST, UP=%v", fl, up)
			}
			if s := f.must("SIOCGLIFSUBNET", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}).Subnet; s != addr("10.10.0.2") {
				t.Errorf("subnet %v, want the destination", s)
			}
			if d := f.must("SIOCGLIFDSTADDR", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}).Dstaddr; d != addr("10.10.0.2") {
				t.Errorf("destination %v", d)
			}
			f.confFails("SIOCGLIFBRDADDR", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}, ctl.EADDRNOTAVAIL)
			var want []string
			if up {
				want = []string{"IF_RESOLVER 10.10.0.2/32", "LOCAL 10.10.0.1/32"}
			}
			if diff := cmp.Diff(want, f.confIREs("tap0")); diff != "" {
				t.Errorf("IREs (-want +got):\n%s", diff)
			}
		})
	}
}

// C11: unit 0 of an IPv6 Ethernet ill holds a link-local address: a
// global one is refused, a link-local set by hand stays through token
// changes.
func TestC11_IPv6UnitZeroLinkLocal(t *testing.T) {
	f := newFixture(t, "tap0")
	f.confPlumb6("tap0")
	for _, a := range []string{"2001:db8::1", "fd00::1", "ff02::1"} {
		f.confFails("SIOCSLIFADDR", ctl.AF_INET6, ctl.Lifreq{Name: "tap0", Addr: addr(a)}, ctl.EADDRNOTAVAIL)
	}
	f.must("SIOCSLIFADDR", ctl.AF_INET6, ctl.Lifreq{Name: "tap0", Addr: addr("fe80::1")})
	f.must("SIOCSLIFTOKEN", ctl.AF_INET6, ctl.Lifreq{Name: "tap0", Token: addr("::77"), Addrlen: 64})
	if a := f.must("SIOCGLIFADDR", ctl.AF_INET6, ctl.Lifreq{Name: "tap0"}).Addr; a != addr("fe80::1") {
		t.Errorf("manual link-local rewritten to %v by a token", a)
	}
}

// C12: a token set on an UP IPv6 ill rewrites its (automatic) link-local
// address, and the unit comes back up with the new IREs.
func TestC12_TokenRewritesLinkLocal(t *testing.T) {
	f := newFixture(t, "tap0")
	f.confPlumb6("tap0")
	f.setUp("tap0", ctl.AF_INET6, true)
	if _, ok := f.confIRE(route.IRE_LOCAL, "fe80::ff:fe00:1/128", "tap0"); !ok {
		t.Fatalf("no local IRE for the EUI-64 link-local: %v", f.confIREs("tap0"))
	}
	ev := f.confRecord()
	f.must("SIOCSLIFTOKEN", ctl.AF_INET6, ctl.Lifreq{Name: "tap0", Token: addr("::1234"), Addrlen: 64})
	if a := f.must("SIOCGLIFADDR", ctl.AF_INET6, ctl.Lifreq{Name: "tap0"}); a.Addr != addr("fe80::1234") || a.Addrlen != 64 {
		t.Errorf("link-local %v/%d, want fe80::1234/64", a.Addr, a.Addrlen)
	}
	if f.flags("tap0", ctl.AF_INET6)&ctl.IFF_UP == 0 {
		t.Error("unit not back up")
	}
	if _, ok := f.confIRE(route.IRE_LOCAL, "fe80::1234/128", "tap0"); !ok {
		t.Errorf("no local IRE for fe80::1234: %v", f.confIREs("tap0"))
	}
	if got := confKinds(ev.take(), RTM_DELETE, RTM_CHGADDR, RTM_ADD); !cmp.Equal(got, []EventKind{RTM_DELETE, RTM_CHGADDR, RTM_ADD}) {
		t.Errorf("events %v, want the down, the new address, the up", got)
	}
}

// C13: the IREs of 10.1.2.3/24: local, interface 10.1.2.0/24 and six
// broadcast IREs (the classful pair because /8 is shorter than /24).
func TestC13_IREsOfOneUnit(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	f.configure("tap0", "10.1.2.3", 24)
	want := []string{
		"BROADCAST 0.0.0.0/32", "BROADCAST 10.0.0.0/32", "BROADCAST 10.1.2.0/32",
		"BROADCAST 10.1.2.255/32", "BROADCAST 10.255.255.255/32", "BROADCAST 255.255.255.255/32",
		"IF_RESOLVER 10.1.2.0/24", "LOCAL 10.1.2.3/32",
	}
	if diff := cmp.Diff(want, f.confIREs("tap0")); diff != "" {
		t.Errorf("IREs (-want +got):\n%s", diff)
	}
	for _, e := range f.m.Routes().All() {
		if e.Ill == "tap0" && (e.Flags&route.RTF_KERNEL == 0 || e.Gateway != addr("10.1.2.3")) {
			t.Errorf("IRE %s %s: flags %v gateway %v, want RTF_KERNEL through 10.1.2.3", e.Type, e.Dest, e.Flags, e.Gateway)
		}
	}
}

// C14: down removes every IRE of the unit and emits RTM_IFINFO, then
// RTM_DELETE.
func TestC14_DownRemovesIREsInOrder(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	f.configure("tap0", "10.1.2.3", 24)
	ev := f.confRecord()
	if err := f.setUp("tap0", ctl.AF_INET, false); err != nil {
		t.Fatal(err)
	}
	if got := f.confIREs("tap0"); got != nil {
		t.Errorf("IREs left after down: %v", got)
	}
	if got := confKinds(ev.take()); !cmp.Equal(got, []EventKind{RTM_IFINFO, RTM_DELETE}) {
		t.Errorf("events %v, want [RTM_IFINFO RTM_DELETE]", got)
	}
}

// C15: a route through a gateway bound to tap0 goes when tap0 goes down
// and comes back when it comes up.
func TestC15_SavedRouteRestored(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	f.configure("tap0", "10.15.0.1", 24)
	for _, r := range []ctl.Rtentry{
		{Dst: addr("192.0.2.0"), Genmask: addr("255.255.255.0"), Gateway: addr("10.15.0.254"), Flags: ctl.RTF_GATEWAY, Ifp: "tap0"},
		{Dst: addr("198.51.100.0"), Genmask: addr("255.255.255.0"), Gateway: addr("10.15.0.1")},
	} {
		if err := f.m.Do(root, "SIOCADDRT", ctl.AF_INET, &r); err != nil {
			t.Fatalf("SIOCADDRT %+v: %v", r, err)
		}
	}
	want := []string{"192.0.2.0/24", "198.51.100.0/24"}
	admin := func() []string {
		var out []string
		for _, e := range f.m.Routes().All() {
			if e.Flags&route.RTF_KERNEL == 0 && e.Ill == "tap0" {
				out = append(out, e.Dest.String())
			}
		}
		return out
	}
	if diff := cmp.Diff(want, admin()); diff != "" {
		t.Fatalf("routes (-want +got):\n%s", diff)
	}
	f.setUp("tap0", ctl.AF_INET, false)
	if got := admin(); got != nil {
		t.Errorf("routes while tap0 is down: %v", got)
	}
	f.setUp("tap0", ctl.AF_INET, true)
	if diff := cmp.Diff(want, admin()); diff != "" {
		t.Errorf("routes after up (-want +got):\n%s", diff)
	}
}

// C16: route requests with a non-contiguous mask, gateway 0.0.0.0, or
// deleting a route the interface made.
func TestC16_RouteErrors(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	f.configure("tap0", "10.16.0.1", 24)
	gw := addr("10.16.0.254")
	cases := []struct {
		name, op string
		r        ctl.Rtentry
		want     ctl.Errno
	}{
		{"non-contiguous mask", "SIOCADDRT", ctl.Rtentry{Dst: addr("192.168.0.0"), Genmask: addr("255.0.255.0"), Gateway: gw, Flags: ctl.RTF_GATEWAY}, ctl.ENOTSUP},
		{"gateway 0.0.0.0", "SIOCADDRT", ctl.Rtentry{Dst: addr("192.168.0.0"), Genmask: addr("255.255.0.0"), Gateway: addr("0.0.0.0"), Flags: ctl.RTF_GATEWAY}, ctl.ENETUNREACH},
		{"no gateway", "SIOCADDRT", ctl.Rtentry{Dst: addr("192.168.0.0"), Genmask: addr("255.255.0.0"), Flags: ctl.RTF_GATEWAY}, ctl.ENETUNREACH},
		{"delete the interface route", "SIOCDELRT", ctl.Rtentry{Dst: addr("10.16.0.0"), Genmask: addr("255.255.255.0"), Gateway: addr("10.16.0.1")}, ctl.ESRCH},
		{"delete the local route", "SIOCDELRT", ctl.Rtentry{Dst: addr("10.16.0.1"), Gateway: addr("10.16.0.1"), Flags: ctl.RTF_HOST}, ctl.ESRCH},
		{"delete a broadcast route", "SIOCDELRT", ctl.Rtentry{Dst: addr("10.16.0.255"), Flags: ctl.RTF_HOST}, ctl.ESRCH},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := f.confSub(t)
			f.confUnchanged(tc.op, func() {
				r := tc.r
				if err := f.m.Do(root, tc.op, ctl.AF_INET, &r); ctl.ErrnoOf(err) != tc.want {
					t.Fatalf("%v, want %v", err, tc.want)
				}
			})
		})
	}
}

// C17: toggling any bit of IFF_CANTCHANGE succeeds and changes nothing.
func TestC17_CantChangeBitsIgnored(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	f.confPlumb6("tap0")
	f.configure("tap0", "10.17.0.1", 24)
	for bit := ctl.Flags(1); bit != 0; bit <<= 1 {
		if cantChange&bit == 0 {
			continue
		}
		for _, u := range []struct {
			name string
			fam  ctl.Family
		}{{"tap0", ctl.AF_INET}, {"tap0", ctl.AF_INET6}, {"lo0", ctl.AF_INET}} {
			t.Run(bit.Names()+" "+string(u.fam)+" "+u.name, func(t *testing.T) {
				f := f.confSub(t)
				before := confState(f.m)
				f.must("SIOCSLIFFLAGS", u.fam, ctl.Lifreq{Name: u.name, Flags: f.flags(u.name, u.fam) ^ bit})
				if diff := cmp.Diff(before, confState(f.m)); diff != "" {
					t.Errorf("state changed (-before +after):\n%s", diff)
				}
			})
		}
	}
}

// C18: TEMPORARY on IPv4 and ROUTER on the loopback are EINVAL.
func TestC18_FlagsInvalidForTheInterface(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	f.confPlumb6("tap0")
	f.configure("tap0", "10.18.0.1", 24)
	cases := []struct {
		name string
		fam  ctl.Family
		on   ctl.Flags
		want ctl.Errno
	}{
		{"tap0", ctl.AF_INET, ctl.IFF_TEMPORARY, ctl.EINVAL},
		{"lo0", ctl.AF_INET, ctl.IFF_TEMPORARY, ctl.EINVAL},
		{"lo0", ctl.AF_INET, ctl.IFF_ROUTER, ctl.EINVAL},
		{"lo0", ctl.AF_INET6, ctl.IFF_ROUTER, ctl.EINVAL},
		{"tap0", ctl.AF_INET6, ctl.IFF_TEMPORARY, 0},
	}
	for _, tc := range cases {
		t.Run(string(tc.fam)+" "+tc.name+" "+tc.on.Names(), func(t *testing.T) {
			f := f.confSub(t)
			r := ctl.Lifreq{Name: tc.name, Flags: f.flags(tc.name, tc.fam) | tc.on}
			if tc.want != 0 {
				f.confFails("SIOCSLIFFLAGS", tc.fam, r, tc.want)
				return
			}
			f.must("SIOCSLIFFLAGS", tc.fam, r)
			if f.flags(tc.name, tc.fam)&tc.on == 0 {
				t.Errorf("%s not set", tc.on.Names())
			}
		})
	}
}

// C19: PRIVATE toggled on an UP unit takes it down and back up (RTM_DELETE
// then RTM_ADD), and its IREs carry RTF_PRIVATE while it is set.
func TestC19_PrivateCyclesTheUnit(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	f.configure("tap0", "10.19.0.1", 24)
	ev := f.confRecord()
	for _, on := range []bool{true, false} {
		var err error
		if on {
			err = f.confSetFlags("tap0", ctl.AF_INET, ctl.IFF_PRIVATE, 0)
		} else {
			err = f.confSetFlags("tap0", ctl.AF_INET, 0, ctl.IFF_PRIVATE)
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := confKinds(ev.take(), RTM_DELETE, RTM_ADD); !cmp.Equal(got, []EventKind{RTM_DELETE, RTM_ADD}) {
			t.Errorf("PRIVATE=%v: events %v, want [RTM_DELETE RTM_ADD]", on, got)
		}
		n := 0
		for _, e := range f.m.Routes().All() {
			if e.Ill == "tap0" {
				n++
				if (e.Flags&route.RTF_PRIVATE != 0) != on {
					t.Errorf("PRIVATE=%v: IRE %s %s flags %v", on, e.Type, e.Dest, e.Flags)
				}
			}
		}
		if n == 0 {
			t.Errorf("PRIVATE=%v: tap0 has no IREs after the cycle", on)
		}
	}
}

// C20: bring-up with no conflict: DAD in progress (the address is not
// given to the stack, so nothing can use it as a source), then done with
// RTM_ADD only then.
func TestC20_DADInProgressThenDone(t *testing.T) {
	f := newDADFixture(t)
	a := addr("10.20.0.1")
	f.drain()
	f.configure("tap0", a.String(), 24)
	if f.dadState("tap0") != 1 || f.stackHas(a) || f.flags("tap0", ctl.AF_INET)&ctl.IFF_UP == 0 {
		t.Fatalf("during DAD: state %d, stack has it %v, flags %s", f.dadState("tap0"), f.stackHas(a), f.flags("tap0", ctl.AF_INET))
	}
	if got := confKinds(f.drain(), RTM_ADD); got != nil {
		t.Fatalf("%v before DAD ended", got)
	}
	f.clock.Advance(dadTime)
	if f.dadState("tap0") != 2 || !f.stackHas(a) {
		t.Fatalf("after DAD: state %d, stack has it %v", f.dadState("tap0"), f.stackHas(a))
	}
	if got := confKinds(f.drain(), RTM_ADD); len(got) != 1 {
		t.Errorf("RTM_ADD events after DAD: %v, want one", got)
	}
}

// C21: a conflict after DAD is defended _max_defend (3) times within
// _defend_interval; the fourth makes the unit DUPLICATE and down.
func TestC21_DefendThenDuplicate(t *testing.T) {
	f := newDADFixture(t)
	a := addr("10.21.0.1")
	f.setProp("_arp_publish_count", "1")
	f.setProp("_dad_announce_interval", "0")
	f.configure("tap0", a.String(), 24)
	f.clock.Advance(dadTime)
	f.wire.waitFrames(1, isAnnouncementOf(a))
	for n := 1; n <= 3; n++ {
		f.wire.send(claim(a))
		f.wire.waitFrames(1+n, isAnnouncementOf(a))
		if fl := f.flags("tap0", ctl.AF_INET); fl&(ctl.IFF_UP|ctl.IFF_DUPLICATE) != ctl.IFF_UP {
			t.Fatalf("after conflict %d: flags %s", n, fl)
		}
	}
	f.wire.send(claim(a))
	f.waitEvent(DAD_DUPLICATE)
	if fl := f.flags("tap0", ctl.AF_INET); fl&(ctl.IFF_UP|ctl.IFF_DUPLICATE) != ctl.IFF_DUPLICATE {
		t.Errorf("after the fourth conflict: flags %s, want DUPLICATE without UP", fl)
	}
}

// C22: carrier down and up toggles RUNNING with RTM_IFINFO each time and
// re-runs DAD on the up address.
func TestC22_LinkDownUpRerunsDAD(t *testing.T) {
	f := newDADFixture(t)
	a := addr("10.22.0.1")
	f.configure("tap0", a.String(), 24)
	f.clock.Advance(dadTime)
	f.drain()
	lk, _ := f.links.Get("tap0")
	dev := lk.Device().(*memory.Device)
	dev.SetCarrier(false)
	if fl := f.flags("tap0", ctl.AF_INET); fl&ctl.IFF_RUNNING != 0 || f.dadState("tap0") != 1 {
		t.Fatalf("link down: flags %s, DAD state %d", fl, f.dadState("tap0"))
	}
	if got := confKinds(f.drain(), RTM_IFINFO); len(got) == 0 {
		t.Error("no RTM_IFINFO at link down")
	}
	dev.SetCarrier(true)
	if fl := f.flags("tap0", ctl.AF_INET); fl&ctl.IFF_RUNNING == 0 || f.dadState("tap0") != 1 {
		t.Fatalf("link up: flags %s, DAD state %d; want RUNNING and probing", fl, f.dadState("tap0"))
	}
	f.clock.Advance(dadTime)
	f.wire.waitFrames(2*probeCount, isProbeFor(a))
	if f.dadState("tap0") != 2 || !f.stackHas(a) {
		t.Error("address not ready after the re-probe")
	}
	if got := confKinds(f.drain(), RTM_IFINFO, RTM_ADD); len(got) < 2 || got[len(got)-1] != RTM_ADD {
		t.Errorf("events after link up %v, want RTM_IFINFO … RTM_ADD", got)
	}
}

// C23: SIOCSLIFMTU limits; a set MTU is FIXEDMTU and link SDU
// notifications no longer move it.
func TestC23_MTUFixed(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	for _, v := range []int64{67, 1501, 0, -1} {
		f.confFails("SIOCSLIFMTU", ctl.AF_INET, ctl.Lifreq{Name: "tap0", MTU: v}, ctl.EINVAL)
	}
	lk, _ := f.links.Get("tap0")
	dev := lk.Device().(*memory.Device)
	dev.SetMTU(1400) // not fixed yet: the MTU follows the link
	if got := f.must("SIOCGLIFMTU", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}).MTU; got != 1400 {
		t.Fatalf("MTU %d after an SDU notification of 1400", got)
	}
	f.must("SIOCSLIFMTU", ctl.AF_INET, ctl.Lifreq{Name: "tap0", MTU: 1500})
	if f.flags("tap0", ctl.AF_INET)&ctl.IFF_FIXEDMTU == 0 {
		t.Error("FIXEDMTU not set")
	}
	dev.SetMTU(9000)
	if got := f.must("SIOCGLIFMTU", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}).MTU; got != 1500 {
		t.Errorf("FIXEDMTU ill moved to %d", got)
	}
}

// C24: SIOCSLIFLNKINFO limits.
func TestC24_LnkInfoLimits(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	f.confPlumb6("tap0")
	u := f.confAddIf(ctl.AF_INET, "tap0")
	cases := []struct {
		name string
		fam  ctl.Family
		unit string
		in   ctl.Ifinfo
	}{
		{"maxmtu above the link MTU", ctl.AF_INET, "tap0", ctl.Ifinfo{MaxMTU: 1501}},
		{"maxmtu below 68", ctl.AF_INET, "tap0", ctl.Ifinfo{MaxMTU: 67}},
		{"IPv6 maxmtu below 1280", ctl.AF_INET6, "tap0", ctl.Ifinfo{MaxMTU: 1279}},
		{"reachtime 3600001", ctl.AF_INET, "tap0", ctl.Ifinfo{ReachTime: 3600001}},
		{"reachretrans 100001", ctl.AF_INET, "tap0", ctl.Ifinfo{ReachRetrans: 100001}},
		{"logical unit", ctl.AF_INET, u, ctl.Ifinfo{MaxHops: 4}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			f.confSub(t).confFails("SIOCSLIFLNKINFO", tc.fam, ctl.Lifreq{Name: tc.unit, Ifinfo: &in}, ctl.EINVAL)
		})
	}
	f.must("SIOCSLIFLNKINFO", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Ifinfo: &ctl.Ifinfo{MaxHops: 0, ReachTime: 3600000, ReachRetrans: 100000, MaxMTU: 1500}})
	got := f.must("SIOCGLIFLNKINFO", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}).Ifinfo
	if want := (ctl.Ifinfo{MaxHops: 0, ReachTime: 3600000, ReachRetrans: 100000, MaxMTU: 1500}); got == nil || *got != want {
		t.Errorf("SIOCGLIFLNKINFO %+v, want %+v", got, want)
	}
}

// C28: usesrc rules: a client may use a provider; the provider cannot
// also be a client, an interface cannot use itself, an unknown index is
// ENXIO; SIOCGLIFSRCOF lists the clients.
func TestC28_Usesrc(t *testing.T) {
	f := newFixture(t, "tap0", "tap1", "tap2")
	for _, n := range []string{"tap0", "tap1", "tap2"} {
		f.plumb(n)
	}
	i0, i1 := f.confIndex("tap0", ctl.AF_INET), f.confIndex("tap1", ctl.AF_INET)
	f.must("SIOCSLIFUSESRC", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Index: i1}) // tap0 uses tap1's addresses
	cases := []struct {
		name   string
		client string
		index  uint32
		want   ctl.Errno
	}{
		{"provider as client", "tap1", i0, ctl.EINVAL},
		{"provider of another", "tap1", f.confIndex("tap2", ctl.AF_INET), ctl.EINVAL},
		{"client as provider", "tap2", i0, ctl.EINVAL},
		{"itself", "tap2", f.confIndex("tap2", ctl.AF_INET), ctl.EINVAL},
		{"unknown index", "tap2", 999, ctl.ENXIO},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f.confSub(t).confFails("SIOCSLIFUSESRC", ctl.AF_INET, ctl.Lifreq{Name: tc.client, Index: tc.index}, tc.want)
		})
	}
	if got := f.must("SIOCGLIFUSESRC", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}).Index; got != i1 {
		t.Errorf("tap0 usesrc %d, want %d", got, i1)
	}
	s := ctl.Lifsrcof{Ifindex: i1, Maxlen: 4 * ctl.LifreqSize}
	if err := f.m.Do(root, "SIOCGLIFSRCOF", ctl.AF_INET, &s); err != nil || s.Len != ctl.LifreqSize || len(s.Req) != 1 || s.Req[0].Name != "tap0" {
		t.Errorf("SIOCGLIFSRCOF tap1: %+v, %v; want tap0", s, err)
	}
}

// C29: SIOCSLIFZONE refuses a non-global zone for unit 0 (ENOTSUP) and a
// zone that does not exist (EINVAL).
func TestC29_ZoneRefusals(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	f.configure("tap0", "10.29.0.1", 24)
	u := f.confAddIf(ctl.AF_INET, "tap0")
	f.configure(u, "10.29.0.2", 24)
	running := f.newZone("z1", ctl.ZoneRunning)
	configured := f.newZone("z2", "")
	cases := []struct {
		name string
		unit string
		id   int32
		want ctl.Errno
	}{
		{"unit 0 to a running zone", "tap0", running, ctl.ENOTSUP},
		{"unit 0 to a zone that does not exist", "tap0", 4242, ctl.ENOTSUP},
		{"zone that does not exist", u, 4242, ctl.EINVAL},
		{"zone only configured", u, configured, ctl.EINVAL},
		{"ALL_ZONES on an unlabeled system", u, ctl.ALL_ZONES, ctl.ENOTSUP},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f.confSub(t).confFails("SIOCSLIFZONE", ctl.AF_INET, ctl.Lifreq{Name: tc.unit, ZoneID: tc.id}, tc.want)
		})
	}
	f.must("SIOCSLIFZONE", ctl.AF_INET, ctl.Lifreq{Name: u, ZoneID: running})
	if z := f.must("SIOCGLIFZONE", ctl.AF_INET, ctl.Lifreq{Name: u}); z.ZoneID != running || z.Zone != "z1" {
		t.Errorf("zone of %s: %d %q", u, z.ZoneID, z.Zone)
	}
}

// C30: a get on a unit while a set runs on it sees the state before or
// after the set, never the middle: SIOCSLIFADDR on an UP unit takes it
// down and up again (with DAD pending), yet every concurrent
// SIOCGLIFFLAGS sees it UP with one of the two addresses.
func TestC30_GetSeesWholeSets(t *testing.T) {
	f := newDADFixture(t)
	f.configure("tap0", "10.30.0.1", 24)
	addrs := []netip.Addr{addr("10.30.0.1"), addr("10.30.0.2")}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // the fixture's event channel must not fill up
		defer wg.Done()
		for {
			select {
			case <-f.events:
			case <-stop:
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			r := ctl.Lifreq{Name: "tap0", Addr: addrs[i%2]}
			if err := f.m.Do(root, "SIOCSLIFADDR", ctl.AF_INET, &r); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for n := range 300 {
		r := ctl.Lifreq{Name: "tap0"}
		if err := f.m.Do(root, "SIOCGLIFFLAGS", ctl.AF_INET, &r); err != nil {
			t.Fatal(err)
		}
		if r.Flags&ctl.IFF_UP == 0 {
			t.Fatalf("get %d saw the unit down in the middle of SIOCSLIFADDR: %s", n, r.Flags)
		}
		a := ctl.Lifreq{Name: "tap0"}
		if err := f.m.Do(root, "SIOCGLIFADDR", ctl.AF_INET, &a); err != nil || !slices.Contains(addrs, a.Addr) {
			t.Fatalf("get %d: address %v, %v", n, a.Addr, err)
		}
	}
	close(stop)
	wg.Wait()
	if f.dadState("tap0") != 1 {
		t.Error("DAD not pending after the last address change")
	}
}
