package ctl

import "net/netip"

// Event is one interface-layer notification as the "events" stream sends
// it: what illumos puts on the routing socket (RTM_IFINFO, RTM_ADD,
// RTM_DELETE, RTM_CHGADDR, RTM_FREEADDR, RTM_OLDADD, RTM_OLDDEL) and the NE_
// hooks (NE_PLUMB, NE_UNPLUMB).
type Event struct {
	Kind  string     `json:"kind"`
	Name  string     `json:"name"` // logical interface
	Index uint32     `json:"index"`
	Flags Flags      `json:"flags"`
	Addr  netip.Addr `json:"addr,omitzero"`
	// Dropped counts events lost before this one because the client read
	// too slowly.
	Dropped uint64 `json:"dropped,omitempty"`
}

// Events is the argument of "events".
type Events struct {
	Count int `json:"count,omitempty"` // stop after this many; 0: until the client hangs up
}
