package ifmgr

import (
	"net"
	"net/netip"
	"time"

	"github.com/tapstack/tapstack/link"
	"github.com/tapstack/tapstack/ndp"
)

// IPv6 duplicate address detection (spec §6.1, §6.2): gVisor sends the
// solicitations from :: and recognises conflicts (RFC 4862 §5.4); the
// states are the ones IPv4 uses (dad.go). A unit's address goes to gVisor
// tentative when the unit comes up, so the address is pending
// (SIOCGLIFDADSTATE in progress, RTM_ADD deferred) and gVisor neither
// answers for it nor sends from it; gVisor's verdict makes it ready, or
// DUPLICATE naming the node that advertised it. gVisor's SLAAC addresses
// already pass through gVisor's DAD when they are made: their units wait
// for that verdict (ndp events) instead of probing again.

// ndMaxUnicastSolicit is the default of _ndp_dad_transmits: illumos sends
// ND_MAX_UNICAST_SOLICIT solicitations, at the ill's retransmit interval.
const ndMaxUnicastSolicit = 3

// ndpDAD is IPv6 DAD on one ill. Its methods run with m.mu held.
type ndpDAD struct {
	m *Manager
}

// dad6Wanted reports whether units of the IPv6 ill il go through DAD:
// the manager's DAD switch (Config.DAD, which also governs IPv4) is on,
// _ndp_dad_transmits is not 0, the ill resolves neighbours, and gVisor's
// verdicts can be heard (a dispatcher was given).
func (m *Manager) dad6Wanted(il *ill) bool {
	return il.v6 && !il.isLoopback() && len(il.hwaddr) != 0 && m.ndpd != nil &&
		m.tunableLocked("_arp_no_defense") == 0 && m.tunableLocked("_ndp_dad_transmits") != 0
}

// dad6ConfigLocked gives il's NIC the DAD parameters in effect: the count
// from _ndp_dad_transmits and the ill's retransmit interval
// (SIOCSLIFLNKINFO lir_reachretrans), or none when il does no DAD. It
// runs at bind and before each probe, so SLAAC addresses gVisor makes in
// between are probed alike.
func (m *Manager) dad6ConfigLocked(il *ill) {
	if !il.v6 || il.isLoopback() {
		return
	}
	var c ndp.DADConfig
	if m.dad6Wanted(il) {
		c.Transmits = int(m.tunableLocked("_ndp_dad_transmits"))
		if t, err := ndp.TimersOf(m.stack, il.name); err == nil {
			c.Interval = t.Retransmit
		}
		if c.Interval <= 0 {
			c.Interval = time.Second
		}
	}
	if err := ndp.SetDAD(m.stack, il.name, c); err != nil {
		m.log.Warn("IPv6 DAD parameters", "interface", il.name, "err", err)
	}
}

// probe adds u's address to gVisor tentative; gVisor's verdict arrives
// through the dispatcher as report's argument. A SLAAC unit's address is
// in gVisor already: it is pending while gVisor said it was tentative,
// and its verdict comes as an ndp event (slaacDADLocked).
func (d ndpDAD) probe(u *ipif, report func(net.HardwareAddr)) (func(), bool) {
	m := d.m
	if u.slaac {
		return func() {}, u.dad.stackTentative
	}
	m.dad6ConfigLocked(u.ill)
	p := netip.PrefixFrom(u.addr, prefixLen(u.mask))
	gen := u.dad.gen // startDADLocked's, checked again by dadReport
	stop, err := m.ndpd.AddTentative(m.stack, u.ill.name, p, sourceProps(u), func(r ndp.DADResult) {
		switch {
		case r.Err != nil:
			m.dad6Unsent(u, gen, r.Err)
			report(nil)
		case !r.Duplicate:
			report(nil)
		case r.Holder == nil:
			report(net.HardwareAddr{}) // another node probing: a conflict with no holder
		default:
			report(r.Holder)
		}
	})
	if err != nil {
		m.log.Warn("stack refused address", "interface", u.name(), "addr", p, "err", err)
		return nil, false
	}
	u.stackAddr = p
	return stop, true
}

// claim has nothing to start: gVisor answers solicitations for an
// assigned address (which is what makes a probing node back off), but
// reports no conflict once DAD is over, so an IPv6 address is not given
// up after it is ready.
func (d ndpDAD) claim(*ipif, func(net.HardwareAddr)) func() { return func() {} }

// slaacDADLocked applies gVisor's verdict on a SLAAC unit's address:
// assigned makes a pending unit ready; a duplicate (gVisor has removed
// the address) makes it DUPLICATE, as a probe would.
func (m *Manager) slaacDADLocked(u *ipif, duplicate bool, holder net.HardwareAddr) {
	u.dad.stackTentative = false
	if !u.dadInProgress() {
		return
	}
	u.dad.gen++ // nothing else reports for this run
	u.dad.stop = nil
	if !duplicate {
		m.addrReadyLocked(u)
		return
	}
	u.stackAddr = netip.Prefix{}
	if holder == nil {
		holder = net.HardwareAddr{}
	}
	m.duplicateLocked(u, holder)
}

// dad6PauseLocked turns gVisor's DAD off on il's NIC until resume, for an
// address ifmgr makes ready without probing (point-to-point, UNNUMBERED,
// or a probe that could not start).
func (m *Manager) dad6PauseLocked(il *ill) (resume func()) {
	if !m.dad6Wanted(il) {
		return func() {}
	}
	if err := ndp.SetDAD(m.stack, il.name, ndp.DADConfig{}); err != nil {
		m.log.Warn("IPv6 DAD parameters", "interface", il.name, "err", err)
	}
	return func() { m.dad6ConfigLocked(il) }
}

// openDAD6StreamLocked gives a bound IPv6 ill a DLPI stream of its own
// for link up/down notifications, as ARP has for IPv4 (openARPLocked;
// the same field holds it and closeARPLocked closes it at unbind): link
// down makes its addresses unready, link up probes them again (§6.4).
func (m *Manager) openDAD6StreamLocked(il *ill) {
	if !il.v6 || il.isLoopback() || il.arpStream != nil || il.stream == nil || il.phy.link == nil {
		return
	}
	st, err := il.phy.link.Open()
	if err != nil {
		m.log.Warn("link notifications", "interface", il.name, "err", err)
		return
	}
	st.EnableNotifications(link.NoteLinkUp|link.NoteLinkDown, func(n link.Notification) {
		m.dadLinkChange(il, n.Kind == link.NoteLinkUp)
	})
	il.arpStream = st
}

// dad6Unsent handles a probe gVisor could not send (a TAP refuses frames
// while the namespace side is down). As with IPv4, whose unsent probes
// go unanswered, the address is then ready without DAD: gVisor's stuck
// tentative copy is taken back so that readiness gives it again, without
// DAD. Link up probes it again (§6.4).
func (m *Manager) dad6Unsent(u *ipif, gen uint64, err error) {
	m.mu.Lock()
	defer m.unlockAndDeliver()
	if u.dad.gen != gen || !u.stackAddr.IsValid() {
		return
	}
	m.log.Warn("IPv6 DAD could not probe; address ready without it", "interface", u.name(), "addr", u.addr, "err", err)
	if rerr := m.stack.RemoveAddress(u.ill.name, u.stackAddr.Addr()); rerr != nil {
		m.log.Warn("stack address removal", "interface", u.name(), "err", rerr)
	}
	u.stackAddr = netip.Prefix{}
}
