package main

// The ndp verb (illumos ndp(8)): list the IPv6 neighbour table, show, set
// and delete entries. Equivalent requests: ndp.list (what netstat -p -f
// inet6 reads), SIOCLIFGETND, SIOCLIFSETND, SIOCLIFDELND.

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/tapstack/tapstack/ctl"
)

const ndpUsage = `  tapadm ndp -a [-i IF] [-o json]
  tapadm ndp [-i IF] HOST [-o json]
  tapadm ndp [-i IF] -s HOST MAC [temp] [any] [proxy] [router]
  tapadm ndp [-i IF] -d HOST
`

func ndpUsagef(format string, args ...any) error { return usagef("ndp", format, args...) }

// ndpHost parses HOST: an IPv6 address, optionally with a zone naming its
// interface ("fe80::1%tap0"); tapadm resolves no names.
func ndpHost(s string) (a netip.Addr, zone string, err error) {
	a, err = netip.ParseAddr(s)
	if err != nil || !a.Is6() || a.Is4In6() {
		return netip.Addr{}, "", ndpUsagef("HOST %q is not an IPv6 address", s)
	}
	return a.WithZone(""), a.Zone(), nil
}

// ndpArgs is an ndp command line with -o json, -n and -i taken out.
type ndpArgs struct {
	rest   []string
	ifname string
	json   bool
}

func parseNdpArgs(args []string) (ndpArgs, error) {
	args, jsonOut, err := stripJSON("ndp", args)
	if err != nil {
		return ndpArgs{}, err
	}
	p := ndpArgs{json: jsonOut}
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "-n": // numeric output: tapadm never resolves names anyway
		case "-i":
			if i+1 >= len(args) || strings.HasPrefix(args[i+1], "-") {
				return ndpArgs{}, ndpUsagef("-i needs an interface name")
			}
			p.ifname = args[i+1]
			i++
		default:
			p.rest = append(p.rest, args[i])
		}
	}
	return p, nil
}

func (a *app) ndp(ctx context.Context, args []string) error {
	p, err := parseNdpArgs(args)
	if err != nil {
		return err
	}
	args = p.rest
	if len(args) == 0 {
		return ndpUsagef("missing -a, -s, -d or HOST")
	}
	switch args[0] {
	case "-a":
		if len(args) != 1 {
			return ndpUsagef("-a takes no arguments but -i IF and -o json")
		}
		l := ctl.NdList{Ifname: p.ifname}
		if err := a.arpDo(ctx, "ndp.list", ctl.AF_INET6, &l, &l); err != nil {
			return err
		}
		if p.json {
			return writeJSON(a.stdout, l.Entries)
		}
		return writeNdpTable(a.stdout, l.Entries)
	case "-s":
		if len(args) < 3 {
			return ndpUsagef("-s needs HOST and MAC")
		}
		host, zone, err := ndpHost(args[1])
		if err != nil {
			return err
		}
		nd, err := ndpSetRequest(host, args[2], args[3:])
		if err != nil {
			return err
		}
		name, err := a.ndpIfname(ctx, host, firstOf(p.ifname, zone), false)
		if err != nil {
			return err
		}
		return a.arpDo(ctx, "SIOCLIFSETND", ctl.AF_INET6, &ctl.Ndreq{Name: name, ND: nd}, nil)
	case "-d":
		if len(args) != 2 {
			return ndpUsagef("-d takes one HOST")
		}
		host, zone, err := ndpHost(args[1])
		if err != nil {
			return err
		}
		name, err := a.ndpIfname(ctx, host, firstOf(p.ifname, zone), true)
		if err != nil {
			return err
		}
		return a.arpDo(ctx, "SIOCLIFDELND", ctl.AF_INET6, &ctl.Ndreq{Name: name, ND: ctl.LifNdReq{Addr: host}}, nil)
	}
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		return ndpUsagef("unknown arguments %q", args)
	}
	host, zone, err := ndpHost(args[0])
	if err != nil {
		return err
	}
	name, err := a.ndpIfname(ctx, host, firstOf(p.ifname, zone), true)
	if err != nil {
		return err
	}
	req := ctl.Ndreq{Name: name, ND: ctl.LifNdReq{Addr: host}}
	if err := a.arpDo(ctx, "SIOCLIFGETND", ctl.AF_INET6, &req, &req); err != nil {
		return err
	}
	if p.json {
		return writeJSON(a.stdout, req)
	}
	_, err = fmt.Fprintln(a.stdout, ndpEntryLine(host, req.ND))
	return err
}

func firstOf(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// ndpSetRequest builds the lif_nd_req of `ndp -s HOST MAC WORDS...` as
// illumos ndp does: created REACHABLE, every flag pair said explicitly
// (on when its word is given, off otherwise), static unless "temp".
func ndpSetRequest(host netip.Addr, mac string, words []string) (ctl.LifNdReq, error) {
	nd := ctl.LifNdReq{
		Addr: host, StateCreate: ctl.ND_REACHABLE, StateSameLLA: ctl.ND_UNCHANGED, StateDiffLLA: ctl.ND_STALE,
		HdwAddr: mac,
		Flags:   ctl.NDF_STATIC | ctl.NDF_ISROUTER_OFF | ctl.NDF_ANYCAST_OFF | ctl.NDF_PROXY_OFF,
	}
	if octets, ok := parseMACOctets(mac); ok {
		// The daemon checks the address; tapadm only counts its octets.
		nd.HdwLen, nd.HdwAddr = len(octets), formatMAC(mac)
	}
	for _, w := range words {
		switch w {
		case "temp":
			nd.Flags &^= ctl.NDF_STATIC
		case "any":
			nd.Flags = nd.Flags&^ctl.NDF_ANYCAST_OFF | ctl.NDF_ANYCAST_ON
		case "proxy":
			nd.Flags = nd.Flags&^ctl.NDF_PROXY_OFF | ctl.NDF_PROXY_ON
		case "router":
			nd.Flags = nd.Flags&^ctl.NDF_ISROUTER_OFF | ctl.NDF_ISROUTER_ON
		default:
			return ctl.LifNdReq{}, ndpUsagef("unknown -s option %q (temp, any, proxy, router)", w)
		}
	}
	return nd, nil
}

// ndpIfname picks the interface the ND request for host goes to: the one
// named (-i or a zone), else, for an existing entry (existing is true),
// the one interface whose table has host, else the one IPv6 interface
// host is on-link to. Anything else needs -i.
func (a *app) ndpIfname(ctx context.Context, host netip.Addr, named string, existing bool) (string, error) {
	if named != "" {
		return named, nil
	}
	if existing {
		var l ctl.NdList
		if err := a.arpDo(ctx, "ndp.list", ctl.AF_INET6, &l, &l); err != nil {
			return "", err
		}
		var names []string
		for _, e := range l.Entries {
			if e.Addr == host {
				names = appendUnique(names, e.Ifname)
			}
		}
		if len(names) == 1 {
			return names[0], nil
		}
		if len(names) > 1 {
			return "", ndpUsagef("%s has entries on %s; name one with -i", host, strings.Join(names, ", "))
		}
	}
	var lc ctl.Lifconf
	if err := a.arpDo(ctx, "SIOCGLIFCONF", ctl.AF_INET6, ctl.Lifconf{Family: ctl.AF_INET6, Flags: lifcAll}, &lc); err != nil {
		return "", err
	}
	var names []string
	for _, r := range lc.Req {
		if r.Addr.IsLoopback() {
			continue
		}
		onLink := host.IsLinkLocalUnicast() && r.Addr.IsLinkLocalUnicast()
		if !host.IsLinkLocalUnicast() && r.Addr.IsValid() && !r.Addr.IsUnspecified() {
			if p, err := r.Addr.Prefix(r.Addrlen); err == nil && r.Addrlen > 0 && p.Contains(host) {
				onLink = true
			}
		}
		if onLink {
			names = appendUnique(names, illName(r.Name))
		}
	}
	switch len(names) {
	case 1:
		return names[0], nil
	case 0:
		return "", ndpUsagef("no IPv6 interface is on-link to %s; name one with -i", host)
	}
	return "", ndpUsagef("%s is on-link to %s; name one with -i", host, strings.Join(names, ", "))
}

// illName strips the logical unit from an interface name ("tap0:2").
func illName(s string) string {
	name, _, _ := strings.Cut(s, ":")
	return name
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// ndpEntryLine is `ndp HOST` output: "HOST (HOST) at MAC" and the words
// of the entry's flags, as `ndp -s` takes them.
func ndpEntryLine(host netip.Addr, nd ctl.LifNdReq) string {
	line := fmt.Sprintf("%s (%s) at %s", host, host, formatMAC(nd.HdwAddr))
	if nd.Flags&ctl.NDF_ISROUTER_ON != 0 {
		line += " router"
	}
	if nd.Flags&ctl.NDF_ANYCAST_ON != 0 {
		line += " any"
	}
	if nd.Flags&ctl.NDF_STATIC == 0 {
		line += " temp"
	}
	if nd.Flags&ctl.NDF_PROXY_ON != 0 {
		line += " proxy"
	}
	return line
}

// writeNdpTable prints the table as illumos ndp -a does (it runs
// netstat -p -f inet6).
func writeNdpTable(w io.Writer, entries []ctl.NdEntry) error {
	var b strings.Builder
	b.WriteString("\nNet to Media Table: IPv6\n")
	b.WriteString(" If   Physical Address    Type      State      Destination/Mask\n")
	b.WriteString("----- -----------------  ------- ------------ ---------------------------\n")
	for _, e := range entries {
		hw := ""
		if e.HdwAddr != "" {
			hw = formatMAC(e.HdwAddr)
		}
		fmt.Fprintf(&b, "%-5s %-17s  %-7s %-12s %s\n", e.Ifname, hw, e.Type, e.State, e.Addr)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
