package ifmgr

import (
	"net/netip"

	"github.com/tapstack/tapstack/ctl"
)

// EventKind names what the illumos routing socket (or NE_ hook) would
// carry for a change of the interface layer (spec §14.3).
type EventKind string

// Event kinds.
const (
	RTM_IFINFO   EventKind = "RTM_IFINFO"   // interface flags or state changed
	RTM_ADD      EventKind = "RTM_ADD"      // a unit became usable
	RTM_DELETE   EventKind = "RTM_DELETE"   // a unit went down
	RTM_CHGADDR  EventKind = "RTM_CHGADDR"  // a unit's address was set
	RTM_FREEADDR EventKind = "RTM_FREEADDR" // a unit was removed
	NE_PLUMB     EventKind = "NE_PLUMB"     // an interface was plumbed
	NE_UNPLUMB   EventKind = "NE_UNPLUMB"   // an interface was unplumbed
	RTM_OLDADD   EventKind = "RTM_OLDADD"   // SIOCADDRT added a route
	RTM_OLDDEL   EventKind = "RTM_OLDDEL"   // SIOCDELRT deleted a route
	// DAD_DUPLICATE: another host holds a unit's address (HWAddr); the
	// unit is DUPLICATE and down.
	DAD_DUPLICATE EventKind = "DAD_DUPLICATE"
)

// Event is one interface-layer notification.
type Event struct {
	Kind  EventKind  `json:"kind"`
	Name  string     `json:"name"` // logical interface
	Index uint32     `json:"index"`
	Flags ctl.Flags  `json:"flags"`
	Addr  netip.Addr `json:"addr,omitzero"`
	// HWAddr is the conflicting host's hardware address (DAD_DUPLICATE).
	HWAddr string `json:"hwaddr,omitempty"`
}

// Subscribe calls f for every later event, in order, outside the
// manager's lock, until cancel is called. f must not block and must not
// issue set-requests.
func (m *Manager) Subscribe(f func(Event)) (cancel func()) {
	m.evMu.Lock()
	defer m.evMu.Unlock()
	p := &f
	m.subs = append(m.subs, p)
	return func() {
		m.evMu.Lock()
		defer m.evMu.Unlock()
		for i, x := range m.subs {
			if x == p {
				m.subs = append(m.subs[:i], m.subs[i+1:]...)
				return
			}
		}
	}
}

// emitLocked queues an event about unit u; mu must be held exclusively.
func (m *Manager) emitLocked(kind EventKind, u *ipif) {
	m.pending = append(m.pending, m.eventOf(kind, u))
}

// eventOf describes unit u as it is now.
func (m *Manager) eventOf(kind EventKind, u *ipif) Event {
	return Event{Kind: kind, Name: u.name(), Index: u.ill.phy.index, Flags: u.allFlags(), Addr: u.addr}
}

// unlockAndDeliver releases mu and delivers the queued events.
func (m *Manager) unlockAndDeliver() {
	evs := m.pending
	m.pending = nil
	m.evMu.Lock()
	m.mu.Unlock()
	defer m.evMu.Unlock()
	for _, ev := range evs {
		for _, f := range m.subs {
			(*f)(ev)
		}
	}
}
