package route

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/stack"
)

type recorder struct{ last []stack.Route }

func (r *recorder) SetRoutes(rs []stack.Route) { r.last = rs }

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func ip(s string) netip.Addr    { return netip.MustParseAddr(s) }

func TestAddDeleteShare(t *testing.T) {
	tb := New(nil)
	bc := IRE{Type: IRE_BROADCAST, Dest: pfx("10.1.2.255/32"), Gateway: ip("10.1.2.3"), Ill: "tap0"}
	if err := tb.Add(bc); err != nil {
		t.Fatal(err)
	}
	bc2 := bc
	bc2.Gateway = ip("10.1.2.4") // another unit of the same ill
	if err := tb.Add(bc2); err != nil {
		t.Fatalf("shared broadcast add: %v", err)
	}
	if n := tb.Refs(bc); n != 2 {
		t.Fatalf("refs %d, want 2", n)
	}
	tb.Delete(bc2)
	if !tb.Has(bc) {
		t.Fatal("broadcast IRE gone while still shared")
	}
	tb.Delete(bc)
	if tb.Has(bc) {
		t.Fatal("broadcast IRE survived its last user")
	}
	if err := tb.Delete(bc); ctl.ErrnoOf(err) != ctl.ESRCH {
		t.Errorf("delete of a missing IRE: %v, want ESRCH", err)
	}
	l := IRE{Type: IRE_LOCAL, Dest: pfx("10.1.2.3/32"), Gateway: ip("10.1.2.3"), Ill: "tap0"}
	tb.Add(l)
	if err := tb.Add(l); ctl.ErrnoOf(err) != ctl.EEXIST {
		t.Errorf("identical local IRE: %v, want EEXIST", err)
	}
	if err := tb.Add(IRE{Type: IRE_HOST}); ctl.ErrnoOf(err) != ctl.EINVAL {
		t.Errorf("IRE without destination: %v, want EINVAL", err)
	}
}

func TestLookup(t *testing.T) {
	tb := New(nil)
	for _, e := range []IRE{
		{Type: IRE_DEFAULT, Dest: pfx("0.0.0.0/0"), Gateway: ip("10.0.0.254")},
		{Type: IRE_IF_RESOLVER, Dest: pfx("10.0.0.0/24"), Gateway: ip("10.0.0.1"), Ill: "tap0"},
		{Type: IRE_LOCAL, Dest: pfx("10.0.0.1/32"), Gateway: ip("10.0.0.1"), Ill: "tap0"},
		{Type: IRE_BROADCAST, Dest: pfx("10.0.0.255/32"), Ill: "tap0"},
		{Type: IRE_PREFIX, Dest: pfx("192.168.0.0/16"), Gateway: ip("10.0.0.9")},
		{Type: IRE_IF_RESOLVER, Dest: pfx("2001:db8::/64"), Gateway: ip("2001:db8::1"), Ill: "tap0"},
	} {
		if err := tb.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	for dst, want := range map[string]Type{
		"10.0.0.1": IRE_LOCAL, "10.0.0.7": IRE_IF_RESOLVER, "10.0.0.255": IRE_BROADCAST,
		"192.168.3.4": IRE_PREFIX, "8.8.8.8": IRE_DEFAULT, "2001:db8::5": IRE_IF_RESOLVER,
	} {
		got, ok := tb.Lookup(ip(dst), nil)
		if !ok || got.Type != want {
			t.Errorf("lookup %s: %v %v, want %v", dst, got.Type, ok, want)
		}
	}
	if _, ok := tb.Lookup(ip("2001:db9::1"), nil); ok {
		t.Error("IPv6 lookup matched an IPv4 default route")
	}
}

func TestSyncToStack(t *testing.T) {
	rec := &recorder{}
	tb := New(rec)
	tb.Batch(func() {
		tb.Add(IRE{Type: IRE_IF_RESOLVER, Dest: pfx("10.0.0.0/24"), Gateway: ip("10.0.0.1"), Ill: "tap0"})
		tb.Add(IRE{Type: IRE_LOCAL, Dest: pfx("10.0.0.1/32"), Gateway: ip("10.0.0.1"), Ill: "tap0"})
		tb.Add(IRE{Type: IRE_BROADCAST, Dest: pfx("10.0.0.255/32"), Ill: "tap0"})
		tb.Add(IRE{Type: IRE_DEFAULT, Dest: pfx("0.0.0.0/0"), Gateway: ip("10.0.0.254"), Flags: RTF_GATEWAY})
		tb.Add(IRE{Type: IRE_LOOPBACK, Dest: pfx("127.0.0.1/32"), Gateway: ip("127.0.0.1"), Ill: "lo0"})
	})
	got := map[netip.Prefix]stack.Route{}
	for _, r := range rec.last {
		got[r.Dest] = r
	}
	want := map[netip.Prefix]stack.Route{
		pfx("10.0.0.0/24"):  {Dest: pfx("10.0.0.0/24"), NIC: "tap0"},
		pfx("0.0.0.0/0"):    {Dest: pfx("0.0.0.0/0"), Gateway: ip("10.0.0.254"), NIC: "tap0"},
		pfx("127.0.0.1/32"): {Dest: pfx("127.0.0.1/32"), NIC: "lo0"},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
		cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("gVisor routes (-want +got):\n%s", diff)
	}
}

func TestNetstatFlags(t *testing.T) {
	for _, tc := range []struct {
		e    IRE
		want string
	}{
		{IRE{Type: IRE_DEFAULT, Dest: pfx("0.0.0.0/0"), Flags: RTF_UP | RTF_GATEWAY}, "UG"},
		{IRE{Type: IRE_LOCAL, Dest: pfx("10.0.0.1/32"), Flags: RTF_UP}, "UHL"},
		{IRE{Type: IRE_BROADCAST, Dest: pfx("10.0.0.255/32"), Flags: RTF_UP}, "UB"},
		{IRE{Type: IRE_IF_RESOLVER, Dest: pfx("10.0.0.0/24"), Flags: RTF_UP}, "U"},
	} {
		if got := NetstatFlags(tc.e); got != tc.want {
			t.Errorf("%s %s: %q, want %q", tc.e.Type, tc.e.Dest, got, tc.want)
		}
	}
}
