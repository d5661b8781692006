package route

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/tapstack/tapstack/stack"
)

// projection is the IRE table as gVisor sees it (see syncLocked), kept up
// to date change by change, so that a change gVisor's table does not see
// costs no rebuild: gVisor rebuilds its table in quadratic time, and
// bringing up 8,000 addresses must not rebuild it 8,000 times.
//
// Guarded by Table.mu.
type projection struct {
	// bound counts, per gVisor route, the IREs that name their ill and
	// project to it: the units of one subnet each have an interface IRE,
	// all projecting to the same route.
	bound map[stack.Route]int
	// unbound are the gateway IREs without an ill: they leave through the
	// ill whose interface IRE covers their gateway, which other changes
	// can alter, so they are projected again at every sync.
	unbound map[*entry]struct{}
	// changed: bound gained or lost a route since the last sync.
	changed bool
	// lastUnbound are the routes of unbound at the last sync, sorted.
	lastUnbound []stack.Route
}

func newProjection() projection {
	return projection{bound: make(map[stack.Route]int), unbound: make(map[*entry]struct{}), changed: true}
}

// projects reports whether IREs of type typ matter to gVisor's table.
// Local and broadcast IREs do not: gVisor delivers to its own addresses and
// subnet broadcasts by itself, and they cover no gateway.
func projects(typ Type) bool { return typ != IRE_LOCAL && typ != IRE_BROADCAST }

// boundRoute returns the gVisor route of an IRE that projects on its own:
// interface IREs become on-link routes, loopback IREs route to their ill,
// gateway IREs naming an ill go through it.
func boundRoute(ent *entry) (stack.Route, bool) {
	switch {
	case ent.Type.IsInterface(), ent.Type == IRE_LOOPBACK:
		if ent.Flags&RTF_BLACKHOLE != 0 {
			return stack.Route{}, false
		}
		return stack.Route{Dest: ent.Dest, NIC: ent.Ill}, true
	case isGatewayType(ent.Type) && ent.Ill != "":
		return stack.Route{Dest: ent.Dest, Gateway: ent.Gateway, NIC: ent.Ill}, true
	}
	return stack.Route{}, false
}

func isGatewayType(t Type) bool { return t == IRE_PREFIX || t == IRE_HOST || t == IRE_DEFAULT }

func (p *projection) add(ent *entry) {
	if r, ok := boundRoute(ent); ok {
		p.bound[r]++
		p.changed = p.changed || p.bound[r] == 1
	} else if isGatewayType(ent.Type) {
		p.unbound[ent] = struct{}{}
	}
}

func (p *projection) remove(ent *entry) {
	if r, ok := boundRoute(ent); ok {
		if p.bound[r]--; p.bound[r] == 0 {
			delete(p.bound, r)
			p.changed = true
		}
	} else {
		delete(p.unbound, ent)
	}
}

// syncLocked gives gVisor the projected table if it changed since the
// last sync.
func (t *Table) syncLocked() {
	t.dirty = false
	if t.install == nil {
		return
	}
	p := &t.proj
	var unbound []stack.Route
	for ent := range p.unbound {
		if ill := t.onLinkIllLocked(ent.Gateway); ill != "" {
			unbound = append(unbound, stack.Route{Dest: ent.Dest, Gateway: ent.Gateway, NIC: ill})
		}
	}
	slices.SortFunc(unbound, compareRoutes)
	unbound = slices.Compact(unbound)
	if !p.changed && slices.Equal(unbound, p.lastUnbound) {
		return
	}
	p.changed, p.lastUnbound = false, unbound
	routes := make([]stack.Route, 0, len(p.bound)+len(unbound))
	for r := range p.bound {
		routes = append(routes, r)
	}
	for _, r := range unbound {
		if p.bound[r] == 0 {
			routes = append(routes, r)
		}
	}
	t.install.SetRoutes(routes)
}

// compareRoutes orders gVisor routes by family, destination, then the
// rest: a canonical order, so that equal sets compare equal.
func compareRoutes(a, b stack.Route) int {
	if c := compareDest(a.Dest, b.Dest); c != 0 {
		return c
	}
	if c := cmp.Compare(a.NIC, b.NIC); c != 0 {
		return c
	}
	return a.Gateway.Compare(b.Gateway)
}

// onLinkIllLocked returns the ill of the longest interface IRE covering a.
func (t *Table) onLinkIllLocked(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	ill := ""
	t.trieOf(a).lookup(a, func(first *entry) bool {
		for ent := first; ent != nil; ent = ent.next {
			if ent.Type.IsInterface() {
				ill = ent.Ill
				return true
			}
		}
		return false
	})
	return ill
}
