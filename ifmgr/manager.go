package ifmgr

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/tapstack/tapstack/arp"
	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/link"
	"github.com/tapstack/tapstack/ndp"
	"github.com/tapstack/tapstack/route"
	"github.com/tapstack/tapstack/stack"
)

// Links is where plumbing finds the device to open: the daemon's link
// registry.
type Links interface {
	Get(name string) (*link.Link, bool)
}

// Config configures a Manager.
type Config struct {
	Stack  *stack.Stack
	Routes *route.Table
	Links  Links
	Log    *slog.Logger // nil: discard
	// DAD turns on IPv4 duplicate address detection, announcements and
	// defence (spec §6) from the start: it sets _arp_no_defense to 0.
	// Off, addresses are ready at once until that tunable is set to 0.
	DAD bool
	// Clock drives DAD and ARP timers; nil is the system clock.
	Clock arp.Clock
	// NDP is the dispatcher given to the stack (stack.Options): its
	// router-advertisement and SLAAC events make ADDRCONF units
	// (slaac.go). Nil: IPv6 interfaces do no autoconfiguration. The
	// creator closes it.
	NDP *ndp.Dispatcher
}

// Manager is the interface layer of one IP stack.
//
// Locking: mu is the serialiser. Set-requests (and link notifications) hold
// it exclusively for their whole run, so no client ever sees or leaves a
// half-applied change; get-requests hold it shared. This is stricter than
// the illumos per-phyint ipsq, and observably the same. LOCK ORDERING:
// Manager.mu before route.Table.mu and link locks.
type Manager struct {
	stats  statsBook // MIBs of unplumbed ills (stats.go); under mu
	stack  *stack.Stack
	routes *route.Table
	links  Links
	log    *slog.Logger
	clock  arp.Clock // Config.Clock
	// nd is the IPv6 neighbour cache (ND requests, ndp.go); ndpd, when
	// set, feeds SLAAC events (slaac.go).
	nd   *ndp.Table
	ndpd *ndp.Dispatcher

	mu sync.RWMutex
	// +checklocks:mu
	byName map[string]*phyint
	// +checklocks:mu
	byIndex map[uint32]*phyint
	// types lists, per family, the interface types in order of first plumb;
	// each type's ills are kept sorted by PPA (spec §1.1).
	// +checklocks:mu
	types [2][]*illType
	// +checklocks:mu
	nextIndex uint32
	// +checklocks:mu
	addrsPerIf int
	// tun holds tunables set away from their default (props.go).
	// +checklocks:mu
	tun map[string]int64
	// forwarding is the global forwarding setting per family; new ills
	// inherit it as their ROUTER flag.
	// +checklocks:mu
	forwarding [2]bool
	// zones is the zone registry (zones.go).
	// +checklocks:mu
	zones zoneTable

	// pending collects the events of the running set-request; they are
	// delivered after mu is released, in order.
	// +checklocks:mu
	pending []Event

	evMu sync.Mutex // guards subs; held while delivering, so delivery is ordered
	subs []*func(Event)
}

type illType struct {
	name string
	ills []*ill // ascending PPA
}

// New returns a Manager with lo0 plumbed and up in both families
// (127.0.0.1/8, ::1/128).
func New(cfg Config) (*Manager, error) {
	m := &Manager{
		stack:      cfg.Stack,
		routes:     cfg.Routes,
		links:      cfg.Links,
		log:        cfg.Log,
		clock:      cfg.Clock,
		nd:         ndp.NewTable(cfg.Stack),
		ndpd:       cfg.NDP,
		byName:     make(map[string]*phyint),
		byIndex:    make(map[uint32]*phyint),
		nextIndex:  1,
		addrsPerIf: 256,
		tun:        map[string]int64{},
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.clock == nil {
		m.clock = arp.SystemClock()
	}
	if cfg.DAD {
		m.tun["_arp_no_defense"] = 0
	}
	if m.routes == nil {
		m.routes = route.New(cfg.Stack)
	}
	m.mu.Lock()
	defer func() {
		m.pending = nil // no one can have subscribed yet
		m.mu.Unlock()
	}()
	for _, v6 := range []bool{false, true} {
		if err := m.plumbLoopbackLocked(v6); err != nil {
			return nil, err
		}
		u := m.byName["lo0"].ills[famIndex(v6)].ipifs[0]
		if err := m.upLocked(u); err != nil {
			return nil, fmt.Errorf("bring up lo0: %w", err)
		}
	}
	if m.ndpd != nil {
		m.ndpd.Start(cfg.Stack, m.ndpEvent)
	}
	return m, nil
}

// Routes returns the IRE table the manager maintains.
func (m *Manager) Routes() *route.Table { return m.routes }

// illList returns every ill of one family in walk order: types in order of
// first plumb, PPA ascending within a type.
func (m *Manager) illListLocked(v6 bool) []*ill {
	var out []*ill
	for _, t := range m.types[famIndex(v6)] {
		out = append(out, t.ills...)
	}
	return out
}

// walkFamilies returns the ills of the requested family; AF_UNSPEC walks
// IPv4 then IPv6.
func (m *Manager) illsOfLocked(f ctl.Family) []*ill {
	switch f {
	case ctl.AF_INET:
		return m.illListLocked(false)
	case ctl.AF_INET6:
		return m.illListLocked(true)
	}
	return append(m.illListLocked(false), m.illListLocked(true)...)
}

// lookupIllLocked finds the ill called name in family v6.
func (m *Manager) lookupIllLocked(name string, v6 bool) *ill {
	p := m.byName[name]
	if p == nil {
		return nil
	}
	return p.ills[famIndex(v6)]
}

// lookupLocked resolves a logical name ("tap0", "tap0:3", "tap0:0") in the
// socket's family (spec §1.5, §2.0.3): split at the last ':'; a unit of two
// or more characters starting with '0' is not found.
func (m *Manager) lookupLocked(name string, fam ctl.Family) (*ipif, error) {
	name = truncName(name)
	illName, unit := name, 0
	if i := strings.LastIndexByte(name, ':'); i >= 0 {
		illName = name[:i]
		s := name[i+1:]
		n, ok := parseUnit(s)
		if !ok || (len(s) > 1 && s[0] == '0') {
			return nil, ctl.Errorf(ctl.ENXIO, "no interface named %q (bad logical unit %q)", name, s)
		}
		unit = n
	}
	il := m.lookupIllLocked(illName, fam == ctl.AF_INET6)
	if il == nil {
		return nil, ctl.Errorf(ctl.ENXIO, "no %s interface named %q", famWord(fam), illName)
	}
	u := il.ipifByID(unit)
	if u == nil {
		return nil, ctl.Errorf(ctl.ENXIO, "%s has no logical unit %d", illName, unit)
	}
	return u, nil
}

func famWord(f ctl.Family) string {
	if f == ctl.AF_INET6 {
		return "IPv6"
	}
	return "IPv4"
}

// truncName forces a name to LIFNAMSIZ-1 characters, as the kernel
// NUL-terminates it.
func truncName(s string) string {
	if len(s) > 31 {
		return s[:31]
	}
	return s
}

// truncIfName forces an ifreq name to IFNAMSIZ-1 characters.
func truncIfName(s string) string {
	if len(s) > 15 {
		return s[:15]
	}
	return s
}

func parseUnit(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// insertIllLocked enters il in the type list of its family, keeping PPA
// order, appending a new type at the tail.
func (m *Manager) insertIllLocked(il *ill) {
	fi := famIndex(il.v6)
	var t *illType
	for _, x := range m.types[fi] {
		if x.name == il.ifType {
			t = x
			break
		}
	}
	if t == nil {
		t = &illType{name: il.ifType}
		m.types[fi] = append(m.types[fi], t)
	}
	i, _ := slices.BinarySearchFunc(t.ills, il.ppa, func(x *ill, p uint32) int {
		switch {
		case x.ppa < p:
			return -1
		case x.ppa > p:
			return 1
		}
		return 0
	})
	t.ills = slices.Insert(t.ills, i, il)
}

// removeIllLocked takes il out of its type list; an emptied type is
// deleted, so a re-plumbed type goes to the tail (spec §1.6).
func (m *Manager) removeIllLocked(il *ill) {
	fi := famIndex(il.v6)
	for ti, t := range m.types[fi] {
		if t.name != il.ifType {
			continue
		}
		t.ills = slices.DeleteFunc(t.ills, func(x *ill) bool { return x == il })
		if len(t.ills) == 0 {
			m.types[fi] = slices.Delete(m.types[fi], ti, ti+1)
		}
		return
	}
}

// ppaUsedLocked reports whether PPA ppa of type typ is taken in a family.
func (m *Manager) ppaUsedLocked(typ string, ppa uint32, v6 bool) bool {
	for _, t := range m.types[famIndex(v6)] {
		if t.name != typ {
			continue
		}
		for _, il := range t.ills {
			if il.ppa == ppa {
				return true
			}
		}
	}
	return false
}

// allocIndexLocked hands out the next interface index; indexes are not
// reused until the counter wraps (spec §1.7).
func (m *Manager) allocIndexLocked() (uint32, error) {
	for range 1 << 16 {
		i := m.nextIndex
		m.nextIndex++
		if m.nextIndex == 0 {
			m.nextIndex = 1
		}
		if i != 0 && m.byIndex[i] == nil {
			return i, nil
		}
	}
	return 0, ctl.Errorf(ctl.ENOSPC, "no free interface index")
}

// Plumbed reports whether link linkName carries a plumbed interface (in
// either family); such a link must not be deleted.
func (m *Manager) Plumbed(linkName string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, p := range m.byName {
		if p.link != nil && p.link.Name() == linkName {
			return true
		}
	}
	return false
}
