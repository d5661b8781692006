package ctl

import (
	"fmt"
	"strconv"
	"strings"
)

// Flags is the 64-bit interface flag word of SIOCGLIFFLAGS (ipif | ill |
// phyint bits combined).
type Flags uint64

// Interface flags, illumos values (spec §3.1, cli.md).
const (
	IFF_UP          Flags = 0x1
	IFF_BROADCAST   Flags = 0x2
	IFF_DEBUG       Flags = 0x4
	IFF_LOOPBACK    Flags = 0x8
	IFF_POINTOPOINT Flags = 0x10
	IFF_NOTRAILERS  Flags = 0x20
	IFF_RUNNING     Flags = 0x40
	IFF_NOARP       Flags = 0x80
	IFF_PROMISC     Flags = 0x100
	IFF_ALLMULTI    Flags = 0x200
	IFF_INTELLIGENT Flags = 0x400
	IFF_MULTICAST   Flags = 0x800
	IFF_MULTI_BCAST Flags = 0x1000
	IFF_UNNUMBERED  Flags = 0x2000
	IFF_DHCPRUNNING Flags = 0x4000
	IFF_PRIVATE     Flags = 0x8000
	IFF_NOXMIT      Flags = 0x10000
	IFF_NOLOCAL     Flags = 0x20000
	IFF_DEPRECATED  Flags = 0x40000
	IFF_ADDRCONF    Flags = 0x80000
	IFF_ROUTER      Flags = 0x100000
	IFF_NONUD       Flags = 0x200000
	IFF_ANYCAST     Flags = 0x400000
	IFF_NORTEXCH    Flags = 0x800000
	IFF_IPV4        Flags = 0x1000000
	IFF_IPV6        Flags = 0x2000000
	IFF_NOACCEPT    Flags = 0x4000000
	IFF_NOFAILOVER  Flags = 0x8000000
	IFF_FAILED      Flags = 0x10000000
	IFF_STANDBY     Flags = 0x20000000
	IFF_INACTIVE    Flags = 0x40000000
	IFF_OFFLINE     Flags = 0x80000000
	IFF_XRESOLV     Flags = 0x100000000
	IFF_COS_ENABLED Flags = 0x200000000
	IFF_PREFERRED   Flags = 0x400000000
	IFF_TEMPORARY   Flags = 0x800000000
	IFF_FIXEDMTU    Flags = 0x1000000000
	IFF_VIRTUAL     Flags = 0x2000000000
	IFF_DUPLICATE   Flags = 0x4000000000
	IFF_IPMP        Flags = 0x8000000000
	IFF_VRRP        Flags = 0x10000000000
	IFF_NOLINKLOCAL Flags = 0x20000000000
	IFF_VNI         Flags = 0x200000000000 // Oracle extension, spec Appendix B4
)

// flagNames lists the names ifconfig prints, in bit order.
var flagNames = []struct {
	f    Flags
	name string
}{
	{IFF_UP, "UP"}, {IFF_BROADCAST, "BROADCAST"}, {IFF_DEBUG, "DEBUG"},
	{IFF_LOOPBACK, "LOOPBACK"}, {IFF_POINTOPOINT, "POINTOPOINT"},
	{IFF_NOTRAILERS, "NOTRAILERS"}, {IFF_RUNNING, "RUNNING"}, {IFF_NOARP, "NOARP"},
	{IFF_PROMISC, "PROMISC"}, {IFF_ALLMULTI, "ALLMULTI"},
	{IFF_INTELLIGENT, "INTELLIGENT"}, {IFF_MULTICAST, "MULTICAST"},
	{IFF_MULTI_BCAST, "MULTI_BCAST"}, {IFF_UNNUMBERED, "UNNUMBERED"},
	{IFF_DHCPRUNNING, "DHCP"}, {IFF_PRIVATE, "PRIVATE"}, {IFF_NOXMIT, "NOXMIT"},
	{IFF_NOLOCAL, "NOLOCAL"}, {IFF_DEPRECATED, "DEPRECATED"},
	{IFF_ADDRCONF, "ADDRCONF"}, {IFF_ROUTER, "ROUTER"}, {IFF_NONUD, "NONUD"},
	{IFF_ANYCAST, "ANYCAST"}, {IFF_NORTEXCH, "NORTEXCH"}, {IFF_IPV4, "IPv4"},
	{IFF_IPV6, "IPv6"}, {IFF_NOACCEPT, "NOACCEPT"}, {IFF_NOFAILOVER, "NOFAILOVER"},
	{IFF_FAILED, "FAILED"}, {IFF_STANDBY, "STANDBY"}, {IFF_INACTIVE, "INACTIVE"},
	{IFF_OFFLINE, "OFFLINE"}, {IFF_XRESOLV, "XRESOLV"}, {IFF_COS_ENABLED, "CoS"},
	{IFF_PREFERRED, "PREFERRED"}, {IFF_TEMPORARY, "TEMPORARY"},
	{IFF_FIXEDMTU, "FIXEDMTU"}, {IFF_VIRTUAL, "VIRTUAL"},
	{IFF_DUPLICATE, "DUPLICATE"}, {IFF_IPMP, "IPMP"}, {IFF_VRRP, "VRRP"},
	{IFF_NOLINKLOCAL, "NOLINKLOCAL"}, {IFF_VNI, "VNI"},
}

// Names returns the flag names set in f, in bit order ("UP,BROADCAST,...").
func (f Flags) Names() string {
	var parts []string
	for _, n := range flagNames {
		if f&n.f != 0 {
			parts = append(parts, n.name)
		}
	}
	return strings.Join(parts, ",")
}

// String formats f as ifconfig does: "1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4>".
func (f Flags) String() string {
	return fmt.Sprintf("%x<%s>", uint64(f), f.Names())
}

// FlagByName returns the flag with the given ifconfig name (case-insensitive).
func FlagByName(name string) (Flags, bool) {
	for _, n := range flagNames {
		if strings.EqualFold(n.name, name) {
			return n.f, true
		}
	}
	return 0, false
}

// ParseFlags accepts a number (decimal or 0x hex) or a list of flag names
// separated by '|' or ','.
func ParseFlags(s string) (Flags, error) {
	if v, err := strconv.ParseUint(s, 0, 64); err == nil {
		return Flags(v), nil
	}
	var f Flags
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == '|' || r == ',' }) {
		b, ok := FlagByName(strings.TrimPrefix(strings.TrimSpace(part), "IFF_"))
		if !ok {
			return 0, fmt.Errorf("unknown interface flag %q", part)
		}
		f |= b
	}
	return f, nil
}
