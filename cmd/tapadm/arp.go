package main

// The arp verb (illumos arp(8)): list the ARP table, show, set and
// delete entries. Equivalent requests: MIB2_IP_MEDIA, SIOCGARP, SIOCSARP,
// SIOCDARP.

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/tapstack/tapstack/ctl"
)

const arpUsage = `  tapadm arp -a [-o json]
  tapadm arp HOST
  tapadm arp -s HOST MAC [temp] [pub]
  tapadm arp -d HOST
`

func arpUsagef(format string, args ...any) error { return usagef("arp", format, args...) }

// arpHost parses HOST: an IPv4 address (tapadm resolves no names).
func arpHost(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, arpUsagef("HOST %q is not an IPv4 address", s)
	}
	return a, nil
}

func (a *app) arp(ctx context.Context, args []string) error {
	args, jsonOut, err := stripJSON("arp", args)
	if err != nil {
		return err
	}
	if len(args) == 0 {
		return arpUsagef("missing -a, -s, -d or HOST")
	}
	switch args[0] {
	case "-a":
		if len(args) != 1 {
			return arpUsagef("-a takes no arguments but -o json")
		}
		var t ctl.ArpTable
		if err := a.arpDo(ctx, "MIB2_IP_MEDIA", ctl.AF_INET, &t, &t); err != nil {
			return err
		}
		if jsonOut {
			return writeJSON(a.stdout, t.Entries)
		}
		return writeArpTable(a.stdout, t.Entries)
	case "-s":
		if len(args) < 3 {
			return arpUsagef("-s needs HOST and MAC")
		}
		host, err := arpHost(args[1])
		if err != nil {
			return err
		}
		req := ctl.Arpreq{PA: host, HA: args[2], Flags: ctl.ATF_PERM}
		for _, w := range args[3:] {
			switch w {
			case "temp":
				req.Flags &^= ctl.ATF_PERM
			case "pub":
				req.Flags |= ctl.ATF_PUBL
			default:
				return arpUsagef("unknown -s option %q (temp, pub)", w)
			}
		}
		return a.arpDo(ctx, "SIOCSARP", ctl.AF_INET, &req, nil)
	case "-d":
		if len(args) != 2 {
			return arpUsagef("-d takes one HOST")
		}
		host, err := arpHost(args[1])
		if err != nil {
			return err
		}
		return a.arpDo(ctx, "SIOCDARP", ctl.AF_INET, &ctl.Arpreq{PA: host}, nil)
	}
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		return arpUsagef("unknown arguments %q", args)
	}
	host, err := arpHost(args[0])
	if err != nil {
		return err
	}
	req := ctl.Arpreq{PA: host}
	if err := a.arpDo(ctx, "SIOCGARP", ctl.AF_INET, &req, &req); err != nil {
		return err
	}
	if jsonOut {
		return writeJSON(a.stdout, req)
	}
	line := fmt.Sprintf("%s (%s) at ", host, host)
	if req.Flags&ctl.ATF_COM != 0 {
		line += req.HA
	} else {
		line += "(incomplete)"
	}
	if req.Flags&ctl.ATF_PERM != 0 {
		line += " permanent"
	}
	if req.Flags&ctl.ATF_PUBL != 0 {
		line += " published"
	}
	_, err = fmt.Fprintln(a.stdout, line)
	return err
}

// arpDo sends one request on the daemon connection.
func (a *app) arpDo(ctx context.Context, op string, fam ctl.Family, args, result any) error {
	r, err := a.conn()
	if err != nil {
		return err
	}
	return r.Do(ctx, op, fam, args, result)
}

// arpFlags renders ATF_* flags as arp -a does: S static (permanent),
// P published, L local (authoritative and ours), A authority, U
// unresolved.
func arpFlags(e ctl.ArpEntry) string {
	var b strings.Builder
	local := e.Flags&(ctl.ATF_AUTHORITY|ctl.ATF_PUBL|ctl.ATF_PERM) == ctl.ATF_AUTHORITY|ctl.ATF_PUBL|ctl.ATF_PERM
	if e.Flags&ctl.ATF_PERM != 0 {
		b.WriteByte('S')
	}
	if e.Flags&ctl.ATF_PUBL != 0 {
		b.WriteByte('P')
	}
	if local {
		b.WriteByte('L')
	}
	if e.Flags&ctl.ATF_AUTHORITY != 0 {
		b.WriteByte('A')
	}
	if e.Flags&ctl.ATF_COM == 0 {
		b.WriteByte('U')
	}
	return b.String()
}

// writeArpTable prints the table in illumos arp -a layout.
func writeArpTable(w io.Writer, entries []ctl.ArpEntry) error {
	var b strings.Builder
	b.WriteString("\nNet to Media Table: IPv4\n")
	fmt.Fprintf(&b, "%-6s %-20s %-15s %-8s %s\n", "Device", "IP Address", "Mask", "Flags", "Phys Addr")
	b.WriteString("------ -------------------- --------------- -------- ---------------\n")
	for _, e := range entries {
		hw := ""
		if e.HWAddr != "" {
			hw = formatMAC(e.HWAddr)
		}
		fmt.Fprintf(&b, "%-6s %-20s %-15s %-8s %s\n", e.Ifname, e.Addr, e.Mask, arpFlags(e), hw)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
