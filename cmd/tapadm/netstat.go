package main

// The netstat verb: the routing table (IRE table) as `netstat -rn`, the
// interfaces and their counters as `netstat -i`, and an interface's whole
// MIB (or the stack-wide one) as `netstat -s`.

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"strings"

	"github.com/tapstack/tapstack/ctl"
)

const netstatUsage = `  tapadm netstat -rn [-a] [-f inet|inet6] [-o json]
  tapadm netstat -i [-n] [-I IF] [-f inet|inet6] [-o json]
  tapadm netstat -s [-I IF] [-f inet|inet6] [-o json]
`

func netstatUsagef(format string, args ...any) error {
	return usagef("netstat", format, args...)
}

// netstatMode is what netstat shows.
type netstatMode int

const (
	netstatRoutes     netstatMode = iota + 1 // -r
	netstatInterfaces                        // -i
	netstatMIBs                              // -s
)

// netstatCmd is a parsed netstat command line.
type netstatCmd struct {
	mode    netstatMode
	all     bool       // -a: also local and broadcast entries (-r)
	numeric bool       // -n: no symbolic names for the loopback (-i)
	family  ctl.Family // -f; AF_UNSPEC for both
	ifname  string     // -I: one interface (-i, -s)
	json    bool
}

// parseNetstat parses netstat's options: exactly one of -r, -i and -s.
// With -r, -n is implied (tapadm never looks names up).
func parseNetstat(args []string) (netstatCmd, error) {
	cmd := netstatCmd{family: ctl.AF_UNSPEC}
	args, json, err := stripJSON("netstat", args)
	if err != nil {
		return cmd, err
	}
	cmd.json = json
	setMode := func(m netstatMode) error {
		if cmd.mode != 0 && cmd.mode != m {
			return netstatUsagef("-r, -i and -s cannot be combined")
		}
		cmd.mode = m
		return nil
	}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if len(arg) < 2 || arg[0] != '-' {
			return cmd, netstatUsagef("unexpected argument %q", arg)
		}
	letters:
		for j := 1; j < len(arg); j++ {
			switch c := arg[j]; c {
			case 'r', 'i', 's':
				if err := setMode(map[byte]netstatMode{'r': netstatRoutes, 'i': netstatInterfaces, 's': netstatMIBs}[c]); err != nil {
					return cmd, err
				}
			case 'n':
				cmd.numeric = true
			case 'a':
				cmd.all = true
			case 'f', 'I':
				val := arg[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						if c == 'I' {
							return cmd, netstatUsagef("-I needs an interface name")
						}
						return cmd, netstatUsagef("-f needs an address family (inet or inet6)")
					}
					i++
					val = args[i]
				}
				if c == 'I' {
					cmd.ifname = val
					break letters
				}
				switch strings.TrimPrefix(val, "af:") {
				case "inet":
					cmd.family = ctl.AF_INET
				case "inet6":
					cmd.family = ctl.AF_INET6
				default:
					return cmd, netstatUsagef("bad address family %q (inet or inet6)", val)
				}
				break letters
			default:
				return cmd, netstatUsagef("unsupported option -%c", c)
			}
		}
	}
	switch {
	case cmd.mode == 0:
		return cmd, netstatUsagef("say what to show: -r (routes), -i (interfaces) or -s (statistics)")
	case cmd.mode == netstatRoutes && cmd.ifname != "":
		return cmd, netstatUsagef("-I goes with -i or -s, not -r")
	}
	return cmd, nil
}

// netstat runs the netstat verb.
func (a *app) netstat(ctx context.Context, args []string) error {
	cmd, err := parseNetstat(args)
	if err != nil {
		return err
	}
	r, err := a.conn()
	if err != nil {
		return err
	}
	if cmd.mode != netstatRoutes {
		var st ctl.IfStatsReq
		if err := r.Do(ctx, "netstat.interfaces", cmd.family, ctl.IfStatsReq{Name: cmd.ifname}, &st); err != nil {
			return err
		}
		switch {
		case cmd.json:
			return writeJSON(a.stdout, st)
		case cmd.mode == netstatInterfaces:
			return writeInterfaces(a.stdout, st.Interfaces, cmd.numeric)
		case cmd.ifname != "":
			return writeInterfaceMIBs(a.stdout, st.Interfaces)
		}
		return writeTotalMIBs(a.stdout, st.Totals)
	}
	var routes []ctl.RouteEntry
	if err := r.Do(ctx, "netstat.routes", cmd.family, nil, &routes); err != nil {
		return err
	}
	v4, v6 := splitRoutes(routes, cmd.all)
	switch cmd.family {
	case ctl.AF_INET:
		v6 = nil
	case ctl.AF_INET6:
		v4 = nil
	}
	if cmd.json {
		return writeRoutesJSON(a.stdout, v4, v6)
	}
	return writeRoutes(a.stdout, v4, v6)
}

// The columns of netstat -i with their illumos widths: IPv4 has a Queue
// column, IPv6 a wider Net/Dest and Address.
var (
	ifColumns4 = []column{{"Name", 5}, {"Mtu", 4}, {"Net/Dest", 13}, {"Address", 14},
		{"Ipkts", 6}, {"Ierrs", 5}, {"Opkts", 6}, {"Oerrs", 5}, {"Collis", 6}, {"Queue", 5}}
	ifColumns6 = []column{{"Name", 5}, {"Mtu", 4}, {"Net/Dest", 27}, {"Address", 27},
		{"Ipkts", 6}, {"Ierrs", 5}, {"Opkts", 6}, {"Oerrs", 5}, {"Collis", 6}}
)

// writeInterfaces prints the IPv4 then the IPv6 interfaces as netstat -i
// does: one line per interface (its unit 0), the link's counters, and a
// blank line between the families. A family with no interfaces is
// omitted. Columns widen to their longest value, so lines stay aligned
// where illumos would let a long name push them right.
func writeInterfaces(w io.Writer, ifs []ctl.IfStats, numeric bool) error {
	var v4, v6 [][]string
	for _, e := range ifs {
		ls := e.LinkStats
		row := []string{e.Name, fmt.Sprint(e.MTU), "", "",
			fmt.Sprint(ls.IPackets), fmt.Sprint(ls.IErrors), fmt.Sprint(ls.OPackets), fmt.Sprint(ls.OErrors), fmt.Sprint(ls.Collisions)}
		if e.Family == ctl.AF_INET6 {
			row[2], row[3] = ifNet6(e, numeric), ifAddr(e.Addr, numeric)
			v6 = append(v6, row)
			continue
		}
		row[2], row[3] = ifNet4(e, numeric), ifAddr(e.Addr, numeric)
		v4 = append(v4, append(row, "0"))
	}
	var b strings.Builder
	for _, blk := range []struct {
		cols []column
		rows [][]string
	}{{ifColumns4, v4}, {ifColumns6, v6}} {
		if len(blk.rows) == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		writeAligned(&b, blk.cols, blk.rows)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeAligned prints a header and rows, each field left-aligned in a
// column as wide as its widest value (at least the column's width), one
// space between fields, no trailing spaces.
func writeAligned(b *strings.Builder, cols []column, rows [][]string) {
	widths := make([]int, len(cols))
	for i, c := range cols {
		widths[i] = max(c.width, len(c.name))
		for _, r := range rows {
			widths[i] = max(widths[i], len(r[i]))
		}
	}
	line := func(vals []string) {
		var l strings.Builder
		for i, v := range vals {
			if i > 0 {
				l.WriteByte(' ')
			}
			fmt.Fprintf(&l, "%-*s", widths[i], v)
		}
		b.WriteString(strings.TrimRight(l.String(), " "))
		b.WriteByte('\n')
	}
	hdr := make([]string, len(cols))
	for i, c := range cols {
		hdr[i] = c.name
	}
	line(hdr)
	for _, r := range rows {
		line(r)
	}
}

// ifNet4 is the IPv4 Net/Dest column: the point-to-point destination, or
// the subnet's network number ("loopback" for 127.0.0.0 unless -n).
func ifNet4(e ctl.IfStats, numeric bool) string {
	if e.Dst.IsValid() {
		return ifAddr(e.Dst, numeric)
	}
	if !e.Subnet.IsValid() {
		return addrString(netip.Addr{}, ctl.AF_INET)
	}
	if n := e.Subnet.Addr(); !numeric && n == netip.AddrFrom4([4]byte{127, 0, 0, 0}) {
		return "loopback"
	}
	return e.Subnet.Addr().String()
}

// ifNet6 is the IPv6 Net/Dest column: the destination of a point-to-point
// interface, else the address with its prefix length, as illumos prints
// it ("localhost" for ::1 unless -n).
func ifNet6(e ctl.IfStats, numeric bool) string {
	if e.Dst.IsValid() {
		return ifAddr(e.Dst, numeric)
	}
	if !numeric && e.Addr == netip.IPv6Loopback() {
		return "localhost"
	}
	if !e.Addr.IsValid() {
		return addrString(netip.Addr{}, ctl.AF_INET6)
	}
	return fmt.Sprintf("%s/%d", e.Addr, e.Subnet.Bits())
}

// ifAddr prints an interface address: "localhost" for the loopback
// address unless -n (the only name netstat -i shows; nothing is looked
// up).
func ifAddr(a netip.Addr, numeric bool) string {
	if !numeric && a.IsLoopback() {
		return "localhost"
	}
	if !a.IsValid() {
		return "--"
	}
	return a.String()
}

// writeInterfaceMIBs prints each interface's whole MIB (netstat -s -I IF).
func writeInterfaceMIBs(w io.Writer, ifs []ctl.IfStats) error {
	var b strings.Builder
	for _, e := range ifs {
		fam := "IPv4"
		if e.Family == ctl.AF_INET6 {
			fam = "IPv6"
		}
		writeMIB(&b, fam+" "+e.Name, e.IP)
		if e.ICMP6 != nil {
			writeMIB(&b, "ICMPv6 "+e.Name, *e.ICMP6)
		}
		writeMIB(&b, "Link "+e.Name, e.LinkStats)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeTotalMIBs prints the stack-wide MIBs (netstat -s).
func writeTotalMIBs(w io.Writer, totals []ctl.IPTotals) error {
	var b strings.Builder
	for _, t := range totals {
		fam := "IPv4"
		if t.Family == ctl.AF_INET6 {
			fam = "IPv6"
		}
		writeMIB(&b, fam, t.IP)
		if t.ICMP6 != nil {
			writeMIB(&b, "ICMPv6", *t.ICMP6)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeMIB prints one MIB in netstat -s's layout: a blank line, the title,
// then "name = value" pairs two to a line, named as in -o json.
func writeMIB(b *strings.Builder, title string, mib any) {
	v := reflect.ValueOf(mib)
	t := v.Type()
	fmt.Fprintf(b, "\n%s\n", title)
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		fmt.Fprintf(b, "        %-26s=%10d", name, v.Field(i).Uint())
		if i%2 == 1 || i == t.NumField()-1 {
			b.WriteByte('\n')
		}
	}
}
