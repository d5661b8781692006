package arp

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

// TempLifetime is how long an administrative entry without Permanent
// lives. illumos keeps such entries under reachability checking;
// gVisor's static entries have none, so they age out instead.
const TempLifetime = 5 * time.Minute

// Entry is one ARP cache entry as the ARP requests see it.
type Entry struct {
	Addr netip.Addr
	HW   net.HardwareAddr // nil while unresolved
	// Static entries were set by an administrator (SIOCSARP); the others
	// were learned by the stack.
	Static    bool
	Permanent bool // never aged (ATF_PERM)
	Published bool // answered for others: proxy ARP (ATF_PUBL)
	Authority bool // ATF_AUTHORITY
}

// adminEntry is an Entry set by SIOCSARP, with its aging timer.
type adminEntry struct {
	Entry
	expiry Timer // nil for permanent entries
}

func (e *adminEntry) stopLocked() {
	if e.expiry != nil {
		e.expiry.Stop()
	}
}

func (i *Interface) nicID() (tcpip.NICID, error) {
	id, ok := i.st.NICID(i.nic)
	if !ok {
		return 0, fmt.Errorf("arp: no stack NIC %q", i.nic)
	}
	return id, nil
}

// Set creates or replaces an administrative entry. The stack uses it at
// once (as a static neighbour); a published entry is also answered for.
func (i *Interface) Set(e Entry) error {
	if !e.Addr.Is4() || len(e.HW) != header.EthernetAddressSize {
		return fmt.Errorf("arp: entry %s at %v is not IPv4 over Ethernet", e.Addr, e.HW)
	}
	id, err := i.nicID()
	if err != nil {
		return err
	}
	e.Static = true
	e.HW = append(net.HardwareAddr(nil), e.HW...)
	ae := &adminEntry{Entry: e}
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.closed {
		return fmt.Errorf("arp: %s is closed", i.nic)
	}
	if terr := i.st.GVisor().AddStaticNeighbor(id, header.IPv4ProtocolNumber, addrOf(e.Addr), tcpip.LinkAddress(e.HW)); terr != nil {
		return fmt.Errorf("arp: add %s: %s", e.Addr, terr)
	}
	if old := i.entries[e.Addr]; old != nil {
		old.stopLocked()
	}
	if !e.Permanent {
		ae.expiry = i.clock.AfterFunc(TempLifetime, func() { i.expire(ae) })
	}
	i.entries[e.Addr] = ae
	return nil
}

// expire removes a temporary entry whose time is up.
func (i *Interface) expire(ae *adminEntry) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.entries[ae.Addr] != ae {
		return
	}
	delete(i.entries, ae.Addr)
	if id, err := i.nicID(); err == nil {
		i.st.GVisor().RemoveNeighbor(id, header.IPv4ProtocolNumber, addrOf(ae.Addr))
	}
}

// Get returns the entry for addr: an administrative one, else what the
// stack learned (HW nil while resolution is incomplete).
func (i *Interface) Get(addr netip.Addr) (Entry, bool) {
	i.mu.Lock()
	ae := i.entries[addr]
	i.mu.Unlock()
	if ae != nil {
		e := ae.Entry
		e.HW = append(net.HardwareAddr(nil), e.HW...)
		return e, true
	}
	for _, e := range i.learned() {
		if e.Addr == addr {
			return e, true
		}
	}
	return Entry{}, false
}

// Delete removes the entry for addr, administrative or learned, and
// reports whether there was one.
func (i *Interface) Delete(addr netip.Addr) bool {
	id, err := i.nicID()
	if err != nil {
		return false
	}
	i.mu.Lock()
	ae := i.entries[addr]
	if ae != nil {
		ae.stopLocked()
		delete(i.entries, addr)
	}
	i.mu.Unlock()
	terr := i.st.GVisor().RemoveNeighbor(id, header.IPv4ProtocolNumber, addrOf(addr))
	return ae != nil || terr == nil
}

// Entries lists every entry, administrative and learned, by address.
func (i *Interface) Entries() []Entry {
	i.mu.Lock()
	var out []Entry
	for _, ae := range i.entries {
		out = append(out, ae.Entry)
	}
	i.mu.Unlock()
	for _, e := range i.learned() {
		if !slices.ContainsFunc(out, func(x Entry) bool { return x.Addr == e.Addr }) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b Entry) int { return a.Addr.Compare(b.Addr) })
	return out
}

// learned lists the stack's own (non-static) neighbour entries.
func (i *Interface) learned() []Entry {
	id, err := i.nicID()
	if err != nil {
		return nil
	}
	ns, terr := i.st.GVisor().Neighbors(id, header.IPv4ProtocolNumber)
	if terr != nil {
		return nil
	}
	var out []Entry
	for _, n := range ns {
		if n.State == gstack.Static {
			continue // ours, listed from i.entries
		}
		a, ok := netip.AddrFromSlice(n.Addr.AsSlice())
		if !ok || !a.Is4() {
			continue
		}
		e := Entry{Addr: a}
		if n.State != gstack.Incomplete && n.State != gstack.Unreachable && n.LinkAddr != "" {
			e.HW = net.HardwareAddr(n.LinkAddr)
		}
		out = append(out, e)
	}
	return out
}

func addrOf(a netip.Addr) tcpip.Address { return tcpip.AddrFromSlice(a.AsSlice()) }
