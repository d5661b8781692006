package ifmgr

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/link"
	"github.com/tapstack/tapstack/route"
)

// splitPPA checks physical-interface name syntax (spec §1.5) and splits it
// into type and PPA: first a letter, last a digit, letters, digits, '.' and
// '_' between, and a PPA without leading zeros unless it is "0".
func splitPPA(name string) (typ string, ppa uint32, err error) {
	if name == "" {
		return "", 0, fmt.Errorf("empty interface name")
	}
	if c := name[0]; !isLetter(c) {
		return "", 0, fmt.Errorf("interface name %q must start with a letter", name)
	}
	if c := name[len(name)-1]; c < '0' || c > '9' {
		return "", 0, fmt.Errorf("interface name %q must end with a digit (the PPA)", name)
	}
	for i := 1; i < len(name); i++ {
		c := name[i]
		if !isLetter(c) && !(c >= '0' && c <= '9') && c != '.' && c != '_' {
			return "", 0, fmt.Errorf("interface name %q has invalid character %q", name, c)
		}
	}
	i := len(name)
	for i > 0 && name[i-1] >= '0' && name[i-1] <= '9' {
		i--
	}
	digits := name[i:]
	if len(digits) > 1 && digits[0] == '0' {
		return "", 0, fmt.Errorf("PPA %q of %q has a leading zero", digits, name)
	}
	n, perr := strconv.ParseUint(digits, 10, 32)
	if perr != nil || n == uint64(ctl.PPAAny) {
		return "", 0, fmt.Errorf("PPA %q of %q is out of range", digits, name)
	}
	return name[:i], uint32(n), nil
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// plumb is SIOCSLIFNAME on the link's device stream (spec §2.1): open a
// stream on the link, name the new ill, run the DLPI plumb exchange, and
// create unit 0. Checks run in the spec's order; any failure changes
// nothing.
func (m *Manager) plumbLocked(req *ctl.Lifreq) error {
	wantV4 := req.Flags&ctl.IFF_IPV4 != 0
	wantV6 := req.Flags&ctl.IFF_IPV6 != 0
	name := truncName(req.Name)

	if name == "lo0" || req.Link == "lo0" {
		if wantV4 == wantV6 {
			return ctl.Errorf(ctl.EINVAL, "lifr_flags must contain exactly one of IFF_IPV4 and IFF_IPV6")
		}
		if m.lookupIllLocked("lo0", wantV6) != nil {
			return ctl.Errorf(ctl.EEXIST, "lo0 is already plumbed for %s", famWord(famOf(wantV6)))
		}
		return m.plumbLoopbackLocked(wantV6)
	}

	dev := req.Link
	if dev == "" {
		dev = name
	}
	lk, ok := m.links.Get(dev)
	if !ok {
		return ctl.Errorf(ctl.ENXIO, "no link named %q (create it with: tapadm dladm create-tap %s)", dev, dev)
	}
	// Device open: the first DL_INFO_ACK describes the link.
	st, err := lk.Open()
	if err != nil {
		return dlpiErrno(err, "open "+dev)
	}
	ok = false
	defer func() {
		if !ok {
			st.Close()
		}
	}()
	info := st.Info()

	// 3: fusing with an existing phyint of a different media type.
	if p := m.byName[name]; p != nil {
		if p.loopback || p.link == nil || p.ills[0] != nil && p.ills[0].macType != info.MacType ||
			p.ills[1] != nil && p.ills[1].macType != info.MacType {
			return ctl.Errorf(ctl.EINVAL, "%s exists with a different media type", name)
		}
	}
	// 4: IFF_BROADCAST only for IPv4 on a link with a broadcast address.
	if req.Flags&ctl.IFF_BROADCAST != 0 && (wantV6 || len(info.Broadcast) == 0) {
		return ctl.Errorf(ctl.EINVAL, "IFF_BROADCAST needs IPv4 on a link with a broadcast address")
	}
	// 5: exactly one family.
	if wantV4 == wantV6 {
		return ctl.Errorf(ctl.EINVAL, "lifr_flags must contain exactly one of IFF_IPV4 and IFF_IPV6")
	}
	// 6: name syntax and PPA consistency; 7: PPA allocation.
	typ, ppa, perr := splitPPA(name)
	if req.PPA == ctl.PPAAny {
		if name == "" || !isLetter(name[0]) {
			return ctl.Errorf(ctl.EINVAL, "bad interface name %q", name)
		}
		if perr == nil {
			name = typ
		}
		typ = trimDigits(name)
		ppa = 0
		for m.ppaUsedLocked(typ, ppa, wantV6) {
			ppa++
			if ppa == ctl.PPAAny {
				return ctl.Errorf(ctl.EAGAIN, "no free PPA for type %s", typ)
			}
		}
		name = typ + strconv.FormatUint(uint64(ppa), 10)
		if len(name) > 31 {
			return ctl.Errorf(ctl.EINVAL, "name %s is too long", name)
		}
	} else {
		if perr != nil {
			return ctl.Errorf(ctl.EINVAL, "%v", perr)
		}
		if req.PPA != 0 && req.PPA != ppa {
			return ctl.Errorf(ctl.EINVAL, "lifr_ppa %d does not match the PPA %d in name %s", req.PPA, ppa, name)
		}
	}
	if m.ppaUsedLocked(typ, ppa, wantV6) {
		return ctl.Errorf(ctl.EEXIST, "%s is already plumbed for %s", name, famWord(famOf(wantV6)))
	}
	// A phyint is one link here (one gVisor NIC), so the other family
	// cannot join it from another link. Checked after the PPA, so a
	// name in use is EEXIST as in illumos (spec Appendix C3).
	if p := m.byName[name]; p != nil && p.link != lk {
		on := "the loopback"
		if p.link != nil {
			on = "link " + p.link.Name()
		}
		return ctl.Errorf(ctl.EINVAL, "%s is already plumbed on %s, not link %s", name, on, dev)
	}

	// One link carries one phyint: a second name on it would be a
	// second gVisor NIC on the same endpoint, and the first would stop
	// receiving.
	for on, p := range m.byName {
		if p.link == lk && on != name {
			return ctl.Errorf(ctl.EBUSY, "link %s is already plumbed as %s", dev, on)
		}
	}

	// The DLPI plumb exchange (spec §8.3). The first error wins.
	sap := link.SAPIPv4
	if wantV6 {
		sap = link.SAPIPv6
	}
	if err := st.Attach(ppa); err != nil {
		return dlpiErrno(err, "DL_ATTACH_REQ")
	}
	if err := st.Bind(sap); err != nil {
		return dlpiErrno(err, "DL_BIND_REQ")
	}
	info = st.Info()
	if _, err := st.Capabilities(); err != nil {
		return dlpiErrno(err, "DL_CAPABILITY_REQ")
	}
	hw, err := st.PhysAddr()
	if err != nil {
		return dlpiErrno(err, "DL_PHYS_ADDR_REQ")
	}
	if err := st.Unbind(); err != nil {
		return dlpiErrno(err, "DL_UNBIND_REQ")
	}

	// Commit: from here nothing fails.
	p := m.byName[name]
	newPhy := p == nil
	if newPhy {
		idx, err := m.allocIndexLocked()
		if err != nil {
			return err
		}
		if err := m.stack.AddCountedNIC(name, lk.Endpoint()); err != nil {
			return ctl.Errorf(ctl.ENXIO, "attach %s to the stack: %v", name, err)
		}
		p = &phyint{name: name, index: idx, link: lk}
		if lk.Up() {
			p.flags |= ctl.IFF_RUNNING
		}
		m.byName[name] = p
		m.byIndex[idx] = p
	}
	il := &ill{
		phy: p, v6: wantV6, name: name, ifType: typ, ppa: ppa,
		stream: st, macType: info.MacType, hwaddr: hw, broadcast: info.Broadcast,
		maxFrag: max(info.MaxSDU, 0),
	}
	il.maxFrag = max(il.maxFrag, il.minMTU())
	il.mtu = il.maxFrag
	il.flags = ctl.IFF_IPV4
	if wantV6 {
		il.flags = ctl.IFF_IPV6
		il.flags |= req.Flags & ctl.IFF_NOLINKLOCAL
	}
	if len(info.Broadcast) > 0 {
		il.flags |= ctl.IFF_MULTICAST
	} else if wantV6 {
		il.flags |= ctl.IFF_NONUD
	} else {
		il.flags |= ctl.IFF_NOARP
	}
	p.ills[famIndex(wantV6)] = il
	m.insertIllLocked(il)
	m.statsPlumbedLocked(il) // its MIB starts at zero (§13.1)
	u := m.newIpifLocked(il, 0)
	il.ipifs = []*ipif{u}
	il.maxHops, il.reachTime, il.reachRetrans = 255, ndReachableTime, arpRetransTimer
	if wantV6 {
		il.reachRetrans = ndRetransTimer
		il.token = netip.IPv6Unspecified()
		setDefaultTokenLocked(il)
		m.setLinkLocalLocked(il)
		m.autoconfPlumbLocked(il)
	}
	if newPhy {
		m.stack.SetMTU(name, il.mtu)
	}
	if m.forwarding[famIndex(wantV6)] {
		m.setRouterLocked(il, true) // new ills inherit global forwarding (§2.1)
	}
	st.EnableNotifications(link.NoteAll, func(n link.Notification) { m.linkNotify(lk, n) })
	ok = true
	req.Name, req.PPA = name, ppa
	m.emitLocked(NE_PLUMB, u)
	m.log.Info("plumbed", "interface", name, "family", famWord(famOf(wantV6)), "index", p.index)
	return nil
}

func famOf(v6 bool) ctl.Family {
	if v6 {
		return ctl.AF_INET6
	}
	return ctl.AF_INET
}

func trimDigits(s string) string {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	return s[:i]
}

// newIpifLocked allocates unit id on il with the flags the link implies
// (spec §3.5) and unset addresses.
func (m *Manager) newIpifLocked(il *ill, id int) *ipif {
	u := &ipif{ill: il, id: id}
	z := il.zeroAddr()
	u.addr, u.mask, u.subnet, u.brd, u.dst = z, z, z, z, z
	if !il.isLoopback() {
		if !il.v6 && len(il.broadcast) > 0 {
			u.flags |= ctl.IFF_BROADCAST
		}
		if len(il.hwaddr) == 0 {
			u.flags |= ctl.IFF_POINTOPOINT
		}
	}
	return u
}

// plumbLoopbackLocked creates lo0 for one family: LOOPBACK|VIRTUAL|RUNNING
// phyint, MULTICAST ill, MTU 8232/8252, unit 0 127.0.0.1/8 or ::1/128,
// not yet up (spec §1.9).
func (m *Manager) plumbLoopbackLocked(v6 bool) error {
	p := m.byName["lo0"]
	if p == nil {
		idx, err := m.allocIndexLocked()
		if err != nil {
			return err
		}
		if err := m.stack.AddCountedLoopbackNIC("lo0"); err != nil {
			return ctl.Errorf(ctl.ENOBUFS, "create lo0: %v", err)
		}
		p = &phyint{name: "lo0", index: idx, loopback: true,
			flags: ctl.IFF_LOOPBACK | ctl.IFF_VIRTUAL | ctl.IFF_RUNNING}
		m.byName["lo0"] = p
		m.byIndex[idx] = p
	}
	il := &ill{phy: p, v6: v6, name: "lo0", ifType: "lo", ppa: 0, flags: ctl.IFF_MULTICAST, macType: link.DL_LOOP}
	if v6 {
		il.flags |= ctl.IFF_IPV6
		il.maxFrag, il.mtu = loopbackMTUv6, loopbackMTUv6
	} else {
		il.flags |= ctl.IFF_IPV4
		il.maxFrag, il.mtu = loopbackMTUv4, loopbackMTUv4
	}
	p.ills[famIndex(v6)] = il
	m.insertIllLocked(il)
	m.statsPlumbedLocked(il)
	u := m.newIpifLocked(il, 0)
	if v6 {
		u.addr = ipv6Loopback
		u.mask = maskOf(u.addr, 128)
	} else {
		u.addr = ipv4Loopback
		u.mask = maskOf(u.addr, 8)
	}
	u.subnet = and(u.addr, u.mask)
	il.ipifs = []*ipif{u}
	m.emitLocked(RTM_CHGADDR, u)
	m.emitLocked(NE_PLUMB, u)
	return nil
}

// unplumbLocked closes an ill (spec §1.13): every unit is brought down and
// freed, the stream closed, and the phyint freed with its last ill.
func (m *Manager) unplumbLocked(il *ill) {
	m.autoconfUnplumbLocked(il)
	for i := len(il.ipifs) - 1; i >= 0; i-- {
		u := il.ipifs[i]
		if u.up() {
			m.downLocked(u, false)
		}
		m.emitLocked(RTM_FREEADDR, u)
	}
	if il.bound {
		m.unbindLocked(il)
	}
	if il.isProvider() {
		disbandUsesrcLocked(il)
	} else if il.inRing() {
		unlinkUsesrcLocked(il)
	}
	m.emitLocked(NE_UNPLUMB, il.ipifs[0])
	il.ipifs = nil
	// Interface-bound IREs the administrator added on this ill go too.
	m.routes.DeleteMatching(func(e route.IRE) bool { return e.Ill == il.name && e.Dest.Addr().Is6() == il.v6 })
	if il.stream != nil {
		il.stream.Close()
	}
	m.statsUnplumbedLocked(il) // its counts go into the totals (§13.1)
	m.removeIllLocked(il)
	p := il.phy
	p.ills[famIndex(il.v6)] = nil
	if p.ills[0] == nil && p.ills[1] == nil {
		delete(m.byName, p.name)
		delete(m.byIndex, p.index)
		if err := m.stack.RemoveNIC(p.name); err != nil {
			m.log.Warn("remove NIC", "interface", p.name, "err", err)
		}
	}
	m.log.Info("unplumbed", "interface", il.name, "family", famWord(il.family()))
}

// dlpiErrno turns a DLPI error ack into the request's errno: the driver's
// UNIX errno if it gave one, else ENXIO (spec §2.1).
func dlpiErrno(err error, what string) error {
	var le *link.Error
	if errors.As(err, &le) && le.Code == link.DL_SYSERR && le.Errno != 0 {
		return ctl.Errorf(ctl.Errno(le.Errno), "%s: %v", what, err)
	}
	return ctl.Errorf(ctl.ENXIO, "%s: %v", what, err)
}
