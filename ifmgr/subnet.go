package ifmgr

import (
	"net/netip"

	"github.com/tapstack/tapstack/ctl"
)

// SIOCSLIFSUBNET (spec §2.6.9): set the subnet and its prefix length.
func (m *Manager) sioSLifSubnet(c *call) error {
	u := c.target
	il := u.ill
	s := c.lifr.Subnet
	if !s.IsValid() {
		s = c.lifr.Addr // lifr_subnet shares the union with lifr_addr
	}
	if err := checkFamily(u, s, "lifr_subnet"); err != nil {
		return err
	}
	n := c.lifr.Addrlen
	if il.v6 {
		if !localAddrOKv6(s, maskOf(s, 128)) {
			return ctl.Errorf(ctl.EADDRNOTAVAIL, "%s cannot be a subnet", s)
		}
	} else if !addrOKv4(v4(s), 0xffffffff) {
		return ctl.Errorf(ctl.EADDRNOTAVAIL, "%s cannot be a subnet", s)
	}
	if n < 0 || n > s.BitLen() {
		return ctl.Errorf(ctl.EINVAL, "prefix length %d is outside 0..%d", n, s.BitLen())
	}
	p := netip.PrefixFrom(s, n)
	if p.Masked().Addr() != s {
		return ctl.Errorf(ctl.EINVAL, "%s has bits set beyond /%d", s, n)
	}
	mask := maskOf(s, n)
	if s == u.subnet && mask == u.mask {
		return nil
	}
	wasUp := u.up()
	if wasUp {
		m.downLocked(u, true)
	}
	u.mask = mask
	if u.flags&ctl.IFF_POINTOPOINT == 0 {
		u.subnet = and(u.addr, mask)
	}
	if wasUp {
		return m.upLocked(u)
	}
	return nil
}

// SIOCGLIFSUBNET (spec §2.6.10).
func (m *Manager) sioGLifSubnet(c *call) error {
	u := c.target
	c.lifr.Subnet, c.lifr.Addrlen = u.subnet, prefixLen(u.mask)
	return nil
}
