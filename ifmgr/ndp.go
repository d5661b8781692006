package ifmgr

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/ndp"
)

// The neighbour requests SIOCLIFGETND, SIOCLIFSETND and SIOCLIFDELND
// (spec §2.14) and "ndp.list" (what `ndp -a` prints). The cache itself is
// gVisor's, through ndp.Table; ifmgr contributes the interface checks and
// the local entries (our own UP addresses), which gVisor does not keep in
// its cache.

// ndTargetLocked applies the checks common to the ND requests, in the
// spec's order: unit 0, an IPv6 interface, an IPv6 lnr_addr.
func (m *Manager) ndTargetLocked(c *call) (*ill, netip.Addr, error) {
	u := c.target
	il := u.ill
	if u.id != 0 {
		return nil, netip.Addr{}, ctl.Errorf(ctl.EINVAL, "neighbour entries belong to unit 0 (%s), not %s", il.name, u.name())
	}
	if !il.v6 {
		return nil, netip.Addr{}, ctl.Errorf(ctl.EINVAL, "%s is IPv4; neighbour discovery is IPv6 (use arp)", il.name)
	}
	a := c.nd.ND.Addr
	if !a.IsValid() || a.Is4() {
		return nil, netip.Addr{}, ctl.Errorf(ctl.EAFNOSUPPORT, "lnr_addr %s is not an IPv6 address", addrOrUnspec(a))
	}
	return il, a, nil
}

// localUnitLocked returns the UP unit of il whose address is a (a local
// neighbour entry), or nil.
func localUnitLocked(il *ill, a netip.Addr) *ipif {
	for _, u := range il.ipifs {
		if u.up() && u.addr == a && u.flags&ctl.IFF_NOLOCAL == 0 {
			return u
		}
	}
	return nil
}

// ipmpMember reports whether il's phyint is in an IPMP group (and is not
// the group's meta-interface).
func ipmpMember(il *ill) bool {
	return il.phy.group != "" && il.phy.flags&ctl.IFF_IPMP == 0
}

// SIOCLIFGETND (spec §2.14).
func (m *Manager) sioLifGetND(c *call) error {
	il, a, err := m.ndTargetLocked(c)
	if err != nil {
		return err
	}
	nd := &c.nd.ND
	if u := localUnitLocked(il, a); u != nil {
		if len(il.hwaddr) > ctl.ND_MAX_HDW_LEN {
			return ctl.Errorf(ctl.EINVAL, "link address of %s is longer than %d bytes", il.name, ctl.ND_MAX_HDW_LEN)
		}
		nd.HdwLen, nd.HdwAddr = len(il.hwaddr), formatMAC(il.hwaddr)
		nd.Flags = localNDFlags(u)
		return nil
	}
	if len(il.hwaddr) == 0 {
		return ctl.Errorf(ctl.ESRCH, "%s resolves no neighbours (no link address)", il.name)
	}
	e, err := m.nd.Lookup(il.name, a)
	switch {
	case errors.Is(err, ndp.ErrNoEntry):
		return ctl.Errorf(ctl.ESRCH, "no neighbour entry for %s on %s", a, il.name)
	case errors.Is(err, ndp.ErrUnresolved):
		return ctl.Errorf(ctl.ESRCH, "neighbour %s on %s is not resolved yet", a, il.name)
	case err != nil:
		return ctl.Errorf(ctl.ENXIO, "%v", err)
	}
	if len(e.MAC) > ctl.ND_MAX_HDW_LEN {
		return ctl.Errorf(ctl.EINVAL, "link address of %s is longer than %d bytes", a, ctl.ND_MAX_HDW_LEN)
	}
	nd.HdwLen, nd.HdwAddr, nd.Flags = len(e.MAC), formatMAC(e.MAC), entryNDFlags(e)
	return nil
}

// localNDFlags are the NDF_* flags of our own address's entry: static,
// the router bit while the ill forwards (spec §13.3), anycast per unit.
func localNDFlags(u *ipif) int {
	f := ctl.NDF_STATIC
	if u.ill.flags&ctl.IFF_ROUTER != 0 {
		f |= ctl.NDF_ISROUTER_ON
	}
	if u.flags&ctl.IFF_ANYCAST != 0 {
		f |= ctl.NDF_ANYCAST_ON
	}
	return f
}

func entryNDFlags(e ndp.Entry) int {
	f := 0
	if e.Static {
		f |= ctl.NDF_STATIC
	}
	if e.Router {
		f |= ctl.NDF_ISROUTER_ON
	}
	if e.Anycast {
		f |= ctl.NDF_ANYCAST_ON
	}
	return f
}

// SIOCLIFSETND (spec §2.14): create or update an entry. The states are
// checked as illumos does (create as REACHABLE or STALE); the entry is
// then used for traffic at once.
func (m *Manager) sioLifSetND(c *call) error {
	il, a, err := m.ndTargetLocked(c)
	if err != nil {
		return err
	}
	nd := c.nd.ND
	if ipmpMember(il) {
		return ctl.Errorf(ctl.EPERM, "%s is in IPMP group %s; set neighbours on the group interface", il.name, il.phy.group)
	}
	local := localUnitLocked(il, a)
	if il.phy.flags&ctl.IFF_IPMP != 0 && local != nil {
		return ctl.Errorf(ctl.EPERM, "%s is a local address of %s", a, il.name)
	}
	if nd.StateCreate != ctl.ND_REACHABLE && nd.StateCreate != ctl.ND_STALE {
		return ctl.Errorf(ctl.EINVAL, "lnr_state_create %d is not ND_REACHABLE (2) or ND_STALE (3)", nd.StateCreate)
	}
	if nd.HdwLen > ctl.ND_MAX_HDW_LEN || nd.HdwLen < 0 {
		return ctl.Errorf(ctl.EINVAL, "lnr_hdw_len %d is outside 0..%d", nd.HdwLen, ctl.ND_MAX_HDW_LEN)
	}
	if nd.Flags&ctl.NDF_ISROUTER_ON != 0 && nd.Flags&ctl.NDF_ISROUTER_OFF != 0 {
		return ctl.Errorf(ctl.EINVAL, "lnr_flags has both NDF_ISROUTER_ON and NDF_ISROUTER_OFF")
	}
	if nd.Flags&ctl.NDF_ANYCAST_ON != 0 && nd.Flags&ctl.NDF_ANYCAST_OFF != 0 {
		return ctl.Errorf(ctl.EINVAL, "lnr_flags has both NDF_ANYCAST_ON and NDF_ANYCAST_OFF")
	}
	if nd.Flags&ctl.NDF_PROXY_ON != 0 {
		return ctl.Errorf(ctl.ENOTSUP, "proxy neighbour entries (NDF_PROXY_ON) are not supported")
	}
	if local != nil {
		return ctl.Errorf(ctl.EPERM, "%s is a local address of %s; its entry cannot be changed", a, local.name())
	}
	if !a.IsGlobalUnicast() && !a.IsLinkLocalUnicast() {
		return ctl.Errorf(ctl.EINVAL, "lnr_addr %s is not a unicast address", a)
	}
	if len(il.hwaddr) == 0 {
		return ctl.Errorf(ctl.EINVAL, "%s has no link addresses to map %s to", il.name, a)
	}
	hw, err := parseHW(nd.HdwAddr)
	if err != nil {
		return ctl.Errorf(ctl.EINVAL, "lnr_hdw_addr %q: %v", nd.HdwAddr, err)
	}
	if nd.HdwLen != 0 && nd.HdwLen != len(hw) {
		return ctl.Errorf(ctl.EINVAL, "lnr_hdw_len %d does not match the %d bytes of lnr_hdw_addr", nd.HdwLen, len(hw))
	}
	if len(hw) != len(il.hwaddr) {
		return ctl.Errorf(ctl.EINVAL, "lnr_hdw_addr %s has %d bytes; link addresses of %s have %d", nd.HdwAddr, len(hw), il.name, len(il.hwaddr))
	}
	if hw[0]&1 != 0 {
		return ctl.Errorf(ctl.EINVAL, "lnr_hdw_addr %s is a group address", nd.HdwAddr)
	}

	// Flags not mentioned keep the old entry's value.
	var f ndp.Flags
	if old, err := m.nd.Lookup(il.name, a); err == nil || errors.Is(err, ndp.ErrUnresolved) {
		f.Router, f.Anycast = old.Router, old.Anycast
	}
	f.Static = nd.Flags&ctl.NDF_STATIC != 0
	switch {
	case nd.Flags&ctl.NDF_ISROUTER_ON != 0:
		f.Router = true
	case nd.Flags&ctl.NDF_ISROUTER_OFF != 0:
		f.Router = false
	}
	switch {
	case nd.Flags&ctl.NDF_ANYCAST_ON != 0:
		f.Anycast = true
	case nd.Flags&ctl.NDF_ANYCAST_OFF != 0:
		f.Anycast = false
	}
	if err := m.nd.Set(il.name, a, hw, f); err != nil {
		return ctl.Errorf(ctl.ENXIO, "%v", err)
	}
	return nil
}

// SIOCLIFDELND (spec §2.14).
func (m *Manager) sioLifDelND(c *call) error {
	il, a, err := m.ndTargetLocked(c)
	if err != nil {
		return err
	}
	if ipmpMember(il) {
		return ctl.Errorf(ctl.EPERM, "%s is in IPMP group %s; delete neighbours on the group interface", il.name, il.phy.group)
	}
	local := localUnitLocked(il, a)
	if local == nil {
		if len(il.hwaddr) == 0 {
			return ctl.Errorf(ctl.ESRCH, "no neighbour entry for %s on %s", a, il.name)
		}
		if _, err := m.nd.Lookup(il.name, a); errors.Is(err, ndp.ErrNoEntry) {
			return ctl.Errorf(ctl.ESRCH, "no neighbour entry for %s on %s", a, il.name)
		}
	}
	if local != nil {
		return ctl.Errorf(ctl.EPERM, "%s is a local address of %s", a, local.name())
	}
	if err := m.nd.Delete(il.name, a); err != nil {
		if errors.Is(err, ndp.ErrNoEntry) {
			return ctl.Errorf(ctl.ESRCH, "no neighbour entry for %s on %s", a, il.name)
		}
		return ctl.Errorf(ctl.ENXIO, "%v", err)
	}
	return nil
}

// ndpList is "ndp.list": every IPv6 neighbour entry, local ones first,
// interface by interface (netstat -p -f inet6, which ndp -a runs).
func (m *Manager) ndpList(c *call) error {
	var ills []*ill
	if n := c.ndl.Ifname; n != "" {
		il := m.lookupIllLocked(n, true)
		if il == nil {
			return ctl.Errorf(ctl.ENXIO, "no IPv6 interface named %q", n)
		}
		ills = []*ill{il}
	} else {
		ills = m.illListLocked(true)
	}
	c.ndl.Entries = []ctl.NdEntry{}
	for _, il := range ills {
		if len(il.hwaddr) == 0 {
			continue
		}
		for _, u := range il.ipifs {
			if u.up() && u.flags&ctl.IFF_NOLOCAL == 0 && !u.addr.IsUnspecified() {
				f := localNDFlags(u)
				c.ndl.Entries = append(c.ndl.Entries, ctl.NdEntry{
					Ifname: il.name, HdwAddr: formatMAC(il.hwaddr), Type: "local", State: "REACHABLE",
					Addr: u.addr, Router: f&ctl.NDF_ISROUTER_ON != 0, Anycast: f&ctl.NDF_ANYCAST_ON != 0,
				})
			}
		}
		es, err := m.nd.List(il.name)
		if err != nil {
			continue // the NIC is not in the stack (being unplumbed)
		}
		for _, e := range es {
			typ := "dynamic"
			if e.Static {
				typ = "static"
			}
			c.ndl.Entries = append(c.ndl.Entries, ctl.NdEntry{
				Ifname: il.name, HdwAddr: formatMAC(e.MAC), Type: typ, State: ctl.NDStateNames[e.State],
				Addr: e.Addr, Router: e.Router, Anycast: e.Anycast,
			})
		}
	}
	return nil
}

// applyNUDTimesLocked hands an IPv6 ill's reachable and retransmit times
// (SIOCSLIFLNKINFO) to gVisor's neighbour unreachability detection. The
// hop limit is not applied: gVisor has one default per protocol, not per
// interface. IPv4 times are ARP's, which keeps its own.
func (m *Manager) applyNUDTimesLocked(il *ill) {
	if !il.v6 || il.isLoopback() {
		return
	}
	t := ndp.Timers{Reachable: time.Duration(il.reachTime) * time.Millisecond, Retransmit: time.Duration(il.reachRetrans) * time.Millisecond}
	if err := ndp.SetTimers(m.stack, il.name, t); err != nil {
		m.log.Warn("neighbour timers", "interface", il.name, "err", err)
	}
}

// nudTimesInEffectLocked replaces the stored times of an IPv6 ill in
// info with those gVisor uses (SIOCGLIFLNKINFO reports what is in effect).
func (m *Manager) nudTimesInEffectLocked(il *ill, info *ctl.Ifinfo) {
	if !il.v6 || il.isLoopback() {
		return
	}
	t, err := ndp.TimersOf(m.stack, il.name)
	if err != nil {
		return // no NIC (loopback-less test stacks): the stored values stand
	}
	info.ReachTime = uint32(t.Reachable / time.Millisecond)
	info.ReachRetrans = uint32(t.Retransmit / time.Millisecond)
}

// parseHW parses a link address written as hex octets separated by ':'
// ("2:0:0:0:0:1" or "02:00:00:00:00:01").
func parseHW(s string) (net.HardwareAddr, error) {
	if s == "" {
		return nil, errors.New("empty link address")
	}
	parts := strings.Split(s, ":")
	if len(parts) > ctl.ND_MAX_HDW_LEN {
		return nil, errors.New("longer than 64 bytes")
	}
	hw := make(net.HardwareAddr, len(parts))
	for i, p := range parts {
		if p == "" || len(p) > 2 {
			return nil, errors.New("each octet is one or two hex digits")
		}
		v, err := strconv.ParseUint(p, 16, 8)
		if err != nil {
			return nil, errors.New("each octet is one or two hex digits")
		}
		hw[i] = byte(v)
	}
	return hw, nil
}
