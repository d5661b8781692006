package ifmgr

import (
	"net/netip"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/route"
)

// subnetMaskGuess is ip_subnet_mask (spec §14.7): the mask SIOCADDRT uses
// for a network route given without one.
func (m *Manager) subnetMaskGuessLocked(d netip.Addr) int {
	cm := classMask(v4(d))
	if cm == 0 {
		return 0
	}
	net := v4(d) & cm
	fallback := -1
	for _, il := range m.illListLocked(false) {
		for _, u := range il.ipifs {
			if !u.up() || v4(u.subnet)&cm != net {
				continue
			}
			if u.flags&ctl.IFF_POINTOPOINT == 0 {
				return prefixLen(u.mask)
			}
			if fallback < 0 {
				fallback = prefixLen(u.mask)
			}
		}
	}
	if fallback >= 0 {
		return fallback
	}
	return prefixLen(fromV4(cm))
}

// unitWithAddrLocked finds the unit owning local address a (skipping
// unnumbered units), else a point-to-point unit whose destination is a
// (ipif_lookup_addr); restricted to il when non-nil.
func (m *Manager) unitWithAddrLocked(a netip.Addr, v6 bool, il *ill) *ipif {
	ills := m.illListLocked(v6)
	if il != nil {
		ills = []*ill{il}
	}
	for _, x := range ills {
		for _, u := range x.ipifs {
			if u.flags&ctl.IFF_UNNUMBERED == 0 && u.addr == a {
				return u
			}
		}
	}
	for _, x := range ills {
		for _, u := range x.ipifs {
			if u.flags&ctl.IFF_POINTOPOINT != 0 && u.dst == a {
				return u
			}
		}
	}
	return nil
}

// routeMaskLocked derives the prefix length of an Rtentry.
func (m *Manager) routeMaskLocked(r *ctl.Rtentry) (int, error) {
	d := r.Dst
	switch {
	case r.Flags&ctl.RTF_HOST != 0:
		return d.BitLen(), nil
	case r.Genmask.IsValid():
		if r.Genmask.Is4() != d.Is4() {
			return 0, ctl.Errorf(ctl.EINVAL, "netmask %s is not of the family of %s", r.Genmask, d)
		}
		if d.Is4() && !contiguous(v4(r.Genmask)) {
			return 0, ctl.Errorf(ctl.ENOTSUP, "netmask %s is not contiguous", r.Genmask)
		}
		return prefixLen(r.Genmask), nil
	case d.Is4():
		return m.subnetMaskGuessLocked(d), nil
	case d.IsUnspecified():
		return 0, nil
	}
	return 128, nil
}

// SIOCADDRT (spec §2.20, §5.7): add an administrator's route.
func (m *Manager) sioAddRt(c *call) error {
	r := c.rt
	d := r.Dst.Unmap()
	if !d.IsValid() {
		return ctl.Errorf(ctl.EINVAL, "rt_dst is missing")
	}
	r.Dst = d
	v6 := d.Is6()
	bits, err := m.routeMaskLocked(r)
	if err != nil {
		return err
	}
	g := r.Gateway.Unmap()
	if !g.IsValid() || g.IsUnspecified() {
		return ctl.Errorf(ctl.ENETUNREACH, "gateway %s is not a usable next hop", addrOrUnspec(g))
	}
	if g.Is6() != v6 {
		return ctl.Errorf(ctl.EINVAL, "gateway %s is not of the family of %s", g, d)
	}
	var ifp *ill
	if r.Ifp != "" {
		if ifp = m.lookupIllLocked(r.Ifp, v6); ifp == nil {
			return ctl.Errorf(ctl.ENXIO, "no %s interface named %q", famWord(famOf(v6)), r.Ifp)
		}
	}
	flags := r.Flags
	dest := netip.PrefixFrom(d, bits).Masked()
	owner := m.unitWithAddrLocked(g, v6, ifp)
	if owner != nil && owner.ill.isLoopback() {
		flags &^= ctl.RTF_GATEWAY
		if dest.Bits() == d.BitLen() && d == g && (d == ipv4Loopback || d == ipv6Loopback) {
			return ctl.Errorf(ctl.EEXIST, "the loopback route to %s already exists", d)
		}
	}
	var ire route.IRE
	if flags&ctl.RTF_GATEWAY == 0 {
		// An interface route: the "gateway" is one of our addresses.
		if owner == nil {
			return ctl.Errorf(ctl.ENETUNREACH, "%s is not a local address; an interface route needs one (or use RTF_GATEWAY)", g)
		}
		if ifp != nil && ifp != owner.ill {
			return ctl.Errorf(ctl.EINVAL, "%s belongs to %s, not %s", g, owner.ill.name, ifp.name)
		}
		t := route.IRE_IF_RESOLVER
		var extra route.Flags
		switch {
		case owner.ill.isLoopback():
			t, extra = route.IRE_IF_NORESOLVER, route.RTF_BLACKHOLE
		case len(owner.ill.broadcast) == 0:
			t = route.IRE_IF_NORESOLVER
		}
		ire = route.IRE{Type: t, Dest: dest, Gateway: g, Ill: owner.ill.name, Flags: route.RTF_STATIC | extra}
	} else {
		if owner != nil {
			return ctl.Errorf(ctl.ENETUNREACH, "gateway %s is one of this host's own addresses", g)
		}
		if _, ok := m.routes.Lookup(g, func(e *route.IRE) bool {
			return e.Type.IsInterface() && (ifp == nil || e.Ill == ifp.name)
		}); !ok {
			return ctl.Errorf(ctl.ENETUNREACH, "gateway %s is not on a directly connected network", g)
		}
		t := route.IRE_PREFIX
		switch bits {
		case d.BitLen():
			t = route.IRE_HOST
		case 0:
			t = route.IRE_DEFAULT
		}
		ire = route.IRE{Type: t, Dest: dest, Gateway: g, Flags: route.RTF_GATEWAY | route.RTF_STATIC}
		if ifp != nil {
			ire.Ill = ifp.name
		}
	}
	if r.Flags&ctl.RTF_PRIVATE != 0 {
		ire.Flags |= route.RTF_PRIVATE
	}
	if err := m.routes.Add(ire); err != nil {
		return err
	}
	if ire.Ill != "" {
		il := m.lookupIllLocked(ire.Ill, v6)
		il.saved = append(il.saved, ire)
	}
	m.pending = append(m.pending, Event{Kind: RTM_OLDADD, Name: ire.Ill, Addr: d})
	return nil
}

// isAdminType reports whether an IRE type can be an administrator's route.
func isAdminType(t route.Type) bool {
	return t.IsInterface() || t == route.IRE_HOST || t == route.IRE_DEFAULT || t == route.IRE_PREFIX
}

// SIOCDELRT (spec §5.7): routes the interfaces made (RTF_KERNEL) are never
// found here.
func (m *Manager) sioDelRt(c *call) error {
	r := c.rt
	d := r.Dst.Unmap()
	if !d.IsValid() {
		return ctl.Errorf(ctl.EINVAL, "rt_dst is missing")
	}
	r.Dst = d
	matchMask := r.Flags&ctl.RTF_HOST != 0 || r.Genmask.IsValid()
	bits := 0
	if matchMask {
		var err error
		if bits, err = m.routeMaskLocked(r); err != nil {
			return err
		}
	}
	g := r.Gateway.Unmap()
	var victim *route.Entry
	for _, e := range m.routes.All() {
		if e.Flags&route.RTF_KERNEL != 0 || !isAdminType(e.Type) {
			continue
		}
		if matchMask && e.Dest != netip.PrefixFrom(d, bits).Masked() || !matchMask && e.Dest.Addr() != d {
			continue
		}
		if g.IsValid() && e.Gateway != g || r.Ifp != "" && e.Ill != r.Ifp {
			continue
		}
		victim = &e
		break
	}
	if victim == nil {
		return ctl.Errorf(ctl.ESRCH, "no route to %s via %s to delete", d, addrOrUnspec(g))
	}
	if err := m.routes.Delete(victim.IRE); err != nil {
		return err
	}
	if victim.Ill != "" {
		if il := m.lookupIllLocked(victim.Ill, d.Is6()); il != nil {
			for i, s := range il.saved {
				if s.Type == victim.Type && s.Dest == victim.Dest && s.Gateway == victim.Gateway {
					il.saved = append(il.saved[:i], il.saved[i+1:]...)
					break
				}
			}
		}
	}
	m.pending = append(m.pending, Event{Kind: RTM_OLDDEL, Name: victim.Ill, Addr: d})
	return nil
}

// RTM_GET: the route the stack would use for rt_dst (route get).
func (m *Manager) rtmGet(c *call) error {
	r := c.rt
	d := r.Dst.Unmap()
	if !d.IsValid() {
		return ctl.Errorf(ctl.EINVAL, "rt_dst is missing")
	}
	e, ok := m.routes.Lookup(d, func(e *route.IRE) bool { return e.Type != route.IRE_BROADCAST || e.Dest.Addr() == d })
	if !ok {
		return ctl.Errorf(ctl.ESRCH, "no route to %s", d)
	}
	*r = ctl.Rtentry{Dst: e.Dest.Addr(), Gateway: e.Gateway, Genmask: maskOf(e.Dest.Addr(), e.Dest.Bits()),
		Flags: int(e.Flags), Ifp: e.Ill, Type: e.Type.String()}
	if r.Ifp == "" && e.Gateway.IsValid() {
		if ie, ok := m.routes.Lookup(e.Gateway, func(x *route.IRE) bool { return x.Type.IsInterface() }); ok {
			r.Ifp = ie.Ill
		}
	}
	return nil
}

// restoreSavedLocked re-creates il's saved routes when its first unit
// comes up (spec §5.6); duplicates are dropped silently.
func (m *Manager) restoreSavedLocked(il *ill) {
	if il.isLoopback() || len(il.saved) == 0 {
		return
	}
	m.routes.Batch(func() {
		for _, e := range il.saved {
			m.routes.Add(e)
		}
	})
}
