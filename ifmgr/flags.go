package ifmgr

import (
	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/link"
)

// ipmpInvalid may not change on an IPMP meta-interface (spec §3.2).
const ipmpInvalid = ctl.IFF_STANDBY | ctl.IFF_INACTIVE | ctl.IFF_OFFLINE |
	ctl.IFF_NOFAILOVER | ctl.IFF_NOARP | ctl.IFF_NONUD | ctl.IFF_XRESOLV | ctl.IFF_NOACCEPT

// SIOCSLIFFLAGS: the algorithm of spec §3.3, step by step.
func (m *Manager) sioSLifFlags(c *call) error {
	u := c.target
	il := u.ill
	F := c.lifr.Flags
	C := u.allFlags()

	// 1.
	if C&ctl.IFF_IPMP != 0 && (F^C)&ipmpInvalid != 0 {
		return ctl.Errorf(ctl.EINVAL, "%s is an IPMP interface; %s cannot change", u.name(), ((F ^ C) & ipmpInvalid).Names())
	}
	// 2. Bits that cannot change are ignored.
	cc := cantChange
	if C&ctl.IFF_IPMP != 0 {
		cc |= ctl.IFF_FAILED
	}
	on := (F ^ C) &^ cc & F
	off := (F ^ C) &^ cc & C
	if on|off == 0 {
		return nil
	}
	// 3. Test addresses stay deprecated.
	if off&ctl.IFF_DEPRECATED != 0 && off&ctl.IFF_NOFAILOVER == 0 && (C|on)&ctl.IFF_NOFAILOVER != 0 {
		return ctl.Errorf(ctl.EINVAL, "%s is a test address (NOFAILOVER); it must stay DEPRECATED", u.name())
	}
	// 5, 6. Only the VRRP control socket may do these; tapstack has none.
	if C&ctl.IFF_VRRP != 0 && (on|off)&ctl.IFF_UP != 0 {
		return ctl.Errorf(ctl.EINVAL, "%s is managed by VRRP; UP cannot change", u.name())
	}
	if (on|off)&ctl.IFF_NOACCEPT != 0 {
		return ctl.Errorf(ctl.EINVAL, "NOACCEPT can only be changed by the VRRP control socket")
	}
	// 7.
	if on&ctl.IFF_NOFAILOVER != 0 {
		on |= ctl.IFF_DEPRECATED
		F |= ctl.IFF_DEPRECATED
	}
	// 9.
	if on&ctl.IFF_TEMPORARY != 0 && !il.v6 {
		return ctl.Errorf(ctl.EINVAL, "TEMPORARY applies to IPv6 addresses only")
	}
	// 10.
	if off&ctl.IFF_NOXMIT != 0 && C&ctl.IFF_VNI != 0 {
		return ctl.Errorf(ctl.EINVAL, "%s is a VNI; NOXMIT cannot be cleared", u.name())
	}
	// 11.
	if on&ctl.IFF_ROUTER != 0 && il.phy.loopback {
		return ctl.Errorf(ctl.EINVAL, "ROUTER cannot be set on the loopback interface")
	}
	// 13, 14.
	if on&ctl.IFF_STANDBY != 0 {
		if il.inRing() {
			return ctl.Errorf(ctl.EINVAL, "%s is in a usesrc group and cannot be STANDBY", u.name())
		}
		if C&ctl.IFF_INACTIVE != 0 {
			return ctl.Errorf(ctl.EINVAL, "%s is already INACTIVE", u.name())
		}
		if F&ctl.IFF_FAILED == 0 {
			on |= ctl.IFF_INACTIVE
			F |= ctl.IFF_INACTIVE
		}
	}
	if off&ctl.IFF_STANDBY != 0 {
		F &^= ctl.IFF_INACTIVE
		if C&ctl.IFF_INACTIVE != 0 {
			off |= ctl.IFF_INACTIVE
		}
		on &^= ctl.IFF_INACTIVE
	}
	// 15.
	if F&(ctl.IFF_FAILED|ctl.IFF_INACTIVE) == ctl.IFF_FAILED|ctl.IFF_INACTIVE {
		return ctl.Errorf(ctl.EINVAL, "FAILED and INACTIVE cannot both be set")
	}

	// 16. Forwarding changes apply at once, whatever follows.
	if (on|off)&ctl.IFF_ROUTER != 0 {
		m.setRouterLocked(il, F&ctl.IFF_ROUTER != 0)
	}
	// 17. A unit that is not up and not coming up: just store the flags.
	if !u.up() && F&ctl.IFF_UP == 0 {
		m.storeFlagsLocked(u, on, off)
		m.flagsChangedLocked(u, on|off)
		return nil
	}
	// 18. Units that cannot be up.
	if il.v6 && u.addr.IsUnspecified() &&
		!((F&ctl.IFF_NOLOCAL != 0) && !u.subnet.IsUnspecified()) {
		return ctl.Errorf(ctl.EINVAL, "%s has no address (::) and cannot be up", u.name())
	}
	if C&ctl.IFF_POINTOPOINT != 0 && u.dst.IsUnspecified() {
		return ctl.Errorf(ctl.EINVAL, "%s is point-to-point with no destination and cannot be up", u.name())
	}
	// 19. Flags that need a down/up cycle.
	if (on|off)&downUpFlags != 0 && u.up() {
		m.downLocked(u, F&ctl.IFF_UP != 0)
	}
	// 21. Tail.
	m.storeFlagsLocked(u, on&^ctl.IFF_UP, off&^ctl.IFF_UP)
	if F&ctl.IFF_UP != 0 && !u.up() {
		return m.upLocked(u)
	}
	if (on|off)&^ctl.IFF_UP != 0 {
		m.flagsChangedLocked(u, on|off)
	}
	return nil
}

// storeFlagsLocked sets on and clears off, each bit at its level: ipif
// bits on the unit, ill bits on every unit of the family, phyint bits on
// both families.
func (m *Manager) storeFlagsLocked(u *ipif, on, off ctl.Flags) {
	u.flags = (u.flags | on&ipifFlags) &^ (off & ipifFlags)
	u.ill.flags = (u.ill.flags | on&illFlags) &^ (off & illFlags)
	p := u.ill.phy
	p.flags = (p.flags | on&phyintFlags) &^ (off & phyintFlags)
}

// flagsChangedLocked emits RTM_IFINFO for the unit's ill, and for both
// families when a phyint-level flag changed.
func (m *Manager) flagsChangedLocked(u *ipif, changed ctl.Flags) {
	if changed&phyintFlags == 0 {
		m.emitLocked(RTM_IFINFO, u.ill.ipifs[0])
		return
	}
	for _, il := range u.ill.phy.ills {
		if il != nil {
			m.emitLocked(RTM_IFINFO, il.ipifs[0])
		}
	}
}

// linkNotify applies a link notification (spec §8.6) as an exclusive
// operation of its own.
func (m *Manager) linkNotify(lk *link.Link, n link.Notification) {
	m.mu.Lock()
	defer m.unlockAndDeliver()
	var p *phyint
	for _, x := range m.byName {
		if x.link == lk {
			p = x
			break
		}
	}
	if p == nil {
		return
	}
	switch n.Kind {
	case link.NoteLinkUp, link.NoteLinkDown:
		was := p.flags&ctl.IFF_RUNNING != 0
		now := n.Kind == link.NoteLinkUp
		if was == now {
			return
		}
		if now {
			p.flags |= ctl.IFF_RUNNING
		} else {
			p.flags &^= ctl.IFF_RUNNING
		}
		m.log.Info("link state", "interface", p.name, "up", now)
		for _, il := range p.ills {
			if il != nil {
				m.emitLocked(RTM_IFINFO, il.ipifs[0])
			}
		}
	case link.NoteSDUSize:
		// spec §7.1: the link MTU follows the link unless fixed.
		for _, il := range p.ills {
			if il == nil {
				continue
			}
			cur := max(n.SDU, il.minMTU())
			il.maxFrag = max(il.maxFrag, cur)
			if il.flags&ctl.IFF_FIXEDMTU == 0 {
				il.mtu = cur
				if il.userMTU != 0 {
					il.mtu = max(min(cur, il.userMTU), il.minMTU())
				}
			}
		}
		m.applyMTULocked(p)
	case link.NotePhysAddr:
		// Logically down every up unit, take the new address, bring them
		// back up (spec §8.6).
		for _, il := range p.ills {
			if il == nil {
				continue
			}
			var wasUp []*ipif
			for _, u := range il.ipifs {
				if u.up() {
					wasUp = append(wasUp, u)
					m.downLocked(u, true)
				}
			}
			il.hwaddr = append(il.hwaddr[:0], n.Addr...)
			if il.v6 {
				setDefaultTokenLocked(il)
				m.setLinkLocalLocked(il)
			}
			for _, u := range wasUp {
				if err := m.upLocked(u); err != nil {
					m.log.Warn("re-up after MAC change", "interface", u.name(), "err", err)
				}
			}
		}
	}
}

// SIOCCLIFFLAGS (spec §2.7.4): compare the current flags under origmask
// with origflags and, if equal, apply modflags under modmask with the full
// SIOCSLIFFLAGS algorithm, all in one exclusive step. A mismatch is EAGAIN
// (the man page names no errno; spec Appendix B1).
func (m *Manager) sioCLifFlags(c *call) error {
	cf := c.lifr.Cflags
	if cf == nil {
		return ctl.Errorf(ctl.EINVAL, "lifr_cflags is missing")
	}
	cur := c.target.allFlags()
	if cur&cf.OrigMask != cf.OrigFlags&cf.OrigMask {
		return ctl.Errorf(ctl.EAGAIN, "flags of %s are %s, not %s under mask %#x", c.target.name(),
			cur&cf.OrigMask, cf.OrigFlags&cf.OrigMask, uint64(cf.OrigMask))
	}
	c.lifr.Flags = cur&^cf.ModMask | cf.ModFlags&cf.ModMask
	return m.sioSLifFlags(c)
}
