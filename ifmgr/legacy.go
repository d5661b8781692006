package ifmgr

import (
	"github.com/tapstack/tapstack/ctl"
)

// The legacy IF requests (struct ifreq) are the LIF requests restricted to
// IPv4 (an IF request that resolves to an IPv6 unit is ENXIO, §2.0.3) with
// 16-bit flags and the MTU in ifr_metric. Each converts its ifreq to a
// lifreq, runs the LIF handler, and converts back.

// legacyOps maps each IF request to the LIF request it is a form of.
var legacyOps = map[string]string{
	"SIOCSIFADDR":    "SIOCSLIFADDR",
	"SIOCGIFADDR":    "SIOCGLIFADDR",
	"SIOCSIFDSTADDR": "SIOCSLIFDSTADDR",
	"SIOCGIFDSTADDR": "SIOCGLIFDSTADDR",
	"SIOCSIFBRDADDR": "SIOCSLIFBRDADDR",
	"SIOCGIFBRDADDR": "SIOCGLIFBRDADDR",
	"SIOCSIFNETMASK": "SIOCSLIFNETMASK",
	"SIOCGIFNETMASK": "SIOCGLIFNETMASK",
	"SIOCSIFFLAGS":   "SIOCSLIFFLAGS",
	"SIOCGIFFLAGS":   "SIOCGLIFFLAGS",
	"SIOCSIFMTU":     "SIOCSLIFMTU",
	"SIOCGIFMTU":     "SIOCGLIFMTU",
	"SIOCSIFMETRIC":  "SIOCSLIFMETRIC",
	"SIOCGIFMETRIC":  "SIOCGLIFMETRIC",
	"SIOCGIFINDEX":   "SIOCGLIFINDEX",
	"SIOCSIFINDEX":   "SIOCSLIFINDEX",
	"SIOCGIFMUXID":   "SIOCGLIFMUXID",
	"SIOCSIFMUXID":   "SIOCSLIFMUXID",
	"SIOCGIFHWADDR":  "SIOCGLIFHWADDR",
}

func init() {
	for ifOp, lifOp := range legacyOps {
		lr := requests[lifOp]
		requests[ifOp] = request{kind: argIfreq, priv: lr.priv, write: lr.write, resolve: true, handler: legacyHandler(lifOp, lr.handler)}
	}
	requests["SIOCGIFCONF"] = request{kind: argIfconf, handler: (*Manager).sioGIfConf}
	requests["O_SIOCGIFCONF"] = request{kind: argIfconf, handler: (*Manager).sioGIfConfOld}
	requests["SIOCGIFNUM"] = request{kind: argIfnum, handler: (*Manager).sioGIfNum}
	requests["SIOCSIFNAME"] = request{kind: argIfreq, priv: true, write: true, handler: func(*Manager, *call) error {
		return ctl.Errorf(ctl.ENXIO, "interfaces cannot be renamed (SIOCSIFNAME is always ENXIO)")
	}}
}

// legacyHandler wraps a LIF handler for its IF form.
func legacyHandler(lifOp string, h func(*Manager, *call) error) func(*Manager, *call) error {
	return func(m *Manager, c *call) error {
		if c.target.ill.v6 {
			return ctl.Errorf(ctl.ENXIO, "%s is IPv6; the IF requests are IPv4 only (use the LIF form)", c.target.name())
		}
		ifr := c.ifr
		lr := &ctl.Lifreq{
			Name: ifr.Name, Addr: ifr.Addr, Dstaddr: ifr.Dstaddr, Broadaddr: ifr.Broadaddr,
			Metric: ifr.Metric, Index: ifr.Index, IPMuxID: ifr.IPMuxID, ARPMuxID: ifr.ARPMuxID,
		}
		switch lifOp {
		case "SIOCSLIFMTU":
			lr.MTU = int64(ifr.Metric)
		case "SIOCSLIFFLAGS":
			// Only the low 16 bits come from the request (§2.7.3).
			lr.Flags = c.target.allFlags()&^0xffff | ctl.Flags(ifr.Flags)
		}
		c.lifr = lr
		if err := h(m, c); err != nil {
			return err
		}
		ifr.Addr, ifr.Dstaddr, ifr.Broadaddr = lr.Addr, lr.Dstaddr, lr.Broadaddr
		ifr.Flags = uint16(lr.Flags)
		ifr.Metric, ifr.Index, ifr.IPMuxID, ifr.ARPMuxID = lr.Metric, lr.Index, lr.IPMuxID, lr.ARPMuxID
		switch lifOp {
		case "SIOCGLIFMTU":
			ifr.Metric = int(lr.MTU)
		case "SIOCGLIFHWADDR":
			ifr.HWFamily, ifr.HWAddr = 1, lr.HWAddr // ARPHRD_ETHER
			if len(c.target.ill.hwaddr) > 14 {
				return ctl.Errorf(ctl.EPFNOSUPPORT, "the hardware address of %s does not fit in sa_data", c.target.ill.name)
			}
		}
		return nil
	}
}

// ifconfUnits lists the units SIOCGIFCONF and SIOCGIFNUM report: IPv4,
// not on IPMP members, in the caller's zone or all zones (never other
// zones, even for the global zone: spec §2.3.1).
func (m *Manager) ifconfUnitsLocked(callerZone string) []*ipif {
	var out []*ipif
	for _, il := range m.illListLocked(false) {
		if il.phy.flags&ctl.IFF_IPMP == 0 && il.phy.group != "" {
			continue // an IPMP member
		}
		for _, u := range il.ipifs {
			if zoneListed(u.zone, callerZone, false) {
				out = append(out, u)
			}
		}
	}
	return out
}

// SIOCGIFNUM (spec §2.3.1).
func (m *Manager) sioGIfNum(c *call) error {
	c.ifn.Count = len(m.ifconfUnitsLocked(c.caller.Zone))
	return nil
}

// SIOCGIFCONF (spec §2.3.3): as many whole records as fit.
func (m *Manager) sioGIfConf(c *call) error { return m.ifconf(c, false) }

// O_SIOCGIFCONF: like SIOCGIFCONF, but a buffer too small is EINVAL.
func (m *Manager) sioGIfConfOld(c *call) error { return m.ifconf(c, true) }

func (m *Manager) ifconf(c *call, strict bool) error {
	units := m.ifconfUnitsLocked(c.caller.Zone)
	limit := len(units)
	if c.ifc.Len > 0 {
		if strict && len(units)*ctl.IfreqSize > c.ifc.Len {
			return ctl.Errorf(ctl.EINVAL, "%d interfaces need %d bytes; ifc_len is %d", len(units), len(units)*ctl.IfreqSize, c.ifc.Len)
		}
		limit = min(limit, c.ifc.Len/ctl.IfreqSize)
	}
	c.ifc.Req = c.ifc.Req[:0]
	for _, u := range units[:limit] {
		c.ifc.Req = append(c.ifc.Req, ctl.Ifreq{Name: u.name(), Addr: u.addr})
	}
	c.ifc.Len = len(c.ifc.Req) * ctl.IfreqSize
	return nil
}
