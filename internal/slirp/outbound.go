package slirp

import (
	"fmt"
	"net"
	"net/netip"
)

// Outbound resolves --outbound-addr and --outbound-addr6 as slirp4netns
// does, once at start: an address of the family, or the name of a host
// interface whose first address of that family is used (for IPv6, the
// first that is not link-local: a link-local source would need a zone).
// Zero addresses mean the option was not given.
func (o *Options) Outbound() (v4, v6 netip.Addr, err error) {
	if o.OutboundAddr != "" {
		if v4, err = outboundAddr(o.OutboundAddr, false); err != nil {
			return netip.Addr{}, netip.Addr{}, fmt.Errorf("outbound-addr has to be valid ipv4 address or interface name: %w", err)
		}
	}
	if o.OutboundAddr6 != "" {
		if v6, err = outboundAddr(o.OutboundAddr6, true); err != nil {
			return netip.Addr{}, netip.Addr{}, fmt.Errorf("outbound-addr6 has to be valid ipv6 address or interface name: %w", err)
		}
	}
	return v4, v6, nil
}

func outboundAddr(s string, v6 bool) (netip.Addr, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Is4() == v6 || a.Zone() != "" {
			return netip.Addr{}, fmt.Errorf("%s is not an IPv%s address", s, family(v6))
		}
		return a, nil
	}
	ifi, err := net.InterfaceByName(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%s is neither an address nor an interface: %w", s, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("addresses of %s: %w", s, err)
	}
	for _, ad := range addrs {
		ipn, ok := ad.(*net.IPNet)
		if !ok {
			continue
		}
		a, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		a = a.Unmap()
		if a.Is4() != v6 && !a.IsLinkLocalUnicast() {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("interface %s has no usable IPv%s address", s, family(v6))
}

func family(v6 bool) string {
	if v6 {
		return "6"
	}
	return "4"
}
