package arp

import (
	"bytes"
	"net"
	"testing"
	"time"
)

var claimParams = ClaimParams{
	Count: 3, Interval: 2 * time.Second, Periodic: 15 * time.Second,
	MaxDefend: 3, DefendWindow: 30 * time.Second,
	DefendRate: 100, DefendPeriod: time.Hour,
}

// Announcements: one at once, Count-1 more Interval apart, then one per
// Periodic; all gratuitous requests for the address from our MAC.
func TestClaimAnnouncements(t *testing.T) {
	b := newBench(t)
	a := addr("10.0.0.1")
	release := b.ifc.Claim(a, claimParams, func(net.HardwareAddr) { t.Error("lost with no conflict") })
	sent := func() uint64 { return b.ifc.Stats().AnnouncementsSent }
	if sent() != 1 {
		t.Fatalf("%d announcements at once, want 1", sent())
	}
	steps := []struct {
		d    time.Duration
		want uint64
	}{
		{2*time.Second - time.Millisecond, 1}, {time.Millisecond, 2}, {2 * time.Second, 3},
		{15*time.Second - time.Millisecond, 3}, {time.Millisecond, 4}, {15 * time.Second, 5},
	}
	for _, s := range steps {
		b.clock.Advance(s.d)
		if sent() != s.want {
			t.Fatalf("after %v more: %d announcements, want %d", s.d, sent(), s.want)
		}
	}
	for _, f := range b.wait(5) {
		if f.Op != OpRequest || f.SenderAddr != a || f.TargetAddr != a || !bytes.Equal(f.SenderHW, ourMAC) || !bytes.Equal(f.dst, broadcastHW) {
			t.Errorf("not a gratuitous ARP for %s: %+v", a, f)
		}
	}
	release()
	b.clock.Advance(time.Hour)
	if sent() != 5 {
		t.Errorf("%d announcements after release, want 5", sent())
	}
}

// MaxDefend conflicts within the window are each answered; the next one
// loses the address. A conflict after the window starts a new count.
func TestClaimDefenceLimit(t *testing.T) {
	b := newBench(t)
	a := addr("10.0.0.1")
	p := claimParams
	p.Count, p.Periodic = 1, 0
	var lost net.HardwareAddr
	b.ifc.Claim(a, p, func(h net.HardwareAddr) { lost = h })
	base := b.ifc.Stats().AnnouncementsSent
	conflict := announcement(peerMAC, a)

	for n := 1; n <= p.MaxDefend; n++ {
		b.ifc.handle(conflict)
		b.clock.Advance(time.Second)
		if got := b.ifc.Stats().AnnouncementsSent - base; got != uint64(n) || lost != nil {
			t.Fatalf("conflict %d: %d defences, lost %v", n, got, lost)
		}
	}
	b.clock.Advance(p.DefendWindow) // the window closes: the count starts over
	for n := 1; n <= p.MaxDefend; n++ {
		b.ifc.handle(conflict)
	}
	if lost != nil {
		t.Fatalf("lost after %d conflicts in a new window", p.MaxDefend)
	}
	b.ifc.handle(conflict)
	if !bytes.Equal(lost, peerMAC) {
		t.Fatalf("after %d conflicts within the window: lost = %v, want %v", p.MaxDefend+1, lost, peerMAC)
	}
	defences := b.ifc.Stats().AnnouncementsSent - base
	if defences != uint64(2*p.MaxDefend) {
		t.Errorf("%d defences sent, want %d", defences, 2*p.MaxDefend)
	}
	lost = nil
	b.ifc.handle(conflict)
	if lost != nil {
		t.Error("a lost claim reported again")
	}
}

// The interface sends at most DefendRate defences per DefendPeriod.
func TestClaimDefenceRate(t *testing.T) {
	b := newBench(t)
	p := claimParams
	p.Count, p.Periodic, p.MaxDefend, p.DefendRate, p.DefendPeriod = 1, 0, 100, 2, time.Minute
	b.ifc.Claim(addr("10.0.0.1"), p, func(net.HardwareAddr) { t.Error("lost") })
	b.ifc.Claim(addr("10.0.0.2"), p, func(net.HardwareAddr) { t.Error("lost") })
	base := b.ifc.Stats().AnnouncementsSent
	for range 3 {
		b.ifc.handle(announcement(peerMAC, addr("10.0.0.1")))
		b.ifc.handle(announcement(peerMAC, addr("10.0.0.2")))
	}
	if got := b.ifc.Stats().AnnouncementsSent - base; got != 2 {
		t.Fatalf("%d defences within the period, want the rate's 2", got)
	}
	b.clock.Advance(p.DefendPeriod + time.Second)
	b.ifc.handle(announcement(peerMAC, addr("10.0.0.1")))
	if got := b.ifc.Stats().AnnouncementsSent - base; got != 3 {
		t.Errorf("%d defences after the period, want 3", got)
	}
}

// A conflict arriving over the wire is defended on the wire.
func TestClaimDefendsOnTheWire(t *testing.T) {
	b := newBench(t)
	a := addr("10.0.0.1")
	p := claimParams
	p.Count, p.Periodic = 1, 0
	b.ifc.Claim(a, p, func(net.HardwareAddr) { t.Error("lost") })
	b.wait(1) // the first announcement
	b.inject(peerMAC, broadcastHW, announcement(peerMAC, a))
	got := b.wait(2)
	if f := got[1]; f.SenderAddr != a || !bytes.Equal(f.SenderHW, ourMAC) {
		t.Errorf("defence %+v, want an announcement of %s from %s", f, a, ourMAC)
	}
}
