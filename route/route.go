// Package route is the IRE table: every route the interface layer and the
// administrator create (local, loopback, broadcast, interface, prefix, host,
// default), longest-prefix-match lookup, change events, and the projection
// of the table onto gVisor's forwarding table.
//
// Identical broadcast IREs, and identical IREs the interface layer makes
// (RTF_KERNEL), are shared: adding one again raises a share count and
// deleting drops it, so several logical interfaces of one ill can need the
// same broadcast address (spec §5.4). Any other identical add is EEXIST.
//
// route knows interfaces only by name; it does not own them.
package route

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/stack"
)

// Type is the IRE type.
type Type int

// IRE types (illumos names).
const (
	IRE_BROADCAST Type = iota + 1
	IRE_DEFAULT
	IRE_PREFIX
	IRE_HOST
	IRE_LOCAL
	IRE_LOOPBACK
	IRE_IF_RESOLVER
	IRE_IF_NORESOLVER
)

var typeNames = map[Type]string{
	IRE_BROADCAST: "BROADCAST", IRE_DEFAULT: "DEFAULT", IRE_PREFIX: "PREFIX",
	IRE_HOST: "HOST", IRE_LOCAL: "LOCAL", IRE_LOOPBACK: "LOOPBACK",
	IRE_IF_RESOLVER: "IF_RESOLVER", IRE_IF_NORESOLVER: "IF_NORESOLVER",
}

func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("Type(%d)", int(t))
}

// IsInterface reports whether t is an interface (on-link subnet) type.
func (t Type) IsInterface() bool { return t == IRE_IF_RESOLVER || t == IRE_IF_NORESOLVER }

// Flags are RTF_* route flags.
type Flags uint32

// Route flags (illumos values).
const (
	RTF_UP        Flags = 0x1
	RTF_GATEWAY   Flags = 0x2
	RTF_HOST      Flags = 0x4
	RTF_REJECT    Flags = 0x8
	RTF_STATIC    Flags = 0x800
	RTF_BLACKHOLE Flags = 0x1000
	RTF_PRIVATE   Flags = 0x2000
	RTF_SETSRC    Flags = 0x20000
	RTF_KERNEL    Flags = 0x80000
)

// IRE is one routing table entry. For LOCAL, LOOPBACK, BROADCAST and
// interface IREs Gateway is the owning unit's address (the source IP uses),
// as in illumos; only PREFIX, HOST and DEFAULT IREs forward to it.
type IRE struct {
	Type    Type
	Dest    netip.Prefix
	Gateway netip.Addr
	Ill     string // interface (ill) name; "" for an unbound gateway route
	Zone    string // "" is the global zone
	Flags   Flags
}

// key identifies an IRE for "identical" tests.
type key struct {
	typ  Type
	dest netip.Prefix
	gw   netip.Addr
	ill  string
	zone string
}

// key identifies e. Broadcast IREs are per (ill, zone, address): units of
// one ill share them whatever their own address (spec §5.4).
func (e *IRE) key() key {
	gw := e.Gateway
	if e.Type == IRE_BROADCAST {
		gw = netip.Addr{}
	}
	return key{e.Type, e.Dest.Masked(), gw, e.Ill, e.Zone}
}

type entry struct {
	IRE
	refs int    // share count (broadcast IREs); 1 otherwise
	next *entry // the next IRE of the same destination, in order of adding
}

// EventKind says what happened to an IRE.
type EventKind int

// Event kinds.
const (
	Added EventKind = iota + 1
	Deleted
)

// Event reports one change of the table.
type Event struct {
	Kind EventKind
	IRE  IRE
}

// Installer receives gVisor's forwarding table whenever it changes.
// *stack.Stack is one.
type Installer interface {
	SetRoutes([]stack.Route)
}

// Table is the IRE table.
//
// Locking: mu guards everything below it. Subscribers and the installer are
// called with mu held, so they must not call back into the Table.
type Table struct {
	install Installer

	mu      sync.RWMutex
	entries map[key]*entry
	// lpm indexes entries by family (0 IPv4, 1 IPv6) and destination for
	// longest-prefix match; each prefix holds the first of its IREs, in
	// order of adding, linked through entry.next.
	lpm   [2]*trie
	proj  projection // the table as gVisor sees it (sync.go)
	subs  []func(Event)
	batch int  // >0 while inside Batch: defer syncing
	dirty bool // a change happened during the batch
}

// New returns an empty table that keeps install (may be nil) in sync.
func New(install Installer) *Table {
	return &Table{
		install: install,
		entries: make(map[key]*entry),
		lpm:     [2]*trie{newTrie(false), newTrie(true)},
		proj:    newProjection(),
	}
}

// best returns the most specific type among the IREs of one destination,
// starting with first, that filter (nil: all) accepts; among equals the
// oldest.
func best(first *entry, filter func(*IRE) bool) *entry {
	var best *entry
	for ent := first; ent != nil; ent = ent.next {
		if filter != nil && !filter(&ent.IRE) {
			continue
		}
		if best == nil || rank(ent.Type) < rank(best.Type) {
			best = ent
		}
	}
	return best
}

func (t *Table) trieOf(a netip.Addr) *trie { return t.lpm[famIdx(a)] }

func famIdx(a netip.Addr) int {
	if a.Is4() {
		return 0
	}
	return 1
}

// Subscribe calls f for every later change, with the table locked.
func (t *Table) Subscribe(f func(Event)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.subs = append(t.subs, f)
}

// Batch runs f and syncs gVisor once at the end rather than after each
// change. f may call Add and Delete.
func (t *Table) Batch(f func()) {
	t.mu.Lock()
	if t.batch++; t.batch == 1 {
		for _, tr := range t.lpm {
			tr.holdFib()
		}
	}
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		if t.batch--; t.batch == 0 {
			for _, tr := range t.lpm {
				tr.releaseFib()
			}
			if t.dirty {
				t.syncLocked()
			}
		}
		t.mu.Unlock()
	}()
	f()
}

// Add installs e. An identical BROADCAST IRE is shared (its count rises);
// any other identical IRE is EEXIST.
func (t *Table) Add(e IRE) error {
	if !e.Dest.IsValid() {
		return ctl.Errorf(ctl.EINVAL, "route has no destination")
	}
	e.Dest = e.Dest.Masked()
	e.Flags |= RTF_UP
	t.mu.Lock()
	defer t.mu.Unlock()
	k := e.key()
	if old, ok := t.entries[k]; ok {
		// Identical IREs the interface layer makes are shared, as the
		// illumos identical-ref count does: broadcast IREs of units in one
		// subnet, the local IRE of an unnumbered point-to-point unit.
		if e.Type == IRE_BROADCAST || e.Flags&RTF_KERNEL != 0 && old.Flags&RTF_KERNEL != 0 {
			old.refs++
			return nil
		}
		return ctl.Errorf(ctl.EEXIST, "%s route to %s via %s already exists", e.Type, e.Dest, describeVia(&e))
	}
	ent := &entry{IRE: e, refs: 1}
	t.entries[k] = ent
	tr := t.trieOf(e.Dest.Addr())
	if first, ok := tr.get(e.Dest); ok {
		last := first
		for last.next != nil {
			last = last.next
		}
		last.next = ent
		tr.fibChanged(e.Dest) // the best IRE of e.Dest may now be ent
	} else {
		tr.set(ent)
	}
	t.proj.add(ent)
	t.changedLocked(Event{Kind: Added, IRE: e})
	return nil
}

func describeVia(e *IRE) string {
	if e.Ill != "" && e.Gateway.IsValid() {
		return e.Gateway.String() + " on " + e.Ill
	}
	if e.Ill != "" {
		return e.Ill
	}
	return e.Gateway.String()
}

// Delete removes the IRE identical to e (a shared broadcast IRE only when
// its last user deletes it). No such IRE is ESRCH.
func (t *Table) Delete(e IRE) error {
	e.Dest = e.Dest.Masked()
	t.mu.Lock()
	defer t.mu.Unlock()
	k := e.key()
	ent, ok := t.entries[k]
	if !ok {
		return ctl.Errorf(ctl.ESRCH, "no %s route to %s via %s", e.Type, e.Dest, describeVia(&e))
	}
	ent.refs--
	if ent.refs > 0 {
		return nil
	}
	t.removeLocked(ent)
	return nil
}

func (t *Table) removeLocked(ent *entry) {
	delete(t.entries, ent.key())
	tr := t.trieOf(ent.Dest.Addr())
	first, _ := tr.get(ent.Dest)
	switch {
	case first == ent && ent.next == nil:
		tr.remove(ent.Dest)
	case first == ent:
		tr.set(ent.next)
	default:
		prev := first
		for prev.next != ent {
			prev = prev.next
		}
		prev.next = ent.next
		tr.fibChanged(ent.Dest)
	}
	ent.next = nil
	t.proj.remove(ent)
	t.changedLocked(Event{Kind: Deleted, IRE: ent.IRE})
}

// DeleteMatching removes every IRE for which match is true, whatever its
// share count, and returns how many were removed.
func (t *Table) DeleteMatching(match func(IRE) bool) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	var doomed []*entry
	for _, ent := range t.entries {
		if match(ent.IRE) {
			doomed = append(doomed, ent)
		}
	}
	for _, ent := range doomed {
		t.removeLocked(ent)
	}
	return len(doomed)
}

func (t *Table) changedLocked(ev Event) {
	for _, f := range t.subs {
		f(ev)
	}
	if !projects(ev.IRE.Type) {
		return
	}
	if t.batch > 0 {
		t.dirty = true
		return
	}
	t.syncLocked()
}

// Has reports whether an IRE identical to e exists.
func (t *Table) Has(e IRE) bool {
	e.Dest = e.Dest.Masked()
	t.mu.RLock()
	defer t.mu.RUnlock()
	_, ok := t.entries[e.key()]
	return ok
}

// Refs returns the share count of the IRE identical to e (0 if absent).
func (t *Table) Refs(e IRE) int {
	e.Dest = e.Dest.Masked()
	t.mu.RLock()
	defer t.mu.RUnlock()
	if ent, ok := t.entries[e.key()]; ok {
		return ent.refs
	}
	return 0
}

// Lookup returns the longest-prefix match for dst among the IREs accepted
// by filter (nil accepts all). Among entries with the same prefix the most
// specific type wins (local before interface before gateway routes).
func (t *Table) Lookup(dst netip.Addr, filter func(*IRE) bool) (e IRE, ok bool) {
	if filter != nil || !dst.IsValid() {
		ok = t.lookupFiltered(dst, filter, &e)
		return e, ok
	}
	// The hot path: the fib answers when it is up to date. The IRE is
	// written straight into the result (no copy through a pointer or a
	// helper's result), and no caller code runs under the lock, so no
	// defer is needed.
	k := u128Of(dst)
	tr := t.trieOf(dst)
	t.mu.RLock()
	if f := tr.fib; f != nil && len(tr.fibPending) == 0 {
		if ans := f.find(k); ans.ok() {
			at := &f.attrs[ans.attr()]
			e = IRE{Type: at.Type, Dest: prefixOf(dst, k, ans.bits(), f.v6), Gateway: at.Gateway, Ill: at.Ill, Zone: at.Zone, Flags: at.Flags}
			ok = true
		}
	} else if first, found := tr.lookup(dst, nil); found {
		e, ok = best(first, nil).IRE, true
	}
	t.mu.RUnlock()
	return e, ok
}

// lookupFiltered is Lookup with a filter, or of an invalid address: it
// stores the match in out. The filter is caller code, so the lock is
// released by a defer.
func (t *Table) lookupFiltered(dst netip.Addr, filter func(*IRE) bool, out *IRE) bool {
	if !dst.IsValid() {
		return false
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	var found *entry
	t.trieOf(dst).lookup(dst, func(first *entry) bool {
		found = best(first, filter)
		return found != nil
	})
	if found == nil {
		return false
	}
	*out = found.IRE
	return true
}

func rank(t Type) int {
	switch t {
	case IRE_LOCAL, IRE_LOOPBACK:
		return 0
	case IRE_BROADCAST:
		return 1
	case IRE_IF_RESOLVER, IRE_IF_NORESOLVER:
		return 2
	}
	return 3
}

// Entry is an IRE with its share count, as All returns it.
type Entry struct {
	IRE
	Refs int
}

// All returns every IRE, sorted by family, then destination, then type.
func (t *Table) All() []Entry {
	t.mu.RLock()
	out := make([]Entry, 0, len(t.entries))
	for _, ent := range t.entries {
		out = append(out, Entry{IRE: ent.IRE, Refs: ent.refs})
	}
	t.mu.RUnlock()
	slices.SortFunc(out, func(a, b Entry) int {
		if c := compareDest(a.Dest, b.Dest); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Type, b.Type); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Ill, b.Ill); c != 0 {
			return c
		}
		return a.Gateway.Compare(b.Gateway)
	})
	return out
}

// compareDest orders destinations by family, address, then length: the
// listing order of All and of the routes handed to gVisor.
func compareDest(a, b netip.Prefix) int {
	if c := cmp.Compare(famIdx(a.Addr()), famIdx(b.Addr())); c != 0 {
		return c
	}
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(a.Bits(), b.Bits())
}

// NetstatFlags returns the netstat-style flag letters of e: U up, G
// gateway, H host, B broadcast, L local, S static.
func NetstatFlags(e IRE) string {
	s := ""
	if e.Flags&RTF_UP != 0 {
		s += "U"
	}
	if e.Flags&RTF_GATEWAY != 0 {
		s += "G"
	}
	if e.Dest.Bits() == e.Dest.Addr().BitLen() && e.Type != IRE_BROADCAST {
		s += "H"
	}
	switch e.Type {
	case IRE_BROADCAST:
		s += "B"
	case IRE_LOCAL:
		s += "L"
	}
	if e.Flags&RTF_STATIC != 0 {
		s += "S"
	}
	return s
}
