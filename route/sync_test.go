package route

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tapstack/tapstack/stack"
)

// countingInstaller records every table it is given.
type countingInstaller struct{ tables [][]stack.Route }

func (c *countingInstaller) SetRoutes(rs []stack.Route) { c.tables = append(c.tables, rs) }

// last returns the latest table, sorted.
func (c *countingInstaller) last() []stack.Route {
	if len(c.tables) == 0 {
		return nil
	}
	out := slices.Clone(c.tables[len(c.tables)-1])
	slices.SortFunc(out, compareRoutes)
	return out
}

var routeCmp = cmp.Comparer(func(a, b stack.Route) bool { return a == b })

// TestSyncOnlyWhenGVisorSees: changes gVisor's table does not see (local
// and broadcast IREs, a second interface IRE of the same subnet) do not
// rebuild it; the last IRE of a route leaving does.
func TestSyncOnlyWhenGVisorSees(t *testing.T) {
	rec := &countingInstaller{}
	tb := New(rec)
	onLink := stack.Route{Dest: pfx("10.0.0.0/24"), NIC: "tap0"}
	unit := func(a string) []IRE {
		return []IRE{
			{Type: IRE_IF_RESOLVER, Dest: pfx("10.0.0.0/24"), Gateway: ip(a), Ill: "tap0", Flags: RTF_KERNEL},
			{Type: IRE_LOCAL, Dest: netip.PrefixFrom(ip(a), 32), Gateway: ip(a), Ill: "tap0", Flags: RTF_KERNEL},
			{Type: IRE_BROADCAST, Dest: pfx("10.0.0.255/32"), Gateway: ip(a), Ill: "tap0", Flags: RTF_KERNEL},
		}
	}
	steps := []struct {
		name      string
		do        func()
		wantSyncs int
		want      []stack.Route
	}{
		{"first unit", func() {
			for _, e := range unit("10.0.0.1") {
				tb.Add(e)
			}
		}, 1, []stack.Route{onLink}},
		{"second unit of the subnet", func() {
			for _, e := range unit("10.0.0.2") {
				tb.Add(e)
			}
		}, 1, []stack.Route{onLink}},
		{"first unit's IREs deleted", func() {
			for _, e := range unit("10.0.0.1") {
				tb.Delete(e)
			}
		}, 1, []stack.Route{onLink}},
		{"last unit's IREs deleted", func() {
			for _, e := range unit("10.0.0.2") {
				tb.Delete(e)
			}
		}, 2, []stack.Route{}},
	}
	for _, s := range steps {
		s.do()
		if len(rec.tables) != s.wantSyncs {
			t.Errorf("%s: gVisor's table set %d times in all, want %d", s.name, len(rec.tables), s.wantSyncs)
		}
		if diff := cmp.Diff(s.want, rec.last(), routeCmp); diff != "" {
			t.Errorf("%s: gVisor routes (-want +got):\n%s", s.name, diff)
		}
	}
}

// TestSyncUnboundGateway: a gateway route without an ill reaches gVisor
// once an interface IRE covers its gateway, and leaves with it.
func TestSyncUnboundGateway(t *testing.T) {
	rec := &countingInstaller{}
	tb := New(rec)
	def := IRE{Type: IRE_DEFAULT, Dest: pfx("0.0.0.0/0"), Gateway: ip("10.0.0.254"), Flags: RTF_GATEWAY}
	ifr := IRE{Type: IRE_IF_RESOLVER, Dest: pfx("10.0.0.0/24"), Gateway: ip("10.0.0.1"), Ill: "tap1"}
	onLink := stack.Route{Dest: ifr.Dest, NIC: "tap1"}
	viaTap1 := stack.Route{Dest: def.Dest, Gateway: def.Gateway, NIC: "tap1"}
	for _, s := range []struct {
		name string
		do   func() error
		want []stack.Route
	}{
		{"default route, gateway not on link", func() error { return tb.Add(def) }, []stack.Route{}},
		{"interface route covering the gateway", func() error { return tb.Add(ifr) }, []stack.Route{viaTap1, onLink}},
		{"interface route gone", func() error { return tb.Delete(ifr) }, []stack.Route{}},
	} {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		got := rec.last()
		if got == nil {
			got = []stack.Route{}
		}
		if diff := cmp.Diff(s.want, got, routeCmp); diff != "" {
			t.Errorf("%s: gVisor routes (-want +got):\n%s", s.name, diff)
		}
	}
}
