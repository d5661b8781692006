package arp

import (
	"net"
	"net/netip"
	"time"
)

// ClaimParams is how an address that passed DAD is announced and
// defended (illumos _arp_publish_count, _arp_publish_interval,
// _dad_announce_interval, _max_defend, _defend_interval, _arp_defend_rate,
// _arp_defend_period).
type ClaimParams struct {
	Count    int           // announcements right away, Interval apart (at least one)
	Interval time.Duration //
	Periodic time.Duration // then one every Periodic; 0: none

	// MaxDefend conflicts within DefendWindow are answered with an
	// announcement; one more within the window loses the address.
	MaxDefend    int
	DefendWindow time.Duration

	// At most DefendRate defence announcements per DefendPeriod leave the
	// interface (all addresses together); beyond that conflicts are still
	// counted but not answered.
	DefendRate   int
	DefendPeriod time.Duration
}

// claim is one address this interface announces and defends.
type claim struct {
	addr      netip.Addr
	p         ClaimParams
	left      int // announcements still due at Interval
	timer     Timer
	lost      func(holder net.HardwareAddr)
	defended  int       // conflicts answered in the current window
	windowEnd time.Time // when the current defence window closes
}

func (c *claim) stopLocked() {
	if c.timer != nil {
		c.timer.Stop()
	}
}

// defenceRate limits defence announcements per interface.
type defenceRate struct {
	start time.Time
	sent  int
}

// Claim makes addr ours on the wire: one gratuitous ARP now, p.Count-1
// more p.Interval apart, then one every p.Periodic; a conflicting claim
// by another host is defended with an announcement, up to p.MaxDefend
// times per p.DefendWindow. One conflict more calls lost (once, never
// inside Claim) and ends the claim. release ends it silently. A new Claim
// for the same address replaces the old one.
func (i *Interface) Claim(addr netip.Addr, p ClaimParams, lost func(holder net.HardwareAddr)) (release func()) {
	c := &claim{addr: addr, p: p, left: max(p.Count, 1), lost: lost}
	i.mu.Lock()
	if old := i.claims[addr]; old != nil {
		old.stopLocked()
	}
	if i.closed {
		i.mu.Unlock()
		return func() {}
	}
	i.claims[addr] = c
	i.mu.Unlock()
	i.announceStep(c)
	return func() {
		i.mu.Lock()
		defer i.mu.Unlock()
		if i.claims[addr] == c {
			c.stopLocked()
			delete(i.claims, addr)
		}
	}
}

// announceStep sends the next scheduled announcement of c and arms the
// one after it.
func (i *Interface) announceStep(c *claim) {
	i.mu.Lock()
	if i.claims[c.addr] != c {
		i.mu.Unlock()
		return
	}
	c.left--
	switch {
	case c.left > 0:
		c.timer = i.clock.AfterFunc(c.p.Interval, func() { i.announceStep(c) })
	case c.p.Periodic > 0:
		c.left = 1
		c.timer = i.clock.AfterFunc(c.p.Periodic, func() { i.announceStep(c) })
	default:
		c.timer = nil
	}
	i.mu.Unlock()
	i.Announce(c.addr)
}

// claimConflictLocked handles a packet from holder that uses c's address:
// defend it, or give it up when the window's defences are spent. It
// returns what to call once mu is released (nil: nothing).
func (i *Interface) claimConflictLocked(c *claim, holder net.HardwareAddr) func() {
	now := i.clock.Now()
	if c.defended == 0 || now.After(c.windowEnd) {
		c.defended = 0
		c.windowEnd = now.Add(c.p.DefendWindow)
	}
	c.defended++
	if c.defended > c.p.MaxDefend {
		c.stopLocked()
		delete(i.claims, c.addr)
		h := append(net.HardwareAddr(nil), holder...)
		return func() { c.lost(h) }
	}
	if now.Sub(i.rate.start) > c.p.DefendPeriod || i.rate.start.IsZero() {
		i.rate = defenceRate{start: now}
	}
	if i.rate.sent >= c.p.DefendRate {
		return nil
	}
	i.rate.sent++
	addr := c.addr
	return func() { i.Announce(addr) }
}
