package main

// The route verb: administrator's routes (SIOCADDRT, SIOCDELRT) and the
// route the stack would use for a destination (RTM_GET), as route(8).

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/tapstack/tapstack/ctl"
)

const routeUsage = `  tapadm route add|delete [-inet6] [-net|-host] DEST[/PLEN]|default GATEWAY
        [-netmask M] [-ifp IF] [-interface]
  tapadm route get [-inet6] DEST|default [-o json]
  tapadm route monitor [-c N] [-o json]
`

func routeUsagef(format string, args ...any) error {
	return usagef("route", format, args...)
}

// routeCmd is a parsed route command line.
type routeCmd struct {
	op     string // SIOCADDRT, SIOCDELRT or RTM_GET
	family ctl.Family
	rt     ctl.Rtentry
	dest   string // DEST as given (route get's "route to")
	json   bool
}

// parseRoute parses route's subcommand and arguments. Options may appear
// anywhere after the subcommand, as route(8) allows.
//
// Equivalent to: `route add -net 10.1.0.0/16 10.0.0.254` is SIOCADDRT with
// rt_dst 10.1.0.0, rt_genmask 255.255.0.0, rt_gateway 10.0.0.254 and
// rt_flags RTF_GATEWAY.
func parseRoute(args []string) (routeCmd, error) {
	var cmd routeCmd
	if len(args) == 0 {
		return cmd, routeUsagef("missing subcommand (add, delete or get)")
	}
	sub := args[0]
	switch sub {
	case "add":
		cmd.op = "SIOCADDRT"
	case "delete", "del":
		cmd.op = "SIOCDELRT"
	case "get":
		cmd.op = "RTM_GET"
	default:
		return cmd, routeUsagef("unknown subcommand %q (add, delete or get)", sub)
	}
	rest, jsonOut, err := stripJSON("route", args[1:])
	if err != nil {
		return cmd, err
	}
	if jsonOut && cmd.op != "RTM_GET" {
		return cmd, routeUsagef("%s has no output to format", sub)
	}
	cmd.json = jsonOut
	var (
		pos              []string
		inet6, net, host bool
		iface            bool
		netmask          string
	)
	for i := 0; i < len(rest); i++ {
		arg := rest[i]
		if !strings.HasPrefix(arg, "-") || len(arg) < 2 {
			pos = append(pos, arg)
			continue
		}
		value := func() (string, error) {
			if i+1 >= len(rest) {
				return "", routeUsagef("%s needs an argument", arg)
			}
			i++
			return rest[i], nil
		}
		switch arg {
		case "-inet":
			inet6 = false
		case "-inet6":
			inet6 = true
		case "-net":
			net = true
		case "-host":
			host = true
		case "-interface", "-iface":
			iface = true
		case "-netmask":
			if netmask, err = value(); err != nil {
				return cmd, err
			}
		case "-ifp":
			if cmd.rt.Ifp, err = value(); err != nil {
				return cmd, err
			}
			if cmd.rt.Ifp == "" {
				return cmd, routeUsagef("-ifp needs an interface name")
			}
		default:
			return cmd, routeUsagef("unsupported option %s", arg)
		}
	}
	if cmd.op == "RTM_GET" {
		if len(pos) != 1 {
			return cmd, routeUsagef("get takes exactly one destination")
		}
		if net || host || iface || netmask != "" || cmd.rt.Ifp != "" {
			return cmd, routeUsagef("get takes only -inet6 and -o json")
		}
	} else {
		switch {
		case len(pos) == 0:
			return cmd, routeUsagef("%s needs a destination", sub)
		case len(pos) == 1 && cmd.op == "SIOCADDRT":
			return cmd, routeUsagef("add needs a gateway (with -interface, one of this host's addresses)")
		case len(pos) > 2:
			return cmd, routeUsagef("unexpected argument %q", pos[2])
		}
	}
	if net && host {
		return cmd, routeUsagef("-net and -host exclude each other")
	}
	cmd.dest = pos[0]

	// The destination fixes the family; "default" takes it from -inet6.
	fam := ctl.AF_INET
	if inet6 {
		fam = ctl.AF_INET6
	}
	plen := -1
	switch d := pos[0]; {
	case d == "default":
		cmd.rt.Dst = netip.IPv4Unspecified()
		if inet6 {
			cmd.rt.Dst = netip.IPv6Unspecified()
		}
		plen = 0
	case strings.Contains(d, "/"):
		p, err := netip.ParsePrefix(d)
		if err != nil || p.Addr().Zone() != "" {
			return cmd, routeUsagef("bad destination %q (ADDR, ADDR/PLEN or default)", d)
		}
		cmd.rt.Dst, plen = p.Addr(), p.Bits()
	default:
		a, err := netip.ParseAddr(d)
		if err != nil || a.Zone() != "" {
			return cmd, routeUsagef("bad destination %q (ADDR, ADDR/PLEN or default)", d)
		}
		cmd.rt.Dst = a
	}
	if cmd.rt.Dst.Is6() {
		fam = ctl.AF_INET6
	} else if inet6 {
		return cmd, routeUsagef("%s is not an IPv6 destination", pos[0])
	}
	cmd.family = fam
	if cmd.op == "RTM_GET" {
		return cmd, nil
	}

	switch {
	case plen >= 0 && host:
		return cmd, routeUsagef("-host cannot have a prefix length or default")
	case plen >= 0 && netmask != "":
		return cmd, routeUsagef("give the netmask as /PLEN or -netmask, not both")
	case host && netmask != "":
		return cmd, routeUsagef("-host takes no netmask")
	case plen >= 0:
		cmd.rt.Genmask = maskOf(plen, fam)
	case netmask != "":
		m, err := parseRouteMask(netmask, fam)
		if err != nil {
			return cmd, err
		}
		cmd.rt.Genmask = m
	}
	if host {
		cmd.rt.Flags |= ctl.RTF_HOST
	}
	if !iface {
		cmd.rt.Flags |= ctl.RTF_GATEWAY
	}
	if len(pos) == 2 {
		g, err := netip.ParseAddr(pos[1])
		if err != nil || g.Zone() != "" {
			return cmd, routeUsagef("bad gateway %q (an address)", pos[1])
		}
		if g.Is6() != (fam == ctl.AF_INET6) {
			return cmd, routeUsagef("gateway %s is not of the family of %s", pos[1], pos[0])
		}
		cmd.rt.Gateway = g
	}
	return cmd, nil
}

// parseRouteMask parses -netmask: dotted or hex for IPv4, an address for
// IPv6. Whether it is contiguous is the daemon's to say.
func parseRouteMask(s string, fam ctl.Family) (netip.Addr, error) {
	if fam == ctl.AF_INET6 {
		m, err := netip.ParseAddr(s)
		if err != nil || !m.Is6() || m.Zone() != "" {
			return netip.Addr{}, routeUsagef("bad IPv6 netmask %q", s)
		}
		return m, nil
	}
	m, err := parseNetmask(s)
	if err != nil {
		return netip.Addr{}, routeUsagef("bad netmask %q (use 255.255.255.0 or 0xffffff00)", s)
	}
	return m, nil
}

// route runs the route verb.
func (a *app) route(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "monitor" {
		return a.routeMonitor(ctx, args[1:])
	}
	cmd, err := parseRoute(args)
	if err != nil {
		return err
	}
	r, err := a.conn()
	if err != nil {
		return err
	}
	if cmd.op != "RTM_GET" {
		return r.Do(ctx, cmd.op, cmd.family, cmd.rt, nil)
	}
	var got ctl.Rtentry
	if err := r.Do(ctx, cmd.op, cmd.family, cmd.rt, &got); err != nil {
		return err
	}
	if cmd.json {
		return writeJSON(a.stdout, got)
	}
	return writeRouteGet(a.stdout, cmd.dest, got)
}

// writeRouteGet prints an RTM_GET reply as route get does:
//
//	   route to: 10.1.2.3
//	destination: 10.1.0.0
//	       mask: 255.255.0.0
//	    gateway: 10.0.0.254
//	  interface: tap0
//	      flags: <UP,GATEWAY,STATIC>
//
// A default route's destination and mask read "default"; lines with no
// value (no gateway, no interface) are left out.
func writeRouteGet(w io.Writer, to string, rt ctl.Rtentry) error {
	var b strings.Builder
	fmt.Fprintf(&b, "   route to: %s\n", to)
	bits, _ := maskBits(rt.Genmask)
	isDefault := rt.Dst.IsUnspecified() && bits == 0
	dst, mask := rt.Dst.Unmap().String(), rt.Genmask.Unmap().String()
	if isDefault {
		dst, mask = "default", "default"
	}
	fmt.Fprintf(&b, "destination: %s\n", dst)
	if rt.Genmask.IsValid() {
		fmt.Fprintf(&b, "       mask: %s\n", mask)
	}
	if rt.Gateway.IsValid() {
		fmt.Fprintf(&b, "    gateway: %s\n", rt.Gateway.Unmap())
	}
	if rt.Ifp != "" {
		fmt.Fprintf(&b, "  interface: %s\n", rt.Ifp)
	}
	fmt.Fprintf(&b, "      flags: <%s>\n", routeFlagNames(rt.Flags))
	_, err := io.WriteString(w, b.String())
	return err
}

// routeFlags names the RTF_* bits as route(8) prints them, in bit order.
var routeFlags = []struct {
	f    int
	name string
}{
	{ctl.RTF_UP, "UP"}, {ctl.RTF_GATEWAY, "GATEWAY"}, {ctl.RTF_HOST, "HOST"},
	{ctl.RTF_REJECT, "REJECT"}, {ctl.RTF_STATIC, "STATIC"},
	{ctl.RTF_BLACKHOLE, "BLACKHOLE"}, {ctl.RTF_PRIVATE, "PRIVATE"},
	{ctl.RTF_MULTIRT, "MULTIRT"}, {ctl.RTF_SETSRC, "SETSRC"},
	{ctl.RTF_INDIRECT, "INDIRECT"}, {ctl.RTF_KERNEL, "KERNEL"},
}

// routeFlagNames returns "UP,GATEWAY,..."; bits without a name are
// printed in hex at the end.
func routeFlagNames(f int) string {
	var parts []string
	for _, n := range routeFlags {
		if f&n.f != 0 {
			parts = append(parts, n.name)
			f &^= n.f
		}
	}
	if f != 0 {
		parts = append(parts, fmt.Sprintf("%#x", f))
	}
	return strings.Join(parts, ",")
}
