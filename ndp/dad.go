package ndp

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/tapstack/tapstack/stack"
)

// IPv6 duplicate address detection (RFC 4862 §5.4) is gVisor's: an
// address added while the NIC's DAD transmit count is non-zero is
// tentative (not a source, not answered for) while gVisor sends its
// neighbour solicitations from ::; an advertisement for it, or another
// node's solicitation from ::, makes gVisor remove it. This file sets the
// per-NIC DAD parameters and reports each address's outcome, so that
// ifmgr can drive its own DAD states from it.

// DADConfig is the DAD of one NIC: Transmits solicitations Interval
// apart; zero Transmits means addresses are assigned at once.
type DADConfig struct {
	Transmits int
	Interval  time.Duration
}

// SetDAD makes the IPv6 addresses added to NIC nic from now on (static
// and gVisor's SLAAC ones) go through DAD with c. Addresses already
// tentative keep their transmit count but take the new interval.
func SetDAD(st *stack.Stack, nic string, c DADConfig) error {
	d, err := detector(st, nic)
	if err != nil {
		return err
	}
	d.SetDADConfigurations(gstack.DADConfigurations{
		DupAddrDetectTransmits: uint8(min(max(c.Transmits, 0), 255)),
		RetransmitTimer:        c.Interval,
	})
	return nil
}

func detector(st *stack.Stack, nic string) (gstack.DuplicateAddressDetector, error) {
	id, ok := st.NICID(nic)
	if !ok {
		return nil, fmt.Errorf("no NIC %s", nic)
	}
	ep, terr := st.GVisor().GetNetworkEndpoint(id, ipv6.ProtocolNumber)
	if terr != nil {
		return nil, fmt.Errorf("IPv6 endpoint of %s: %s", nic, terr)
	}
	d, ok := ep.(gstack.DuplicateAddressDetector)
	if !ok {
		return nil, fmt.Errorf("IPv6 endpoint of %s does no DAD", nic)
	}
	return d, nil
}

// DADResult is how DAD of one address ended.
type DADResult struct {
	// Duplicate: another node has the address, or was probing for it at
	// the same time; gVisor has removed it.
	Duplicate bool
	// Holder is the link address the other node advertised for it; empty
	// when the conflict was another node's probe (it holds nothing yet).
	Holder net.HardwareAddr
	// Err: a solicitation could not be sent (the link refuses frames while
	// it is down). DAD stopped and gVisor leaves the address tentative;
	// the caller decides what to make of it.
	Err error
}

// AddTentative adds p to NIC nic with props, as SetDAD configured it, and
// calls done once, on the dispatcher's goroutine (never inside gVisor),
// when the address's DAD ends, unless stop is called first. With DAD off
// on the NIC it reports success at once. The dispatcher must be the
// stack's (stack.Options.NDPDispatcher) and started. stop does not
// remove the address; the caller removes it as any other.
func (d *Dispatcher) AddTentative(st *stack.Stack, nic string, p netip.Prefix, props stack.AddressProps, done func(DADResult)) (stop func(), err error) {
	id, ok := st.NICID(nic)
	if !ok {
		return nil, fmt.Errorf("no NIC %s", nic)
	}
	w := &dadWatch{d: d, key: holderKey{nic: id, addr: p.Addr()}, done: done}
	props.Dispatcher = w
	d.mu.Lock()
	if d.watches == nil {
		d.watches = map[holderKey]*dadWatch{}
	}
	d.watches[w.key] = w
	d.mu.Unlock()
	if err := st.AddAddressWithProps(nic, p, props); err != nil {
		w.stop()
		return nil, err
	}
	return w.stop, nil
}

// holderKey names one address of one NIC, for the holder that gVisor
// reports just before it removes a duplicate.
type holderKey struct {
	nic  tcpip.NICID
	addr netip.Addr
}

// dadWatch follows one address added by AddTentative. gVisor calls it
// with the NIC's IPv6 endpoint lock held; it only queues.
//
// Locking: mu guards ended (stop may race with gVisor's calls).
type dadWatch struct {
	d   *Dispatcher
	key holderKey

	mu sync.Mutex
	// +checklocks:mu
	done func(DADResult) // nil once stopped
	// +checklocks:mu
	ended bool
}

var _ gstack.AddressDispatcher = (*dadWatch)(nil)

// OnChanged implements gstack.AddressDispatcher: assigned means DAD
// passed (or was off).
func (w *dadWatch) OnChanged(_ gstack.AddressLifetimes, state gstack.AddressAssignmentState) {
	if state == gstack.AddressAssigned {
		w.finish(DADResult{})
	}
}

// OnRemoved implements gstack.AddressDispatcher: removal by DAD is a
// duplicate; other removals are the owner's own doing.
func (w *dadWatch) OnRemoved(reason gstack.AddressRemovalReason) {
	if reason != gstack.AddressRemovalDADFailed {
		w.stop()
		return
	}
	w.finish(DADResult{Duplicate: true, Holder: w.d.takeHolder(w.key)})
}

func (w *dadWatch) finish(r DADResult) {
	w.d.forget(w)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ended {
		return
	}
	w.ended = true
	w.d.pushFunc(func() {
		w.mu.Lock()
		done := w.done
		w.mu.Unlock()
		if done != nil {
			done(r)
		}
	})
}

// stop makes later results, and one queued but not yet delivered, no-ops.
func (w *dadWatch) stop() {
	w.d.forget(w)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ended = true
	w.done = nil
}

// OnDuplicateAddressDetectionResult implements ipv6.NDPDispatcher. gVisor
// calls it, then removes a duplicate address (and tells that address's
// dispatcher) under the same endpoint lock: the holder is kept for that
// dispatcher to take. An error is reported to AddTentative's caller
// here, as nothing else follows it.
func (d *Dispatcher) OnDuplicateAddressDetectionResult(nic tcpip.NICID, a tcpip.Address, r gstack.DADResult) {
	k := holderKey{nic: nic, addr: addrOf(a)}
	switch r := r.(type) {
	case *gstack.DADDupAddrDetected:
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.holders == nil {
			d.holders = map[holderKey]net.HardwareAddr{}
		}
		d.holders[k] = net.HardwareAddr(r.HolderLinkAddress)
	case *gstack.DADError:
		d.mu.Lock()
		w := d.watches[k]
		d.mu.Unlock()
		if w != nil {
			w.finish(DADResult{Err: fmt.Errorf("DAD of %s: %s", k.addr, r.Err)})
		}
	}
}

// forget drops w from the watches of running AddTentative calls.
func (d *Dispatcher) forget(w *dadWatch) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.watches[w.key] == w {
		delete(d.watches, w.key)
	}
}

// takeHolder returns and forgets the holder gVisor reported for k.
func (d *Dispatcher) takeHolder(k holderKey) net.HardwareAddr {
	d.mu.Lock()
	defer d.mu.Unlock()
	h := d.holders[k]
	delete(d.holders, k)
	return h
}
