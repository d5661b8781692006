package ifmgr

import (
	"bytes"
	"net"
	"net/netip"

	"github.com/tapstack/tapstack/arp"
	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/route"
)

// The ARP requests (spec §2.0.4, §2.15): SIOCSARP, SIOCGARP and SIOCDARP
// with struct arpreq, their XARP forms with a link-level address that can
// name the interface, and MIB2_IP_MEDIA, the table arp -a prints. The
// cache is the ill's arp.Interface (gVisor's neighbour table plus the
// administrative entries); our own UP addresses are the local entries
// ifmgr answers for itself.

// lifnamsiz is LIFNAMSIZ: sdl_nlen must be below it.
const lifnamsiz = 32

// arpTargetLocked resolves the ill an ARP request is about (spec §2.0.4),
// in the spec's order. x is nil for the ARP (arpreq) form.
func (m *Manager) arpTargetLocked(c *call, pa netip.Addr, x *ctl.Xarpreq) (*ill, error) {
	if c.family == ctl.AF_INET6 {
		return nil, ctl.Errorf(ctl.ENXIO, "ARP requests are IPv4 only; this is an inet6 socket")
	}
	var il *ill
	if x != nil {
		paFam := x.PAFamily
		if paFam == "" {
			paFam = ctl.FamilyOf(pa)
		}
		if x.HA.Family != ctl.AF_LINK || paFam != ctl.AF_INET || !pa.Is4() {
			return nil, ctl.Errorf(ctl.ENXIO, "xarp_ha must be AF_LINK (is %q) and xarp_pa AF_INET (is %q %s)",
				x.HA.Family, paFam, addrOrUnspec(pa))
		}
		if x.HA.Nlen < 0 || x.HA.Nlen >= lifnamsiz || x.HA.Nlen > len(x.HA.Data) {
			return nil, ctl.Errorf(ctl.EINVAL, "sdl_nlen %d: the name must be shorter than %d bytes and within sdl_data (%d bytes)",
				x.HA.Nlen, lifnamsiz, len(x.HA.Data))
		}
		if x.HA.Nlen != 0 {
			name := string(x.HA.Data[:x.HA.Nlen])
			u, err := m.lookupLocked(name, ctl.AF_INET)
			if err != nil {
				return nil, err
			}
			if u.id != 0 {
				return nil, ctl.Errorf(ctl.ENXIO, "%s is a logical interface; ARP entries belong to %s", name, u.ill.name)
			}
			il = u.ill
		}
	}
	if il == nil {
		if !pa.Is4() {
			return nil, ctl.Errorf(ctl.ENXIO, "%s is not an IPv4 address", addrOrUnspec(pa))
		}
		il = m.arpIllOfLocked(pa)
		if il == nil {
			return nil, ctl.Errorf(ctl.ENXIO, "no IPv4 interface has %s or a subnet route to it", pa)
		}
	}
	if il.arp == nil {
		return nil, ctl.Errorf(ctl.ENXIO, "%s does not resolve with ARP (no broadcast link, NOARP, or no address up)", il.name)
	}
	return il, nil
}

// arpIllOfLocked finds the ill for an address (spec §2.0.4 step 4): the
// one with an UP unit owning it, else the one with an interface route
// covering it.
func (m *Manager) arpIllOfLocked(pa netip.Addr) *ill {
	for _, il := range m.illListLocked(false) {
		if localARPUnit(il, pa) != nil {
			return il
		}
	}
	ire, ok := m.routes.Lookup(pa, func(e *route.IRE) bool { return e.Type == route.IRE_IF_RESOLVER })
	if !ok {
		return nil
	}
	return m.lookupIllLocked(ire.Ill, false)
}

// localARPUnit returns the UP unit of il whose address is pa: our own
// (MYADDR) entry, which the ARP requests may read but not change.
func localARPUnit(il *ill, pa netip.Addr) *ipif {
	for _, u := range il.ipifs {
		if u.up() && u.addr == pa && u.flags&ctl.IFF_NOLOCAL == 0 {
			return u
		}
	}
	return nil
}

// arpSetLocked is the common part of SIOCSARP and SIOCSXARP.
func (m *Manager) arpSetLocked(il *ill, pa netip.Addr, hw net.HardwareAddr, flags int) error {
	if ipmpMember(il) {
		return ctl.Errorf(ctl.EPERM, "%s is an IPMP group member; set ARP entries on the group interface", il.name)
	}
	if localARPUnit(il, pa) != nil {
		return ctl.Errorf(ctl.ENOTSUP, "%s is an address of this host on %s; its entry cannot be changed", pa, il.name)
	}
	err := il.arp.Set(arp.Entry{
		Addr: pa, HW: hw,
		Permanent: flags&ctl.ATF_PERM != 0,
		Published: flags&ctl.ATF_PUBL != 0,
		Authority: flags&ctl.ATF_AUTHORITY != 0,
	})
	if err != nil {
		return ctl.Errorf(ctl.ENOMEM, "%v", err)
	}
	return nil
}

// arpGetLocked is the common part of SIOCGARP and SIOCGXARP: the reply
// flags and hardware address (nil if unknown).
func (m *Manager) arpGetLocked(il *ill, pa netip.Addr) (int, net.HardwareAddr, error) {
	if localARPUnit(il, pa) != nil {
		return ctl.ATF_INUSE | ctl.ATF_AUTHORITY | ctl.ATF_PERM | ctl.ATF_PUBL | ctl.ATF_COM, il.hwaddr, nil
	}
	e, ok := il.arp.Get(pa)
	if !ok {
		return 0, nil, ctl.Errorf(ctl.ENXIO, "no ARP entry for %s on %s", pa, il.name)
	}
	return atfFlags(e), e.HW, nil
}

// atfFlags are the ATF_* flags of an entry that is not ours.
func atfFlags(e arp.Entry) int {
	f := ctl.ATF_INUSE
	if e.Permanent {
		f |= ctl.ATF_PERM
	}
	if e.Published {
		f |= ctl.ATF_PUBL
	}
	if e.Authority {
		f |= ctl.ATF_AUTHORITY
	}
	if e.HW != nil {
		f |= ctl.ATF_COM
	}
	return f
}

// arpDeleteLocked is the common part of SIOCDARP and SIOCDXARP.
func (m *Manager) arpDeleteLocked(il *ill, pa netip.Addr) error {
	if ipmpMember(il) {
		return ctl.Errorf(ctl.EPERM, "%s is an IPMP group member; delete ARP entries on the group interface", il.name)
	}
	if localARPUnit(il, pa) != nil {
		return ctl.Errorf(ctl.ENOTSUP, "%s is an address of this host on %s; its entry cannot be deleted", pa, il.name)
	}
	if !il.arp.Delete(pa) {
		return ctl.Errorf(ctl.ENXIO, "no ARP entry for %s on %s", pa, il.name)
	}
	return nil
}

// SIOCSARP (spec §2.15): the old form's hardware address is Ethernet.
func (m *Manager) sioSArp(c *call) error {
	il, err := m.arpTargetLocked(c, c.arpr.PA, nil)
	if err != nil {
		return err
	}
	if len(il.hwaddr) != 6 {
		return ctl.Errorf(ctl.EINVAL, "%s's hardware address is %d bytes; arpreq carries Ethernet (6)", il.name, len(il.hwaddr))
	}
	hw, perr := parseHW(c.arpr.HA)
	if perr != nil || len(hw) != 6 {
		return ctl.Errorf(ctl.EINVAL, "arp_ha %q is not an Ethernet address (6 hex octets separated by ':')", c.arpr.HA)
	}
	return m.arpSetLocked(il, c.arpr.PA, hw, c.arpr.Flags)
}

// SIOCGARP (spec §2.15).
func (m *Manager) sioGArp(c *call) error {
	il, err := m.arpTargetLocked(c, c.arpr.PA, nil)
	if err != nil {
		return err
	}
	if len(il.hwaddr) != 6 {
		return ctl.Errorf(ctl.EINVAL, "%s's hardware address is %d bytes; arpreq carries Ethernet (6)", il.name, len(il.hwaddr))
	}
	flags, hw, err := m.arpGetLocked(il, c.arpr.PA)
	if err != nil {
		return err
	}
	c.arpr.Flags, c.arpr.HA = flags, ""
	if hw != nil {
		c.arpr.HA = formatMAC(hw)
	}
	return nil
}

// SIOCDARP (spec §2.15): no hardware-length check.
func (m *Manager) sioDArp(c *call) error {
	il, err := m.arpTargetLocked(c, c.arpr.PA, nil)
	if err != nil {
		return err
	}
	return m.arpDeleteLocked(il, c.arpr.PA)
}

// SIOCSXARP (spec §2.15): sdl_alen must be the ill's address length and
// name plus address must fit in sdl_data.
func (m *Manager) sioSXArp(c *call) error {
	x := c.xarp
	il, err := m.arpTargetLocked(c, x.PA, x)
	if err != nil {
		return err
	}
	if x.HA.Alen != len(il.hwaddr) || x.HA.Alen < 0 || x.HA.Nlen+x.HA.Alen > len(x.HA.Data) || x.HA.Nlen+x.HA.Alen > ctl.SdlDataSize {
		return ctl.Errorf(ctl.EINVAL, "sdl_alen %d: must be %s's %d-byte address, after sdl_nlen %d bytes of name within sdl_data (%d bytes)",
			x.HA.Alen, il.name, len(il.hwaddr), x.HA.Nlen, len(x.HA.Data))
	}
	hw := net.HardwareAddr(bytes.Clone(x.HA.Data[x.HA.Nlen : x.HA.Nlen+x.HA.Alen]))
	return m.arpSetLocked(il, x.PA, hw, x.Flags)
}

// SIOCGXARP (spec §2.15): the reply names the interface in xarp_ha.
func (m *Manager) sioGXArp(c *call) error {
	x := c.xarp
	il, err := m.arpTargetLocked(c, x.PA, x)
	if err != nil {
		return err
	}
	flags, hw, err := m.arpGetLocked(il, x.PA)
	if err != nil {
		return err
	}
	if len(il.name)+len(hw) > ctl.SdlDataSize {
		return ctl.Errorf(ctl.EINVAL, "name %s and a %d-byte address do not fit in sdl_data", il.name, len(hw))
	}
	x.Flags = flags
	x.HA = ctl.SockaddrDL{
		Family: ctl.AF_LINK, Index: il.phy.index, Type: ifType(il),
		Nlen: len(il.name), Alen: len(hw), Data: append([]byte(il.name), hw...),
	}
	return nil
}

// SIOCDXARP (spec §2.15).
func (m *Manager) sioDXArp(c *call) error {
	il, err := m.arpTargetLocked(c, c.xarp.PA, c.xarp)
	if err != nil {
		return err
	}
	return m.arpDeleteLocked(il, c.xarp.PA)
}

// MIB2_IP_MEDIA lists the ARP table (what arp -a prints): per IPv4
// interface with ARP, our own addresses, then the cache.
func (m *Manager) mib2IPMedia(c *call) error {
	t := c.arpt
	if t.Ifname != "" && m.lookupIllLocked(t.Ifname, false) == nil {
		return ctl.Errorf(ctl.ENXIO, "no IPv4 interface named %q", t.Ifname)
	}
	host := netip.AddrFrom4([4]byte{255, 255, 255, 255})
	t.Entries = []ctl.ArpEntry{}
	for _, il := range m.illListLocked(false) {
		if il.arp == nil || (t.Ifname != "" && il.name != t.Ifname) {
			continue
		}
		own := map[netip.Addr]bool{}
		for _, u := range il.ipifs {
			if !u.up() || u.addr.IsUnspecified() || u.flags&ctl.IFF_NOLOCAL != 0 || own[u.addr] {
				continue
			}
			own[u.addr] = true
			t.Entries = append(t.Entries, ctl.ArpEntry{
				Ifname: il.name, Addr: u.addr, Mask: host, HWAddr: formatMAC(il.hwaddr),
				Flags: ctl.ATF_INUSE | ctl.ATF_AUTHORITY | ctl.ATF_PERM | ctl.ATF_PUBL | ctl.ATF_COM,
			})
		}
		for _, e := range il.arp.Entries() {
			if own[e.Addr] {
				continue
			}
			ae := ctl.ArpEntry{Ifname: il.name, Addr: e.Addr, Mask: host, Flags: atfFlags(e)}
			if e.HW != nil {
				ae.HWAddr = formatMAC(e.HW)
			}
			t.Entries = append(t.Entries, ae)
		}
	}
	return nil
}
