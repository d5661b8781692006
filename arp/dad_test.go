package arp

import (
	"bytes"
	"net"
	"testing"
	"time"
)

var fastProbe = ProbeParams{Delay: 100 * time.Millisecond, Interval: 150 * time.Millisecond, Count: 3}

// Probes leave at Delay, Delay+Interval, …; success is reported one
// interval after the last, and not a moment before.
func TestProbeScheduleAndSuccess(t *testing.T) {
	b := newBench(t)
	a := addr("10.0.0.1")
	results := make(chan net.HardwareAddr, 1)
	b.ifc.Probe(a, fastProbe, func(h net.HardwareAddr) { results <- h })

	sent := func() int { return int(b.ifc.Stats().ProbesSent) }
	b.clock.Advance(fastProbe.Delay - time.Millisecond)
	if sent() != 0 {
		t.Fatalf("%d probes before the delay", sent())
	}
	for n := 1; n <= fastProbe.Count; n++ {
		b.clock.Advance(time.Millisecond)
		if sent() != n {
			t.Fatalf("probe %d: %d sent at its time", n, sent())
		}
		b.clock.Advance(fastProbe.Interval - time.Millisecond)
		if sent() != n {
			t.Fatalf("%d probes sent before probe %d's interval ended", sent(), n+1)
		}
	}
	select {
	case h := <-results:
		t.Fatalf("reported %v before the last interval ended", h)
	default:
	}
	b.clock.Advance(time.Millisecond)
	select {
	case h := <-results:
		if h != nil {
			t.Fatalf("reported holder %v with nobody there", h)
		}
	default:
		t.Fatal("no report after the last interval")
	}
	for _, f := range b.wait(fastProbe.Count) {
		if !bytes.Equal(f.dst, broadcastHW) || !bytes.Equal(f.src, ourMAC) || !f.IsProbe() ||
			f.TargetAddr != a || !bytes.Equal(f.SenderHW, ourMAC) {
			t.Errorf("not a broadcast probe for %s from %s: %+v", a, ourMAC, f)
		}
	}
	if b.clock.Pending() != 0 {
		t.Errorf("%d timers left after DAD", b.clock.Pending())
	}
}

// A reply from another host during probing, or its own probe for the
// same address, ends DAD with that host's hardware address.
func TestProbeConflict(t *testing.T) {
	for name, p := range map[string]Packet{
		"reply from the holder": {Op: OpReply, SenderHW: peerMAC, SenderAddr: addr("10.0.0.1"), TargetHW: ourMAC, TargetAddr: addr("0.0.0.0")},
		"simultaneous probe":    probe(peerMAC, addr("10.0.0.1")),
		"holder's announcement": announcement(peerMAC, addr("10.0.0.1")),
	} {
		t.Run(name, func(t *testing.T) {
			b := newBench(t)
			results := make(chan net.HardwareAddr, 1)
			b.ifc.Probe(addr("10.0.0.1"), fastProbe, func(h net.HardwareAddr) { results <- h })
			b.clock.Advance(fastProbe.Delay) // first probe out
			b.inject(peerMAC, broadcastHW, p)
			select {
			case h := <-results:
				if !bytes.Equal(h, peerMAC) {
					t.Fatalf("holder %v, want %v", h, peerMAC)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no conflict reported")
			}
			b.clock.Advance(time.Minute)
			if n := b.ifc.Stats().ProbesSent; n != 1 {
				t.Errorf("%d probes sent, want 1: probing goes on after the conflict", n)
			}
		})
	}
}

// Our own probe reflected back, and traffic about other addresses, are
// not conflicts; a cancelled probe never reports.
func TestProbeIgnoresReflectionsAndCancels(t *testing.T) {
	b := newBench(t)
	reports := 0
	cancel := b.ifc.Probe(addr("10.0.0.1"), fastProbe, func(net.HardwareAddr) { reports++ })
	b.clock.Advance(fastProbe.Delay)
	b.ifc.handle(probe(ourMAC, addr("10.0.0.1")))
	b.ifc.handle(announcement(peerMAC, addr("10.0.0.9")))
	if reports != 0 || b.ifc.Stats().Conflicts != 0 {
		t.Fatalf("reflection or unrelated packet counted as conflict (%d reports)", reports)
	}
	cancel()
	b.clock.Advance(time.Minute)
	if reports != 0 {
		t.Errorf("cancelled probe reported %d times", reports)
	}
	if n := b.ifc.Stats().ProbesSent; n != 1 {
		t.Errorf("%d probes sent, want 1 before the cancel", n)
	}
}

// Count 0: no probes, success after the delay.
func TestProbeCountZero(t *testing.T) {
	b := newBench(t)
	done := false
	b.ifc.Probe(addr("10.0.0.1"), ProbeParams{Delay: time.Second}, func(h net.HardwareAddr) { done = h == nil })
	b.clock.Advance(time.Second)
	if !done || b.ifc.Stats().ProbesSent != 0 {
		t.Errorf("done %v, %d probes", done, b.ifc.Stats().ProbesSent)
	}
}
