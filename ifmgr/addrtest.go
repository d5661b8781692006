package ifmgr

import (
	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/route"
)

// addrTestTarget validates sa_addr of SIOCTMYADDR/SIOCTONLINK: IPv4 or
// IPv6, a v4-mapped address tested as IPv4.
func addrTestTarget(c *call) error {
	a := c.addrReq.Addr
	if !a.IsValid() {
		return ctl.Errorf(ctl.EAFNOSUPPORT, "sa_addr is AF_UNSPEC; want an IPv4 or IPv6 address")
	}
	c.addrReq.Addr = a.Unmap()
	return nil
}

// SIOCTMYADDR (spec §2.16): is the address one of ours (a LOCAL or
// LOOPBACK IRE in the caller's zone)? Down units have no such IRE.
func (m *Manager) sioTMyAddr(c *call) error {
	if err := addrTestTarget(c); err != nil {
		return err
	}
	a := c.addrReq.Addr
	c.addrReq.Res = 0
	if e, ok := m.routes.Lookup(a, func(e *route.IRE) bool {
		return (e.Type == route.IRE_LOCAL || e.Type == route.IRE_LOOPBACK) && ireInZone(e, c.caller.Zone) && e.Dest.Bits() == a.BitLen()
	}); ok && e.Dest.Addr() == a {
		c.addrReq.Res = 1
	}
	return nil
}

// SIOCTONLINK (spec §2.16): is the address reachable without a gateway?
func (m *Manager) sioTOnLink(c *call) error {
	if err := addrTestTarget(c); err != nil {
		return err
	}
	a := c.addrReq.Addr
	c.addrReq.Res = 0
	if a.IsMulticast() {
		return nil
	}
	e, ok := m.routes.Lookup(a, func(e *route.IRE) bool { return ireInZone(e, c.caller.Zone) })
	if ok && e.Type != route.IRE_BROADCAST &&
		(e.Type.IsInterface() || e.Type == route.IRE_LOCAL || e.Type == route.IRE_LOOPBACK) {
		c.addrReq.Res = 1
	}
	return nil
}

// ireInZone reports whether the address tests of a caller in zone see e:
// only its own zone's IREs and shared ones, even for the global zone
// (spec §2.16).
func ireInZone(e *route.IRE, zone string) bool { return e.Zone == zone || e.Zone == zoneAll }

// SIOCTMYSITE: not implemented in illumos either; always ENXIO.
func (m *Manager) sioTMySite(c *call) error {
	return ctl.Errorf(ctl.ENXIO, "SIOCTMYSITE is not implemented (as in illumos)")
}
