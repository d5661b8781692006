// Package ndp is tapstack's IPv6 neighbour discovery side: the neighbour
// cache requests (SIOCLIFGETND/SETND/DELND), the per-interface
// autoconfiguration settings (what illumos keeps in in.ndpd), and the
// events of gVisor's router-advertisement processing and SLAAC, delivered
// upward in order.
//
// gVisor does the protocol work: neighbour solicitation and NUD, router
// advertisements, SLAAC and RFC 4941 temporary addresses, the router bit
// of its advertisements. ndp adds what gVisor does not keep: the flags of
// entries the administrator made (router, anycast, temporary) and the
// routers learned from advertisements. It never imports ifmgr: ifmgr
// consumes its events and owns the interface objects.
package ndp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/stack"
)

// Errors of the neighbour table.
var (
	// ErrNoEntry: the cache has no entry for the address.
	ErrNoEntry = errors.New("no neighbour entry")
	// ErrUnresolved: the entry exists but has no link address yet.
	ErrUnresolved = errors.New("neighbour entry not resolved")
)

// Entry is one neighbour cache entry as the ND requests see it.
type Entry struct {
	Addr    netip.Addr
	MAC     net.HardwareAddr // nil while unresolved
	State   int              // ctl.ND_*
	Static  bool             // never expires (not "temp")
	Router  bool
	Anycast bool
}

// Flags are the NDF_* settings of an administrator's entry.
type Flags struct {
	Static, Router, Anycast bool
}

type entryKey struct {
	nic  string
	addr netip.Addr
}

// Table is the IPv6 neighbour cache of one stack: gVisor's, plus the
// flags it lacks.
//
// Locking: mu guards admin and routers; it is never held while calling
// into gVisor, so the table may be used from gVisor callbacks' consumers
// and from ifmgr (which holds its own lock first: LOCK ORDERING
// ifmgr.Manager.mu before Table.mu).
type Table struct {
	st *stack.Stack

	mu sync.Mutex
	// admin holds the flags of entries made by Set.
	// +checklocks:mu
	admin map[entryKey]Flags
	// routers are the addresses router advertisements came from.
	// +checklocks:mu
	routers map[entryKey]bool
}

// NewTable returns the neighbour table of st.
func NewTable(st *stack.Stack) *Table {
	return &Table{st: st, admin: map[entryKey]Flags{}, routers: map[entryKey]bool{}}
}

func (t *Table) nicID(nic string) (tcpip.NICID, error) {
	id, ok := t.st.NICID(nic)
	if !ok {
		return 0, fmt.Errorf("no NIC %s", nic)
	}
	return id, nil
}

func tcpipAddr(a netip.Addr) tcpip.Address { return tcpip.AddrFrom16(a.As16()) }

// ndState maps gVisor's NUD state to the illumos ND_* value.
func ndState(s gstack.NeighborState) int {
	switch s {
	case gstack.Incomplete:
		return ctl.ND_INCOMPLETE
	case gstack.Reachable, gstack.Static:
		return ctl.ND_REACHABLE
	case gstack.Stale:
		return ctl.ND_STALE
	case gstack.Delay:
		return ctl.ND_DELAY
	case gstack.Probe:
		return ctl.ND_PROBE
	case gstack.Unreachable:
		return ctl.ND_UNREACHABLE
	}
	return ctl.ND_INITIAL
}

// resolved reports whether a state carries a usable link address
// (SIOCLIFGETND answers ESRCH otherwise).
func resolved(state int) bool {
	switch state {
	case ctl.ND_REACHABLE, ctl.ND_STALE, ctl.ND_DELAY, ctl.ND_PROBE:
		return true
	}
	return false
}

// List returns the neighbour entries of NIC nic, in gVisor's order.
func (t *Table) List(nic string) ([]Entry, error) {
	id, err := t.nicID(nic)
	if err != nil {
		return nil, err
	}
	ns, terr := t.st.GVisor().Neighbors(id, ipv6.ProtocolNumber)
	if terr != nil {
		return nil, fmt.Errorf("neighbours of %s: %s", nic, terr)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Entry, 0, len(ns))
	for _, n := range ns {
		a, ok := netip.AddrFromSlice(n.Addr.AsSlice())
		if !ok {
			continue
		}
		e := Entry{Addr: a, State: ndState(n.State), Static: n.State == gstack.Static}
		if len(n.LinkAddr) > 0 && resolved(e.State) {
			e.MAC = net.HardwareAddr([]byte(n.LinkAddr))
		}
		k := entryKey{nic, a}
		if f, ok := t.admin[k]; ok {
			e.Static, e.Router, e.Anycast = f.Static, f.Router, f.Anycast
		}
		if t.routers[k] {
			e.Router = true
		}
		out = append(out, e)
	}
	return out, nil
}

// Lookup returns the entry for a on nic: ErrNoEntry if there is none,
// ErrUnresolved if it has no link address yet.
func (t *Table) Lookup(nic string, a netip.Addr) (Entry, error) {
	es, err := t.List(nic)
	if err != nil {
		return Entry{}, err
	}
	for _, e := range es {
		if e.Addr != a {
			continue
		}
		if e.MAC == nil {
			return e, ErrUnresolved
		}
		return e, nil
	}
	return Entry{}, ErrNoEntry
}

// Set creates or replaces the entry for a on nic with link address mac.
// gVisor holds it as a static entry (used for traffic at once, never
// probed); f says how it is reported. Without f.Static it is still not
// aged: gVisor cannot hold an unconfirmed entry it did not learn.
func (t *Table) Set(nic string, a netip.Addr, mac net.HardwareAddr, f Flags) error {
	id, err := t.nicID(nic)
	if err != nil {
		return err
	}
	if terr := t.st.GVisor().AddStaticNeighbor(id, ipv6.ProtocolNumber, tcpipAddr(a), tcpip.LinkAddress(mac)); terr != nil {
		return fmt.Errorf("add neighbour %s on %s: %s", a, nic, terr)
	}
	t.mu.Lock()
	t.admin[entryKey{nic, a}] = f
	t.mu.Unlock()
	return nil
}

// Delete removes the entry for a on nic; ErrNoEntry if there is none.
func (t *Table) Delete(nic string, a netip.Addr) error {
	id, err := t.nicID(nic)
	if err != nil {
		return err
	}
	terr := t.st.GVisor().RemoveNeighbor(id, ipv6.ProtocolNumber, tcpipAddr(a))
	t.mu.Lock()
	delete(t.admin, entryKey{nic, a})
	t.mu.Unlock()
	if terr != nil {
		if _, ok := terr.(*tcpip.ErrBadAddress); ok {
			return ErrNoEntry
		}
		return fmt.Errorf("remove neighbour %s on %s: %s", a, nic, terr)
	}
	return nil
}

// NoteRouter records (on) or forgets that router advertisements for nic
// come from a, so its entry reports the router flag.
func (t *Table) NoteRouter(nic string, a netip.Addr, on bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if on {
		t.routers[entryKey{nic, a}] = true
	} else {
		delete(t.routers, entryKey{nic, a})
	}
}

// Router is a default router learned from advertisements on NIC.
type Router struct {
	NIC  string
	Addr netip.Addr
}

// Routers returns the default routers currently learned, in no order.
func (t *Table) Routers() []Router {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Router, 0, len(t.routers))
	for k := range t.routers {
		out = append(out, Router{NIC: k.nic, Addr: k.addr})
	}
	return out
}

// Forget drops what the table knows about nic (it was removed; gVisor
// dropped its entries with it).
func (t *Table) Forget(nic string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k := range t.admin {
		if k.nic == nic {
			delete(t.admin, k)
		}
	}
	for k := range t.routers {
		if k.nic == nic {
			delete(t.routers, k)
		}
	}
}
