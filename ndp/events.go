package ndp

import (
	"bytes"
	"net"
	"net/netip"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/tapstack/tapstack/stack"
)

// EventKind says what an Event reports.
type EventKind int

// Event kinds.
const (
	// AddrAdded: SLAAC configured Addr (Temporary for an RFC 4941 one;
	// Deprecated if its preferred lifetime is already over; Tentative
	// while gVisor's DAD runs on it, AddrAssigned or AddrRemoved follows).
	AddrAdded EventKind = iota + 1
	// AddrDeprecated: Addr's preferred lifetime ended.
	AddrDeprecated
	// AddrPreferred: a new advertisement made Addr preferred again.
	AddrPreferred
	// AddrRemoved: Addr is gone from the stack (Manual says the removal
	// was asked for through the stack, i.e. by ifmgr itself).
	AddrRemoved
	// RouterUp, RouterDown: a default router was learned or timed out.
	RouterUp
	RouterDown
	// AddrAssigned: the tentative SLAAC address Addr passed DAD.
	AddrAssigned
)

// Event is one report of gVisor's neighbour discovery for NIC NIC.
type Event struct {
	Kind       EventKind
	NIC        string
	Addr       netip.Prefix     // the address events: address and prefix length
	Temporary  bool             // AddrAdded
	Deprecated bool             // AddrAdded
	Tentative  bool             // AddrAdded
	Manual     bool             // AddrRemoved
	Duplicate  bool             // AddrRemoved: DAD found another node with it
	Holder     net.HardwareAddr // AddrRemoved with Duplicate: its link address, if it told
	Router     netip.Addr       // RouterUp, RouterDown
}

// raw is an event as gVisor reported it, before the NIC is named, a
// barrier (Sync) to close once everything before it is delivered, or a
// function to call in order with the events (AddTentative's results).
type raw struct {
	Event
	nic     tcpip.NICID
	barrier chan struct{}
	fn      func()
}

// Dispatcher receives gVisor's NDP callbacks (it is the stack's
// ipv6.NDPDispatcher) and delivers them, in order, to one handler on a
// goroutine of its own: gVisor calls with its endpoint lock held and
// forbids calls back into the stack, so nothing is done in the callback
// but queueing.
//
// Locking: mu guards queue, closed, started, holders and watches; cond
// signals the delivery goroutine. The handler runs without mu. LOCK
// ORDERING: a dadWatch's mu (dad.go) before mu.
type Dispatcher struct {
	mu   sync.Mutex
	cond *sync.Cond
	// +checklocks:mu
	queue []raw
	// +checklocks:mu
	closed bool
	// +checklocks:mu
	started bool
	// holders are the link addresses of duplicates found by DAD, until
	// the address's own watcher takes them (dad.go).
	// +checklocks:mu
	holders map[holderKey]net.HardwareAddr
	// watches are the addresses added by AddTentative whose DAD runs.
	// +checklocks:mu
	watches map[holderKey]*dadWatch
	done    chan struct{}
}

var _ ipv6.NDPDispatcher = (*Dispatcher)(nil)

// NewDispatcher returns a Dispatcher that queues events until Start.
func NewDispatcher() *Dispatcher {
	d := &Dispatcher{done: make(chan struct{})}
	d.cond = sync.NewCond(&d.mu)
	return d
}

// Start delivers every event, queued or later, to handler until Close.
// st names the NICs. handler may take locks that are held around calls
// into gVisor: it never runs inside a gVisor callback. Start may be
// called once.
func (d *Dispatcher) Start(st *stack.Stack, handler func(Event)) {
	d.mu.Lock()
	if d.started || d.closed {
		d.mu.Unlock()
		return
	}
	d.started = true
	d.mu.Unlock()
	go d.run(st, handler)
}

// Close stops delivery and waits for the handler to return. Events not
// yet delivered are dropped.
func (d *Dispatcher) Close() {
	d.mu.Lock()
	started := d.started
	d.closed = true
	d.queue = nil
	d.cond.Broadcast()
	d.mu.Unlock()
	if started {
		<-d.done
	}
}

func (d *Dispatcher) run(st *stack.Stack, handler func(Event)) {
	defer close(d.done)
	for {
		d.mu.Lock()
		for len(d.queue) == 0 && !d.closed {
			d.cond.Wait()
		}
		if d.closed {
			d.mu.Unlock()
			return
		}
		batch := d.queue
		d.queue = nil
		d.mu.Unlock()

		nics := st.GVisor().NICInfo()
		for _, r := range batch {
			if r.barrier != nil {
				close(r.barrier)
				continue
			}
			if r.fn != nil {
				r.fn()
				continue
			}
			info, ok := nics[r.nic]
			if !ok {
				continue // the NIC went away; so did its addresses
			}
			ev := r.Event
			ev.NIC = info.Name
			if ev.Kind == AddrAdded {
				ev.Temporary = !isStableID(ev.Addr.Addr(), info.LinkAddress)
			}
			handler(ev)
		}
	}
}

// isStableID reports whether a's interface identifier is the modified
// EUI-64 of mac: the stable SLAAC address, not an RFC 4941 one.
func isStableID(a netip.Addr, mac tcpip.LinkAddress) bool {
	if !header.IsValidUnicastEthernetAddress(mac) {
		return false
	}
	var id [8]byte
	header.EthernetAdddressToModifiedEUI64IntoBuf(mac, id[:])
	b := a.As16()
	return bytes.Equal(b[8:], id[:])
}

// Sync waits until every event queued before the call has been handled
// (or the dispatcher is closed). It needs a started dispatcher. It lets a
// caller that made gVisor process packets know their events are applied,
// including when there were none.
func (d *Dispatcher) Sync() {
	b := make(chan struct{})
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.queue = append(d.queue, raw{barrier: b})
	d.cond.Signal()
	d.mu.Unlock()
	select {
	case <-b:
	case <-d.done:
	}
}

func (d *Dispatcher) push(nic tcpip.NICID, ev Event) {
	d.enqueue(raw{Event: ev, nic: nic})
}

func (d *Dispatcher) pushFunc(fn func()) {
	d.enqueue(raw{fn: fn})
}

func (d *Dispatcher) enqueue(r raw) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.queue = append(d.queue, r)
	d.cond.Signal()
}

func prefixOf(a tcpip.AddressWithPrefix) netip.Prefix {
	ad, _ := netip.AddrFromSlice(a.Address.AsSlice())
	return netip.PrefixFrom(ad, a.PrefixLen)
}

func addrOf(a tcpip.Address) netip.Addr {
	ad, _ := netip.AddrFromSlice(a.AsSlice())
	return ad
}

// OnAutoGenAddress implements ipv6.NDPDispatcher: a SLAAC address was
// added. The returned dispatcher reports it (gVisor calls it at once with
// the initial state: AddrAdded says whether DAD runs), then its DAD
// result, lifetime changes and removal.
func (d *Dispatcher) OnAutoGenAddress(nic tcpip.NICID, a tcpip.AddressWithPrefix) gstack.AddressDispatcher {
	return &addrWatch{d: d, nic: nic, addr: prefixOf(a)}
}

// addrWatch follows one SLAAC address. gVisor calls it with the
// endpoint lock held, serially for one address.
type addrWatch struct {
	d          *Dispatcher
	nic        tcpip.NICID
	addr       netip.Prefix
	seen       bool // OnChanged reported once (the initial state)
	deprecated bool
	tentative  bool
}

// OnChanged implements gstack.AddressDispatcher.
func (w *addrWatch) OnChanged(l gstack.AddressLifetimes, state gstack.AddressAssignmentState) {
	if !w.seen {
		w.seen, w.deprecated = true, l.Deprecated
		w.tentative = state == gstack.AddressTentative
		w.d.push(w.nic, Event{Kind: AddrAdded, Addr: w.addr, Deprecated: l.Deprecated, Tentative: w.tentative})
		return
	}
	if w.tentative && state == gstack.AddressAssigned {
		w.tentative = false
		w.d.push(w.nic, Event{Kind: AddrAssigned, Addr: w.addr})
	}
	if l.Deprecated == w.deprecated {
		return
	}
	w.deprecated = l.Deprecated
	kind := AddrPreferred
	if l.Deprecated {
		kind = AddrDeprecated
	}
	w.d.push(w.nic, Event{Kind: kind, Addr: w.addr})
}

// OnRemoved implements gstack.AddressDispatcher.
func (w *addrWatch) OnRemoved(reason gstack.AddressRemovalReason) {
	ev := Event{Kind: AddrRemoved, Addr: w.addr, Manual: reason == gstack.AddressRemovalManualAction}
	if reason == gstack.AddressRemovalDADFailed {
		ev.Duplicate = true
		ev.Holder = w.d.takeHolder(holderKey{nic: w.nic, addr: w.addr.Addr()})
	}
	w.d.push(w.nic, ev)
}

// OnAutoGenAddressDeprecated implements ipv6.NDPDispatcher; the address's
// own watcher reports it.
func (d *Dispatcher) OnAutoGenAddressDeprecated(tcpip.NICID, tcpip.AddressWithPrefix) {}

// OnAutoGenAddressInvalidated implements ipv6.NDPDispatcher; the
// address's own watcher reports the removal.
func (d *Dispatcher) OnAutoGenAddressInvalidated(tcpip.NICID, tcpip.AddressWithPrefix) {}

// OnOffLinkRouteUpdated implements ipv6.NDPDispatcher: a default route
// (::/0) names a router.
func (d *Dispatcher) OnOffLinkRouteUpdated(nic tcpip.NICID, dest tcpip.Subnet, router tcpip.Address, _ header.NDPRoutePreference) {
	if dest.Prefix() == 0 {
		d.push(nic, Event{Kind: RouterUp, Router: addrOf(router)})
	}
}

// OnOffLinkRouteInvalidated implements ipv6.NDPDispatcher.
func (d *Dispatcher) OnOffLinkRouteInvalidated(nic tcpip.NICID, dest tcpip.Subnet, router tcpip.Address) {
	if dest.Prefix() == 0 {
		d.push(nic, Event{Kind: RouterDown, Router: addrOf(router)})
	}
}

// OnOnLinkPrefixDiscovered implements ipv6.NDPDispatcher; the SLAAC
// unit's interface IRE covers the prefix.
func (d *Dispatcher) OnOnLinkPrefixDiscovered(tcpip.NICID, tcpip.Subnet) {}

// OnOnLinkPrefixInvalidated implements ipv6.NDPDispatcher.
func (d *Dispatcher) OnOnLinkPrefixInvalidated(tcpip.NICID, tcpip.Subnet) {}

// OnRecursiveDNSServerOption implements ipv6.NDPDispatcher (not used).
func (d *Dispatcher) OnRecursiveDNSServerOption(tcpip.NICID, []tcpip.Address, time.Duration) {}

// OnDNSSearchListOption implements ipv6.NDPDispatcher (not used).
func (d *Dispatcher) OnDNSSearchListOption(tcpip.NICID, []string, time.Duration) {}

// OnDHCPv6Configuration implements ipv6.NDPDispatcher (not used).
func (d *Dispatcher) OnDHCPv6Configuration(tcpip.NICID, ipv6.DHCPv6ConfigurationFromNDPRA) {}
