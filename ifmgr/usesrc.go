package ifmgr

import (
	"github.com/tapstack/tapstack/ctl"
)

// inRing reports whether il is a usesrc provider or client.
func (il *ill) inRing() bool { return il.usesrcNext != nil }

// isProvider: in a ring without a provider index of its own.
func (il *ill) isProvider() bool { return il.inRing() && il.usesrcIndex == 0 }

// ringPrev returns the ill whose usesrcNext is il.
func (il *ill) ringPrev() *ill {
	p := il.usesrcNext
	for p != nil && p.usesrcNext != il {
		p = p.usesrcNext
	}
	return p
}

// unlinkUsesrcLocked takes client c out of its ring; a ring left with only
// its provider dissolves.
func unlinkUsesrcLocked(c *ill) {
	prev := c.ringPrev()
	if prev == nil {
		return
	}
	prev.usesrcNext = c.usesrcNext
	if prev.usesrcNext == prev {
		prev.usesrcNext = nil
	}
	c.usesrcNext, c.usesrcIndex = nil, 0
}

// disbandUsesrcLocked dissolves provider p's ring: every client falls back
// to its own addresses (spec §10.4).
func disbandUsesrcLocked(p *ill) {
	for x := p.usesrcNext; x != nil && x != p; {
		next := x.usesrcNext
		x.usesrcNext, x.usesrcIndex = nil, 0
		x = next
	}
	p.usesrcNext = nil
}

// illByIndexLocked finds the ill of a phyint index in one family.
func (m *Manager) illByIndexLocked(idx uint32, v6 bool) *ill {
	p := m.byIndex[idx]
	if p == nil {
		return nil
	}
	return p.ills[famIndex(v6)]
}

// SIOCSLIFUSESRC (spec §10.2): client lifr_name borrows source addresses
// from the interface with index lifr_index (0 resets).
func (m *Manager) sioSLifUsesrc(c *call) error {
	cl := c.target.ill
	idx := c.lifr.Index
	reset := idx == 0
	if reset {
		if !cl.inRing() {
			return nil
		}
		idx = cl.usesrcIndex
	}
	p := m.illByIndexLocked(idx, cl.v6)
	if p == nil {
		return ctl.Errorf(ctl.ENXIO, "no %s interface with index %d", famWord(cl.family()), idx)
	}
	if p == cl {
		return ctl.Errorf(ctl.EINVAL, "%s cannot use itself as a source", cl.name)
	}
	if p.phy.flags&ctl.IFF_IPMP != 0 {
		return ctl.Errorf(ctl.ENOTSUP, "%s is an IPMP interface and cannot provide sources", p.name)
	}
	if p.phy.flags&ctl.IFF_STANDBY != 0 {
		return ctl.Errorf(ctl.ENOTSUP, "%s is a STANDBY interface and cannot provide sources", p.name)
	}
	if cl.isProvider() || p.inRing() && !p.isProvider() {
		return ctl.Errorf(ctl.EINVAL, "%s is a provider or %s is a client: usesrc rings cannot chain", cl.name, p.name)
	}
	if !reset && cl.usesrcIndex == p.phy.index {
		return nil
	}
	if reset {
		unlinkUsesrcLocked(cl)
		return nil
	}
	if cl.inRing() {
		unlinkUsesrcLocked(cl)
	}
	if !p.inRing() {
		p.usesrcNext = cl
		cl.usesrcNext = p
	} else {
		cl.usesrcNext = p.usesrcNext
		p.usesrcNext = cl
	}
	cl.usesrcIndex = p.phy.index
	return nil
}

// SIOCGLIFUSESRC (spec §10.3).
func (m *Manager) sioGLifUsesrc(c *call) error {
	c.lifr.Index = c.target.ill.usesrcIndex
	return nil
}

// SIOCGLIFSRCOF (spec §2.3.5): the clients of provider lifs_ifindex, with
// the sizing protocol: lifs_len is always set to the size needed; data is
// returned only when it fits in lifs_maxlen.
func (m *Manager) sioGLifSrcOf(c *call) error {
	s := c.srcof
	p := m.illByIndexLocked(s.Ifindex, c.family == ctl.AF_INET6)
	if p == nil || !illVisible(p, c.caller.Zone) {
		return ctl.Errorf(ctl.ENXIO, "no %s interface with index %d", famWord(c.family), s.Ifindex)
	}
	var clients []*ill
	if p.isProvider() {
		for x := p.usesrcNext; x != p; x = x.usesrcNext {
			clients = append(clients, x)
		}
	}
	s.Req = nil
	s.Len = len(clients) * ctl.LifreqSize
	if s.Len == 0 || s.Len > s.Maxlen {
		return nil
	}
	for _, x := range clients {
		u := x.ipifs[0]
		s.Req = append(s.Req, ctl.Lifreq{Name: u.name(), Addr: u.addr, Addrlen: prefixLen(u.mask)})
	}
	return nil
}

// illVisible reports whether a caller in zone sees il: some unit of it is
// visible there (spec §2.3.5 resolves the index to any such unit).
func illVisible(il *ill, zone string) bool {
	for _, u := range il.ipifs {
		if u != nil && zoneVisible(u.zone, zone) {
			return true
		}
	}
	return false
}
