package ifmgr

import "github.com/tapstack/tapstack/ctl"

// Limits of SIOCSLIFLNKINFO (ND_MAX_REACHTIME, ND_MAX_REACHRETRANSTIME).
const (
	maxReachTime    = 3600000 // ms
	maxReachRetrans = 100000  // ms
)

// SIOCSLIFLNKINFO (spec §2.13.1).
func (m *Manager) sioSLifLnkInfo(c *call) error {
	u := c.target
	il := u.ill
	if u.id != 0 {
		return ctl.Errorf(ctl.EINVAL, "link information is set on unit 0 (%s), not %s", il.name, u.name())
	}
	in := c.lifr.Ifinfo
	if in == nil {
		return ctl.Errorf(ctl.EINVAL, "lifr_ifinfo is missing")
	}
	if in.MaxMTU != 0 && (in.MaxMTU > il.linkMTU() || in.MaxMTU < il.minMTU()) {
		return ctl.Errorf(ctl.EINVAL, "lir_maxmtu %d is outside %d..%d", in.MaxMTU, il.minMTU(), il.linkMTU())
	}
	if in.ReachTime > maxReachTime {
		return ctl.Errorf(ctl.EINVAL, "lir_reachtime %d ms is above %d", in.ReachTime, maxReachTime)
	}
	if in.ReachRetrans > maxReachRetrans {
		return ctl.Errorf(ctl.EINVAL, "lir_reachretrans %d ms is above %d", in.ReachRetrans, maxReachRetrans)
	}
	if in.MaxMTU != 0 {
		il.userMTU = in.MaxMTU
	}
	if in.ReachTime != 0 {
		il.reachTime = in.ReachTime
	}
	if in.ReachRetrans != 0 {
		il.reachRetrans = in.ReachRetrans
	}
	il.maxHops = in.MaxHops // stored unconditionally, 0 included
	if in.ReachTime != 0 || in.ReachRetrans != 0 {
		m.applyNUDTimesLocked(il) // ndp.go
	}
	if il.flags&ctl.IFF_FIXEDMTU == 0 && il.userMTU != 0 {
		il.mtu = min(il.linkMTU(), il.userMTU)
		m.applyMTULocked(il.phy)
	}
	return nil
}

// SIOCGLIFLNKINFO (spec §2.13.2).
func (m *Manager) sioGLifLnkInfo(c *call) error {
	u := c.target
	il := u.ill
	if u.id != 0 {
		return ctl.Errorf(ctl.EINVAL, "link information belongs to unit 0 (%s)", il.name)
	}
	c.lifr.Ifinfo = &ctl.Ifinfo{MaxHops: il.maxHops, ReachTime: il.reachTime, ReachRetrans: il.reachRetrans, MaxMTU: il.mtu}
	m.nudTimesInEffectLocked(il, c.lifr.Ifinfo) // ndp.go
	return nil
}

// linkMTU is current_frag: the link's current MTU (at least the family
// minimum).
func (il *ill) linkMTU() uint32 {
	if il.phy.link == nil {
		return il.maxFrag
	}
	return max(il.phy.link.SDU(), il.minMTU())
}

// SIOCSLIFMUXID (spec §2.10): stored, not validated.
func (m *Manager) sioSLifMuxID(c *call) error {
	il := c.target.ill
	il.ipMuxID, il.arpMuxID = c.lifr.IPMuxID, c.lifr.ARPMuxID
	return nil
}

// SIOCGLIFMUXID.
func (m *Manager) sioGLifMuxID(c *call) error {
	il := c.target.ill
	c.lifr.IPMuxID, c.lifr.ARPMuxID = il.ipMuxID, il.arpMuxID
	return nil
}
