package ifmgr

import (
	"net/netip"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/route"
)

var (
	ipv4Loopback = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	ipv6Loopback = netip.IPv6Loopback()
	ipv4Bcast    = netip.AddrFrom4([4]byte{255, 255, 255, 255})
)

// ireRef remembers one IRE a unit installed, to delete exactly it on down.
type ireRef = route.IRE

// upLocked brings unit u up (spec §3.4, §5.2–5.3): bind the link on the
// first up, compute the unit's IREs, run the duplicate-address check,
// install the IREs (interface before local, then broadcast) and give the
// address to gVisor. On failure the unit stays down and nothing is left
// installed.
func (m *Manager) upLocked(u *ipif) error {
	if u.up() {
		return ctl.Errorf(ctl.EALREADY, "%s is already up", u.name())
	}
	il := u.ill
	wasBound := il.bound
	if err := m.bindLocked(il); err != nil {
		return err
	}
	fail := func(err error) error {
		if !wasBound && il.bound && il.upCount() == 0 {
			m.unbindLocked(il)
		}
		return err
	}

	// §5.3 step 2: a zero mask becomes the class mask at bring-up.
	if !il.v6 && v4(u.mask) == 0 {
		cm := classMask(v4(u.addr))
		if cm == 0 || u.flags&ctl.IFF_NOLOCAL != 0 {
			cm = 0xff000000
		}
		u.mask = fromV4(cm)
		if u.flags&ctl.IFF_POINTOPOINT == 0 {
			u.subnet = and(u.addr, u.mask)
		}
	}
	if il.v6 && !u.mask.IsValid() {
		u.mask = maskOf(u.addr, 128)
	}

	// §6.1: IPv6 resolver bring-up runs before the duplicate check.
	if err := ndOwnEntryLocked(u); err != nil {
		return fail(err)
	}
	// §4.5 duplicate local-address check.
	if err := m.addrAvailableLocked(u); err != nil {
		return fail(err)
	}

	ires := m.iresFor(u)
	var installed []route.IRE
	var addErr error
	m.routes.Batch(func() {
		for _, e := range ires {
			if err := m.routes.Add(e); err != nil {
				addErr = err
				return
			}
			installed = append(installed, e)
		}
	})
	if addErr != nil {
		m.routes.Batch(func() {
			for _, e := range installed {
				m.routes.Delete(e)
			}
		})
		return fail(ctl.Errorf(ctl.ENOMEM, "install routes of %s: %v", u.name(), addErr))
	}
	u.ires = installed
	u.flags |= ctl.IFF_UP
	if il.upCount() == 1 {
		m.restoreSavedLocked(il)
	}

	// §5.3 step 8: a configured broadcast address with no IRE is reset.
	if !il.v6 && u.flags&ctl.IFF_BROADCAST != 0 && !u.brd.IsUnspecified() &&
		!m.routes.Has(route.IRE{Type: route.IRE_BROADCAST, Dest: hostPrefix(u.brd), Gateway: u.addr, Ill: il.name, Zone: u.zone}) {
		u.brd = fromV4(v4(u.subnet) | ^v4(u.mask))
	}

	// DAD (dad.go) clears DUPLICATE and probes; when the address is ready
	// (at once if there is nothing to probe) addrReadyLocked gives it to
	// the stack and emits RTM_IFINFO and RTM_ADD.
	m.startDADLocked(u)
	return nil
}

// giveAddressLocked hands u's address to the stack once it is ready.
func (m *Manager) giveAddressLocked(u *ipif) {
	il := u.ill
	if !u.addr.IsUnspecified() && u.flags&ctl.IFF_NOLOCAL == 0 {
		p := netip.PrefixFrom(u.addr, prefixLen(u.mask))
		if u.slaac {
			u.stackAddr = p // gVisor's SLAAC holds it already (slaac.go)
			return
		}
		resume := m.dad6PauseLocked(il) // ready means ready in gVisor too
		err := m.stack.AddAddressWithProps(il.name, p, sourceProps(u))
		resume()
		if err != nil {
			m.log.Warn("stack refused address", "interface", u.name(), "addr", p, "err", err)
		} else {
			u.stackAddr = p
		}
	}
}

func hostPrefix(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }

// iresFor computes the IREs unit u needs while up (spec §5.3, §5.5).
func (m *Manager) iresFor(u *ipif) []route.IRE {
	il := u.ill
	k := route.RTF_KERNEL
	if u.flags&ctl.IFF_PRIVATE != 0 {
		k |= route.RTF_PRIVATE
	}
	mk := func(t route.Type, dest netip.Prefix) route.IRE {
		return route.IRE{Type: t, Dest: dest, Gateway: u.addr, Ill: il.name, Zone: u.zone, Flags: k}
	}
	var out []route.IRE
	noxmit := u.flags&ctl.IFF_NOXMIT != 0

	// Interface IRE first, so a /32 subnet never shadows the local entry.
	if !il.isLoopback() && !noxmit {
		ifType := route.IRE_IF_RESOLVER
		if len(il.broadcast) == 0 {
			ifType = route.IRE_IF_NORESOLVER
		}
		switch {
		case u.flags&ctl.IFF_POINTOPOINT != 0 && !u.dst.IsUnspecified():
			out = append(out, mk(ifType, hostPrefix(u.dst)))
		case !u.subnet.IsUnspecified() || (il.v6 && prefixLen(u.mask) != 0):
			out = append(out, mk(ifType, netip.PrefixFrom(u.subnet, prefixLen(u.mask))))
		}
	}
	if !u.addr.IsUnspecified() && u.flags&ctl.IFF_NOLOCAL == 0 {
		t := route.IRE_LOCAL
		if il.isLoopback() && (u.addr == ipv4Loopback || u.addr == ipv6Loopback) {
			t = route.IRE_LOOPBACK
		}
		out = append(out, mk(t, hostPrefix(u.addr)))
	}
	if !il.v6 && u.flags&ctl.IFF_BROADCAST != 0 && !noxmit {
		out = append(out, broadcastIREs(u, mk)...)
	}
	return out
}

// broadcastIREs lists the broadcast IREs of an IPv4 unit (spec §5.3 step
// 4): all-zeros, all-ones, the classful pair when the class mask is
// shorter than the unit's, and the subnet pair unless the mask is /32.
func broadcastIREs(u *ipif, mk func(route.Type, netip.Prefix) route.IRE) []route.IRE {
	l, msk, s := v4(u.addr), v4(u.mask), v4(u.subnet)
	n := classMask(l)
	if l == 0 || u.flags&ctl.IFF_NOLOCAL != 0 {
		n = 0xff000000
	}
	addrs := []uint32{0, 0xffffffff}
	if prefixLen(fromV4(n)) < prefixLen(fromV4(msk)) {
		addrs = append(addrs, s&n, (s&n)|^n)
	}
	if msk != 0xffffffff {
		addrs = append(addrs, s, s|^msk)
	}
	var out []route.IRE
	seen := map[uint32]bool{}
	for _, a := range addrs {
		if seen[a] {
			continue
		}
		seen[a] = true
		out = append(out, mk(route.IRE_BROADCAST, hostPrefix(fromV4(a))))
	}
	return out
}

// ndOwnEntryLocked is the part of IPv6 resolver bring-up (spec §6.1,
// ipif_ndp_up) that can refuse: the address already has a local neighbour
// entry on this ill, made by another UP unit, and u is not point-to-point
// (which would become UNNUMBERED instead). That is EEXIST, and it wins
// over the duplicate check's EADDRNOTAVAIL (spec CHECK-22).
func ndOwnEntryLocked(u *ipif) error {
	il := u.ill
	if !il.v6 || il.isLoopback() || u.addr.IsUnspecified() ||
		u.flags&(ctl.IFF_NOLOCAL|ctl.IFF_POINTOPOINT) != 0 {
		return nil
	}
	for _, o := range il.ipifs {
		if o != u && o.up() && o.addr == u.addr && o.flags&(ctl.IFF_NOLOCAL|ctl.IFF_UNNUMBERED) == 0 {
			return ctl.Errorf(ctl.EEXIST, "address %s already has a neighbour entry on %s (up on %s)", u.addr, il.name, o.name())
		}
	}
	return nil
}

// addrAvailableLocked is the duplicate local-address check (spec §4.5),
// run with u about to come up.
func (m *Manager) addrAvailableLocked(u *ipif) error {
	u.flags &^= ctl.IFF_UNNUMBERED
	if u.addr.IsUnspecified() {
		return nil
	}
	for _, il := range m.illListLocked(u.ill.v6) {
		for _, o := range il.ipifs {
			if o == u || !o.up() || o.flags&ctl.IFF_UNNUMBERED != 0 || o.addr != u.addr {
				continue
			}
			switch {
			case u.flags&ctl.IFF_POINTOPOINT != 0:
				u.flags |= ctl.IFF_UNNUMBERED
			case o.flags&ctl.IFF_POINTOPOINT != 0:
				o.flags |= ctl.IFF_UNNUMBERED
			case u.ill.v6 && u.addr.IsLinkLocalUnicast() && o.ill != u.ill:
			case o.zone != u.zone && o.ill.isLoopback():
			default:
				// Same ill would be EADDRINUSE; bring-up reports both as
				// EADDRNOTAVAIL (spec §4.5 step 4).
				return ctl.Errorf(ctl.EADDRNOTAVAIL, "address %s is already up on %s", u.addr, o.name())
			}
		}
	}
	return nil
}

// downLocked takes unit u down (spec §3.4): its IREs and stack address go;
// unless logical, the link is unbound when this was the last up unit.
func (m *Manager) downLocked(u *ipif, logical bool) {
	il := u.ill
	wasUp := u.up()
	u.flags &^= ctl.IFF_UP
	m.stopDADLocked(u)
	m.routes.Batch(func() {
		for _, e := range u.ires {
			m.routes.Delete(e)
		}
	})
	u.ires = nil
	if u.stackAddr.IsValid() {
		if err := m.stack.RemoveAddress(il.name, u.stackAddr.Addr()); err != nil {
			m.log.Warn("stack address removal", "interface", u.name(), "err", err)
		}
		u.stackAddr = netip.Prefix{}
		u.slaac = false
	}
	if il.upCount() == 0 {
		// No unit left up: every IRE that uses the ill goes (spec §3.4).
		m.routes.DeleteMatching(func(e route.IRE) bool {
			return e.Ill == il.name && e.Dest.Addr().Is6() == il.v6 && e.Flags&route.RTF_KERNEL == 0
		})
		if !logical && il.bound && !il.hasDuplicate() {
			m.unbindLocked(il)
		}
	}
	if wasUp {
		m.emitLocked(RTM_IFINFO, u)
		m.emitLocked(RTM_DELETE, u)
	}
}

// bindLocked binds il's stream (DL_BIND_REQ) if it is not bound, enables
// what the link offers (DL_CAPABILITY_REQ with the ENABLE bit, spec §8.5;
// Unbind resets it) and enables the stack NIC; loopback ills just enable
// the NIC.
func (m *Manager) bindLocked(il *ill) error {
	if il.bound {
		return nil
	}
	if il.stream != nil {
		if err := il.stream.Bind(il.sap()); err != nil {
			return dlpiErrno(err, "bind "+il.name)
		}
		if offer, err := il.stream.Capabilities(); err != nil {
			m.log.Warn("DL_CAPABILITY_REQ", "interface", il.name, "err", err)
		} else if _, err := il.stream.EnableCapabilities(offer); err != nil {
			m.log.Warn("DL_CAPABILITY_REQ enable", "interface", il.name, "err", err)
		}
	}
	il.bound = true
	m.dad6ConfigLocked(il) // before the NIC starts: SLAAC addresses get DAD too
	if !il.phy.nicUp {
		if err := m.stack.EnableNIC(il.phy.name); err != nil {
			m.log.Warn("enable NIC", "interface", il.name, "err", err)
		}
		il.phy.nicUp = true
	}
	m.openARPLocked(il)
	m.openDAD6StreamLocked(il)
	return nil
}

// unbindLocked unbinds il's stream; the stack NIC is disabled once neither
// family is bound.
func (m *Manager) unbindLocked(il *ill) {
	if !il.bound {
		return
	}
	if il.stream != nil {
		if err := il.stream.Unbind(); err != nil {
			m.log.Warn("unbind", "interface", il.name, "err", err)
		}
	}
	il.bound = false
	m.closeARPLocked(il)
	p := il.phy
	other := p.ills[1-famIndex(il.v6)]
	if p.nicUp && (other == nil || !other.bound) {
		if err := m.stack.DisableNIC(p.name); err != nil {
			m.log.Warn("disable NIC", "interface", il.name, "err", err)
		}
		p.nicUp = false
	}
}
