package ipadm

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/ifmgr"
	"github.com/tapstack/tapstack/link"
	"github.com/tapstack/tapstack/link/memory"
	"github.com/tapstack/tapstack/stack"
)

var (
	root = ifmgr.Caller{Privileged: true}
	user = ifmgr.Caller{}
)

// fixture is one daemon's worth of interface layer over in-memory links,
// with a registry keeping its state in path.
type fixture struct {
	t     *testing.T
	m     *ifmgr.Manager
	r     *Registry
	links *link.Registry
	path  string
}

func newFixture(t *testing.T, path string, linkNames ...string) *fixture {
	t.Helper()
	st := stack.New()
	reg := &link.Registry{}
	f := &fixture{t: t, links: reg, path: path}
	for _, n := range linkNames {
		f.addLink(n)
	}
	m, err := ifmgr.New(ifmgr.Config{Stack: st, Links: reg})
	if err != nil {
		t.Fatal(err)
	}
	f.m = m
	t.Cleanup(func() {
		reg.CloseAll()
		st.Close()
	})
	if f.r, err = New(m, path, nil); err != nil {
		t.Fatal(err)
	}
	f.r.Restore()
	return f
}

var macSeq byte

func (f *fixture) addLink(name string) {
	f.t.Helper()
	macSeq++
	a, b := memory.NewPair(name, name+"-peer", 1500, net.HardwareAddr{2, 0, 0, 0, 1, macSeq}, nil)
	if err := f.links.Add(a); err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { b.Close() })
}

// restart is a new daemon on the same state file and links of the same
// names.
func (f *fixture) restart(linkNames ...string) *fixture {
	f.t.Helper()
	return newFixture(f.t, f.path, linkNames...)
}

func static(obj, local string) ctl.IpadmAddr {
	return ctl.IpadmAddr{Obj: obj, Type: ctl.AddrStatic, Local: netip.MustParsePrefix(local)}
}

func (f *fixture) must(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) showAddr(q string) []ctl.AddrInfo {
	f.t.Helper()
	rows, err := f.r.ShowAddr(ctl.IpadmAddrObj{Obj: q})
	f.must(err)
	return rows
}

// snapshot is everything a failed ipadm change must leave as it was: the
// interface layer's units with their settings, both configurations and
// the state file.
func (f *fixture) snapshot() string {
	f.t.Helper()
	s := ""
	for _, fam := range bothFamilies {
		for _, rec := range f.r.lifList(fam) {
			fl, _ := f.r.flags(rec.Name, fam)
			mask, _ := f.r.lifreq(system, "SIOCGLIFNETMASK", fam, ctl.Lifreq{Name: rec.Name})
			mtu, _ := f.r.lifreq(system, "SIOCGLIFMTU", fam, ctl.Lifreq{Name: rec.Name})
			s += fmt.Sprintf("%s %s %s/%d %#x mtu %d\n", fam, rec.Name, rec.Addr, mask.Addrlen, fl, mtu.MTU)
		}
	}
	s += fmt.Sprintf("active %+v\npersist %+v\n", f.r.Active(), f.r.Persistent())
	if f.path != "" {
		b, _ := os.ReadFile(f.path)
		s += string(b)
	}
	return s
}

// fails runs a change that must fail with errno want and change nothing.
func (f *fixture) fails(want ctl.Errno, change func() error) {
	f.t.Helper()
	before := f.snapshot()
	err := change()
	if got := ctl.ErrnoOf(err); got != want {
		f.t.Errorf("error %v (%v), want %v", got, err, want)
	}
	if err != nil {
		if ce, ok := err.(*ctl.Error); !ok || ce.Msg == "" {
			f.t.Errorf("error %v carries no message", err)
		}
	}
	if d := cmp.Diff(before, f.snapshot()); d != "" {
		f.t.Errorf("failed change changed state (-before +after):\n%s", d)
	}
}

type row struct{ Obj, Type, State, Addr, Lif string }

func rowsOf(infos []ctl.AddrInfo) []row {
	out := []row{}
	for _, i := range infos {
		out = append(out, row{i.Obj, i.Type, i.State, i.Addr, i.Lifname})
	}
	return out
}

func TestCreateAddr(t *testing.T) {
	f := newFixture(t, filepath.Join(t.TempDir(), "state.json"), "tap0")
	_, err := f.r.CreateAddr(root, static("tap0/v4", "10.0.0.1/24"))
	f.must(err)
	_, err = f.r.CreateAddr(root, static("tap0/v4b", "10.0.0.3/24"))
	f.must(err)
	_, err = f.r.CreateAddr(root, static("tap0/v6", "2001:db8::1/64"))
	f.must(err)
	_, err = f.r.CreateAddr(root, ctl.IpadmAddr{Obj: "tap0/ll", Type: ctl.AddrAddrconf})
	f.must(err)
	ll, err := f.r.lifreq(system, "SIOCGLIFADDR", ctl.AF_INET6, ctl.Lifreq{Name: "tap0"})
	f.must(err)
	want := []row{
		{"lo0/v4", "static", "ok", "127.0.0.1/8", "lo0"},
		{"tap0/v4", "static", "ok", "10.0.0.1/24", "tap0"},
		{"tap0/v4b", "static", "ok", "10.0.0.3/24", "tap0:1"},
		{"lo0/v6", "static", "ok", "::1/128", "lo0"},
		{"tap0/ll", "addrconf", "ok", ll.Addr.String() + "/64", "tap0"},
		{"tap0/v6", "static", "ok", "2001:db8::1/64", "tap0:1"},
	}
	if d := cmp.Diff(want, rowsOf(f.showAddr(""))); d != "" {
		t.Errorf("show-addr (-want +got):\n%s", d)
	}
	if d := cmp.Diff(want[1:3], rowsOf(f.showAddr("tap0/"))[:2]); d != "" {
		t.Errorf("show-addr tap0/ (-want +got):\n%s", d)
	}
	if d := cmp.Diff(want[2:3], rowsOf(f.showAddr("tap0/v4b"))); d != "" {
		t.Errorf("show-addr tap0/v4b (-want +got):\n%s", d)
	}

	f.must(f.r.DownAddr(root, ctl.IpadmAddrObj{Obj: "tap0/v4b"}))
	f.must(f.r.DisableAddr(root, ctl.IpadmAddrObj{Obj: "tap0/v6"}))
	got := rowsOf(f.showAddr("tap0/"))
	wantAfter := []row{
		{"tap0/v4", "static", "ok", "10.0.0.1/24", "tap0"},
		{"tap0/v4b", "static", "down", "10.0.0.3/24", "tap0:1"},
		{"tap0/ll", "addrconf", "ok", ll.Addr.String() + "/64", "tap0"},
		{"tap0/v6", "static", "disabled", "2001:db8::1/64", ""},
	}
	if d := cmp.Diff(wantAfter, got); d != "" {
		t.Errorf("after down-addr and disable-addr (-want +got):\n%s", d)
	}
	f.must(f.r.EnableAddr(root, ctl.IpadmAddrObj{Obj: "tap0/v6"}))
	f.must(f.r.DeleteAddr(root, ctl.IpadmAddrObj{Obj: "tap0/v4"}))
	// unit 0 is free again and the next address takes it.
	_, err = f.r.CreateAddr(root, static("tap0/again", "10.0.0.9/24"))
	f.must(err)
	if got := rowsOf(f.showAddr("tap0/again")); got[0].Lif != "tap0" || got[0].State != "ok" {
		t.Errorf("after delete-addr, create-addr: %+v, want on tap0, ok", got)
	}
}

func TestCreateAddrErrors(t *testing.T) {
	f := newFixture(t, filepath.Join(t.TempDir(), "state.json"), "tap0", "tap1")
	_, err := f.r.CreateAddr(root, static("tap0/v4", "10.0.0.1/24"))
	f.must(err)
	_, err = f.r.CreateAddr(root, ctl.IpadmAddr{Obj: "tap0/ll", Type: ctl.AddrAddrconf})
	f.must(err)
	f.must(f.r.CreateIP(root, ctl.IpadmIf{Name: "tap1"}))

	create := func(a ctl.IpadmAddr) func() error {
		return func() error { _, err := f.r.CreateAddr(root, a); return err }
	}
	for _, tc := range []struct {
		name   string
		errno  ctl.Errno
		change func() error
	}{
		{"no privilege", ctl.EPERM, func() error { _, err := f.r.CreateAddr(user, static("tap0/x", "10.0.0.5/24")); return err }},
		{"no slash", ctl.EINVAL, create(static("tap0", "10.0.0.5/24"))},
		{"empty name", ctl.EINVAL, create(static("tap0/", "10.0.0.5/24"))},
		{"name starts with digit", ctl.EINVAL, create(static("tap0/4", "10.0.0.5/24"))},
		{"name with dash", ctl.EINVAL, create(static("tap0/a-b", "10.0.0.5/24"))},
		{"name too long", ctl.EINVAL, create(static("tap0/a23456789012345678901234567890123", "10.0.0.5/24"))},
		{"logical unit", ctl.EINVAL, create(static("tap0:1/a", "10.0.0.5/24"))},
		{"exists", ctl.EEXIST, create(static("tap0/v4", "10.0.0.5/24"))},
		{"loopback name", ctl.EEXIST, create(static("lo0/v4", "127.0.0.2/8"))},
		{"second addrconf", ctl.EEXIST, create(ctl.IpadmAddr{Obj: "tap0/ll2", Type: ctl.AddrAddrconf})},
		{"no address", ctl.EINVAL, create(ctl.IpadmAddr{Obj: "tap0/x", Type: ctl.AddrStatic})},
		{"addrconf with address", ctl.EINVAL, create(ctl.IpadmAddr{Obj: "tap0/x", Type: ctl.AddrAddrconf, Local: netip.MustParsePrefix("fe80::1/64")})},
		{"bad type", ctl.EINVAL, create(ctl.IpadmAddr{Obj: "tap0/x", Type: "magic"})},
		{"dhcp", ctl.ENOTSUP, create(ctl.IpadmAddr{Obj: "tap0/x", Type: "dhcp"})},
		{"remote of other family", ctl.EINVAL, create(ctl.IpadmAddr{Obj: "tap0/x", Type: ctl.AddrStatic,
			Local: netip.MustParsePrefix("10.0.0.5/32"), Remote: netip.MustParseAddr("2001:db8::2")})},
		{"no link", ctl.ENXIO, create(static("tap9/x", "10.9.0.1/24"))},
		// The interface layer refuses the address only at the last step
		// (up): the new logical unit must go again.
		{"address up elsewhere", ctl.EADDRNOTAVAIL, create(static("tap1/dup", "10.0.0.1/24"))},
		{"network address", ctl.EADDRNOTAVAIL, create(static("tap1/net", "10.0.0.0/8"))},
		{"delete unknown", ctl.ENOENT, func() error { return f.r.DeleteAddr(root, ctl.IpadmAddrObj{Obj: "tap0/nosuch"}) }},
		{"delete loopback", ctl.ENOTSUP, func() error { return f.r.DeleteAddr(root, ctl.IpadmAddrObj{Obj: "lo0/v4"}) }},
		{"delete unprivileged", ctl.EPERM, func() error { return f.r.DeleteAddr(user, ctl.IpadmAddrObj{Obj: "tap0/v4"}) }},
		{"enable enabled", ctl.EALREADY, func() error { return f.r.EnableAddr(root, ctl.IpadmAddrObj{Obj: "tap0/v4"}) }},
		{"up unknown", ctl.ENOENT, func() error { return f.r.UpAddr(root, ctl.IpadmAddrObj{Obj: "tap0/nosuch"}) }},
		{"create-ip exists", ctl.EEXIST, func() error { return f.r.CreateIP(root, ctl.IpadmIf{Name: "tap0"}) }},
		{"create-ip logical", ctl.EINVAL, func() error { return f.r.CreateIP(root, ctl.IpadmIf{Name: "tap0:1"}) }},
		{"create-ip no link", ctl.ENXIO, func() error { return f.r.CreateIP(root, ctl.IpadmIf{Name: "tap9"}) }},
		{"delete-ip unknown", ctl.ENXIO, func() error { return f.r.DeleteIP(root, ctl.IpadmIf{Name: "tap9"}) }},
		{"enable-if enabled", ctl.EALREADY, func() error { return f.r.EnableIf(root, ctl.IpadmIf{Name: "tap0"}) }},
		{"ifprop unknown", ctl.ENOENT, func() error {
			return f.r.SetIfProp(root, ctl.IpadmProp{Ifname: "tap0", Proto: "ipv4", Name: "color", Value: "red"})
		}},
		{"ifprop wrong family", ctl.ENOENT, func() error {
			return f.r.SetIfProp(root, ctl.IpadmProp{Ifname: "tap0", Proto: "ipv6", Name: "arp", Value: "off"})
		}},
		{"ifprop bad value", ctl.EINVAL, func() error {
			return f.r.SetIfProp(root, ctl.IpadmProp{Ifname: "tap0", Proto: "ipv4", Name: "arp", Value: "maybe"})
		}},
		{"ifprop mtu too big", ctl.EINVAL, func() error {
			return f.r.SetIfProp(root, ctl.IpadmProp{Ifname: "tap0", Proto: "ipv4", Name: "mtu", Value: "9000"})
		}},
		{"ifprop no family", ctl.EINVAL, func() error {
			return f.r.SetIfProp(root, ctl.IpadmProp{Ifname: "tap0", Name: "mtu", Value: "1400"})
		}},
		{"addrprop zone", ctl.ENOTSUP, func() error {
			return f.r.SetAddrProp(root, ctl.IpadmProp{Obj: "tap0/v4", Name: "zone", Value: "z1"})
		}},
		{"addrprop prefixlen", ctl.EINVAL, func() error {
			return f.r.SetAddrProp(root, ctl.IpadmProp{Obj: "tap0/v4", Name: "prefixlen", Value: "33"})
		}},
		{"prop unknown", ctl.ENOENT, func() error {
			return f.r.SetProp(root, ctl.IpadmProp{Proto: "ip", Name: "_nosuch", Value: "1"})
		}},
		{"prop out of range", ctl.EINVAL, func() error {
			return f.r.SetProp(root, ctl.IpadmProp{Proto: "ip", Name: "_arp_probe_count", Value: "99"})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.t = t
			f.fails(tc.errno, tc.change)
		})
	}
}

// TestPersistence: what ipadm configured without -t comes back in a new
// daemon on the same state file, temporary changes do not, and a link
// that is missing at start gets its configuration when it appears.
func TestPersistence(t *testing.T) {
	f := newFixture(t, filepath.Join(t.TempDir(), "state.json"), "tap0", "tap1")
	f.must(f.r.CreateIP(root, ctl.IpadmIf{Name: "tap1"}))
	_, err := f.r.CreateAddr(root, static("tap0/v4", "10.0.0.1/24"))
	f.must(err)
	_, err = f.r.CreateAddr(root, ctl.IpadmAddr{Obj: "tap0/p2p", Type: ctl.AddrStatic,
		Local: netip.MustParsePrefix("10.9.0.1/32"), Remote: netip.MustParseAddr("10.9.0.2")})
	if err != nil {
		// Ethernet units are not point-to-point; the interface layer says so.
		t.Logf("point-to-point on Ethernet: %v", err)
	}
	_, err = f.r.CreateAddr(root, static("tap1/v6", "2001:db8:1::1/64"))
	f.must(err)
	tmp := static("tap0/tmp", "10.0.0.7/24")
	tmp.Temporary = true
	_, err = f.r.CreateAddr(root, tmp)
	f.must(err)
	f.must(f.r.DisableAddr(root, ctl.IpadmAddrObj{Obj: "tap1/v6"}))
	f.must(f.r.SetIfProp(root, ctl.IpadmProp{Ifname: "tap0", Proto: "ipv4", Name: "mtu", Value: "1400"}))
	f.must(f.r.SetIfProp(root, ctl.IpadmProp{Ifname: "tap0", Proto: "ipv4", Name: "arp", Value: "off"}))
	f.must(f.r.SetIfProp(root, ctl.IpadmProp{Ifname: "tap1", Proto: "ipv4", Name: "metric", Value: "3", Temporary: true}))
	f.must(f.r.SetProp(root, ctl.IpadmProp{Proto: "ip", Name: "_arp_probe_count", Value: "7"}))
	f.must(f.r.SetAddrProp(root, ctl.IpadmProp{Obj: "tap0/v4", Name: "deprecated", Value: "on"}))

	before := rowsOf(f.showAddr(""))
	var wantAfter []row
	for _, r := range before {
		if r.Obj != "tap0/tmp" {
			wantAfter = append(wantAfter, r)
		}
	}

	g := f.restart("tap0", "tap1")
	if d := cmp.Diff(wantAfter, rowsOf(g.showAddr(""))); d != "" {
		t.Errorf("show-addr after restart (-want +got):\n%s", d)
	}
	props, err := g.r.ShowIfProp(ctl.IpadmShowProps{Ifname: "tap0", Proto: "ipv4", Names: []string{"mtu", "arp"}})
	f.must(err)
	for _, p := range props {
		want := map[string]string{"mtu": "1400", "arp": "off"}[p.Property]
		if p.Current != want || p.Persistent != want {
			t.Errorf("%s after restart: current %q persistent %q, want %q", p.Property, p.Current, p.Persistent, want)
		}
	}
	metric, err := g.r.ShowIfProp(ctl.IpadmShowProps{Ifname: "tap1", Proto: "ipv4", Names: []string{"metric"}})
	f.must(err)
	if metric[0].Current != "0" {
		t.Errorf("temporary metric survived the restart: %+v", metric[0])
	}
	if got := g.m.Tunable("_arp_probe_count"); got != 7 {
		t.Errorf("_arp_probe_count after restart = %d, want 7", got)
	}
	fl, err := g.r.flags("tap0", ctl.AF_INET)
	f.must(err)
	if fl&ctl.IFF_DEPRECATED == 0 {
		t.Errorf("tap0/v4 lost its deprecated property: flags %#x", fl)
	}

}

// TestMissingLink: an interface whose link does not exist at start is kept
// (in the state file too) and shown as inaccessible, and is configured
// when its link appears.
func TestMissingLink(t *testing.T) {
	f := newFixture(t, filepath.Join(t.TempDir(), "state.json"), "tap0", "tap1")
	_, err := f.r.CreateAddr(root, static("tap1/v4", "10.1.0.1/24"))
	f.must(err)

	g := f.restart("tap0")
	want := []row{{"tap1/v4", "static", "inaccessible", "10.1.0.1/24", ""}}
	if d := cmp.Diff(want, rowsOf(g.showAddr("tap1/"))); d != "" {
		t.Errorf("show-addr without the link (-want +got):\n%s", d)
	}
	ifs, err := g.r.ShowIf(ctl.IpadmIf{Name: "tap1"})
	g.must(err)
	if d := cmp.Diff([]ctl.IfInfo{{Name: "tap1", Class: "ip", State: "disabled", Current: "------------", Persistent: "-4-"}}, ifs); d != "" {
		t.Errorf("show-if without the link (-want +got):\n%s", d)
	}
	// Another change rewrites the file; tap1 stays in it.
	_, err = g.r.CreateAddr(root, static("tap0/v4", "10.0.0.1/24"))
	g.must(err)
	if g.r.Persistent().iface("tap1") == nil {
		t.Errorf("tap1 dropped from the state file")
	}
	g.addLink("tap1")
	g.r.LinkAdded("tap1")
	want[0].State, want[0].Lif = "ok", "tap1"
	if d := cmp.Diff(want, rowsOf(g.showAddr("tap1/"))); d != "" {
		t.Errorf("show-addr once the link exists (-want +got):\n%s", d)
	}
}
