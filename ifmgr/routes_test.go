package ifmgr

import (
	"net/netip"
	"testing"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/route"
)

func (f *fixture) route(op string, r ctl.Rtentry) (ctl.Rtentry, error) {
	err := f.m.Do(root, op, ctl.AF_INET, &r)
	return r, err
}

func (f *fixture) routeFails(op string, r ctl.Rtentry, want ctl.Errno) {
	f.t.Helper()
	before := f.snapshot()
	_, err := f.route(op, r)
	if ctl.ErrnoOf(err) != want {
		f.t.Fatalf("%s %+v: %v, want %v", op, r, err, want)
	}
	if before := before; len(before.Routes) != len(f.snapshot().Routes) {
		f.t.Fatalf("%s failed but changed the routes", op)
	}
}

func hasRoute(f *fixture, t route.Type, dest string) bool {
	for _, e := range f.m.Routes().All() {
		if e.Type == t && e.Dest == netip.MustParsePrefix(dest) {
			return true
		}
	}
	return false
}

// TestRoutes covers spec §5.6–5.8 and Appendix C15–C16.
func TestRoutes(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	f.configure("tap0", "10.4.0.1", 24)
	gw := addr("10.4.0.254")

	// C16: non-contiguous mask, gateway 0.0.0.0, kernel routes.
	f.routeFails("SIOCADDRT", ctl.Rtentry{Dst: addr("192.168.0.0"), Genmask: addr("255.0.255.0"), Gateway: gw, Flags: ctl.RTF_GATEWAY}, ctl.ENOTSUP)
	f.routeFails("SIOCADDRT", ctl.Rtentry{Dst: addr("192.168.0.0"), Genmask: addr("255.255.0.0"), Gateway: addr("0.0.0.0"), Flags: ctl.RTF_GATEWAY}, ctl.ENETUNREACH)
	f.routeFails("SIOCDELRT", ctl.Rtentry{Dst: addr("10.4.0.0"), Genmask: addr("255.255.255.0"), Gateway: addr("10.4.0.1")}, ctl.ESRCH)
	// A gateway not on a connected network, or one of our own addresses.
	f.routeFails("SIOCADDRT", ctl.Rtentry{Dst: addr("0.0.0.0"), Gateway: addr("10.9.9.9"), Flags: ctl.RTF_GATEWAY}, ctl.ENETUNREACH)
	f.routeFails("SIOCADDRT", ctl.Rtentry{Dst: addr("0.0.0.0"), Gateway: addr("10.4.0.1"), Flags: ctl.RTF_GATEWAY}, ctl.ENETUNREACH)
	f.routeFails("SIOCADDRT", ctl.Rtentry{Dst: addr("0.0.0.0"), Gateway: gw, Flags: ctl.RTF_GATEWAY, Ifp: "tap7"}, ctl.ENXIO)

	// Default, prefix (class mask guessed from the connected 10.4.0.0/24
	// subnet sharing the class A network) and host routes.
	f.must2("SIOCADDRT", ctl.Rtentry{Dst: addr("0.0.0.0"), Gateway: gw, Flags: ctl.RTF_GATEWAY})
	f.must2("SIOCADDRT", ctl.Rtentry{Dst: addr("10.77.0.0"), Gateway: gw, Flags: ctl.RTF_GATEWAY, Ifp: "tap0"})
	f.must2("SIOCADDRT", ctl.Rtentry{Dst: addr("192.0.2.9"), Gateway: gw, Flags: ctl.RTF_GATEWAY | ctl.RTF_HOST, Ifp: "tap0"})
	for _, want := range []struct {
		t    route.Type
		dest string
	}{{route.IRE_DEFAULT, "0.0.0.0/0"}, {route.IRE_PREFIX, "10.77.0.0/24"}, {route.IRE_HOST, "192.0.2.9/32"}} {
		if !hasRoute(f, want.t, want.dest) {
			t.Errorf("no %s route %s", want.t, want.dest)
		}
	}
	f.routeFails("SIOCADDRT", ctl.Rtentry{Dst: addr("0.0.0.0"), Gateway: gw, Flags: ctl.RTF_GATEWAY}, ctl.EEXIST)
	got, err := f.route("RTM_GET", ctl.Rtentry{Dst: addr("198.51.100.1")})
	if err != nil || got.Type != "DEFAULT" || got.Gateway != gw || got.Ifp != "tap0" {
		t.Errorf("route get: %+v, %v", got, err)
	}

	// C15: the bound routes come back after the interface goes down and up.
	f.setUp("tap0", ctl.AF_INET, false)
	if hasRoute(f, route.IRE_PREFIX, "10.77.0.0/24") {
		t.Error("bound route survived the interface going down")
	}
	f.setUp("tap0", ctl.AF_INET, true)
	if !hasRoute(f, route.IRE_PREFIX, "10.77.0.0/24") || !hasRoute(f, route.IRE_HOST, "192.0.2.9/32") {
		t.Error("saved routes not restored by the first unit coming up")
	}

	// Delete removes the saved record too.
	f.must2("SIOCDELRT", ctl.Rtentry{Dst: addr("10.77.0.0"), Genmask: addr("255.255.255.0"), Gateway: gw})
	f.setUp("tap0", ctl.AF_INET, false)
	f.setUp("tap0", ctl.AF_INET, true)
	if hasRoute(f, route.IRE_PREFIX, "10.77.0.0/24") {
		t.Error("deleted route came back")
	}
	f.must2("SIOCDELRT", ctl.Rtentry{Dst: addr("0.0.0.0"), Gateway: gw})
	f.routeFails("SIOCDELRT", ctl.Rtentry{Dst: addr("0.0.0.0"), Gateway: gw}, ctl.ESRCH)

	// An interface route through one of our addresses.
	f.must2("SIOCADDRT", ctl.Rtentry{Dst: addr("172.20.0.0"), Genmask: addr("255.255.0.0"), Gateway: addr("10.4.0.1")})
	if !hasRoute(f, route.IRE_IF_RESOLVER, "172.20.0.0/16") {
		t.Error("interface route not installed")
	}
	f.routeFails("SIOCADDRT", ctl.Rtentry{Dst: addr("172.21.0.0"), Genmask: addr("255.255.0.0"), Gateway: addr("10.4.0.99")}, ctl.ENETUNREACH)
	f.routeFails("SIOCADDRT", ctl.Rtentry{Dst: addr("127.0.0.1"), Gateway: addr("127.0.0.1"), Flags: ctl.RTF_HOST}, ctl.EEXIST)
}

func (f *fixture) must2(op string, r ctl.Rtentry) {
	f.t.Helper()
	if _, err := f.route(op, r); err != nil {
		f.t.Fatalf("%s %+v: %v", op, r, err)
	}
}
