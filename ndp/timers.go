package ndp

import (
	"fmt"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"

	"github.com/tapstack/tapstack/stack"
)

// Timers are the neighbour unreachability detection times of one IPv6
// interface (SIOCSLIFLNKINFO's lir_reachtime and lir_reachretrans): the
// base reachable time, randomised per entry as RFC 4861 §6.3.2 says, and
// the interval between solicitations.
type Timers struct {
	Reachable  time.Duration
	Retransmit time.Duration
}

// SetTimers makes gVisor's NUD on NIC nic use t; a zero field keeps the
// current value. gVisor does not learn these from router advertisements,
// so what is set here stays in effect.
func SetTimers(st *stack.Stack, nic string, t Timers) error {
	id, ok := st.NICID(nic)
	if !ok {
		return fmt.Errorf("no NIC %s", nic)
	}
	g := st.GVisor()
	c, terr := g.NUDConfigurations(id, ipv6.ProtocolNumber)
	if terr != nil {
		return fmt.Errorf("NUD configuration of %s: %s", nic, terr)
	}
	if t.Reachable != 0 {
		c.BaseReachableTime = t.Reachable
	}
	if t.Retransmit != 0 {
		c.RetransmitTimer = t.Retransmit
	}
	if terr := g.SetNUDConfigurations(id, ipv6.ProtocolNumber, c); terr != nil {
		return fmt.Errorf("set NUD configuration of %s: %s", nic, terr)
	}
	return nil
}

// TimersOf returns the times gVisor's NUD on NIC nic uses.
func TimersOf(st *stack.Stack, nic string) (Timers, error) {
	id, ok := st.NICID(nic)
	if !ok {
		return Timers{}, fmt.Errorf("no NIC %s", nic)
	}
	c, terr := st.GVisor().NUDConfigurations(id, ipv6.ProtocolNumber)
	if terr != nil {
		return Timers{}, fmt.Errorf("NUD configuration of %s: %s", nic, terr)
	}
	return Timers{Reachable: c.BaseReachableTime, Retransmit: c.RetransmitTimer}, nil
}
