package ifmgr

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/tapstack/tapstack/arp"
	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/link"
)

// Duplicate address detection as the interface layer drives it (spec §6):
// a unit brought up is UP at once, but its address is not ready (not
// given to the stack, no RTM_ADD) until its family's DAD says nobody else
// has it. A conflict then, or a lost defence later, makes the unit
// DUPLICATE and down, and the _dup_recovery timer tries again.

// dadStarter is one family's duplicate address detection. IPv4 uses arp;
// IPv6 uses gVisor's through ndp (dad6.go). Both methods are called with m.mu held; the callbacks run later,
// without it, and may take it.
type dadStarter interface {
	// probe starts DAD for u's address. It reports false when there is
	// nothing to probe (the address is ready now); otherwise report is
	// called once, unless cancel is called first, with nil (the address
	// is free) or the hardware address that holds it.
	probe(u *ipif, report func(holder net.HardwareAddr)) (cancel func(), probing bool)
	// claim announces u's ready address and defends it; lost is called
	// once if the defence fails, unless release is called first.
	claim(u *ipif, lost func(holder net.HardwareAddr)) (release func())
}

// dadState is one unit's DAD bookkeeping.
type dadState struct {
	pending    bool      // DAD runs: the address is not ready (SIOCGLIFDADSTATE)
	gen        uint64    // bumped at every start and stop; stale callbacks carry an older one
	stop       func()    // cancels the probe or releases the claim; nil if neither
	recovery   arp.Timer // the _dup_recovery timer of a DUPLICATE unit
	recovering bool      // re-probing after a duplicate: a new conflict is not logged again
	holder     string    // hardware address of the last conflicting host
	waiters    []chan struct{}

	// stackTentative: gVisor made this (SLAAC) address and runs DAD on it
	// itself; its verdict comes as an ndp event (dad6.go).
	stackTentative bool
}

// dadFor returns the DAD of il's family, or nil when its addresses are
// ready at once: no ARP on an IPv4 ill, no IPv6 DAD wanted (dad6Wanted),
// or DAD turned off (_arp_no_defense, the switch of both families). Turning it on or off affects units brought up
// afterwards. illumos defaults _arp_no_defense to 0. ifmgr's own default
// is 1, so a Manager embedded in a test or a program gets usable
// addresses at once; tapstackd sets Config.DAD (hence 0), and its clients
// wait for DAD as illumos ifconfig does (the "wait-dad" operation).
func (m *Manager) dadFor(il *ill) dadStarter {
	if il.v6 {
		if !m.dad6Wanted(il) {
			return nil
		}
		return ndpDAD{m: m}
	}
	if il.arp == nil || m.tunableLocked("_arp_no_defense") != 0 {
		return nil
	}
	return arpDAD{m: m, ifc: il.arp}
}

// startDADLocked is the resolver step of bring-up (spec §6.1) for a unit
// just marked UP: clear DUPLICATE, cancel recovery, then probe, or make
// the address ready at once when there is nothing to probe.
func (m *Manager) startDADLocked(u *ipif) {
	m.stopDADLocked(u)
	u.flags &^= ctl.IFF_DUPLICATE
	if u.dad.recovery != nil {
		u.dad.recovery.Stop()
		u.dad.recovery = nil
	}
	d := m.dadFor(u.ill)
	if d == nil || u.addr.IsUnspecified() || u.flags&(ctl.IFF_NOLOCAL|ctl.IFF_UNNUMBERED|ctl.IFF_POINTOPOINT) != 0 {
		m.addrReadyLocked(u)
		return
	}
	gen := u.dad.gen
	cancel, probing := d.probe(u, func(h net.HardwareAddr) { m.dadReport(u, gen, h) })
	if !probing {
		m.addrReadyLocked(u)
		return
	}
	u.dad.pending = true
	u.dad.stop = cancel
}

// stopDADLocked ends whatever DAD runs for u (probe or claim) without
// touching its flags; later callbacks of that run are ignored.
func (m *Manager) stopDADLocked(u *ipif) {
	u.dad.gen++
	if u.dad.stop != nil {
		u.dad.stop()
		u.dad.stop = nil
	}
	if u.dad.pending {
		u.dad.pending = false
		m.wakeDADWaitersLocked(u)
	}
}

// addrReadyLocked makes u's address usable: the stack gets it, the "up"
// notifications go out (deferred until now, spec §6.1), and the address
// is announced and defended.
func (m *Manager) addrReadyLocked(u *ipif) {
	il := u.ill
	u.dad.pending = false
	u.dad.recovering = false
	if !u.stackAddr.IsValid() {
		m.giveAddressLocked(u)
	}
	m.emitLocked(RTM_IFINFO, u)
	m.emitLocked(RTM_ADD, u)
	if d := m.dadFor(il); d != nil && !u.addr.IsUnspecified() && u.flags&(ctl.IFF_NOLOCAL|ctl.IFF_UNNUMBERED|ctl.IFF_POINTOPOINT) == 0 {
		gen := u.dad.gen
		u.dad.stop = d.claim(u, func(h net.HardwareAddr) { m.dadLost(u, gen, h) })
	}
	m.wakeDADWaitersLocked(u)
}

// dadReport receives the end of a probe.
func (m *Manager) dadReport(u *ipif, gen uint64, holder net.HardwareAddr) {
	m.mu.Lock()
	defer m.unlockAndDeliver()
	if u.dad.gen != gen || !u.up() {
		return
	}
	u.dad.stop = nil
	if holder == nil {
		m.addrReadyLocked(u)
		return
	}
	// A failed probe leaves nothing in the stack: IPv4 had not given the
	// address yet, and gVisor removed its tentative IPv6 copy itself.
	u.stackAddr = netip.Prefix{}
	m.duplicateLocked(u, holder)
}

// dadLost receives a defence given up.
func (m *Manager) dadLost(u *ipif, gen uint64, holder net.HardwareAddr) {
	m.mu.Lock()
	defer m.unlockAndDeliver()
	if u.dad.gen != gen || !u.up() {
		return
	}
	u.dad.stop = nil
	m.duplicateLocked(u, holder)
}

// duplicateLocked is DAD failure (spec §6.3): log it, mark the unit
// DUPLICATE, take it down (the link stays bound so it can be probed
// again), tell subscribers who holds the address, and arm recovery.
func (m *Manager) duplicateLocked(u *ipif, holder net.HardwareAddr) {
	if u.flags&(ctl.IFF_DUPLICATE|ctl.IFF_POINTOPOINT) != 0 {
		return
	}
	quiet := u.dad.recovering
	u.dad.recovering = false
	u.dad.holder = formatMAC(holder)
	if !quiet {
		by := u.dad.holder
		if by == "" {
			by = "a node probing for it" // an IPv6 DAD solicitation names no link address
		}
		m.log.Warn(fmt.Sprintf("%s has duplicate address %s (in use by %s); disabled", u.name(), u.addr, by),
			"interface", u.name(), "addr", u.addr, "holder", u.dad.holder)
	}
	u.flags |= ctl.IFF_DUPLICATE
	m.downLocked(u, true)
	ev := m.eventOf(DAD_DUPLICATE, u)
	ev.HWAddr = u.dad.holder
	m.pending = append(m.pending, ev)
	m.armRecoveryLocked(u)
	m.wakeDADWaitersLocked(u)
}

// armRecoveryLocked starts the _dup_recovery timer of a DUPLICATE unit,
// unless recovery is off or user space owns the address (DHCP,
// temporary).
func (m *Manager) armRecoveryLocked(u *ipif) {
	ms := m.tunableLocked("_dup_recovery")
	if ms == 0 || u.flags&(ctl.IFF_DHCPRUNNING|ctl.IFF_TEMPORARY) != 0 || m.dadFor(u.ill) == nil {
		return
	}
	u.dad.recovery = m.clock.AfterFunc(time.Duration(ms)*time.Millisecond, func() { m.recoverDuplicate(u) })
}

// recoverDuplicate is the _dup_recovery timer: a unit still DUPLICATE,
// still plumbed, on a running link is brought up again (and re-probed).
// On a link that is down the link-up event recovers it instead.
func (m *Manager) recoverDuplicate(u *ipif) {
	m.mu.Lock()
	defer m.unlockAndDeliver()
	u.dad.recovery = nil
	if !m.attachedLocked(u) || u.flags&ctl.IFF_DUPLICATE == 0 || u.up() {
		return
	}
	if u.ill.phy.flags&ctl.IFF_RUNNING == 0 {
		return
	}
	m.recoverLocked(u)
}

func (m *Manager) recoverLocked(u *ipif) {
	u.flags &^= ctl.IFF_DUPLICATE
	u.dad.recovering = true
	if err := m.upLocked(u); err != nil {
		u.dad.recovering = false
		m.log.Warn("duplicate address recovery", "interface", u.name(), "addr", u.addr, "err", err)
	}
}

// attachedLocked reports whether u is still a unit of a plumbed ill.
func (m *Manager) attachedLocked(u *ipif) bool {
	return m.lookupIllLocked(u.ill.name, u.ill.v6) == u.ill && u.ill.ipifByID(u.id) == u
}

// dadLinkChange is §6.4 for one ill: link down makes every up address
// unready (DAD starts over at link up); link up re-probes them and
// recovers DUPLICATE units at once. It runs as an exclusive operation
// of its own, from the ARP stream's notification.
func (m *Manager) dadLinkChange(il *ill, up bool) {
	m.mu.Lock()
	defer m.unlockAndDeliver()
	if m.lookupIllLocked(il.name, il.v6) != il || m.dadFor(il) == nil {
		return
	}
	for _, u := range il.ipifs {
		switch {
		case up && u.flags&ctl.IFF_DUPLICATE != 0 && !u.up():
			if u.dad.recovery != nil {
				u.dad.recovery.Stop()
				u.dad.recovery = nil
			}
			m.recoverLocked(u)
		case up && u.up():
			m.unreadyLocked(u)
			m.startDADLocked(u)
		case !up && u.up():
			m.unreadyLocked(u)
		}
	}
}

// unreadyLocked stops DAD on an up unit and takes its address from the
// stack until DAD runs again; the address counts as not ready meanwhile.
func (m *Manager) unreadyLocked(u *ipif) {
	m.stopDADLocked(u)
	u.dad.pending = true
	if u.stackAddr.IsValid() {
		if err := m.stack.RemoveAddress(u.ill.name, u.stackAddr.Addr()); err != nil {
			m.log.Warn("stack address removal", "interface", u.name(), "err", err)
		}
		u.stackAddr = netip.Prefix{}
	}
}

// openARPLocked starts ARP on a resolver IPv4 ill when it binds: the
// arp.Interface, and a DLPI stream of ARP's own for link up/down
// notifications (as illumos ARP has its own stream to the driver).
func (m *Manager) openARPLocked(il *ill) {
	if il.v6 || il.arp != nil || il.stream == nil || len(il.broadcast) == 0 || il.flags&ctl.IFF_NOARP != 0 {
		return
	}
	lk := il.phy.link
	ifc, err := arp.New(arp.Config{Stack: m.stack, NIC: il.phy.name, Link: lk, Clock: m.clock})
	if err != nil {
		m.log.Warn("ARP", "interface", il.name, "err", err)
		return
	}
	il.arp = ifc
	if st, err := lk.Open(); err == nil {
		st.EnableNotifications(link.NoteLinkUp|link.NoteLinkDown, func(n link.Notification) {
			m.dadLinkChange(il, n.Kind == link.NoteLinkUp)
		})
		il.arpStream = st
	}
}

// closeARPLocked stops ARP on il when it unbinds; its entries go.
func (m *Manager) closeARPLocked(il *ill) {
	if il.arpStream != nil {
		il.arpStream.Close()
		il.arpStream = nil
	}
	if il.arp != nil {
		il.arp.Close()
		il.arp = nil
	}
}

// hasDuplicateLocked reports whether some unit of il is DUPLICATE: such
// an ill stays bound so the unit can be probed again (spec §6.3).
func (il *ill) hasDuplicate() bool {
	for _, u := range il.ipifs {
		if u.flags&ctl.IFF_DUPLICATE != 0 {
			return true
		}
	}
	return false
}

// dadInProgress is SIOCGLIFDADSTATE's answer: UP with an address not yet
// ready.
func (u *ipif) dadInProgress() bool { return u.up() && u.dad.pending }

// wakeDADWaitersLocked releases WaitDAD calls on u.
func (m *Manager) wakeDADWaitersLocked(u *ipif) {
	for _, c := range u.dad.waiters {
		close(c)
	}
	u.dad.waiters = nil
}

// WaitDAD waits until DAD of the logical interface name (family fam) is
// over, as illumos ifconfig does after bringing an address up. It
// returns nil when the address is ready (or the unit is down), EADDRINUSE
// naming the holder when DAD found a duplicate, or the context's error.
func (m *Manager) WaitDAD(ctx context.Context, name string, fam ctl.Family) error {
	for {
		m.mu.Lock()
		u, err := m.lookupLocked(name, fam)
		if err != nil {
			m.mu.Unlock()
			return err
		}
		if u.flags&ctl.IFF_DUPLICATE != 0 {
			m.mu.Unlock()
			return ctl.Errorf(ctl.EADDRINUSE, "%s: duplicate address %s (in use by %s)", u.name(), u.addr, u.dad.holder)
		}
		if !u.dadInProgress() {
			m.mu.Unlock()
			return nil
		}
		c := make(chan struct{})
		u.dad.waiters = append(u.dad.waiters, c)
		m.mu.Unlock()
		select {
		case <-c:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// arpDAD is IPv4 DAD: probes and claims on the ill's arp.Interface with
// the current tunables (spec §6.2). The fast variants apply when the link
// reports its state, which every tapstack link does.
type arpDAD struct {
	m   *Manager
	ifc *arp.Interface
}

func ms(v int64) time.Duration { return time.Duration(v) * time.Millisecond }

func (a arpDAD) probe(u *ipif, report func(net.HardwareAddr)) (func(), bool) {
	t := a.m.tunableLocked
	p := arp.ProbeParams{Delay: ms(t("_arp_probe_delay")), Interval: ms(t("_arp_probe_interval")), Count: int(t("_arp_probe_count"))}
	if u.ill.arpStream != nil {
		p = arp.ProbeParams{Delay: ms(t("_arp_fastprobe_delay")), Interval: ms(t("_arp_fastprobe_interval")), Count: int(t("_arp_fastprobe_count"))}
	}
	if p.Count == 0 {
		return nil, false
	}
	return a.ifc.Probe(u.addr, p, report), true
}

func (a arpDAD) claim(u *ipif, lost func(net.HardwareAddr)) func() {
	t := a.m.tunableLocked
	maxDefend := t("_max_defend")
	if u.flags&(ctl.IFF_DHCPRUNNING|ctl.IFF_TEMPORARY) != 0 {
		maxDefend = t("_max_temp_defend")
	}
	return a.ifc.Claim(u.addr, arp.ClaimParams{
		Count: int(t("_arp_publish_count")), Interval: ms(t("_arp_publish_interval")),
		Periodic:  ms(t("_dad_announce_interval")),
		MaxDefend: int(maxDefend), DefendWindow: time.Duration(t("_defend_interval")) * time.Second,
		DefendRate: int(t("_arp_defend_rate")), DefendPeriod: time.Duration(t("_arp_defend_period")) * time.Second,
	}, lost)
}
