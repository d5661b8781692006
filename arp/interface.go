// Package arp is tapstack's IPv4 address resolution beyond what gVisor
// does itself: the administrative ARP cache (permanent, temporary and
// published entries, SIOCSARP and friends), proxy ARP for published
// entries, and IPv4 duplicate address detection: probes, announcements,
// defence and the conflict reports ifmgr turns into IFF_DUPLICATE.
//
// gVisor's neighbour table stays the cache the data path uses; this
// package fills it (static entries) and reads it (learned entries). It
// sees inbound ARP before gVisor through the link's ARP diverter and
// sends raw ARP through the stack NIC. It never imports ifmgr: results go
// up through the callbacks given to Probe and Claim.
package arp

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/tapstack/tapstack/link"
	"github.com/tapstack/tapstack/stack"
)

// Config names what an Interface works on.
type Config struct {
	Stack *stack.Stack
	NIC   string     // the stack NIC the link is attached as
	Link  *link.Link // where ARP is seen; it must carry Ethernet
	Clock Clock      // nil: SystemClock()
}

// Interface is ARP on one IPv4 interface (one ill in ifmgr's words).
//
// Locking: mu guards the maps and the defence-rate counters. Callbacks
// given to Probe and Claim are called without mu held, from a timer or
// from the link's receive goroutine, never from inside a method of
// Interface; so a callback may call back into Interface.
type Interface struct {
	st    *stack.Stack
	nic   string
	link  *link.Link
	clock Clock

	probesSent, announcementsSent, proxyReplies, conflicts atomic.Uint64

	mu sync.Mutex
	// +checklocks:mu
	entries map[netip.Addr]*adminEntry
	// +checklocks:mu
	probes map[netip.Addr]*probeRun
	// +checklocks:mu
	claims map[netip.Addr]*claim
	// +checklocks:mu
	rate defenceRate
	// +checklocks:mu
	closed bool
}

// New starts ARP on cfg.Link: from now on it sees every inbound ARP
// packet (before gVisor, which still sees them too).
func New(cfg Config) (*Interface, error) {
	if cfg.Stack == nil || cfg.Link == nil {
		return nil, fmt.Errorf("arp: a stack and a link are needed")
	}
	if _, ok := cfg.Stack.NICID(cfg.NIC); !ok {
		return nil, fmt.Errorf("arp: no stack NIC %q", cfg.NIC)
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock()
	}
	i := &Interface{
		st: cfg.Stack, nic: cfg.NIC, link: cfg.Link, clock: cfg.Clock,
		entries: map[netip.Addr]*adminEntry{},
		probes:  map[netip.Addr]*probeRun{},
		claims:  map[netip.Addr]*claim{},
	}
	cfg.Link.SetARPDiverter(i.divert)
	return i, nil
}

// Close stops ARP on the interface: probes and claims end without a
// callback, and every entry, administrative or learned, is flushed, as
// illumos flushes an ill's neighbour entries when its last address goes
// down.
func (i *Interface) Close() {
	i.link.SetARPDiverter(nil)
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.closed {
		return
	}
	i.closed = true
	for a, r := range i.probes {
		r.stopLocked()
		delete(i.probes, a)
	}
	for a, c := range i.claims {
		c.stopLocked()
		delete(i.claims, a)
	}
	for a, e := range i.entries {
		e.stopLocked()
		delete(i.entries, a)
	}
	if id, ok := i.st.NICID(i.nic); ok {
		i.st.GVisor().ClearNeighbors(id, header.IPv4ProtocolNumber)
	}
}

// Stats counts what the interface sent and saw.
type Stats struct {
	ProbesSent        uint64 // DAD probes
	AnnouncementsSent uint64 // gratuitous ARP: after DAD, periodic, defences
	ProxyReplies      uint64 // answers for published entries
	Conflicts         uint64 // packets that contradicted a probed or claimed address
}

// Stats returns the counters.
func (i *Interface) Stats() Stats {
	return Stats{
		ProbesSent:        i.probesSent.Load(),
		AnnouncementsSent: i.announcementsSent.Load(),
		ProxyReplies:      i.proxyReplies.Load(),
		Conflicts:         i.conflicts.Load(),
	}
}

// HardwareAddr returns the link's current MAC: the sender of everything
// this interface sends.
func (i *Interface) HardwareAddr() net.HardwareAddr { return i.link.Addr() }

// divert is the link's ARP diverter: it runs on the receive goroutine for
// every inbound ARP packet and never consumes it, so gVisor still learns
// neighbours and answers for the addresses it owns.
func (i *Interface) divert(_ tcpip.NetworkProtocolNumber, pkt *gstack.PacketBuffer) bool {
	p, ok := Parse(pkt.Data().AsRange().ToSlice())
	if ok {
		i.handle(p)
	}
	return false
}

// handle reacts to one inbound ARP packet: conflicts with addresses being
// probed or claimed, and requests for published entries.
func (i *Interface) handle(p Packet) {
	own := i.link.Addr()
	if bytes.Equal(p.SenderHW, own) {
		return // our own frame reflected back
	}
	var after []func()
	var reply *Packet
	i.mu.Lock()
	if i.closed {
		i.mu.Unlock()
		return
	}
	// A probed address is taken when someone sends from it, or probes
	// for it at the same time as we do.
	r := i.probes[p.SenderAddr]
	if r == nil && p.IsProbe() {
		r = i.probes[p.TargetAddr]
	}
	if r != nil {
		i.conflicts.Add(1)
		after = append(after, i.probeConflictLocked(r, p.SenderHW))
	}
	if c := i.claims[p.SenderAddr]; c != nil && !p.SenderAddr.IsUnspecified() {
		i.conflicts.Add(1)
		if f := i.claimConflictLocked(c, p.SenderHW); f != nil {
			after = append(after, f)
		}
	}
	if e := i.entries[p.TargetAddr]; e != nil && e.Published && p.Op == OpRequest && p.SenderAddr != p.TargetAddr {
		reply = &Packet{Op: OpReply, SenderHW: e.HW, SenderAddr: p.TargetAddr, TargetHW: p.SenderHW, TargetAddr: p.SenderAddr}
	}
	i.mu.Unlock()
	if reply != nil && i.send(p.SenderHW, *reply) == nil {
		i.proxyReplies.Add(1)
	}
	for _, f := range after {
		if f != nil {
			f()
		}
	}
}

var broadcastHW = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// send writes one ARP packet to dst through the stack NIC (so captures
// see it). The Ethernet source is the NIC's MAC.
func (i *Interface) send(dst net.HardwareAddr, p Packet) error {
	id, ok := i.st.NICID(i.nic)
	if !ok {
		return fmt.Errorf("arp: no stack NIC %q", i.nic)
	}
	err := i.st.GVisor().WritePacketToRemote(id, tcpip.LinkAddress(dst), header.ARPProtocolNumber,
		buffer.MakeWithData(p.Marshal()))
	if err != nil {
		return fmt.Errorf("arp: send on %s: %s", i.nic, err)
	}
	return nil
}

// Announce sends one gratuitous ARP for addr now (illumos sends one when
// an address is rebound; ifmgr uses Claim for the full schedule).
func (i *Interface) Announce(addr netip.Addr) error {
	err := i.send(broadcastHW, announcement(i.link.Addr(), addr))
	if err == nil {
		i.announcementsSent.Add(1)
	}
	return err
}
