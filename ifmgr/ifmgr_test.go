package ifmgr

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/link"
	"github.com/tapstack/tapstack/link/memory"
	"github.com/tapstack/tapstack/route"
	"github.com/tapstack/tapstack/stack"
)

var root = Caller{Privileged: true}

// fixture is a Manager over a gVisor stack with in-memory links tap0..tapN
// whose peers are returned for data-path tests.
type fixture struct {
	t     *testing.T
	m     *Manager
	st    *stack.Stack
	links *link.Registry
	peers map[string]*link.Link
}

func newFixture(t *testing.T, linkNames ...string) *fixture {
	t.Helper()
	st := stack.New()
	reg := &link.Registry{}
	f := &fixture{t: t, st: st, links: reg, peers: map[string]*link.Link{}}
	for i, n := range linkNames {
		mac := net.HardwareAddr{2, 0, 0, 0, 0, byte(i + 1)}
		a, b := memory.NewPair(n, n+"-peer", 1500, mac, nil)
		if err := reg.Add(a); err != nil {
			t.Fatal(err)
		}
		f.peers[n] = b
		t.Cleanup(func() { b.Close() })
	}
	m, err := New(Config{Stack: st, Links: reg})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.m = m
	t.Cleanup(func() {
		reg.CloseAll()
		st.Close()
	})
	return f
}

// do runs a LIF request and returns the reply.
func (f *fixture) do(op string, fam ctl.Family, r ctl.Lifreq) (ctl.Lifreq, error) {
	err := f.m.Do(root, op, fam, &r)
	return r, err
}

// must runs a request that has to succeed.
func (f *fixture) must(op string, fam ctl.Family, r ctl.Lifreq) ctl.Lifreq {
	f.t.Helper()
	got, err := f.do(op, fam, r)
	if err != nil {
		f.t.Fatalf("%s %+v: %v", op, r, err)
	}
	return got
}

// fails runs a request that has to fail with errno want and change nothing.
func (f *fixture) fails(op string, fam ctl.Family, r ctl.Lifreq, want ctl.Errno) {
	f.t.Helper()
	before := f.snapshot()
	_, err := f.do(op, fam, r)
	if got := ctl.ErrnoOf(err); got != want {
		f.t.Fatalf("%s %+v: errno %v (%v), want %v", op, r, got, err, want)
	}
	if !strings.Contains(err.Error(), op) {
		f.t.Errorf("error %q does not name the request", err)
	}
	if diff := cmp.Diff(before, f.snapshot()); diff != "" {
		f.t.Fatalf("%s failed with %v but changed state (-before +after):\n%s", op, want, diff)
	}
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func (f *fixture) plumb(name string) {
	f.t.Helper()
	f.must("SIOCSLIFNAME", ctl.AF_INET, ctl.Lifreq{Name: name, Flags: ctl.IFF_IPV4})
}

// configure sets mask, address and UP like `ifconfig name a/p up`.
func (f *fixture) configure(name, a string, bits int) {
	f.t.Helper()
	ad := addr(a)
	f.must("SIOCSLIFNETMASK", ctl.FamilyOf(ad), ctl.Lifreq{Name: name, Addr: maskOf(ad, bits)})
	f.must("SIOCSLIFADDR", ctl.FamilyOf(ad), ctl.Lifreq{Name: name, Addr: ad})
	f.setUp(name, ctl.FamilyOf(ad), true)
}

func (f *fixture) setUp(name string, fam ctl.Family, up bool) error {
	r := f.must("SIOCGLIFFLAGS", fam, ctl.Lifreq{Name: name})
	if up {
		r.Flags |= ctl.IFF_UP
	} else {
		r.Flags &^= ctl.IFF_UP
	}
	_, err := f.do("SIOCSLIFFLAGS", fam, r)
	return err
}

func (f *fixture) flags(name string, fam ctl.Family) ctl.Flags {
	f.t.Helper()
	return f.must("SIOCGLIFFLAGS", fam, ctl.Lifreq{Name: name}).Flags
}

// state is everything observable through get-requests and the IRE table.
type state struct {
	Units  []string
	Routes []string
}

func (f *fixture) snapshot() state {
	var s state
	for _, fam := range []ctl.Family{ctl.AF_INET, ctl.AF_INET6} {
		// Every unit: all LIFC_ flags but EXTERNAL_SOURCE, which would
		// hide down units, lo0 and deprecated ones.
		lc := ctl.Lifconf{Family: fam, Flags: 0xff &^ ctl.LIFC_EXTERNAL_SOURCE}
		if err := f.m.Do(root, "SIOCGLIFCONF", fam, &lc); err != nil {
			f.t.Fatal(err)
		}
		for _, r := range lc.Req {
			fl, _ := f.do("SIOCGLIFFLAGS", fam, ctl.Lifreq{Name: r.Name})
			mk, _ := f.do("SIOCGLIFNETMASK", fam, ctl.Lifreq{Name: r.Name})
			br, _ := f.do("SIOCGLIFBRDADDR", fam, ctl.Lifreq{Name: r.Name})
			mtu, _ := f.do("SIOCGLIFMTU", fam, ctl.Lifreq{Name: r.Name})
			ix, _ := f.do("SIOCGLIFINDEX", fam, ctl.Lifreq{Name: r.Name})
			s.Units = append(s.Units, fmt.Sprintf("%s %s %v mask=%v brd=%v mtu=%d idx=%d",
				r.Name, fl.Flags, r.Addr, mk.Addr, br.Broadaddr, mtu.MTU, ix.Index))
		}
	}
	for _, e := range f.m.Routes().All() {
		s.Routes = append(s.Routes, fmt.Sprintf("%s %s %s %s refs=%d", e.Type, e.Dest, e.Gateway, e.Ill, e.Refs))
	}
	return s
}

// ires returns the destinations of IREs of type t on ill, sorted.
func (f *fixture) ires(t route.Type, ill string) []string {
	var out []string
	for _, e := range f.m.Routes().All() {
		if e.Type == t && e.Ill == ill {
			out = append(out, e.Dest.Addr().String())
		}
	}
	sort.Strings(out)
	return out
}

func TestLoopbackAtStart(t *testing.T) {
	f := newFixture(t)
	lc := ctl.Lifconf{Family: ctl.AF_UNSPEC}
	if err := f.m.Do(root, "SIOCGLIFCONF", ctl.AF_INET, &lc); err != nil {
		t.Fatal(err)
	}
	want := []ctl.Lifreq{
		{Name: "lo0", Addr: addr("127.0.0.1"), Addrlen: 8, Type: ctl.IFT_LOOP},
		{Name: "lo0", Addr: addr("::1"), Addrlen: 128, Type: ctl.IFT_LOOP},
	}
	if diff := cmp.Diff(want, lc.Req, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("SIOCGLIFCONF (-want +got):\n%s", diff)
	}
	if got := f.flags("lo0", ctl.AF_INET); got != 0x2001000849 {
		t.Errorf("lo0 v4 flags %s, want 2001000849<UP,LOOPBACK,RUNNING,MULTICAST,IPv4,VIRTUAL>", got)
	}
	if got := f.flags("lo0", ctl.AF_INET6); got != 0x2002000849 {
		t.Errorf("lo0 v6 flags %s, want 2002000849", got)
	}
	if got := f.must("SIOCGLIFMTU", ctl.AF_INET, ctl.Lifreq{Name: "lo0"}).MTU; got != 8232 {
		t.Errorf("lo0 v4 MTU %d, want 8232", got)
	}
	if got := f.must("SIOCGLIFMTU", ctl.AF_INET6, ctl.Lifreq{Name: "lo0"}).MTU; got != 8252 {
		t.Errorf("lo0 v6 MTU %d, want 8252", got)
	}
	if got := f.ires(route.IRE_LOOPBACK, "lo0"); !cmp.Equal(got, []string{"127.0.0.1", "::1"}) {
		t.Errorf("loopback IREs %v", got)
	}
	if n := len(f.ires(route.IRE_BROADCAST, "lo0")); n != 0 {
		t.Errorf("lo0 has %d broadcast IREs, want none (not IFF_BROADCAST)", n)
	}
}

func TestPlumbNaming(t *testing.T) {
	f := newFixture(t, "tap0", "tap3", "tap01")
	// [CHECK-1] name "tap" with ppa UINT_MAX on an empty type → tap0, ppa 0.
	got := f.must("SIOCSLIFNAME", ctl.AF_INET, ctl.Lifreq{Name: "tap", Link: "tap0", PPA: ctl.PPAAny, Flags: ctl.IFF_IPV4})
	if got.Name != "tap0" || got.PPA != 0 {
		t.Errorf("CHECK-1: got %s ppa %d, want tap0 ppa 0", got.Name, got.PPA)
	}
	// The same name again → EEXIST (PPA in use).
	f.fails("SIOCSLIFNAME", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Flags: ctl.IFF_IPV4}, ctl.EEXIST)
	// [CHECK-3] both families / neither → EINVAL.
	f.fails("SIOCSLIFNAME", ctl.AF_INET, ctl.Lifreq{Name: "tap3", Flags: ctl.IFF_IPV4 | ctl.IFF_IPV6}, ctl.EINVAL)
	f.fails("SIOCSLIFNAME", ctl.AF_INET, ctl.Lifreq{Name: "tap3"}, ctl.EINVAL)
	// Appendix C3: leading-zero PPA, PPA mismatch.
	f.fails("SIOCSLIFNAME", ctl.AF_INET, ctl.Lifreq{Name: "tap01", Flags: ctl.IFF_IPV4}, ctl.EINVAL)
	f.fails("SIOCSLIFNAME", ctl.AF_INET, ctl.Lifreq{Name: "tap3", PPA: 4, Flags: ctl.IFF_IPV4}, ctl.EINVAL)
	// IFF_BROADCAST with IPv6 → EINVAL; a link that does not exist → ENXIO.
	f.fails("SIOCSLIFNAME", ctl.AF_INET6, ctl.Lifreq{Name: "tap3", Flags: ctl.IFF_IPV6 | ctl.IFF_BROADCAST}, ctl.EINVAL)
	f.fails("SIOCSLIFNAME", ctl.AF_INET, ctl.Lifreq{Name: "tap9", Flags: ctl.IFF_IPV4}, ctl.ENXIO)
	// Bad name syntax.
	for _, n := range []string{"3tap", "tap", "ta-p0", "tap0:1"} {
		f.fails("SIOCSLIFNAME", ctl.AF_INET, ctl.Lifreq{Name: n, Link: "tap3", Flags: ctl.IFF_IPV4}, ctl.EINVAL)
	}

	// A link carries one phyint: naming it a second time → EBUSY.
	f.fails("SIOCSLIFNAME", ctl.AF_INET, ctl.Lifreq{Name: "foo0", Link: "tap0", Flags: ctl.IFF_IPV4}, ctl.EBUSY)
	f.fails("SIOCSLIFNAME", ctl.AF_INET6, ctl.Lifreq{Name: "foo0", Link: "tap0", Flags: ctl.IFF_IPV6}, ctl.EBUSY)

	// Appendix C2: IPv6 on the same link shares the index.
	f.must("SIOCSLIFNAME", ctl.AF_INET6, ctl.Lifreq{Name: "tap0", Flags: ctl.IFF_IPV6})
	i4 := f.must("SIOCGLIFINDEX", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}).Index
	i6 := f.must("SIOCGLIFINDEX", ctl.AF_INET6, ctl.Lifreq{Name: "tap0"}).Index
	if i4 != i6 || i4 == 0 {
		t.Errorf("index v4 %d v6 %d: want equal and non-zero", i4, i6)
	}
	// Flags as cli.md shows a plumbed Ethernet interface (not yet up).
	if got := f.flags("tap0", ctl.AF_INET); got != 0x1000842 {
		t.Errorf("tap0 flags %s, want 1000842<BROADCAST,RUNNING,MULTICAST,IPv4>", got)
	}
	// Appendix C4: unplumb both → index freed; re-plumb → new larger index.
	f.must("unplumb", ctl.AF_INET, ctl.Lifreq{Name: "tap0"})
	f.must("unplumb", ctl.AF_INET6, ctl.Lifreq{Name: "tap0"})
	f.fails("SIOCGLIFINDEX", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}, ctl.ENXIO)
	f.plumb("tap0")
	if i := f.must("SIOCGLIFINDEX", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}).Index; i <= i4 {
		t.Errorf("re-plumbed index %d, want > %d", i, i4)
	}
}

func TestNameLookup(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	f.must("SIOCGLIFFLAGS", ctl.AF_INET, ctl.Lifreq{Name: "tap0:0"})
	for _, n := range []string{"tap0:00", "tap0:01", "tap0:1", "tap1", "tap0:x"} {
		f.fails("SIOCGLIFFLAGS", ctl.AF_INET, ctl.Lifreq{Name: n}, ctl.ENXIO)
	}
	// An AF_INET6 socket does not see the IPv4 ill.
	f.fails("SIOCGLIFFLAGS", ctl.AF_INET6, ctl.Lifreq{Name: "tap0"}, ctl.ENXIO)
}

func TestAddRemoveIf(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	// [CHECK-6]
	if n := f.must("SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}).Name; n != "tap0:1" {
		t.Fatalf("first ADDIF: %s", n)
	}
	if n := f.must("SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}).Name; n != "tap0:2" {
		t.Fatalf("second ADDIF: %s", n)
	}
	f.must("SIOCLIFREMOVEIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0:1"})
	if n := f.must("SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}).Name; n != "tap0:1" {
		t.Fatalf("ADDIF after remove: %s, want the hole tap0:1", n)
	}
	// [CHECK-7] and Appendix C5.
	f.fails("SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0:256"}, ctl.ERANGE)
	f.fails("SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0:0"}, ctl.EINVAL)
	f.fails("SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0:07"}, ctl.EINVAL)
	f.fails("SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: ""}, ctl.EINVAL)
	f.fails("SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap7"}, ctl.ENXIO)
	f.must("SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0:5"})
	f.fails("SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0:5"}, ctl.EEXIST)

	// [CHECK-8] remove by address; [CHECK-9] unit 0 → EBUSY.
	f.configure("tap0", "10.1.2.3", 24)
	f.configure("tap0:2", "10.1.2.4", 24)
	f.fails("SIOCLIFREMOVEIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Addr: addr("10.1.2.3")}, ctl.EBUSY)
	f.fails("SIOCLIFREMOVEIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Addr: addr("fe80::1")}, ctl.EAFNOSUPPORT)
	f.fails("SIOCLIFREMOVEIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Addr: addr("10.9.9.9")}, ctl.EADDRNOTAVAIL)
	f.must("SIOCLIFREMOVEIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Addr: addr("10.1.2.4")})
	f.fails("SIOCGLIFFLAGS", ctl.AF_INET, ctl.Lifreq{Name: "tap0:2"}, ctl.ENXIO)
	if got := f.ires(route.IRE_LOCAL, "tap0"); !cmp.Equal(got, []string{"10.1.2.3"}) {
		t.Errorf("local IREs after removing tap0:2: %v", got)
	}
}

func TestAddrsPerIfLimit(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	f.m.mu.Lock()
	f.m.addrsPerIf = 3
	f.m.mu.Unlock()
	f.must("SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0"})
	f.must("SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0"})
	f.fails("SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}, ctl.ERANGE)
}

func TestAddressRules(t *testing.T) {
	f := newFixture(t, "tap0", "tap1")
	f.plumb("tap0")
	f.plumb("tap1")
	// [CHECK-10] A network address is refused under the class mask and
	// allowed once a mask makes it a host address. (The spec's CHECK-10
	// text allows 10.0.0.0 under 255.255.0.0, but its host part is still
	// zero there; ip_addr_ok_v4 in the seed refuses it, and the code wins.)
	f.fails("SIOCSLIFADDR", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Addr: addr("10.0.0.0")}, ctl.EADDRNOTAVAIL)
	f.fails("SIOCSLIFADDR", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Addr: addr("192.168.1.0")}, ctl.EADDRNOTAVAIL)
	f.must("SIOCSLIFNETMASK", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Addr: addr("255.255.0.0")})
	f.must("SIOCSLIFADDR", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Addr: addr("192.168.1.0")})
	f.fails("SIOCSLIFADDR", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Addr: addr("10.0.0.0")}, ctl.EADDRNOTAVAIL)
	for _, a := range []string{"224.0.0.1", "255.255.255.255", "10.255.255.255"} {
		f.fails("SIOCSLIFADDR", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Addr: addr(a)}, ctl.EADDRNOTAVAIL)
	}
	f.fails("SIOCSLIFADDR", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Addr: addr("2001:db8::1")}, ctl.EAFNOSUPPORT)
	f.fails("SIOCSLIFADDR", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}, ctl.EAFNOSUPPORT)
	// [CHECK-12]
	f.fails("SIOCSLIFNETMASK", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Addr: addr("255.0.255.0")}, ctl.ENOTSUP)
	f.fails("SIOCSLIFNETMASK", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Addr: addr("ffff::")}, ctl.EAFNOSUPPORT)

	// [CHECK-11] an up unit set to an address up elsewhere: EADDRNOTAVAIL,
	// and it is left down with the new address.
	f.configure("tap1", "192.168.7.1", 24)
	f.configure("tap0", "192.168.8.1", 24)
	_, err := f.do("SIOCSLIFADDR", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Addr: addr("192.168.7.1")})
	if ctl.ErrnoOf(err) != ctl.EADDRNOTAVAIL {
		t.Fatalf("CHECK-11: %v, want EADDRNOTAVAIL", err)
	}
	if f.flags("tap0", ctl.AF_INET)&ctl.IFF_UP != 0 {
		t.Error("CHECK-11: tap0 still UP")
	}
	if a := f.must("SIOCGLIFADDR", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}).Addr; a != addr("192.168.7.1") {
		t.Errorf("CHECK-11: address %v, want the new one", a)
	}
	if got := f.ires(route.IRE_LOCAL, "tap0"); got != nil {
		t.Errorf("CHECK-11: tap0 kept local IREs %v", got)
	}
	// [CHECK-22] same address on two units of one ill.
	f.must("SIOCSLIFADDR", ctl.AF_INET, ctl.Lifreq{Name: "tap1", Addr: addr("192.168.7.1")})
	u := f.must("SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap1"}).Name
	f.must("SIOCSLIFNETMASK", ctl.AF_INET, ctl.Lifreq{Name: u, Addr: addr("255.255.255.0")})
	f.must("SIOCSLIFADDR", ctl.AF_INET, ctl.Lifreq{Name: u, Addr: addr("192.168.7.1")})
	if err := f.setUp(u, ctl.AF_INET, true); ctl.ErrnoOf(err) != ctl.EADDRNOTAVAIL {
		t.Errorf("CHECK-22: %v, want EADDRNOTAVAIL", err)
	}
	if f.flags(u, ctl.AF_INET)&ctl.IFF_UP != 0 {
		t.Error("CHECK-22: second unit is UP")
	}
}

func TestDefaultMaskAndBroadcast(t *testing.T) {
	// Appendix C7.
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	f.must("SIOCSLIFADDR", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Addr: addr("192.168.10.5")})
	if m := f.must("SIOCGLIFNETMASK", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}); m.Addr != addr("255.255.255.0") || m.Addrlen != 24 {
		t.Errorf("default mask %v/%d", m.Addr, m.Addrlen)
	}
	brd := func() netip.Addr { return f.must("SIOCGLIFBRDADDR", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}).Broadaddr }
	if b := brd(); b != addr("192.168.10.255") {
		t.Errorf("broadcast %v", b)
	}
	f.must("SIOCSLIFNETMASK", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Addr: addr("255.255.0.0")})
	if b := brd(); b != addr("192.168.10.255") {
		t.Errorf("netmask change recomputed the broadcast: %v", b)
	}
	f.setUp("tap0", ctl.AF_INET, true)
	if b := brd(); b != addr("192.168.255.255") {
		t.Errorf("bring-up did not reset the stale broadcast: %v", b)
	}
	// Appendix C8: a broadcast address that is not one of the unit's IREs.
	f.fails("SIOCSLIFBRDADDR", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Broadaddr: addr("192.168.10.255")}, ctl.EINVAL)
	f.must("SIOCSLIFBRDADDR", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Broadaddr: addr("192.168.0.0")})
	// Appendix C9.
	f.fails("SIOCGLIFDSTADDR", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}, ctl.EADDRNOTAVAIL)
	f.fails("SIOCGLIFBRDADDR", ctl.AF_INET, ctl.Lifreq{Name: "lo0"}, ctl.EADDRNOTAVAIL)
}

// TestBroadcastIREs checks the broadcast IRE sets of spec §5.3–5.4.
func TestBroadcastIREs(t *testing.T) {
	cases := []struct {
		name string
		addr string
		bits int
		want []string
	}{
		{"class C /24", "192.168.1.5", 24, []string{"0.0.0.0", "192.168.1.0", "192.168.1.255", "255.255.255.255"}},
		{"class A /24 adds the classful pair", "10.1.2.3", 24, []string{"0.0.0.0", "10.0.0.0", "10.1.2.0", "10.1.2.255", "10.255.255.255", "255.255.255.255"}},
		{"class A /8", "10.0.0.1", 8, []string{"0.0.0.0", "10.0.0.0", "10.255.255.255", "255.255.255.255"}},
		{"/32 has no subnet pair, only the classful one", "192.168.1.5", 32, []string{"0.0.0.0", "192.168.1.0", "192.168.1.255", "255.255.255.255"}},
		{"mask shorter than the class", "172.16.0.1", 12, []string{"0.0.0.0", "172.16.0.0", "172.31.255.255", "255.255.255.255"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, "tap0")
			f.plumb("tap0")
			f.configure("tap0", tc.addr, tc.bits)
			if diff := cmp.Diff(tc.want, f.ires(route.IRE_BROADCAST, "tap0")); diff != "" {
				t.Errorf("broadcast IREs (-want +got):\n%s", diff)
			}
			if got := f.ires(route.IRE_LOCAL, "tap0"); !cmp.Equal(got, []string{tc.addr}) {
				t.Errorf("local IREs %v", got)
			}
			wantIf := []string{netip.PrefixFrom(addr(tc.addr), tc.bits).Masked().Addr().String()}
			if got := f.ires(route.IRE_IF_RESOLVER, "tap0"); !cmp.Equal(got, wantIf) {
				t.Errorf("interface IREs %v, want %v", got, wantIf)
			}
			f.setUp("tap0", ctl.AF_INET, false)
			for _, typ := range []route.Type{route.IRE_BROADCAST, route.IRE_LOCAL, route.IRE_IF_RESOLVER} {
				if got := f.ires(typ, "tap0"); got != nil {
					t.Errorf("after down, %s IREs remain: %v", typ, got)
				}
			}
		})
	}
}

// TestSharedBroadcast is [CHECK-23].
func TestSharedBroadcast(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	f.configure("tap0", "10.1.2.3", 24)
	u := f.must("SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}).Name
	f.configure(u, "10.1.2.4", 24)
	bc := route.IRE{Type: route.IRE_BROADCAST, Dest: netip.MustParsePrefix("10.1.2.255/32"), Ill: "tap0"}
	has := func() bool {
		for _, e := range f.m.Routes().All() {
			if e.Type == bc.Type && e.Dest == bc.Dest && e.Ill == "tap0" {
				return true
			}
		}
		return false
	}
	f.setUp(u, ctl.AF_INET, false)
	if !has() {
		t.Fatal("down tap0:1 removed the broadcast IRE tap0 still needs")
	}
	f.setUp("tap0", ctl.AF_INET, false)
	if has() {
		t.Fatal("broadcast IRE survived the last unit going down")
	}
}

func TestFlags(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	f.configure("tap0", "10.0.0.1", 24)
	c := f.flags("tap0", ctl.AF_INET)
	if c != 0x1000843 {
		t.Errorf("up flags %s, want 1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4>", c)
	}
	// [CHECK-16] and Appendix C17: cantchange bits are ignored.
	for _, bit := range []ctl.Flags{ctl.IFF_RUNNING, ctl.IFF_BROADCAST, ctl.IFF_MULTICAST, ctl.IFF_IPV4, ctl.IFF_LOOPBACK, ctl.IFF_VIRTUAL, ctl.IFF_FIXEDMTU} {
		f.must("SIOCSLIFFLAGS", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Flags: c ^ bit})
		if got := f.flags("tap0", ctl.AF_INET); got != c {
			t.Errorf("toggling %s changed flags to %s", bit.Names(), got)
		}
	}
	// Appendix C18.
	f.fails("SIOCSLIFFLAGS", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Flags: c | ctl.IFF_TEMPORARY}, ctl.EINVAL)
	lo := f.flags("lo0", ctl.AF_INET)
	f.fails("SIOCSLIFFLAGS", ctl.AF_INET, ctl.Lifreq{Name: "lo0", Flags: lo | ctl.IFF_ROUTER}, ctl.EINVAL)
	// [CHECK-17]
	f.must("SIOCSLIFFLAGS", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Flags: c | ctl.IFF_NOFAILOVER})
	c = f.flags("tap0", ctl.AF_INET)
	if c&ctl.IFF_DEPRECATED == 0 {
		t.Errorf("NOFAILOVER without DEPRECATED: %s", c)
	}
	f.fails("SIOCSLIFFLAGS", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Flags: c &^ ctl.IFF_DEPRECATED}, ctl.EINVAL)
	// [CHECK-18]
	f.must("SIOCSLIFFLAGS", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Flags: c | ctl.IFF_STANDBY})
	if got := f.flags("tap0", ctl.AF_INET); got&(ctl.IFF_STANDBY|ctl.IFF_INACTIVE) != ctl.IFF_STANDBY|ctl.IFF_INACTIVE {
		t.Errorf("STANDBY did not bring INACTIVE: %s", got)
	}
	// [CHECK-14] an ill flag set through one unit shows on all units.
	u := f.must("SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}).Name
	f.must("SIOCSLIFFLAGS", ctl.AF_INET, ctl.Lifreq{Name: u, Flags: f.flags(u, ctl.AF_INET) | ctl.IFF_ROUTER})
	if f.flags("tap0", ctl.AF_INET)&ctl.IFF_ROUTER == 0 {
		t.Error("CHECK-14: ROUTER set via tap0:1 not visible on tap0")
	}
	// [CHECK-15] a phyint flag shows in the other family.
	f.must("SIOCSLIFNAME", ctl.AF_INET6, ctl.Lifreq{Name: "tap0", Flags: ctl.IFF_IPV6})
	if f.flags("tap0", ctl.AF_INET6)&ctl.IFF_STANDBY == 0 {
		t.Error("CHECK-15: STANDBY not visible on the IPv6 ill")
	}
	// [CHECK-19] an IPv4 point-to-point unit without destination cannot be up.
	f.must("SIOCSLIFDSTADDR", ctl.AF_INET, ctl.Lifreq{Name: u, Dstaddr: addr("0.0.0.0")})
	fl := f.flags(u, ctl.AF_INET)
	if fl&ctl.IFF_POINTOPOINT == 0 || fl&ctl.IFF_BROADCAST != 0 {
		t.Errorf("after SIOCSLIFDSTADDR flags %s, want POINTOPOINT without BROADCAST", fl)
	}
	f.fails("SIOCSLIFFLAGS", ctl.AF_INET, ctl.Lifreq{Name: u, Flags: fl | ctl.IFF_UP}, ctl.EINVAL)
}

func TestMTU(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	f.must("SIOCSLIFNAME", ctl.AF_INET6, ctl.Lifreq{Name: "tap0", Flags: ctl.IFF_IPV6})
	for _, v := range []int64{67, 1501, -1, 0} {
		f.fails("SIOCSLIFMTU", ctl.AF_INET, ctl.Lifreq{Name: "tap0", MTU: v}, ctl.EINVAL)
	}
	f.fails("SIOCSLIFMTU", ctl.AF_INET6, ctl.Lifreq{Name: "tap0", MTU: 1279}, ctl.EINVAL)
	f.must("SIOCSLIFMTU", ctl.AF_INET, ctl.Lifreq{Name: "tap0", MTU: 1400})
	if got := f.must("SIOCGLIFMTU", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}).MTU; got != 1400 {
		t.Errorf("MTU %d", got)
	}
	if f.flags("tap0", ctl.AF_INET)&ctl.IFF_FIXEDMTU == 0 {
		t.Error("FIXEDMTU not set")
	}
	if f.flags("tap0", ctl.AF_INET6)&ctl.IFF_FIXEDMTU != 0 {
		t.Error("FIXEDMTU leaked to the IPv6 ill")
	}
	u := f.must("SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}).Name
	f.fails("SIOCSLIFMTU", ctl.AF_INET, ctl.Lifreq{Name: u, MTU: 1400}, ctl.EINVAL)
	if got := f.must("SIOCGLIFMTU", ctl.AF_INET, ctl.Lifreq{Name: u}).MTU; got != 1400 {
		t.Errorf("logical unit MTU %d, want the ill's 1400", got)
	}
}

func TestEnumeration(t *testing.T) {
	f := newFixture(t, "tap0", "tap1")
	f.plumb("tap1")
	f.plumb("tap0")
	f.must("SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0"})
	f.must("SIOCSLIFNAME", ctl.AF_INET6, ctl.Lifreq{Name: "tap1", Flags: ctl.IFF_IPV6})
	lc := ctl.Lifconf{Family: ctl.AF_UNSPEC}
	if err := f.m.Do(root, "SIOCGLIFCONF", ctl.AF_INET, &lc); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range lc.Req {
		names = append(names, r.Name)
	}
	// Types in order of first plumb (lo, then tap), PPA ascending; IPv4 first.
	want := []string{"lo0", "tap0", "tap0:1", "tap1", "lo0", "tap1"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("SIOCGLIFCONF order (-want +got):\n%s", diff)
	}
	if lc.Len != len(want)*ctl.LifreqSize {
		t.Errorf("lifc_len %d", lc.Len)
	}
	// A short buffer holds whole records only.
	short := ctl.Lifconf{Family: ctl.AF_INET, Len: 2*ctl.LifreqSize + 10}
	f.m.Do(root, "SIOCGLIFCONF", ctl.AF_INET, &short)
	if len(short.Req) != 2 || short.Len != 2*ctl.LifreqSize {
		t.Errorf("short buffer: %d records, len %d", len(short.Req), short.Len)
	}
	for fam, n := range map[ctl.Family]int{ctl.AF_UNSPEC: 6, ctl.AF_INET: 4, ctl.AF_INET6: 2} {
		ln := ctl.Lifnum{Family: fam}
		if err := f.m.Do(root, "SIOCGLIFNUM", ctl.AF_INET, &ln); err != nil || ln.Count != n {
			t.Errorf("SIOCGLIFNUM %s = %d, %v; want %d", fam, ln.Count, err, n)
		}
	}
	bad := ctl.Lifnum{Family: "ax25"}
	if err := f.m.Do(root, "SIOCGLIFNUM", ctl.AF_INET, &bad); ctl.ErrnoOf(err) != ctl.EAFNOSUPPORT {
		t.Errorf("SIOCGLIFNUM bad family: %v", err)
	}
	badc := ctl.Lifconf{Family: "ax25"}
	if err := f.m.Do(root, "SIOCGLIFCONF", ctl.AF_INET, &badc); ctl.ErrnoOf(err) != ctl.EAFNOSUPPORT {
		t.Errorf("SIOCGLIFCONF bad family: %v", err)
	}
}

func TestPrivilegeAndUnknown(t *testing.T) {
	f := newFixture(t, "tap0")
	r := ctl.Lifreq{Name: "tap0", Flags: ctl.IFF_IPV4}
	if err := f.m.Do(Caller{}, "SIOCSLIFNAME", ctl.AF_INET, &r); ctl.ErrnoOf(err) != ctl.EPERM {
		t.Errorf("unprivileged set: %v, want EPERM", err)
	}
	g := ctl.Lifreq{Name: "lo0"}
	if err := f.m.Do(Caller{}, "SIOCGLIFFLAGS", ctl.AF_INET, &g); err != nil {
		t.Errorf("unprivileged get: %v", err)
	}
	if err := f.m.Do(root, "SIOCNOSUCH", ctl.AF_INET, &g); ctl.ErrnoOf(err) != ctl.EINVAL {
		t.Errorf("unknown request: %v", err)
	}
	if err := f.m.Do(root, "SIOCGLIFFLAGS", ctl.AF_INET, &ctl.Lifnum{}); ctl.ErrnoOf(err) != ctl.EINVAL {
		t.Errorf("wrong argument type: %v", err)
	}
}

func TestUnplumbReleasesEverything(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	f.configure("tap0", "10.3.0.1", 24)
	u := f.must("SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}).Name
	f.configure(u, "10.3.0.2", 24)
	lk, _ := f.links.Get("tap0")
	if lk.DLPIState() != link.DL_IDLE {
		t.Errorf("link state %s while up, want IDLE", lk.DLPIState())
	}
	f.must("unplumb", ctl.AF_INET, ctl.Lifreq{Name: "tap0"})
	for _, e := range f.m.Routes().All() {
		if e.Ill == "tap0" {
			t.Errorf("IRE left after unplumb: %+v", e)
		}
	}
	if _, ok := f.st.NICID("tap0"); ok {
		t.Error("stack NIC left after unplumb")
	}
	if lk.DLPIState() != link.DL_UNATTACHED {
		t.Errorf("link state %s after unplumb, want UNATTACHED", lk.DLPIState())
	}
	// The link can be plumbed again.
	f.plumb("tap0")
	f.configure("tap0", "10.3.0.1", 24)
}

func TestLinkNotifications(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	var mu sync.Mutex
	var kinds []EventKind
	f.m.Subscribe(func(e Event) {
		mu.Lock()
		kinds = append(kinds, e.Kind)
		mu.Unlock()
	})
	lk, _ := f.links.Get("tap0")
	dev := lk.Device().(*memory.Device)
	dev.SetCarrier(false)
	if f.flags("tap0", ctl.AF_INET)&ctl.IFF_RUNNING != 0 {
		t.Error("RUNNING still set after carrier loss")
	}
	dev.SetCarrier(true)
	if f.flags("tap0", ctl.AF_INET)&ctl.IFF_RUNNING == 0 {
		t.Error("RUNNING not restored")
	}
	dev.SetMTU(1400)
	if got := f.must("SIOCGLIFMTU", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}).MTU; got != 1400 {
		t.Errorf("MTU after SDU notification %d, want 1400", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]EventKind{RTM_IFINFO, RTM_IFINFO}, kinds); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// TestConcurrentRequests runs many clients at once; -race and the final
// invariants catch corruption.
func TestConcurrentRequests(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				r := ctl.Lifreq{Name: "tap0"}
				if err := f.m.Do(root, "SIOCLIFADDIF", ctl.AF_INET, &r); err != nil {
					t.Error(err)
					return
				}
				a := netip.AddrFrom4([4]byte{10, 50, byte(w), byte(i + 1)})
				m := ctl.Lifreq{Name: r.Name, Addr: netip.MustParseAddr("255.255.0.0")}
				f.m.Do(root, "SIOCSLIFNETMASK", ctl.AF_INET, &m)
				ar := ctl.Lifreq{Name: r.Name, Addr: a}
				f.m.Do(root, "SIOCSLIFADDR", ctl.AF_INET, &ar)
				fl := ctl.Lifreq{Name: r.Name}
				f.m.Do(root, "SIOCGLIFFLAGS", ctl.AF_INET, &fl)
				fl.Flags |= ctl.IFF_UP
				f.m.Do(root, "SIOCSLIFFLAGS", ctl.AF_INET, &fl)
				if i%3 == 0 {
					f.m.Do(root, "SIOCLIFREMOVEIF", ctl.AF_INET, &ctl.Lifreq{Name: r.Name})
				}
				lc := ctl.Lifconf{}
				f.m.Do(root, "SIOCGLIFCONF", ctl.AF_INET, &lc)
			}
		}()
	}
	wg.Wait()
	f.m.mu.RLock()
	defer f.m.mu.RUnlock()
	checkInvariants(t, f.m)
}

// checkInvariants verifies what must hold after any request sequence:
// unique names, every up unit has exactly its IREs installed, no kernel IRE
// without an up owner.
func checkInvariants(t *testing.T, m *Manager) {
	t.Helper()
	owned := map[string]int{}
	for _, il := range m.illsOfLocked(ctl.AF_UNSPEC) {
		seen := map[int]bool{}
		for _, u := range il.ipifs {
			if seen[u.id] {
				t.Errorf("%s: duplicate unit %d", il.name, u.id)
			}
			seen[u.id] = true
			if !u.up() && len(u.ires) > 0 {
				t.Errorf("%s is down but owns IREs", u.name())
			}
			for _, e := range u.ires {
				if !m.routes.Has(e) {
					t.Errorf("%s: IRE %+v missing", u.name(), e)
				}
				owned[ireKey(e)]++
			}
		}
	}
	for _, e := range m.routes.All() {
		if e.Flags&route.RTF_KERNEL == 0 {
			continue
		}
		k := ireKey(e.IRE)
		if owned[k] != e.Refs {
			t.Errorf("IRE %s %s has %d refs but %d owners", e.Type, e.Dest, e.Refs, owned[k])
		}
	}
}

// ireKey names an IRE the way the table shares it: broadcast IREs are per
// (ill, address), whatever unit installed them.
func ireKey(e route.IRE) string {
	if e.Type == route.IRE_BROADCAST {
		e.Gateway = netip.Addr{}
	}
	return fmt.Sprint(e.Type, e.Dest, e.Gateway, e.Ill, e.Zone)
}
