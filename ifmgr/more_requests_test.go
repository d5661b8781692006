package ifmgr

import (
	"testing"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/link/memory"
)

func TestSubnet(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	f.configure("tap0", "10.5.1.7", 24)
	f.fails("SIOCSLIFSUBNET", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Subnet: addr("10.5.0.0"), Addrlen: 33}, ctl.EINVAL)
	f.fails("SIOCSLIFSUBNET", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Subnet: addr("10.5.1.0"), Addrlen: 16}, ctl.EINVAL)
	f.fails("SIOCSLIFSUBNET", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Subnet: addr("224.0.0.0"), Addrlen: 8}, ctl.EADDRNOTAVAIL)
	f.fails("SIOCSLIFSUBNET", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Subnet: addr("fd00::"), Addrlen: 64}, ctl.EAFNOSUPPORT)
	f.must("SIOCSLIFSUBNET", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Subnet: addr("10.5.0.0"), Addrlen: 16})
	got := f.must("SIOCGLIFSUBNET", ctl.AF_INET, ctl.Lifreq{Name: "tap0"})
	if got.Subnet != addr("10.5.0.0") || got.Addrlen != 16 {
		t.Errorf("subnet %v/%d", got.Subnet, got.Addrlen)
	}
	if f.flags("tap0", ctl.AF_INET)&ctl.IFF_UP == 0 {
		t.Error("unit not brought back up after the subnet change")
	}
	if got := f.ires(0, "tap0"); got != nil {
		_ = got
	}
	// The broadcast address is not changed by SIOCSLIFSUBNET (§2.6.9 step 6).
	if b := f.must("SIOCGLIFBRDADDR", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}).Broadaddr; b != addr("10.5.255.255") && b != addr("10.5.1.255") {
		t.Errorf("broadcast %v", b)
	}
}

// TestTokenAndLinkLocal covers spec §4.4 and Appendix C11–C12.
func TestTokenAndLinkLocal(t *testing.T) {
	f := newFixture(t, "tap0")
	f.must("SIOCSLIFNAME", ctl.AF_INET6, ctl.Lifreq{Name: "tap0", Flags: ctl.IFF_IPV6})
	// MAC 2:0:0:0:0:1 → EUI-64 token ::ff:fe00:1 (0x02 flipped to 0x00).
	a := f.must("SIOCGLIFADDR", ctl.AF_INET6, ctl.Lifreq{Name: "tap0"})
	if a.Addr != addr("fe80::ff:fe00:1") || a.Addrlen != 64 {
		t.Errorf("link-local %v/%d, want fe80::ff:fe00:1/64", a.Addr, a.Addrlen)
	}
	tok := f.must("SIOCGLIFTOKEN", ctl.AF_INET6, ctl.Lifreq{Name: "tap0"})
	if tok.Token != addr("::ff:fe00:1") || tok.Addrlen != 64 {
		t.Errorf("token %v/%d", tok.Token, tok.Addrlen)
	}
	f.fails("SIOCGLIFTOKEN", ctl.AF_INET, ctl.Lifreq{Name: "lo0"}, ctl.ENXIO)
	f.fails("SIOCSLIFTOKEN", ctl.AF_INET6, ctl.Lifreq{Name: "tap0", Token: addr("::1234"), Addrlen: 129}, ctl.EINVAL)
	// C11: a global address on unit 0 of an Ethernet IPv6 ill is refused.
	f.fails("SIOCSLIFADDR", ctl.AF_INET6, ctl.Lifreq{Name: "tap0", Addr: addr("2001:db8::1")}, ctl.EADDRNOTAVAIL)
	// C12: a token change rewrites the link-local and re-ups the unit.
	f.setUp("tap0", ctl.AF_INET6, true)
	f.must("SIOCSLIFTOKEN", ctl.AF_INET6, ctl.Lifreq{Name: "tap0", Token: addr("::1234"), Addrlen: 64})
	if a := f.must("SIOCGLIFADDR", ctl.AF_INET6, ctl.Lifreq{Name: "tap0"}).Addr; a != addr("fe80::1234") {
		t.Errorf("after token ::1234: %v", a)
	}
	if f.flags("tap0", ctl.AF_INET6)&ctl.IFF_UP == 0 {
		t.Error("unit not back up after the token change")
	}
	// A manual link-local is not rewritten by later tokens.
	f.must("SIOCSLIFADDR", ctl.AF_INET6, ctl.Lifreq{Name: "tap0", Addr: addr("fe80::1")})
	f.must("SIOCSLIFTOKEN", ctl.AF_INET6, ctl.Lifreq{Name: "tap0", Token: addr("::99"), Addrlen: 64})
	if a := f.must("SIOCGLIFADDR", ctl.AF_INET6, ctl.Lifreq{Name: "tap0"}).Addr; a != addr("fe80::1") {
		t.Errorf("manual link-local rewritten to %v", a)
	}
	// SIOCSLIFPREFIX: prefix | token on a logical unit.
	u := f.must("SIOCLIFADDIF", ctl.AF_INET6, ctl.Lifreq{Name: "tap0"}).Name
	f.must("SIOCSLIFPREFIX", ctl.AF_INET6, ctl.Lifreq{Name: u, Addr: addr("2001:db8:1::")})
	if a := f.must("SIOCGLIFADDR", ctl.AF_INET6, ctl.Lifreq{Name: u}).Addr; a != addr("2001:db8:1::99") {
		t.Errorf("prefix address %v", a)
	}
	f.fails("SIOCSLIFPREFIX", ctl.AF_INET6, ctl.Lifreq{Name: u, Addr: addr("::")}, ctl.EADDRNOTAVAIL)
	f.fails("SIOCSLIFPREFIX", ctl.AF_INET6, ctl.Lifreq{Name: u, Addr: addr("10.0.0.0")}, ctl.EAFNOSUPPORT)
	f.fails("SIOCSLIFTOKEN", ctl.AF_INET6, ctl.Lifreq{Name: u, Token: addr("::1"), Addrlen: 64}, ctl.EINVAL)
	// NOLINKLOCAL at plumb: no link-local is generated.
	g := newFixture(t, "tap1")
	g.must("SIOCSLIFNAME", ctl.AF_INET6, ctl.Lifreq{Name: "tap1", Flags: ctl.IFF_IPV6 | ctl.IFF_NOLINKLOCAL})
	if a := g.must("SIOCGLIFADDR", ctl.AF_INET6, ctl.Lifreq{Name: "tap1"}).Addr; !a.IsUnspecified() {
		t.Errorf("NOLINKLOCAL ill got %v", a)
	}
}

// TestCLIFFLAGS covers SIOCCLIFFLAGS (spec §2.7.4).
func TestCLIFFLAGS(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	f.configure("tap0", "10.6.0.1", 24)
	// Mismatching origflags: EAGAIN, nothing changed.
	f.fails("SIOCCLIFFLAGS", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Cflags: &ctl.Cflags{
		ModFlags: ctl.IFF_PRIVATE, ModMask: ctl.IFF_PRIVATE, OrigFlags: 0, OrigMask: ctl.IFF_UP}}, ctl.EAGAIN)
	// Matching: set PRIVATE and clear UP atomically.
	f.must("SIOCCLIFFLAGS", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Cflags: &ctl.Cflags{
		ModFlags: ctl.IFF_PRIVATE, ModMask: ctl.IFF_PRIVATE | ctl.IFF_UP, OrigFlags: ctl.IFF_UP, OrigMask: ctl.IFF_UP}})
	if got := f.flags("tap0", ctl.AF_INET); got&ctl.IFF_PRIVATE == 0 || got&ctl.IFF_UP != 0 {
		t.Errorf("flags %s, want PRIVATE without UP", got)
	}
	// The SIOCSLIFFLAGS rules still apply.
	f.fails("SIOCCLIFFLAGS", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Cflags: &ctl.Cflags{
		ModFlags: ctl.IFF_TEMPORARY, ModMask: ctl.IFF_TEMPORARY}}, ctl.EINVAL)
	f.fails("SIOCCLIFFLAGS", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}, ctl.EINVAL)
}

// TestLnkInfo covers SIOCSLIFLNKINFO (spec §2.13, Appendix C23–C24).
func TestLnkInfo(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	f.fails("SIOCSLIFLNKINFO", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Ifinfo: &ctl.Ifinfo{MaxMTU: 1501}}, ctl.EINVAL)
	f.fails("SIOCSLIFLNKINFO", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Ifinfo: &ctl.Ifinfo{ReachTime: 3600001}}, ctl.EINVAL)
	f.fails("SIOCSLIFLNKINFO", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Ifinfo: &ctl.Ifinfo{ReachRetrans: 100001}}, ctl.EINVAL)
	f.must("SIOCSLIFLNKINFO", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Ifinfo: &ctl.Ifinfo{MaxHops: 9, ReachTime: 1000, MaxMTU: 1400}})
	got := f.must("SIOCGLIFLNKINFO", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}).Ifinfo
	if got == nil || *got != (ctl.Ifinfo{MaxHops: 9, ReachTime: 1000, ReachRetrans: 500, MaxMTU: 1400}) {
		t.Errorf("lnkinfo %+v", got)
	}
	u := f.must("SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}).Name
	f.fails("SIOCGLIFLNKINFO", ctl.AF_INET, ctl.Lifreq{Name: u}, ctl.EINVAL)

	// C23: with FIXEDMTU a link SDU notification leaves the MTU alone.
	f.must("SIOCSLIFMTU", ctl.AF_INET, ctl.Lifreq{Name: "tap0", MTU: 1500})
	lk, _ := f.links.Get("tap0")
	lk.Device().(*memory.Device).SetMTU(9000)
	if got := f.must("SIOCGLIFMTU", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}).MTU; got != 1500 {
		t.Errorf("FIXEDMTU ill MTU changed to %d", got)
	}
}

func TestMuxID(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	f.must("SIOCSLIFMUXID", ctl.AF_INET, ctl.Lifreq{Name: "tap0", IPMuxID: 7, ARPMuxID: 8})
	u := f.must("SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}).Name
	got := f.must("SIOCGLIFMUXID", ctl.AF_INET, ctl.Lifreq{Name: u})
	if got.IPMuxID != 7 || got.ARPMuxID != 8 {
		t.Errorf("mux ids %d/%d, want the ill's 7/8", got.IPMuxID, got.ARPMuxID)
	}
}

func TestAddressTests(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	f.configure("tap0", "10.8.0.1", 24)
	test := func(op, a string) int {
		t.Helper()
		r := ctl.AddrReq{Addr: addr(a)}
		if err := f.m.Do(root, op, ctl.AF_INET, &r); err != nil {
			t.Fatalf("%s %s: %v", op, a, err)
		}
		return r.Res
	}
	for _, tc := range []struct {
		op, addr string
		want     int
	}{
		{"SIOCTMYADDR", "10.8.0.1", 1},
		{"SIOCTMYADDR", "::ffff:10.8.0.1", 1},
		{"SIOCTMYADDR", "10.8.0.2", 0},
		{"SIOCTMYADDR", "127.0.0.1", 1},
		{"SIOCTMYADDR", "::1", 1},
		{"SIOCTONLINK", "10.8.0.2", 1},
		{"SIOCTONLINK", "10.8.0.1", 1},
		{"SIOCTONLINK", "10.8.0.255", 0},
		{"SIOCTONLINK", "10.9.0.1", 0},
		{"SIOCTONLINK", "224.0.0.1", 0},
	} {
		if got := test(tc.op, tc.addr); got != tc.want {
			t.Errorf("%s %s = %d, want %d", tc.op, tc.addr, got, tc.want)
		}
	}
	f.setUp("tap0", ctl.AF_INET, false)
	if test("SIOCTMYADDR", "10.8.0.1") != 0 {
		t.Error("a down unit's address is still 'mine'")
	}
	if err := f.m.Do(root, "SIOCTMYADDR", ctl.AF_INET, &ctl.AddrReq{}); ctl.ErrnoOf(err) != ctl.EAFNOSUPPORT {
		t.Errorf("AF_UNSPEC: %v", err)
	}
	if err := f.m.Do(root, "SIOCTMYSITE", ctl.AF_INET, &ctl.AddrReq{Addr: addr("10.8.0.1")}); ctl.ErrnoOf(err) != ctl.ENXIO {
		t.Errorf("SIOCTMYSITE: %v", err)
	}
}

// TestUsesrc covers spec §10 and [CHECK-5].
func TestUsesrc(t *testing.T) {
	f := newFixture(t, "tap0", "tap1", "tap2")
	for _, n := range []string{"tap0", "tap1", "tap2"} {
		f.plumb(n)
	}
	idx := func(n string) uint32 { return f.must("SIOCGLIFINDEX", ctl.AF_INET, ctl.Lifreq{Name: n}).Index }
	srcof := func(maxlen int) ctl.Lifsrcof {
		s := ctl.Lifsrcof{Ifindex: idx("tap0"), Maxlen: maxlen}
		if err := f.m.Do(root, "SIOCGLIFSRCOF", ctl.AF_INET, &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	f.fails("SIOCSLIFUSESRC", ctl.AF_INET, ctl.Lifreq{Name: "tap1", Index: idx("tap1")}, ctl.EINVAL)
	f.fails("SIOCSLIFUSESRC", ctl.AF_INET, ctl.Lifreq{Name: "tap1", Index: 999}, ctl.ENXIO)
	f.must("SIOCSLIFUSESRC", ctl.AF_INET, ctl.Lifreq{Name: "tap1", Index: idx("tap0")})
	f.must("SIOCSLIFUSESRC", ctl.AF_INET, ctl.Lifreq{Name: "tap2", Index: idx("tap0")})
	if got := f.must("SIOCGLIFUSESRC", ctl.AF_INET, ctl.Lifreq{Name: "tap1"}).Index; got != idx("tap0") {
		t.Errorf("tap1 usesrc %d", got)
	}
	// No chains: a provider cannot become a client, a client cannot provide.
	f.fails("SIOCSLIFUSESRC", ctl.AF_INET, ctl.Lifreq{Name: "tap0", Index: idx("tap1")}, ctl.EINVAL)
	f.fails("SIOCSLIFUSESRC", ctl.AF_INET, ctl.Lifreq{Name: "tap2", Index: idx("tap1")}, ctl.EINVAL)
	// [CHECK-5] the sizing protocol.
	if s := srcof(0); s.Len != 2*ctl.LifreqSize || len(s.Req) != 0 {
		t.Errorf("CHECK-5: maxlen 0 → len %d, %d records", s.Len, len(s.Req))
	}
	if s := srcof(2 * ctl.LifreqSize); len(s.Req) != 2 {
		t.Errorf("full buffer: %d records", len(s.Req))
	}
	// STANDBY is refused on a ring member.
	fl := f.flags("tap1", ctl.AF_INET)
	f.fails("SIOCSLIFFLAGS", ctl.AF_INET, ctl.Lifreq{Name: "tap1", Flags: fl | ctl.IFF_STANDBY}, ctl.EINVAL)
	// Reset, then unplumbing the provider disbands the ring.
	f.must("SIOCSLIFUSESRC", ctl.AF_INET, ctl.Lifreq{Name: "tap2", Index: 0})
	if s := srcof(0); s.Len != ctl.LifreqSize {
		t.Errorf("after reset: len %d", s.Len)
	}
	f.must("unplumb", ctl.AF_INET, ctl.Lifreq{Name: "tap0"})
	if got := f.must("SIOCGLIFUSESRC", ctl.AF_INET, ctl.Lifreq{Name: "tap1"}).Index; got != 0 {
		t.Errorf("client kept usesrc %d after its provider was unplumbed", got)
	}
}

// TestUnnumbered is [CHECK-20]: two point-to-point units with the same
// local address and different destinations both come up; the later one is
// UNNUMBERED.
func TestUnnumbered(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	var units []string
	for i, dst := range []string{"10.20.0.2", "10.20.0.3"} {
		u := f.must("SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}).Name
		f.must("SIOCSLIFDSTADDR", ctl.AF_INET, ctl.Lifreq{Name: u, Dstaddr: addr(dst)})
		f.must("SIOCSLIFADDR", ctl.AF_INET, ctl.Lifreq{Name: u, Addr: addr("10.20.0.1")})
		if err := f.setUp(u, ctl.AF_INET, true); err != nil {
			t.Fatalf("unit %d up: %v", i, err)
		}
		units = append(units, u)
	}
	if f.flags(units[0], ctl.AF_INET)&ctl.IFF_UNNUMBERED != 0 {
		t.Error("the first unit is UNNUMBERED")
	}
	if fl := f.flags(units[1], ctl.AF_INET); fl&(ctl.IFF_UNNUMBERED|ctl.IFF_UP) != ctl.IFF_UNNUMBERED|ctl.IFF_UP {
		t.Errorf("the second unit has %s, want UP and UNNUMBERED", fl)
	}
}

// TestLinkLocalOnTwoIlls is [CHECK-21]: the same IPv6 link-local address
// may be up on two different ills.
func TestLinkLocalOnTwoIlls(t *testing.T) {
	f := newFixture(t, "tap0", "tap1")
	for _, n := range []string{"tap0", "tap1"} {
		f.must("SIOCSLIFNAME", ctl.AF_INET6, ctl.Lifreq{Name: n, Flags: ctl.IFF_IPV6})
		f.must("SIOCSLIFADDR", ctl.AF_INET6, ctl.Lifreq{Name: n, Addr: addr("fe80::1")})
		if err := f.setUp(n, ctl.AF_INET6, true); err != nil {
			t.Fatalf("%s up with fe80::1: %v", n, err)
		}
	}
}
