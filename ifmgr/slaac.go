package ifmgr

import (
	"net/netip"
	"slices"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/ndp"
	"github.com/tapstack/tapstack/route"
	"github.com/tapstack/tapstack/stack"
)

// Stateless address autoconfiguration. In illumos in.ndpd reads router
// advertisements and makes logical interfaces with IFF_ADDRCONF; here
// gVisor reads them and generates the addresses (the stable EUI-64 one
// and, when enabled, RFC 4941 temporary ones), and its events, delivered
// by ndp.Dispatcher, make and remove the logical units, so that ifconfig,
// SIOCGLIFCONF and the IRE table show them. The per-interface settings
// (ndp.set-conf) are those of ndpd.conf: StatelessAddrConf and
// TmpAddrsEnabled.

// sourceProps gives gVisor's source selection what the unit's flags say
// (spec §14.8): DEPRECATED units are avoided, TEMPORARY ones preferred
// over stable ones, PREFERRED ones chosen first among equals.
func sourceProps(u *ipif) stack.AddressProps {
	return stack.AddressProps{
		Deprecated: u.flags&ctl.IFF_DEPRECATED != 0,
		Temporary:  u.flags&ctl.IFF_TEMPORARY != 0,
		Preferred:  u.flags&ctl.IFF_PREFERRED != 0,
	}
}

// autoconfPlumbLocked gives a new IPv6 ill the default autoconfiguration
// (before its first bind, so gVisor solicits routers when it starts).
// Without a dispatcher nothing would hear the events: RAs stay ignored.
func (m *Manager) autoconfPlumbLocked(il *ill) {
	if !il.v6 || il.isLoopback() || m.ndpd == nil {
		return
	}
	il.autoconf = ndp.DefaultAutoconf
	if err := ndp.Configure(m.stack, il.name, il.autoconf); err != nil {
		m.log.Warn("autoconfiguration", "interface", il.name, "err", err)
	}
}

// autoconfUnplumbLocked stops autoconfiguration before il's units go, so
// no new SLAAC address appears meanwhile, and forgets il's neighbour
// flags when its NIC goes with it.
func (m *Manager) autoconfUnplumbLocked(il *ill) {
	if !il.v6 || il.isLoopback() {
		return
	}
	if m.ndpd != nil {
		if err := ndp.Configure(m.stack, il.name, ndp.Autoconf{}); err != nil {
			m.log.Warn("autoconfiguration off", "interface", il.name, "err", err)
		}
	}
	m.nd.Forget(il.name)
}

// ndpEvent handles one event of gVisor's neighbour discovery. It runs on
// the dispatcher's goroutine, never inside gVisor, so it may take mu.
func (m *Manager) ndpEvent(ev ndp.Event) {
	m.mu.Lock()
	defer m.unlockAndDeliver()
	switch ev.Kind {
	case ndp.RouterUp:
		m.nd.NoteRouter(ev.NIC, ev.Router, true)
		m.syncRouterIREsLocked()
		return
	case ndp.RouterDown:
		m.nd.NoteRouter(ev.NIC, ev.Router, false)
		m.dropRouterIRELocked(ndp.Router{NIC: ev.NIC, Addr: ev.Router})
		return
	}
	il := m.lookupIllLocked(ev.NIC, true)
	if il == nil || il.isLoopback() {
		return
	}
	a := ev.Addr.Addr()
	switch ev.Kind {
	case ndp.AddrAdded:
		m.addAutoconfLocked(il, ev)
	case ndp.AddrDeprecated, ndp.AddrPreferred:
		if u := slaacUnit(il, a); u != nil {
			old := u.flags
			if ev.Kind == ndp.AddrDeprecated {
				u.flags |= ctl.IFF_DEPRECATED
			} else {
				u.flags &^= ctl.IFF_DEPRECATED
			}
			if u.flags != old {
				m.emitLocked(RTM_IFINFO, u)
			}
		}
	case ndp.AddrAssigned:
		if u := slaacUnit(il, a); u != nil {
			m.slaacDADLocked(u, false, nil) // dad6.go
		}
	case ndp.AddrRemoved:
		if ev.Manual {
			return // ifmgr removed it itself (the unit went down)
		}
		if u := slaacUnit(il, a); u != nil {
			if ev.Duplicate {
				// Reported as DUPLICATE first; the unit then goes with
				// the address, and gVisor may make another.
				m.slaacDADLocked(u, true, ev.Holder)
			}
			u.stackAddr = netip.Prefix{} // already gone from gVisor
			m.freeUnitLocked(u)
		}
	}
}

// Default routers. gVisor learns routers from advertisements but leaves
// routing to its user, so each router it reports becomes a DEFAULT IRE:
// ::/0 through the router's link-local address, bound to the ill, with
// RTF_GATEWAY|RTF_KERNEL: the protocol maintains it, so SIOCDELRT does not
// find it (it would come back with the next advertisement anyway). The IRE
// exists while the ill is a host (no ROUTER flag) with a unit up; the
// route table hands it to gVisor. Routers stay known while ROUTER is on
// (gVisor keeps them until their lifetime ends), so turning ROUTER off
// brings their routes back.

func routerIRE(r ndp.Router) route.IRE {
	return route.IRE{Type: route.IRE_DEFAULT, Dest: netip.PrefixFrom(netip.IPv6Unspecified(), 0),
		Gateway: r.Addr, Ill: r.NIC, Flags: route.RTF_GATEWAY | route.RTF_KERNEL}
}

// learnedIRELocked reports whether the table holds r's IRE as a learned
// one (not an administrator's identical static route).
func (m *Manager) learnedIRELocked(r ndp.Router) bool {
	_, ok := m.routes.Lookup(r.Addr, func(e *route.IRE) bool {
		return e.Type == route.IRE_DEFAULT && e.Ill == r.NIC && e.Gateway == r.Addr && e.Flags&route.RTF_KERNEL != 0
	})
	return ok
}

// syncRouterIREsLocked adds or removes the IREs of the learned routers so
// that they follow the rule above. It runs after every write request
// (ROUTER, up/down and unplumb change the answer) and every learned
// router; with no router known it costs one map walk.
func (m *Manager) syncRouterIREsLocked() {
	for _, r := range m.nd.Routers() {
		il := m.lookupIllLocked(r.NIC, true)
		want := il != nil && !il.isLoopback() && il.flags&ctl.IFF_ROUTER == 0 && il.upCount() > 0
		has := m.learnedIRELocked(r)
		switch {
		case want && !has && !m.routes.Has(routerIRE(r)): // an identical static route wins
			if err := m.routes.Add(routerIRE(r)); err != nil {
				m.log.Warn("default route from router advertisement", "interface", r.NIC, "router", r.Addr, "err", err)
			}
		case !want && has:
			m.routes.Delete(routerIRE(r))
		}
	}
}

// dropRouterIRELocked removes the IRE of a router that is no longer one.
func (m *Manager) dropRouterIRELocked(r ndp.Router) {
	if m.learnedIRELocked(r) {
		m.routes.Delete(routerIRE(r))
	}
}

// slaacUnit returns the up unit of il whose address gVisor's SLAAC holds.
func slaacUnit(il *ill, a netip.Addr) *ipif {
	for _, u := range il.ipifs {
		if u.slaac && u.addr == a {
			return u
		}
	}
	return nil
}

// addAutoconfLocked makes a SLAAC address a unit with IFF_ADDRCONF:
// a down ADDRCONF unit with the same address is reused (the
// administrator took it down earlier), else the lowest free unit number
// is taken, as SIOCLIFADDIF does. If the unit cannot come up, the
// address is taken back from gVisor.
func (m *Manager) addAutoconfLocked(il *ill, ev ndp.Event) {
	a := ev.Addr.Addr()
	var u *ipif
	for _, x := range il.ipifs {
		if x.addr != a {
			continue
		}
		if x.up() {
			return // mirrored already, or configured by hand
		}
		if x.flags&ctl.IFF_ADDRCONF != 0 && u == nil {
			u = x
		}
	}
	fresh := u == nil
	if fresh {
		id := 1
		for il.ipifByID(id) != nil {
			id++
		}
		if id >= m.addrsPerIf {
			m.log.Warn("no logical unit for an autoconfigured address", "interface", il.name, "addr", a, "_addrs_per_if", m.addrsPerIf)
			m.declineSLAACLocked(il, a)
			return
		}
		u = m.newIpifLocked(il, id)
		i, _ := slices.BinarySearchFunc(il.ipifs, id, func(x *ipif, id int) int { return x.id - id })
		il.ipifs = slices.Insert(il.ipifs, i, u)
	}
	u.flags |= ctl.IFF_ADDRCONF
	u.flags &^= ctl.IFF_TEMPORARY | ctl.IFF_DEPRECATED
	if ev.Temporary {
		u.flags |= ctl.IFF_TEMPORARY
	}
	if ev.Deprecated {
		u.flags |= ctl.IFF_DEPRECATED
	}
	u.addr = a
	u.mask = maskOf(a, ev.Addr.Bits())
	u.subnet = and(a, u.mask)
	u.slaac = true
	u.dad.stackTentative = ev.Tentative // gVisor's DAD decides (dad6.go)
	m.emitLocked(RTM_CHGADDR, u)
	if err := m.upLocked(u); err != nil {
		m.log.Warn("autoconfigured address refused", "interface", u.name(), "addr", a, "err", err)
		u.slaac = false
		m.declineSLAACLocked(il, a)
		if fresh {
			m.freeUnitLocked(u)
		}
	}
}

// declineSLAACLocked takes an address ifmgr could not adopt back from
// gVisor (its removal event is then a manual one, ignored).
func (m *Manager) declineSLAACLocked(il *ill, a netip.Addr) {
	if err := m.stack.RemoveAddress(il.name, a); err != nil {
		m.log.Warn("remove autoconfigured address", "interface", il.name, "addr", a, "err", err)
	}
}

// freeUnitLocked takes unit u (not unit 0) down and removes it, as
// SIOCLIFREMOVEIF does.
func (m *Manager) freeUnitLocked(u *ipif) {
	if u.up() {
		m.downLocked(u, false)
	}
	m.emitLocked(RTM_FREEADDR, u)
	il := u.ill
	il.ipifs = slices.DeleteFunc(il.ipifs, func(x *ipif) bool { return x == u })
}

// ndp.set-conf: change the autoconfiguration of an IPv6 interface (the
// ndpd.conf "if NAME StatelessAddrConf on|off TmpAddrsEnabled on|off"
// line). Addresses configured already stay until their lifetimes end.
func (m *Manager) ndpSetConf(c *call) error {
	il, err := m.autoconfTargetLocked(c)
	if err != nil {
		return err
	}
	ac := il.autoconf
	if p := c.ndpConf.StatelessAddrConf; p != nil {
		ac.Stateless = *p
	}
	if p := c.ndpConf.TmpAddrsEnabled; p != nil {
		ac.Temporary = *p
	}
	if ac == il.autoconf {
		return m.ndpGetConf(c)
	}
	if err := ndp.Configure(m.stack, il.name, ac); err != nil {
		return ctl.Errorf(ctl.ENXIO, "%v", err)
	}
	il.autoconf = ac
	return m.ndpGetConf(c)
}

// ndp.get-conf: the autoconfiguration of an IPv6 interface.
func (m *Manager) ndpGetConf(c *call) error {
	il, err := m.autoconfTargetLocked(c)
	if err != nil {
		return err
	}
	st, tmp := il.autoconf.Stateless, il.autoconf.Temporary
	c.ndpConf.StatelessAddrConf, c.ndpConf.TmpAddrsEnabled = &st, &tmp
	return nil
}

// autoconfTargetLocked checks the target of ndp.set-conf/get-conf: unit 0
// of an IPv6 interface that is not loopback, on a daemon that hears
// router advertisements.
func (m *Manager) autoconfTargetLocked(c *call) (*ill, error) {
	u := c.target
	il := u.ill
	switch {
	case u.id != 0:
		return nil, ctl.Errorf(ctl.EINVAL, "autoconfiguration is set on unit 0 (%s), not %s", il.name, u.name())
	case !il.v6:
		return nil, ctl.Errorf(ctl.EINVAL, "%s is IPv4; autoconfiguration is IPv6", il.name)
	case il.isLoopback():
		return nil, ctl.Errorf(ctl.EINVAL, "%s is loopback and hears no router advertisements", il.name)
	case m.ndpd == nil:
		return nil, ctl.Errorf(ctl.ENOTSUP, "this stack was built without neighbour-discovery events")
	}
	return il, nil
}
