package ndp

import (
	"fmt"

	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"

	"github.com/tapstack/tapstack/stack"
)

// Autoconf is the per-interface configuration in.ndpd keeps (ndpd.conf
// "if" lines): whether router advertisements configure addresses, and
// whether RFC 4941 temporary addresses are made next to the stable ones.
type Autoconf struct {
	// Stateless: handle router advertisements (only while the interface
	// is not a router: the ROUTER flag makes gVisor ignore them), solicit
	// routers when the interface starts, and configure an address from
	// every prefix with the autonomous flag.
	Stateless bool
	// Temporary: also make temporary addresses (only with Stateless).
	Temporary bool
}

// DefaultAutoconf is what a newly plumbed IPv6 interface gets, as in.ndpd
// does without a configuration file.
var DefaultAutoconf = Autoconf{Stateless: true}

// Configure applies c to NIC nic. Router solicitations are sent when the
// NIC is enabled, so configure before the first bind to have them.
func Configure(st *stack.Stack, nic string, c Autoconf) error {
	id, ok := st.NICID(nic)
	if !ok {
		return fmt.Errorf("no NIC %s", nic)
	}
	nep, terr := st.GVisor().GetNetworkEndpoint(id, ipv6.ProtocolNumber)
	if terr != nil {
		return fmt.Errorf("IPv6 endpoint of %s: %s", nic, terr)
	}
	ep, ok := nep.(ipv6.NDPEndpoint)
	if !ok {
		return fmt.Errorf("IPv6 endpoint of %s has no NDP", nic)
	}
	ep.SetNDPConfigurations(gvisorConfig(c))
	return nil
}

// gvisorConfig translates c into gVisor's NDP configuration.
func gvisorConfig(c Autoconf) ipv6.NDPConfigurations {
	g := ipv6.DefaultNDPConfigurations()
	if !c.Stateless {
		g.HandleRAs = ipv6.HandlingRAsDisabled
		g.MaxRtrSolicitations = 0
		g.AutoGenGlobalAddresses = false
		g.AutoGenTempGlobalAddresses = false
		return g
	}
	g.HandleRAs = ipv6.HandlingRAsEnabledWhenForwardingDisabled
	g.DiscoverDefaultRouters = true
	g.DiscoverOnLinkPrefixes = true
	g.AutoGenGlobalAddresses = true
	g.AutoGenTempGlobalAddresses = c.Temporary
	return g
}
