package ifmgr

import (
	"net"
	"net/netip"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/link"
)

// linkLocalPrefix is fe80::/64 (IPV6_LL_PREFIXLEN).
var linkLocalPrefix = netip.MustParsePrefix("fe80::/64")

// eui64Token is the interface identifier of the media table for Ethernet
// (spec §4.4): modified EUI-64 from a 6-byte MAC, length 64. Other
// address lengths give no identifier.
func eui64Token(mt link.MacType, hw net.HardwareAddr) (netip.Addr, int) {
	if mt != link.DL_ETHER || len(hw) != 6 {
		return netip.IPv6Unspecified(), 0
	}
	var b [16]byte
	b[8] = hw[0] ^ 0x02
	b[9], b[10] = hw[1], hw[2]
	b[11], b[12] = 0xff, 0xfe
	b[13], b[14], b[15] = hw[3], hw[4], hw[5]
	return netip.AddrFrom16(b), 64
}

// setDefaultTokenLocked gives an IPv6 ill its media token unless one was
// set by hand (ill_setdefaulttoken).
func setDefaultTokenLocked(il *ill) {
	if !il.v6 || il.manualToken {
		return
	}
	il.token, il.tokenLen = eui64Token(il.macType, il.hwaddr)
}

// lowBits keeps the low n bits of a (the token part).
func lowBits(a netip.Addr, n int) netip.Addr {
	b := a.As16()
	keep := 128 - n
	for i := range b {
		bitStart := i * 8
		switch {
		case bitStart+8 <= keep:
			b[i] = 0
		case bitStart < keep:
			b[i] &= 0xff >> (keep - bitStart)
		}
	}
	return netip.AddrFrom16(b)
}

func or(a, b netip.Addr) netip.Addr {
	x, y := a.As16(), b.As16()
	for i := range x {
		x[i] |= y[i]
	}
	return netip.AddrFrom16(x)
}

// cantSetLinkLocal is ipif_cant_setlinklocal: no token, or one longer
// than the 64 bits a link-local address has room for.
func cantSetLinkLocal(il *ill) bool {
	return il.token.IsUnspecified() || !il.token.IsValid() || il.tokenLen > 64
}

// setLinkLocalLocked makes unit 0 fe80::TOKEN/64 (ipif_setlinklocal),
// unless NOLINKLOCAL with no address, a manual link-local, or no token.
func (m *Manager) setLinkLocalLocked(il *ill) {
	u := il.ipifs[0]
	if il.flags&ctl.IFF_NOLINKLOCAL != 0 && u.addr.IsUnspecified() {
		return
	}
	if il.manualLinkLocal || cantSetLinkLocal(il) {
		return
	}
	u.addr = or(linkLocalPrefix.Addr(), il.token)
	u.mask = maskOf(u.addr, linkLocalPrefix.Bits())
	if u.flags&ctl.IFF_POINTOPOINT == 0 || u.dst.IsUnspecified() {
		u.subnet = and(u.addr, u.mask)
	}
	m.emitLocked(RTM_CHGADDR, u)
}

// SIOCSLIFTOKEN (spec §2.6.12).
func (m *Manager) sioSLifToken(c *call) error {
	u := c.target
	il := u.ill
	if u.id != 0 {
		return ctl.Errorf(ctl.EINVAL, "the token is set on unit 0 (%s), not %s", il.name, u.name())
	}
	if !il.v6 {
		return ctl.Errorf(ctl.EINVAL, "%s is IPv4; tokens are IPv6 interface identifiers", il.name)
	}
	n := c.lifr.Addrlen
	if n < 0 || n > 128 {
		return ctl.Errorf(ctl.EINVAL, "token length %d is outside 0..128", n)
	}
	tok := c.lifr.Token
	if !tok.IsValid() {
		tok = c.lifr.Addr // lifr_token shares the union with lifr_addr
	}
	if !tok.IsValid() {
		tok = netip.IPv6Unspecified()
	}
	tok = lowBits(netip.AddrFrom16(tok.As16()), n)
	if tok == il.token && n == il.tokenLen {
		return nil
	}
	wasUp := u.up()
	if wasUp {
		m.downLocked(u, true)
	}
	il.token, il.tokenLen, il.manualToken = tok, n, true
	m.setLinkLocalLocked(il)
	if wasUp {
		return m.upLocked(u)
	}
	return nil
}

// SIOCGLIFTOKEN (spec §2.6.13).
func (m *Manager) sioGLifToken(c *call) error {
	u := c.target
	if u.id != 0 {
		return ctl.Errorf(ctl.EINVAL, "the token belongs to unit 0 (%s)", u.ill.name)
	}
	if !u.ill.v6 {
		return ctl.Errorf(ctl.ENXIO, "%s is IPv4 and has no token", u.ill.name)
	}
	c.lifr.Token, c.lifr.Addrlen = u.ill.token, u.ill.tokenLen
	return nil
}

// SIOCSLIFPREFIX (spec §2.6.11): address := prefix | token, then as
// SIOCSLIFADDR.
func (m *Manager) sioSLifPrefix(c *call) error {
	u := c.target
	if !u.ill.v6 {
		return ctl.Errorf(ctl.EINVAL, "%s is IPv4; a prefix needs an IPv6 token", u.name())
	}
	p := c.lifr.Addr
	if !p.Is6() || p.Is4In6() {
		return ctl.Errorf(ctl.EAFNOSUPPORT, "prefix %s is not an IPv6 address", addrOrUnspec(p))
	}
	if p.IsUnspecified() || !u.ill.token.IsValid() || u.ill.token.IsUnspecified() {
		return ctl.Errorf(ctl.EADDRNOTAVAIL, "prefix %s or the token of %s is ::", p, u.ill.name)
	}
	return m.setAddrLocked(u, or(p, u.ill.token))
}
