// Package ifmgr is tapstack's IP interface layer, modelled on illumos
// ip_if.c: physical interfaces (phyint), one IP instance per phyint and
// family (ill), logical interfaces (ipif, "tap0:3"), and the request table
// of if_tcp(7P) through which everything is done.
//
// Every request goes through Manager.Do; nothing else changes ifmgr state.
// Requests are validated in the order the spec gives, fail with the errno
// it names, and change nothing when they fail.
package ifmgr

import (
	"net"
	"net/netip"

	"github.com/tapstack/tapstack/arp"
	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/link"
	"github.com/tapstack/tapstack/ndp"
	"github.com/tapstack/tapstack/route"
)

// Flag groupings by level (spec §3.1): where a flag is stored decides
// whether setting it through one unit shows on its siblings.
const (
	phyintFlags = ctl.IFF_LOOPBACK | ctl.IFF_RUNNING | ctl.IFF_PROMISC |
		ctl.IFF_ALLMULTI | ctl.IFF_INTELLIGENT | ctl.IFF_MULTI_BCAST |
		ctl.IFF_FAILED | ctl.IFF_STANDBY | ctl.IFF_INACTIVE | ctl.IFF_OFFLINE |
		ctl.IFF_VIRTUAL | ctl.IFF_IPMP
	illFlags = ctl.IFF_DEBUG | ctl.IFF_NOTRAILERS | ctl.IFF_NOARP |
		ctl.IFF_MULTICAST | ctl.IFF_ROUTER | ctl.IFF_NONUD | ctl.IFF_NORTEXCH |
		ctl.IFF_IPV4 | ctl.IFF_IPV6 | ctl.IFF_XRESOLV | ctl.IFF_COS_ENABLED |
		ctl.IFF_FIXEDMTU | ctl.IFF_VRRP | ctl.IFF_NOACCEPT | ctl.IFF_NOLINKLOCAL
	ipifFlags = ctl.IFF_UP | ctl.IFF_BROADCAST | ctl.IFF_POINTOPOINT |
		ctl.IFF_UNNUMBERED | ctl.IFF_DHCPRUNNING | ctl.IFF_PRIVATE |
		ctl.IFF_NOXMIT | ctl.IFF_NOLOCAL | ctl.IFF_DEPRECATED |
		ctl.IFF_ADDRCONF | ctl.IFF_ANYCAST | ctl.IFF_NOFAILOVER |
		ctl.IFF_PREFERRED | ctl.IFF_TEMPORARY | ctl.IFF_DUPLICATE

	// cantChange bits are silently ignored by SIOCSLIFFLAGS (§3.2).
	cantChange = ctl.IFF_BROADCAST | ctl.IFF_POINTOPOINT | ctl.IFF_RUNNING |
		ctl.IFF_PROMISC | ctl.IFF_MULTICAST | ctl.IFF_MULTI_BCAST |
		ctl.IFF_UNNUMBERED | ctl.IFF_IPV4 | ctl.IFF_IPV6 | ctl.IFF_IPMP |
		ctl.IFF_FIXEDMTU | ctl.IFF_VIRTUAL | ctl.IFF_LOOPBACK |
		ctl.IFF_ALLMULTI | ctl.IFF_DUPLICATE | ctl.IFF_COS_ENABLED |
		ctl.IFF_VRRP | ctl.IFF_NOLINKLOCAL

	// downUpFlags force the unit down and back up when they change (§3.3 step 19).
	downUpFlags = ctl.IFF_UP | ctl.IFF_DEPRECATED | ctl.IFF_NOXMIT |
		ctl.IFF_NOLOCAL | ctl.IFF_NOARP | ctl.IFF_NONUD | ctl.IFF_PRIVATE |
		ctl.IFF_ANYCAST | ctl.IFF_PREFERRED | ctl.IFF_NOFAILOVER
)

// Neighbour timer defaults (spec §1.3, Appendix A). arpRetransTimer is
// illumos' ARP_RETRANS_TIMER.
const (
	ndReachableTime = 30000 // ms
	ndRetransTimer  = 1000  // ms
	arpRetransTimer = 500   // ms
)

// MTU limits (spec §1.9, §7.1).
const (
	minMTUv4      = 68
	minMTUv6      = 1280
	loopbackMTUv4 = 8192 + 20 + 20
	loopbackMTUv6 = 8192 + 40 + 20
)

// phyint is one physical interface (one link), shared by its IPv4 and IPv6
// ills: the interface index and the physical-level flags live here.
type phyint struct {
	name  string
	index uint32
	flags ctl.Flags // phyintFlags bits only
	ills  [2]*ill   // [0] IPv4, [1] IPv6
	link  *link.Link
	// loopback phyints have no link; the stack gives them a loopback NIC.
	loopback bool
	nicUp    bool // the stack NIC is enabled
	// group is the IPMP group the phyint belongs to ("" if none).
	group string
}

// ill is one IP instance (family) on a phyint.
type ill struct {
	phy     *phyint
	stats   *illStats // MIB baseline since plumb (stats.go); nil for lo0 before it is booked
	v6      bool
	name    string // = phy.name
	ifType  string // the name without its PPA ("tap")
	ppa     uint32
	flags   ctl.Flags // illFlags bits only
	maxFrag uint32    // largest MTU the link allows
	mtu     uint32    // effective IP MTU
	metric  int
	ipifs   []*ipif // sorted by id; ipifs[0] is unit 0

	// IPv6 interface identifier (token) and the manual-override bits of
	// spec §1.3: a token or link-local set by hand is not rewritten.
	token           netip.Addr
	tokenLen        int
	manualToken     bool
	manualLinkLocal bool

	// Link information (SIOCSLIFLNKINFO, spec §2.13).
	maxHops      uint8
	reachTime    uint32 // ms
	reachRetrans uint32 // ms
	userMTU      uint32

	ipMuxID, arpMuxID int

	// autoconf is the in.ndpd configuration of an IPv6 ill (slaac.go).
	autoconf ndp.Autoconf

	// saved are the administrator's routes bound to this ill: removed
	// when it goes completely down, re-created when it comes up (§5.6).
	saved []route.IRE

	// usesrc ring (spec §1.12, §10): a client has usesrcIndex = its
	// provider's index; the provider has 0. usesrcNext links the ring
	// (nil when not in one).
	usesrcIndex uint32
	usesrcNext  *ill

	stream    *link.Stream // nil for loopback
	bound     bool         // the stream is bound (dl_up)
	macType   link.MacType
	hwaddr    net.HardwareAddr
	broadcast net.HardwareAddr

	// arp is ARP on a bound IPv4 resolver ill, with its own stream for
	// link notifications (dad.go); nil otherwise.
	arp       *arp.Interface
	arpStream *link.Stream
}

// ipif is one logical interface (an address) on an ill.
type ipif struct {
	ill    *ill
	id     int
	flags  ctl.Flags  // ipifFlags bits only
	addr   netip.Addr // local address (0.0.0.0 or :: when unset)
	mask   netip.Addr
	subnet netip.Addr
	brd    netip.Addr // IPv4 broadcast address
	dst    netip.Addr // point-to-point destination
	zone   string     // "" = global
	// ires are the IREs this unit installed when it came up, removed
	// exactly on down (computed with the values at bring-up, §5.4).
	ires []ireRef
	// stackAddr is the address given to gVisor while up.
	stackAddr netip.Prefix
	// dad is duplicate address detection (dad.go).
	dad dadState
	// slaac: gVisor's SLAAC added the address and holds its lifetimes;
	// upLocked adopts it rather than adding it (slaac.go). Cleared when
	// the unit goes down: brought up again it is an ordinary address.
	slaac bool
}

func (il *ill) family() ctl.Family {
	if il.v6 {
		return ctl.AF_INET6
	}
	return ctl.AF_INET
}

func famIndex(v6 bool) int {
	if v6 {
		return 1
	}
	return 0
}

func (il *ill) isLoopback() bool { return il.phy.loopback }

func (il *ill) minMTU() uint32 {
	if il.v6 {
		return minMTUv6
	}
	return minMTUv4
}

func (il *ill) sap() uint16 {
	if il.v6 {
		return link.SAPIPv6
	}
	return link.SAPIPv4
}

// name returns the logical name: "tap0" for unit 0, "tap0:3" otherwise.
func (u *ipif) name() string {
	if u.id == 0 {
		return u.ill.name
	}
	return u.ill.name + ":" + itoa(u.id)
}

// allFlags is what SIOCGLIFFLAGS returns: ipif | ill | phyint bits.
func (u *ipif) allFlags() ctl.Flags {
	return u.flags | u.ill.flags | u.ill.phy.flags
}

func (u *ipif) up() bool { return u.flags&ctl.IFF_UP != 0 }

func (il *ill) upCount() int {
	n := 0
	for _, u := range il.ipifs {
		if u.up() {
			n++
		}
	}
	return n
}

func (il *ill) ipifByID(id int) *ipif {
	for _, u := range il.ipifs {
		if u.id == id {
			return u
		}
	}
	return nil
}

// zeroAddr is the unset address of the ill's family.
func (il *ill) zeroAddr() netip.Addr {
	if il.v6 {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b [20]byte
	n := len(b)
	for i > 0 {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
	}
	return string(b[n:])
}
