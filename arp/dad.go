package arp

import (
	"net"
	"net/netip"
	"time"
)

// ProbeParams is the DAD probe schedule (illumos _arp_probe_delay,
// _arp_probe_interval, _arp_probe_count, or their _fastprobe_ variants).
type ProbeParams struct {
	Delay    time.Duration // before the first probe
	Interval time.Duration // between probes, and after the last one
	Count    int           // probes to send; 0 reports success after Delay
}

// probeRun is one address being probed.
type probeRun struct {
	addr   netip.Addr
	p      ProbeParams
	sent   int
	timer  Timer
	report func(holder net.HardwareAddr)
}

func (r *probeRun) stopLocked() {
	if r.timer != nil {
		r.timer.Stop()
	}
}

// Probe runs duplicate address detection for addr (RFC 5227 probes, as
// illumos sends them): after p.Delay, p.Count probes p.Interval apart,
// then one more interval of silence. report is called exactly once,
// unless cancel is called first: with nil when nobody answered, or with
// the hardware address of the host that claimed addr (sent from it, or
// probed for it too). report never runs inside Probe. A new Probe for the
// same address replaces the old one silently.
func (i *Interface) Probe(addr netip.Addr, p ProbeParams, report func(holder net.HardwareAddr)) (cancel func()) {
	r := &probeRun{addr: addr, p: p, report: report}
	i.mu.Lock()
	defer i.mu.Unlock()
	if old := i.probes[addr]; old != nil {
		old.stopLocked()
	}
	if i.closed {
		return func() {}
	}
	i.probes[addr] = r
	r.timer = i.clock.AfterFunc(p.Delay, func() { i.probeStep(r) })
	return func() {
		i.mu.Lock()
		defer i.mu.Unlock()
		if i.probes[addr] == r {
			r.stopLocked()
			delete(i.probes, addr)
		}
	}
}

// probeStep sends the next probe, or reports success after the last
// interval.
func (i *Interface) probeStep(r *probeRun) {
	i.mu.Lock()
	if i.probes[r.addr] != r {
		i.mu.Unlock()
		return // cancelled, replaced or already conflicted
	}
	if r.sent >= r.p.Count {
		delete(i.probes, r.addr)
		i.mu.Unlock()
		r.report(nil)
		return
	}
	r.sent++
	r.timer = i.clock.AfterFunc(r.p.Interval, func() { i.probeStep(r) })
	i.mu.Unlock()
	if i.send(broadcastHW, probe(i.link.Addr(), r.addr)) == nil {
		i.probesSent.Add(1)
	}
}

// probeConflictLocked ends probe r because holder claims its address;
// it returns the report call to make once mu is released.
func (i *Interface) probeConflictLocked(r *probeRun, holder net.HardwareAddr) func() {
	r.stopLocked()
	delete(i.probes, r.addr)
	h := append(net.HardwareAddr(nil), holder...)
	return func() { r.report(h) }
}
