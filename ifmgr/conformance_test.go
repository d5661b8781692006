package ifmgr

// The conformance suite, part 1: one test per [CHECK-n] item of
// spec/ifmgr.md, named after it (TestCHECK_<n>_<what>), so a reader can go
// from the spec to the test and back. docs/conformance.md is the map and
// lists the items that have no test, with the reason. Appendix C is in
// conformance_c_test.go.

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tapstack/tapstack/arp"
	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/route"
)

// confEvents records the events a manager delivers.
type confEvents struct {
	mu  sync.Mutex
	evs []Event
}

// confRecord subscribes to f's events until the test ends.
func (f *fixture) confRecord() *confEvents {
	r := &confEvents{}
	cancel := f.m.Subscribe(func(e Event) {
		r.mu.Lock()
		r.evs = append(r.evs, e)
		r.mu.Unlock()
	})
	f.t.Cleanup(cancel)
	return r
}

// take returns the events delivered so far and forgets them. Set-requests
// deliver their events before Do returns, so this is complete after one.
func (r *confEvents) take() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.evs
	r.evs = nil
	return out
}

// confKinds lists the kinds of evs, keeping only those in keep (all if
// keep is empty).
func confKinds(evs []Event, keep ...EventKind) []EventKind {
	var out []EventKind
	for _, e := range evs {
		if len(keep) == 0 || slices.Contains(keep, e.Kind) {
			out = append(out, e.Kind)
		}
	}
	return out
}

// confSub is f reporting to subtest t (the manager is shared).
func (f *fixture) confSub(t *testing.T) *fixture {
	g := *f
	g.t = t
	return &g
}

// confState renders everything ifmgr holds, down units and lo0 included,
// read under the manager's lock. The shared snapshot lists units the way
// SIOCGLIFCONF does with flags 0xff, which includes LIFC_EXTERNAL_SOURCE
// and so leaves out down and loopback units; this covers them.
func confState(m *Manager) []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	for _, il := range m.illsOfLocked(ctl.AF_UNSPEC) {
		p := il.phy
		add("phyint %s index=%d flags=%s group=%q", p.name, p.index, p.flags, p.group)
		add("ill %s v6=%v ppa=%d flags=%s mtu=%d/%d/%d metric=%d token=%v/%d manual=%v,%v lnk=%d,%d,%d mux=%d,%d usesrc=%d ring=%v bound=%v saved=%v",
			il.name, il.v6, il.ppa, il.flags, il.mtu, il.maxFrag, il.userMTU, il.metric, il.token, il.tokenLen,
			il.manualToken, il.manualLinkLocal, il.maxHops, il.reachTime, il.reachRetrans, il.ipMuxID, il.arpMuxID,
			il.usesrcIndex, il.inRing(), il.bound, il.saved)
		for _, u := range il.ipifs {
			add("unit %s flags=%s addr=%v mask=%v subnet=%v brd=%v dst=%v zone=%q ires=%d dad=%v",
				u.name(), u.flags, u.addr, u.mask, u.subnet, u.brd, u.dst, u.zone, len(u.ires), u.dad.pending)
		}
	}
	for _, e := range m.routes.All() {
		add("ire %s %s gw=%v ill=%s zone=%q flags=%v refs=%d", e.Type, e.Dest, e.Gateway, e.Ill, e.Zone, e.Flags, e.Refs)
	}
	for name, z := range m.zones.byName {
		add("zone %s id=%d %s", name, z.id, z.state)
	}
	for name, v := range m.tun {
		add("tunable %s=%d", name, v)
	}
	add("forwarding=%v addrsPerIf=%d", m.forwarding, m.addrsPerIf)
	slices.Sort(out)
	return out
}

// confUnchanged runs do (a request that fails; do checks the errno) and
// then requires confState to be what it was.
func (f *fixture) confUnchanged(what string, do func()) {
	f.t.Helper()
	before := confState(f.m)
	do()
	if diff := cmp.Diff(before, confState(f.m)); diff != "" {
		f.t.Fatalf("%s failed but changed state (-before +after):\n%s", what, diff)
	}
}

// confFails is fails (errno, the request named in the error, the shared
// snapshot) plus confState unchanged.
func (f *fixture) confFails(op string, fam ctl.Family, r ctl.Lifreq, want ctl.Errno) {
	f.t.Helper()
	f.confUnchanged(op, func() { f.fails(op, fam, r, want) })
}

// confPlumb6 plumbs the IPv6 ill of name.
func (f *fixture) confPlumb6(name string) {
	f.t.Helper()
	f.must("SIOCSLIFNAME", ctl.AF_INET6, ctl.Lifreq{Name: name, Flags: ctl.IFF_IPV6})
}

// confAddIf adds logical unit name ("tap0" for any, "tap0:3" for that
// one) and returns its name.
func (f *fixture) confAddIf(fam ctl.Family, name string) string {
	f.t.Helper()
	return f.must("SIOCLIFADDIF", fam, ctl.Lifreq{Name: name}).Name
}

// confIRE finds the IRE of type t for dest (a prefix) on ill.
func (f *fixture) confIRE(t route.Type, dest, ill string) (route.Entry, bool) {
	p := netip.MustParsePrefix(dest)
	for _, e := range f.m.Routes().All() {
		if e.Type == t && e.Dest == p && e.Ill == ill {
			return e, true
		}
	}
	return route.Entry{}, false
}

// confUnits lists the logical names of one family, as SIOCGLIFCONF shows
// them to the global zone.
func (f *fixture) confUnits(fam ctl.Family) []string {
	f.t.Helper()
	lc := ctl.Lifconf{Family: fam, Flags: ctl.LIFC_NOXMIT | ctl.LIFC_TEMPORARY | ctl.LIFC_ALLZONES | ctl.LIFC_UNDER_IPMP}
	if err := f.m.Do(root, "SIOCGLIFCONF", fam, &lc); err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, r := range lc.Req {
		out = append(out, r.Name)
	}
	return out
}

// [CHECK-1] SIOCSLIFNAME with lifr_ppa UINT_MAX chooses the lowest PPA
// free for the type, ignores the digits in the name and returns the result.
func TestCHECK_1_PPAChosenForType(t *testing.T) {
	cases := []struct {
		name    string
		before  []ctl.Lifreq // plumbed first
		req     ctl.Lifreq
		want    string
		wantPPA uint32
	}{
		{"empty system", nil, ctl.Lifreq{Name: "tap", Link: "net0"}, "tap0", 0},
		{"digits in the name ignored", nil, ctl.Lifreq{Name: "tap7", Link: "net0"}, "tap0", 0},
		{"next after a used PPA", []ctl.Lifreq{{Name: "tap0", Link: "net0"}}, ctl.Lifreq{Name: "tap", Link: "net1"}, "tap1", 1},
		{"lowest hole", []ctl.Lifreq{{Name: "tap0", Link: "net0"}, {Name: "tap2", Link: "net2"}}, ctl.Lifreq{Name: "tap", Link: "net1"}, "tap1", 1},
		{"other types do not count", []ctl.Lifreq{{Name: "vnic0", Link: "net0"}}, ctl.Lifreq{Name: "tap", Link: "net1"}, "tap0", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, "net0", "net1", "net2")
			for _, b := range tc.before {
				b.Flags = ctl.IFF_IPV4
				f.must("SIOCSLIFNAME", ctl.AF_INET, b)
			}
			r := tc.req
			r.PPA, r.Flags = ctl.PPAAny, ctl.IFF_IPV4
			got := f.must("SIOCSLIFNAME", ctl.AF_INET, r)
			if got.Name != tc.want || got.PPA != tc.wantPPA {
				t.Fatalf("got %s ppa %d, want %s ppa %d", got.Name, got.PPA, tc.want, tc.wantPPA)
			}
			if !slices.Contains(f.confUnits(ctl.AF_INET), tc.want) {
				t.Errorf("%s is not listed by SIOCGLIFCONF: %v", tc.want, f.confUnits(ctl.AF_INET))
			}
		})
	}
}

// [CHECK-3] lifr_flags must name exactly one family.
func TestCHECK_3_ExactlyOneFamily(t *testing.T) {
	cases := []struct {
		name  string
		fam   ctl.Family
		flags ctl.Flags
	}{
		{"both, inet socket", ctl.AF_INET, ctl.IFF_IPV4 | ctl.IFF_IPV6},
		{"both, inet6 socket", ctl.AF_INET6, ctl.IFF_IPV4 | ctl.IFF_IPV6},
		{"neither", ctl.AF_INET, 0},
		{"neither, only BROADCAST", ctl.AF_INET, ctl.IFF_BROADCAST},
		{"neither, inet6 socket", ctl.AF_INET6, ctl.IFF_UP},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, "tap0")
			f.confFails("SIOCSLIFNAME", tc.fam, ctl.Lifreq{Name: "tap0", Flags: tc.flags}, ctl.EINVAL)
			f.confFails("SIOCSLIFNAME", tc.fam, ctl.Lifreq{Name: "tap", PPA: ctl.PPAAny, Link: "tap0", Flags: tc.flags}, ctl.EINVAL)
		})
	}
}

// [CHECK-5] SIOCGLIFSRCOF always reports the size it needs in lifs_len and
// returns records only when they fit in lifs_maxlen.
func TestCHECK_5_SrcofSizing(t *testing.T) {
	for _, clients := range []int{0, 1, 2} {
		for _, slack := range []int{-1, 0, 1} {
			need := clients * ctl.LifreqSize
			maxlen := max(need+slack, 0)
			t.Run(itoa(clients)+" clients maxlen "+itoa(maxlen), func(t *testing.T) {
				f := newFixture(t, "tap0", "tap1", "tap2")
				for _, n := range []string{"tap0", "tap1", "tap2"} {
					f.plumb(n)
				}
				prov := f.must("SIOCGLIFINDEX", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}).Index
				var want []string
				for _, c := range []string{"tap1", "tap2"}[:clients] {
					f.must("SIOCSLIFUSESRC", ctl.AF_INET, ctl.Lifreq{Name: c, Index: prov})
					want = append(want, c)
				}
				s := ctl.Lifsrcof{Ifindex: prov, Maxlen: maxlen}
				if err := f.m.Do(root, "SIOCGLIFSRCOF", ctl.AF_INET, &s); err != nil {
					t.Fatal(err)
				}
				if s.Len != need {
					t.Errorf("lifs_len %d, want %d", s.Len, need)
				}
				var got []string
				for _, r := range s.Req {
					got = append(got, r.Name)
				}
				if need == 0 || need > maxlen {
					want = nil
				}
				slices.Sort(got)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("records (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// [CHECK-6] SIOCLIFADDIF without a unit takes the lowest free one, holes
// included.
func TestCHECK_6_AddIfLowestFreeUnit(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	steps := []struct {
		op, name, want string
	}{
		{"SIOCLIFADDIF", "tap0", "tap0:1"},
		{"SIOCLIFADDIF", "tap0", "tap0:2"},
		{"SIOCLIFREMOVEIF", "tap0:1", ""},
		{"SIOCLIFADDIF", "tap0", "tap0:1"},
		{"SIOCLIFADDIF", "tap0", "tap0:3"},
	}
	for _, s := range steps {
		got := f.must(s.op, ctl.AF_INET, ctl.Lifreq{Name: s.name})
		if s.want != "" && got.Name != s.want {
			t.Fatalf("%s %s → %s, want %s", s.op, s.name, got.Name, s.want)
		}
	}
	if diff := cmp.Diff([]string{"lo0", "tap0", "tap0:1", "tap0:2", "tap0:3"}, f.confUnits(ctl.AF_INET)); diff != "" {
		t.Errorf("units (-want +got):\n%s", diff)
	}
}

// [CHECK-7] A unit id must be below _addrs_per_if (default 256).
func TestCHECK_7_AddIfUnitLimit(t *testing.T) {
	cases := []struct {
		fam  ctl.Family
		unit string
		want ctl.Errno // 0: success
	}{
		{ctl.AF_INET, "tap0:256", ctl.ERANGE},
		{ctl.AF_INET6, "tap0:256", ctl.ERANGE},
		{ctl.AF_INET, "tap0:8192", ctl.ERANGE},
		{ctl.AF_INET, "tap0:255", 0},
		{ctl.AF_INET6, "tap0:255", 0},
	}
	for _, tc := range cases {
		t.Run(string(tc.fam)+" "+tc.unit, func(t *testing.T) {
			f := newFixture(t, "tap0")
			f.plumb("tap0")
			f.confPlumb6("tap0")
			if tc.want != 0 {
				f.confFails("SIOCLIFADDIF", tc.fam, ctl.Lifreq{Name: tc.unit}, tc.want)
				return
			}
			if got := f.confAddIf(tc.fam, tc.unit); got != tc.unit {
				t.Errorf("created %s", got)
			}
		})
	}
}

// [CHECK-8] SIOCLIFREMOVEIF on unit 0 with an address removes the unit
// of that ill holding it (a point-to-point unit also by its destination).
func TestCHECK_8_RemoveIfByAddress(t *testing.T) {
	cases := []struct {
		name, addr, gone string
	}{
		{"up unit by local address", "10.1.0.3", "tap0:3"},
		{"down unit by local address", "10.1.0.4", "tap0:1"},
		{"point-to-point unit by destination", "10.9.0.2", "tap0:2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, "tap0")
			f.plumb("tap0")
			f.configure("tap0", "10.1.0.1", 24)
			f.confAddIf(ctl.AF_INET, "tap0:3")
			f.configure("tap0:3", "10.1.0.3", 24)
			f.confAddIf(ctl.AF_INET, "tap0:1")
			f.must("SIOCSLIFADDR", ctl.AF_INET, ctl.Lifreq{Name: "tap0:1", Addr: addr("10.1.0.4")})
			f.confAddIf(ctl.AF_INET, "tap0:2")
			f.must("SIOCSLIFDSTADDR", ctl.AF_INET, ctl.Lifreq{Name: "tap0:2", Dstaddr: addr("10.9.0.2")})
			f.must("SIOCSLIFADDR", ctl.AF_INET, ctl.Lifreq{Name: "tap0:2", Addr: addr("10.9.0.1")})

			f.must("SIOCLIFREMOVEIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Addr: addr(tc.addr)})
			want := []string{"lo0", "tap0", "tap0:1", "tap0:2", "tap0:3"}
			want = slices.DeleteFunc(want, func(s string) bool { return s == tc.gone })
			if diff := cmp.Diff(want, f.confUnits(ctl.AF_INET)); diff != "" {
				t.Errorf("units (-want +got):\n%s", diff)
			}
			_, has := f.confIRE(route.IRE_LOCAL, "10.1.0.3/32", "tap0")
			if has != (tc.gone != "tap0:3") {
				t.Errorf("local IRE of tap0:3 present=%v after removing %s", has, tc.gone)
			}
			if _, ok := f.confIRE(route.IRE_LOCAL, "10.1.0.1/32", "tap0"); !ok {
				t.Error("unit 0 lost its local IRE")
			}
		})
	}
}

// [CHECK-9] Unit 0 can never be removed: EBUSY, however it is named.
func TestCHECK_9_RemoveIfUnitZeroBusy(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	f.confPlumb6("tap0")
	f.configure("tap0", "10.1.0.1", 24)
	f.configure(f.confAddIf(ctl.AF_INET, "tap0"), "10.1.0.2", 24)
	ll := f.must("SIOCGLIFADDR", ctl.AF_INET6, ctl.Lifreq{Name: "tap0"}).Addr
	cases := []struct {
		name string
		fam  ctl.Family
		req  ctl.Lifreq
	}{
		{"by unit 0's address", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Addr: addr("10.1.0.1")}},
		{"named tap0:0", ctl.AF_INET, ctl.Lifreq{Name: "tap0:0"}},
		{"IPv6 link-local of unit 0", ctl.AF_INET6, ctl.Lifreq{Name: "tap0", Addr: ll}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f.confSub(t).confFails("SIOCLIFREMOVEIF", tc.fam, tc.req, ctl.EBUSY)
		})
	}
}

// [CHECK-10] ip_addr_ok_v4 (spec §4.1): the host part under the unit's
// netmask (the class mask if none) must be neither all zeros nor all
// ones. The spec's second sentence allows 10.0.0.0 under 255.255.0.0, but
// its host part is still zero there and the seed's ip_addr_ok_v4 refuses
// it: the seed wins (docs/conformance.md).
func TestCHECK_10_NetworkAddressRefused(t *testing.T) {
	cases := []struct {
		mask, addr string // mask "" leaves the netmask 0
		ok         bool
	}{
		{"", "10.0.0.0", false},
		{"255.255.0.0", "10.0.0.0", false},
		{"", "192.168.1.0", false},
		{"255.255.0.0", "192.168.1.0", true},
		{"", "10.255.255.255", false},
		{"255.255.255.0", "10.0.0.255", false},
		{"255.255.0.0", "10.0.0.255", true},
		{"", "224.0.0.1", false},
		{"", "255.255.255.255", false},
		{"255.255.255.255", "255.255.255.255", false},
		{"", "0.1.2.3", true},
		{"", "127.0.0.1", true},
		{"", "240.1.1.1", true},
		{"", "0.0.0.0", true},
		{"255.255.255.255", "10.0.0.0", true},
	}
	for _, tc := range cases {
		t.Run(tc.addr+" mask "+tc.mask, func(t *testing.T) {
			f := newFixture(t, "tap0")
			f.plumb("tap0")
			if tc.mask != "" {
				f.must("SIOCSLIFNETMASK", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Addr: addr(tc.mask)})
			}
			r := ctl.Lifreq{Name: "tap0", Addr: addr(tc.addr)}
			if !tc.ok {
				f.confFails("SIOCSLIFADDR", ctl.AF_INET, r, ctl.EADDRNOTAVAIL)
				return
			}
			f.must("SIOCSLIFADDR", ctl.AF_INET, r)
			if got := f.must("SIOCGLIFADDR", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}).Addr; got != addr(tc.addr) {
				t.Errorf("address %v", got)
			}
		})
	}
}

// [CHECK-11] Setting an UP unit to an address UP on another ill fails with
// EADDRNOTAVAIL and leaves the unit down with the new address and no IREs.
func TestCHECK_11_ReupToAddressUpElsewhere(t *testing.T) {
	f := newFixture(t, "tap0", "tap1")
	f.plumb("tap0")
	f.plumb("tap1")
	f.configure("tap1", "192.168.7.1", 24)
	f.configure("tap0", "192.168.8.1", 24)
	_, err := f.do("SIOCSLIFADDR", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Addr: addr("192.168.7.1")})
	if ctl.ErrnoOf(err) != ctl.EADDRNOTAVAIL {
		t.Fatalf("%v, want EADDRNOTAVAIL", err)
	}
	if fl := f.flags("tap0", ctl.AF_INET); fl&ctl.IFF_UP != 0 {
		t.Errorf("tap0 flags %s: still UP", fl)
	}
	if a := f.must("SIOCGLIFADDR", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}).Addr; a != addr("192.168.7.1") {
		t.Errorf("address %v, want the new 192.168.7.1", a)
	}
	for _, e := range f.m.Routes().All() {
		if e.Ill == "tap0" {
			t.Errorf("tap0 kept IRE %s %s", e.Type, e.Dest)
		}
	}
	if fl := f.flags("tap1", ctl.AF_INET); fl&ctl.IFF_UP == 0 {
		t.Error("the holder tap1 went down")
	}
}

// [CHECK-12] A non-contiguous IPv4 netmask is ENOTSUP, not EINVAL, on up
// and down units alike; IPv6 masks are not checked.
func TestCHECK_12_NonContiguousMask(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	f.confPlumb6("tap0")
	f.configure("tap0", "10.2.0.1", 24)
	down := f.confAddIf(ctl.AF_INET, "tap0")
	for _, unit := range []string{"tap0", down} {
		for _, m := range []string{"255.0.255.0", "255.255.255.1", "0.255.255.255", "128.0.0.1"} {
			t.Run(unit+" "+m, func(t *testing.T) {
				f.confSub(t).confFails("SIOCSLIFNETMASK", ctl.AF_INET, ctl.Lifreq{Name: unit, Addr: addr(m)}, ctl.ENOTSUP)
			})
		}
	}
	u6 := f.confAddIf(ctl.AF_INET6, "tap0")
	f.must("SIOCSLIFNETMASK", ctl.AF_INET6, ctl.Lifreq{Name: u6, Addr: addr("ffff:0:ffff::")})
	if m := f.must("SIOCGLIFNETMASK", ctl.AF_INET6, ctl.Lifreq{Name: u6}).Addr; m != addr("ffff:0:ffff::") {
		t.Errorf("IPv6 mask %v", m)
	}
}

// [CHECK-13] SIOCSARP (and its XARP and delete forms) on an address of
// this host is ENOTSUP; another address on the same subnet is accepted.
func TestCHECK_13_ARPOwnAddress(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	f.configure("tap0", "10.2.0.1", 24)
	u := f.confAddIf(ctl.AF_INET, "tap0")
	f.configure(u, "10.2.0.5", 24)
	hw := []byte{2, 0, 0, 0, 0, 9}
	for _, own := range []string{"10.2.0.1", "10.2.0.5"} {
		cases := []struct {
			op  string
			arg any
		}{
			{"SIOCSARP", &ctl.Arpreq{PA: addr(own), HA: "2:0:0:0:0:9"}},
			{"SIOCSARP", &ctl.Arpreq{PA: addr(own), HA: "2:0:0:0:0:9", Flags: ctl.ATF_PERM | ctl.ATF_PUBL}},
			{"SIOCSXARP", &ctl.Xarpreq{PA: addr(own), HA: xha("", hw)}},
			{"SIOCSXARP", &ctl.Xarpreq{PA: addr(own), HA: xha("tap0", hw)}},
			{"SIOCDARP", &ctl.Arpreq{PA: addr(own)}},
			{"SIOCDXARP", &ctl.Xarpreq{PA: addr(own), HA: xha("tap0", nil)}},
		}
		for _, tc := range cases {
			t.Run(own+" "+tc.op, func(t *testing.T) {
				g := f.confSub(t)
				g.confUnchanged(tc.op, func() { g.arpFails(root, tc.op, ctl.AF_INET, tc.arg, ctl.ENOTSUP) })
			})
		}
	}
	if err := f.arpDo(root, "SIOCSARP", ctl.AF_INET, &ctl.Arpreq{PA: addr("10.2.0.9"), HA: "2:0:0:0:0:9"}); err != nil {
		t.Errorf("SIOCSARP for a neighbour: %v", err)
	}
}

// [CHECK-14] An ill-level flag set through any unit shows on every unit
// of that family (and not on the other family's ill).
func TestCHECK_14_IllFlagOnAllUnits(t *testing.T) {
	for _, bit := range []ctl.Flags{ctl.IFF_ROUTER, ctl.IFF_DEBUG, ctl.IFF_NOTRAILERS, ctl.IFF_NORTEXCH, ctl.IFF_NOARP, ctl.IFF_NONUD, ctl.IFF_XRESOLV} {
		t.Run(bit.Names(), func(t *testing.T) {
			f := newFixture(t, "tap0")
			f.plumb("tap0")
			f.confPlumb6("tap0")
			f.configure("tap0", "10.3.0.1", 24)
			f.confAddIf(ctl.AF_INET, "tap0:1")
			f.confAddIf(ctl.AF_INET, "tap0:3")
			f.must("SIOCSLIFFLAGS", ctl.AF_INET, ctl.Lifreq{Name: "tap0:3", Flags: f.flags("tap0:3", ctl.AF_INET) | bit})
			for _, u := range []string{"tap0", "tap0:1", "tap0:3"} {
				if f.flags(u, ctl.AF_INET)&bit == 0 {
					t.Errorf("%s set via tap0:3 is not on %s", bit.Names(), u)
				}
			}
			if f.flags("tap0", ctl.AF_INET6)&bit != 0 {
				t.Errorf("%s leaked to the IPv6 ill", bit.Names())
			}
			f.must("SIOCSLIFFLAGS", ctl.AF_INET, ctl.Lifreq{Name: "tap0:1", Flags: f.flags("tap0:1", ctl.AF_INET) &^ bit})
			if f.flags("tap0:3", ctl.AF_INET)&bit != 0 || f.flags("tap0", ctl.AF_INET)&bit != 0 {
				t.Errorf("%s cleared via tap0:1 is still on its siblings", bit.Names())
			}
		})
	}
}

// [CHECK-15] A phyint-level flag set through one family shows through the
// other family's socket, on every unit.
func TestCHECK_15_PhyintFlagBothFamilies(t *testing.T) {
	for _, bit := range []ctl.Flags{ctl.IFF_STANDBY, ctl.IFF_FAILED, ctl.IFF_OFFLINE, ctl.IFF_INTELLIGENT} {
		t.Run(bit.Names(), func(t *testing.T) {
			f := newFixture(t, "tap0")
			f.plumb("tap0")
			f.confPlumb6("tap0")
			u4 := f.confAddIf(ctl.AF_INET, "tap0")
			u6 := f.confAddIf(ctl.AF_INET6, "tap0")
			f.must("SIOCSLIFFLAGS", ctl.AF_INET, ctl.Lifreq{Name: u4, Flags: f.flags(u4, ctl.AF_INET) | bit})
			for _, u := range []string{"tap0", u6} {
				if f.flags(u, ctl.AF_INET6)&bit == 0 {
					t.Errorf("%s set on IPv4 %s is not visible on IPv6 %s", bit.Names(), u4, u)
				}
			}
			f.must("SIOCSLIFFLAGS", ctl.AF_INET6, ctl.Lifreq{Name: u6, Flags: f.flags(u6, ctl.AF_INET6) &^ bit})
			if f.flags("tap0", ctl.AF_INET)&bit != 0 {
				t.Errorf("%s cleared via IPv6 is still on IPv4", bit.Names())
			}
		})
	}
}

// [CHECK-16] Toggling only IFF_RUNNING (a bit that cannot change) succeeds
// and changes nothing: no state, no event.
func TestCHECK_16_RunningToggleIgnored(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	f.confPlumb6("tap0")
	f.configure("tap0", "10.4.0.1", 24)
	down := f.confAddIf(ctl.AF_INET, "tap0")
	ev := f.confRecord()
	cases := []struct {
		name string
		fam  ctl.Family
	}{{"tap0", ctl.AF_INET}, {down, ctl.AF_INET}, {"tap0", ctl.AF_INET6}, {"lo0", ctl.AF_INET}}
	for _, tc := range cases {
		t.Run(string(tc.fam)+" "+tc.name, func(t *testing.T) {
			f := f.confSub(t)
			before := f.snapshot()
			c := f.flags(tc.name, tc.fam)
			f.must("SIOCSLIFFLAGS", tc.fam, ctl.Lifreq{Name: tc.name, Flags: c ^ ctl.IFF_RUNNING})
			if diff := cmp.Diff(before, f.snapshot()); diff != "" {
				t.Errorf("state changed (-before +after):\n%s", diff)
			}
			if got := ev.take(); len(got) != 0 {
				t.Errorf("events %v, want none", confKinds(got))
			}
		})
	}
}

// [CHECK-17] NOFAILOVER brings DEPRECATED with it; clearing DEPRECATED
// alone on a test address is EINVAL; clearing both is allowed.
func TestCHECK_17_NofailoverForcesDeprecated(t *testing.T) {
	for _, up := range []bool{false, true} {
		t.Run(map[bool]string{false: "down", true: "up"}[up], func(t *testing.T) {
			f := newFixture(t, "tap0")
			f.plumb("tap0")
			if up {
				f.configure("tap0", "10.5.0.1", 24)
			}
			f.must("SIOCSLIFFLAGS", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Flags: f.flags("tap0", ctl.AF_INET) | ctl.IFF_NOFAILOVER})
			c := f.flags("tap0", ctl.AF_INET)
			if c&(ctl.IFF_NOFAILOVER|ctl.IFF_DEPRECATED) != ctl.IFF_NOFAILOVER|ctl.IFF_DEPRECATED {
				t.Fatalf("flags %s, want NOFAILOVER and DEPRECATED", c)
			}
			if up != (c&ctl.IFF_UP != 0) {
				t.Errorf("flags %s: UP changed", c)
			}
			f.confFails("SIOCSLIFFLAGS", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Flags: c &^ ctl.IFF_DEPRECATED}, ctl.EINVAL)
			f.must("SIOCSLIFFLAGS", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Flags: c &^ (ctl.IFF_DEPRECATED | ctl.IFF_NOFAILOVER)})
			if got := f.flags("tap0", ctl.AF_INET); got&(ctl.IFF_NOFAILOVER|ctl.IFF_DEPRECATED) != 0 {
				t.Errorf("flags %s after clearing both", got)
			}
		})
	}
}

// [CHECK-18] STANDBY on an interface that has not failed starts it
// INACTIVE; clearing STANDBY clears INACTIVE.
func TestCHECK_18_StandbyStartsInactive(t *testing.T) {
	const sb, ia, fl = ctl.IFF_STANDBY, ctl.IFF_INACTIVE, ctl.IFF_FAILED
	cases := []struct {
		name  string
		start ctl.Flags // phyint flags set first
		on    ctl.Flags // requested on top of the current flags
		want  ctl.Flags // STANDBY|INACTIVE|FAILED afterwards
		errno ctl.Errno
	}{
		{"not failed", 0, sb, sb | ia, 0},
		{"failed", fl, sb, sb | fl, 0},
		{"failed in the same request", 0, sb | fl, sb | fl, 0},
		{"already inactive", ia, sb, 0, ctl.EINVAL},
	}
	for _, up := range []bool{false, true} {
		for _, tc := range cases {
			t.Run(tc.name+map[bool]string{false: " down", true: " up"}[up], func(t *testing.T) {
				f := newFixture(t, "tap0")
				f.plumb("tap0")
				if up {
					f.configure("tap0", "10.6.0.1", 24)
				}
				if tc.start != 0 {
					f.must("SIOCSLIFFLAGS", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Flags: f.flags("tap0", ctl.AF_INET) | tc.start})
				}
				req := ctl.Lifreq{Name: "tap0", Flags: f.flags("tap0", ctl.AF_INET) | tc.on}
				if tc.errno != 0 {
					f.confFails("SIOCSLIFFLAGS", ctl.AF_INET, req, tc.errno)
					return
				}
				f.must("SIOCSLIFFLAGS", ctl.AF_INET, req)
				if got := f.flags("tap0", ctl.AF_INET) & (sb | ia | fl); got != tc.want {
					t.Fatalf("flags %s, want %s", got, tc.want)
				}
				f.must("SIOCSLIFFLAGS", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Flags: f.flags("tap0", ctl.AF_INET) &^ sb})
				if got := f.flags("tap0", ctl.AF_INET) & (sb | ia); got != 0 {
					t.Errorf("after clearing STANDBY: %s", got)
				}
			})
		}
	}
}

// [CHECK-19] A point-to-point unit cannot come up without a destination.
func TestCHECK_19_PointToPointUpNeedsDestination(t *testing.T) {
	cases := []struct {
		name      string
		fam       ctl.Family
		local, dt string
		errno     ctl.Errno
	}{
		{"IPv4 no destination", ctl.AF_INET, "10.7.0.1", "0.0.0.0", ctl.EINVAL},
		{"IPv4 with destination", ctl.AF_INET, "10.7.0.1", "10.7.0.2", 0},
		{"IPv6 no destination", ctl.AF_INET6, "fd00:7::1", "::", ctl.EINVAL},
		{"IPv6 with destination", ctl.AF_INET6, "fd00:7::1", "fd00:7::2", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, "tap0")
			f.plumb("tap0")
			f.confPlumb6("tap0")
			u := f.confAddIf(tc.fam, "tap0")
			f.must("SIOCSLIFDSTADDR", tc.fam, ctl.Lifreq{Name: u, Dstaddr: addr(tc.dt)})
			f.must("SIOCSLIFADDR", tc.fam, ctl.Lifreq{Name: u, Addr: addr(tc.local)})
			c := f.flags(u, tc.fam)
			if c&ctl.IFF_POINTOPOINT == 0 {
				t.Fatalf("flags %s: not POINTOPOINT after SIOCSLIFDSTADDR", c)
			}
			req := ctl.Lifreq{Name: u, Flags: c | ctl.IFF_UP}
			if tc.errno != 0 {
				f.confFails("SIOCSLIFFLAGS", tc.fam, req, tc.errno)
				return
			}
			f.must("SIOCSLIFFLAGS", tc.fam, req)
			bits := 32
			if tc.fam == ctl.AF_INET6 {
				bits = 128
			}
			if _, ok := f.confIRE(route.IRE_IF_RESOLVER, netip.PrefixFrom(addr(tc.dt), bits).String(), "tap0"); !ok {
				t.Errorf("no interface IRE to the destination %s", tc.dt)
			}
		})
	}
}

// [CHECK-20] Two point-to-point units with one local address and
// different destinations both come up; the later one is UNNUMBERED.
func TestCHECK_20_UnnumberedPointToPoint(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	var units []string
	for _, dst := range []string{"10.20.0.2", "10.20.0.3"} {
		u := f.confAddIf(ctl.AF_INET, "tap0")
		f.must("SIOCSLIFDSTADDR", ctl.AF_INET, ctl.Lifreq{Name: u, Dstaddr: addr(dst)})
		f.must("SIOCSLIFADDR", ctl.AF_INET, ctl.Lifreq{Name: u, Addr: addr("10.20.0.1")})
		if err := f.setUp(u, ctl.AF_INET, true); err != nil {
			t.Fatalf("%s up: %v", u, err)
		}
		units = append(units, u)
	}
	want := map[string]ctl.Flags{units[0]: ctl.IFF_UP, units[1]: ctl.IFF_UP | ctl.IFF_UNNUMBERED}
	for u, w := range want {
		if got := f.flags(u, ctl.AF_INET) & (ctl.IFF_UP | ctl.IFF_UNNUMBERED); got != w {
			t.Errorf("%s: %s, want %s", u, got, w)
		}
	}
	for _, dst := range []string{"10.20.0.2/32", "10.20.0.3/32"} {
		if _, ok := f.confIRE(route.IRE_IF_RESOLVER, dst, "tap0"); !ok {
			t.Errorf("no interface IRE to %s", dst)
		}
	}
	// The unnumbered unit is not found by its local address.
	f.confFails("SIOCLIFREMOVEIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Addr: addr("10.20.0.9")}, ctl.EADDRNOTAVAIL)
	f.must("SIOCLIFREMOVEIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Addr: addr("10.20.0.1")})
	if got := f.confUnits(ctl.AF_INET); slices.Contains(got, units[0]) || !slices.Contains(got, units[1]) {
		t.Errorf("removing by 10.20.0.1 left %v; want the numbered %s gone", got, units[0])
	}
}

// [CHECK-21] The same IPv6 link-local address may be up on two ills (not
// on one LAN); a global address may not.
func TestCHECK_21_LinkLocalOnTwoIlls(t *testing.T) {
	cases := []struct {
		addr  string
		errno ctl.Errno
	}{
		{"fe80::1", 0},
		{"fe80::abcd", 0},
		{"fd00:21::1", ctl.EADDRNOTAVAIL},
	}
	for _, tc := range cases {
		t.Run(tc.addr, func(t *testing.T) {
			f := newFixture(t, "tap0", "tap1")
			var units []string
			for _, n := range []string{"tap0", "tap1"} {
				f.confPlumb6(n)
				u := n
				if !addr(tc.addr).IsLinkLocalUnicast() {
					u = f.confAddIf(ctl.AF_INET6, n)
					f.must("SIOCSLIFNETMASK", ctl.AF_INET6, ctl.Lifreq{Name: u, Addr: maskOf(addr(tc.addr), 64)})
				}
				f.must("SIOCSLIFADDR", ctl.AF_INET6, ctl.Lifreq{Name: u, Addr: addr(tc.addr)})
				units = append(units, u)
			}
			if err := f.setUp(units[0], ctl.AF_INET6, true); err != nil {
				t.Fatalf("%s up: %v", units[0], err)
			}
			err := f.setUp(units[1], ctl.AF_INET6, true)
			if got := ctl.ErrnoOf(err); got != tc.errno {
				t.Fatalf("second up: %v, want errno %v", err, tc.errno)
			}
			if up := f.flags(units[1], ctl.AF_INET6)&ctl.IFF_UP != 0; up != (tc.errno == 0) {
				t.Errorf("second unit UP=%v", up)
			}
		})
	}
}

// [CHECK-22] The same address on two units of one ill: the second cannot
// come up and stays down. IPv4 reports EADDRNOTAVAIL (the duplicate
// check); IPv6 reports EEXIST, because its neighbour step finds the
// address already ours on the ill before the duplicate check runs.
func TestCHECK_22_SameAddressTwiceOnOneIll(t *testing.T) {
	cases := []struct {
		fam   ctl.Family
		addr  string
		bits  int
		errno ctl.Errno
	}{
		{ctl.AF_INET, "192.168.22.1", 24, ctl.EADDRNOTAVAIL},
		{ctl.AF_INET6, "fd00:22::1", 64, ctl.EEXIST},
	}
	for _, tc := range cases {
		t.Run(string(tc.fam), func(t *testing.T) {
			f := newFixture(t, "tap0")
			f.plumb("tap0")
			f.confPlumb6("tap0")
			first := f.confAddIf(tc.fam, "tap0")
			f.configure(first, tc.addr, tc.bits)
			second := f.confAddIf(tc.fam, "tap0")
			ad := addr(tc.addr)
			f.must("SIOCSLIFNETMASK", tc.fam, ctl.Lifreq{Name: second, Addr: maskOf(ad, tc.bits)})
			f.must("SIOCSLIFADDR", tc.fam, ctl.Lifreq{Name: second, Addr: ad})
			before := confState(f.m)
			if err := f.setUp(second, tc.fam, true); ctl.ErrnoOf(err) != tc.errno {
				t.Fatalf("second up: %v, want %v", err, tc.errno)
			}
			if diff := cmp.Diff(before, confState(f.m)); diff != "" {
				t.Errorf("the failed bring-up changed state (-before +after):\n%s", diff)
			}
		})
	}
}

// [CHECK-23] Broadcast IREs needed by several units of one ill are shared:
// the subnet broadcast stays while any unit needs it.
func TestCHECK_23_SharedBroadcastIRE(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	f.configure("tap0", "10.1.2.3", 24)
	u := f.confAddIf(ctl.AF_INET, "tap0")
	f.configure(u, "10.1.2.4", 24)
	steps := []struct {
		down     string
		wantRefs map[string]int // broadcast destination → refs (0 = absent)
	}{
		{"", map[string]int{"10.1.2.255/32": 2, "255.255.255.255/32": 2, "10.255.255.255/32": 2}},
		{u, map[string]int{"10.1.2.255/32": 1, "255.255.255.255/32": 1, "10.255.255.255/32": 1}},
		{"tap0", map[string]int{"10.1.2.255/32": 0, "255.255.255.255/32": 0, "10.255.255.255/32": 0}},
	}
	for _, s := range steps {
		if s.down != "" {
			f.setUp(s.down, ctl.AF_INET, false)
		}
		for dest, want := range s.wantRefs {
			e, ok := f.confIRE(route.IRE_BROADCAST, dest, "tap0")
			if got := map[bool]int{false: 0, true: e.Refs}[ok]; got != want {
				t.Errorf("after down %q: broadcast %s refs %d, want %d", s.down, dest, got, want)
			}
		}
	}
}

// [CHECK-24] A conflicting ARP reply during probing makes the unit
// DUPLICATE and not UP; after _dup_recovery, with the conflict gone, it is
// UP again and RTM_ADD is sent. (Against a kernel peer: integration
// TestDADKernelHoldsAddress.)
func TestCHECK_24_DADConflictThenRecovery(t *testing.T) {
	f := newDADFixture(t)
	a := addr("10.24.0.1")
	f.setProp("_dup_recovery", "20000")
	f.configure("tap0", a.String(), 24)
	f.clock.Advance(probeDelay)
	f.wire.waitFrames(1, isProbeFor(a))
	f.wire.send(arp.Packet{Op: arp.OpReply, SenderHW: otherMAC, SenderAddr: a, TargetHW: tapMAC, TargetAddr: a})
	f.waitEvent(DAD_DUPLICATE)
	if fl := f.flags("tap0", ctl.AF_INET); fl&(ctl.IFF_DUPLICATE|ctl.IFF_UP) != ctl.IFF_DUPLICATE {
		t.Fatalf("flags %s, want DUPLICATE without UP", fl)
	}
	if _, ok := f.confIRE(route.IRE_LOCAL, "10.24.0.1/32", "tap0"); ok {
		t.Error("a DUPLICATE unit keeps its local IRE")
	}
	f.drain()
	f.clock.Advance(20*time.Second - time.Millisecond)
	if fl := f.flags("tap0", ctl.AF_INET); fl&ctl.IFF_UP != 0 {
		t.Fatalf("flags %s before _dup_recovery elapsed", fl)
	}
	f.clock.Advance(time.Millisecond)
	f.clock.Advance(dadTime)
	if fl := f.flags("tap0", ctl.AF_INET); fl&(ctl.IFF_DUPLICATE|ctl.IFF_UP) != ctl.IFF_UP {
		t.Fatalf("flags %s after recovery, want UP without DUPLICATE", fl)
	}
	if got := confKinds(f.drain(), RTM_ADD); len(got) != 1 {
		t.Errorf("RTM_ADD events at recovery: %v, want one", got)
	}
	if f.dadState("tap0") != 2 || !f.stackHas(a) {
		t.Error("recovered address not ready")
	}
}
