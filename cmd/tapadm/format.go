package main

// Output formats: the ifconfig status block, dladm's ofmt columns, netstat's
// routing tables and the -o json documents. Everything here is a pure
// function of the data, so the byte-exact formats are unit-tested without a
// daemon.

import (
	"encoding/json"
	"fmt"
	"io"
	"math/bits"
	"net/netip"
	"strconv"
	"strings"

	"github.com/tapstack/tapstack/ctl"
)

// lifStatus is what ifconfig shows for one logical interface.
type lifStatus struct {
	Name      string // "tap0", "tap0:1"
	Family    ctl.Family
	Flags     ctl.Flags
	Metric    int
	MTU       int64
	Index     uint32
	Zone      string // "" is the global zone
	Addr      netip.Addr
	Prefixlen int
	Netmask   netip.Addr
	Broadaddr netip.Addr // shown when IFF_BROADCAST is set
	Dstaddr   netip.Addr // shown when IFF_POINTOPOINT is set
	Ether     string     // "" when not shown
}

// writeIfconfig writes lifs in the illumos `ifconfig -a` format (cli.md),
// byte for byte, trailing spaces included.
func writeIfconfig(w io.Writer, lifs []lifStatus) error {
	var b strings.Builder
	for _, l := range lifs {
		formatLif(&b, l)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func formatLif(b *strings.Builder, l lifStatus) {
	fmt.Fprintf(b, "%s: flags=%s", l.Name, l.Flags)
	if l.Metric != 0 {
		fmt.Fprintf(b, " metric %d", l.Metric)
	}
	fmt.Fprintf(b, " mtu %d index %d", l.MTU, l.Index)
	if !isGlobalZone(l.Zone) {
		fmt.Fprintf(b, "\n\tzone %s", l.Zone)
	}
	b.WriteByte('\n')
	ptp := l.Flags&ctl.IFF_POINTOPOINT != 0
	if l.Family == ctl.AF_INET6 {
		fmt.Fprintf(b, "\tinet6 %s/%d ", addrString(l.Addr, l.Family), l.Prefixlen)
		if ptp {
			fmt.Fprintf(b, "--> %s ", addrString(l.Dstaddr, l.Family))
		}
	} else {
		fmt.Fprintf(b, "\tinet %s ", addrString(l.Addr, l.Family))
		if ptp {
			fmt.Fprintf(b, "--> %s ", addrString(l.Dstaddr, l.Family))
		}
		fmt.Fprintf(b, "netmask %08x ", mask4(l.Netmask))
		if l.Flags&ctl.IFF_BROADCAST != 0 && l.Broadaddr.IsValid() && !l.Broadaddr.IsUnspecified() {
			fmt.Fprintf(b, "broadcast %s", l.Broadaddr.Unmap())
		}
	}
	b.WriteByte('\n')
	if l.Ether != "" {
		fmt.Fprintf(b, "\tether %s \n", l.Ether)
	}
}

func isGlobalZone(z string) bool { return z == "" || z == "global" }

// addrString prints a, or the family's unspecified address when a is unset
// (ifconfig shows 0.0.0.0 / :: for a unit without an address).
func addrString(a netip.Addr, f ctl.Family) string {
	if !a.IsValid() {
		if f == ctl.AF_INET6 {
			return "::"
		}
		return "0.0.0.0"
	}
	if f != ctl.AF_INET6 {
		a = a.Unmap()
	}
	return a.String()
}

// mask4 returns an IPv4 netmask as a number (0 when unset).
func mask4(m netip.Addr) uint32 {
	m = m.Unmap()
	if !m.Is4() {
		return 0
	}
	b := m.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// maskBits returns the prefix length of a contiguous netmask, and false for
// an unset or non-contiguous one.
func maskBits(m netip.Addr) (int, bool) {
	if !m.IsValid() {
		return 0, false
	}
	m = m.Unmap()
	n := 0
	raw := m.AsSlice()
	for i, c := range raw {
		ones := bits.LeadingZeros8(^c)
		n += ones
		if ones < 8 {
			if c<<ones != 0 {
				return 0, false
			}
			for _, rest := range raw[i+1:] {
				if rest != 0 {
					return 0, false
				}
			}
			break
		}
	}
	return n, true
}

// maskOf returns the netmask of a prefix length in family f.
func maskOf(bitsLen int, f ctl.Family) netip.Addr {
	total := 32
	if f == ctl.AF_INET6 {
		total = 128
	}
	raw := make([]byte, total/8)
	for i := range raw {
		switch {
		case bitsLen >= 8:
			raw[i] = 0xff
			bitsLen -= 8
		case bitsLen > 0:
			raw[i] = byte(0xff << (8 - bitsLen))
			bitsLen = 0
		}
	}
	a, _ := netip.AddrFromSlice(raw)
	return a
}

// formatMAC prints a hardware address as illumos does: hex octets without
// leading zeros ("2:0:0:0:0:1"). Input it cannot parse is returned as is.
func formatMAC(s string) string {
	octets, ok := parseMACOctets(s)
	if !ok {
		return s
	}
	parts := make([]string, len(octets))
	for i, o := range octets {
		parts[i] = strconv.FormatUint(uint64(o), 16)
	}
	return strings.Join(parts, ":")
}

// parseMACOctets parses hex octets of one or two digits separated by ':'
// or '-'.
func parseMACOctets(s string) ([]byte, bool) {
	sep := ":"
	if !strings.Contains(s, ":") {
		sep = "-"
	}
	fields := strings.Split(s, sep)
	if len(fields) < 2 {
		return nil, false
	}
	out := make([]byte, len(fields))
	for i, f := range fields {
		if len(f) == 0 || len(f) > 2 {
			return nil, false
		}
		v, err := strconv.ParseUint(f, 16, 8)
		if err != nil {
			return nil, false
		}
		out[i] = byte(v)
	}
	return out, true
}

// lifJSON is one logical interface in `ifconfig -o json`. Field names are
// stable: scripts depend on them.
type lifJSON struct {
	Name        string   `json:"name"`
	Family      string   `json:"family"`
	Flags       uint64   `json:"flags"`
	FlagNames   []string `json:"flag_names"`
	Metric      int      `json:"metric"`
	MTU         int64    `json:"mtu"`
	Index       uint32   `json:"index"`
	Addr        string   `json:"addr"`
	Prefixlen   int      `json:"prefixlen"`
	Netmask     string   `json:"netmask"`
	Broadcast   string   `json:"broadcast,omitempty"`
	Destination string   `json:"destination,omitempty"`
	Zone        string   `json:"zone"`
	Ether       string   `json:"ether,omitempty"`
}

func lifToJSON(l lifStatus) lifJSON {
	j := lifJSON{
		Name:      l.Name,
		Family:    string(l.Family),
		Flags:     uint64(l.Flags),
		FlagNames: []string{},
		Metric:    l.Metric,
		MTU:       l.MTU,
		Index:     l.Index,
		Addr:      addrString(l.Addr, l.Family),
		Prefixlen: l.Prefixlen,
		Zone:      l.Zone,
		Ether:     l.Ether,
	}
	if n := l.Flags.Names(); n != "" {
		j.FlagNames = strings.Split(n, ",")
	}
	if l.Netmask.IsValid() {
		j.Netmask = addrString(l.Netmask, l.Family)
	} else {
		j.Netmask = addrString(maskOf(l.Prefixlen, l.Family), l.Family)
	}
	if l.Flags&ctl.IFF_BROADCAST != 0 && l.Broadaddr.IsValid() && !l.Broadaddr.IsUnspecified() {
		j.Broadcast = addrString(l.Broadaddr, l.Family)
	}
	if l.Flags&ctl.IFF_POINTOPOINT != 0 {
		j.Destination = addrString(l.Dstaddr, l.Family)
	}
	if isGlobalZone(l.Zone) {
		j.Zone = "global"
	}
	return j
}

func writeIfconfigJSON(w io.Writer, lifs []lifStatus) error {
	out := make([]lifJSON, 0, len(lifs))
	for _, l := range lifs {
		out = append(out, lifToJSON(l))
	}
	return writeJSON(w, out)
}

// writeJSON writes v as one indented JSON document.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// column is one field of an ofmt table: its header and width.
type column struct {
	name  string
	width int
}

// writeTable prints a header and rows with illumos libofmt's rules: fields
// left-aligned and padded to their width, the last one unpadded, an empty
// value shown as "--", and a value too wide for its field pushing the rest
// of the line right until later fields have room to absorb the overflow.
func writeTable(w io.Writer, cols []column, rows [][]string) error {
	var b strings.Builder
	line := func(vals []string) {
		overflow := 0
		for i, c := range cols {
			v := vals[i]
			if v == "" {
				v = "--"
			}
			if i == len(cols)-1 {
				b.WriteString(v)
				break
			}
			width := c.width
			if len(v)+overflow >= width {
				overflow += len(v) - width + 1
				b.WriteString(v)
				b.WriteByte(' ')
				continue
			}
			if overflow > 0 {
				compress := min(overflow, width-len(v))
				overflow -= compress
				width -= compress
			}
			fmt.Fprintf(&b, "%-*s", width, v)
		}
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
	_, err := io.WriteString(w, b.String())
	return err
}

// linkColumns are dladm show-link's fields (illumos widths; BRIDGE omitted).
var linkColumns = []column{{"LINK", 12}, {"CLASS", 10}, {"MTU", 7}, {"STATE", 9}, {"OVER", 30}}

func writeLinks(w io.Writer, links []ctl.LinkInfo) error {
	rows := make([][]string, 0, len(links))
	for _, l := range links {
		rows = append(rows, []string{l.Link, l.Class, strconv.FormatUint(uint64(l.MTU), 10), l.State, l.Over})
	}
	return writeTable(w, linkColumns, rows)
}

// linkJSON is one link in `dladm show-link -o json`.
type linkJSON struct {
	Link         string   `json:"link"`
	Class        string   `json:"class"`
	MTU          uint32   `json:"mtu"`
	State        string   `json:"state"`
	Over         string   `json:"over"`
	MAC          string   `json:"mac,omitempty"`
	DLPIState    string   `json:"dlpi_state,omitempty"`
	Capabilities []string `json:"capabilities"`
	Queues       int      `json:"queues,omitempty"`
}

func writeLinksJSON(w io.Writer, links []ctl.LinkInfo) error {
	out := make([]linkJSON, 0, len(links))
	for _, l := range links {
		caps := l.Capabilities
		if caps == nil {
			caps = []string{}
		}
		out = append(out, linkJSON{
			Link: l.Link, Class: l.Class, MTU: l.MTU, State: l.State, Over: l.Over,
			MAC: l.MAC, DLPIState: l.DLPIState, Capabilities: caps, Queues: l.Queues,
		})
	}
	return writeJSON(w, out)
}

// linkPropColumns are dladm show-linkprop's fields (illumos widths).
var linkPropColumns = []column{{"LINK", 12}, {"PROPERTY", 15}, {"PERM", 5}, {"VALUE", 15}, {"DEFAULT", 15}, {"POSSIBLE", 20}}

// writeLinkProps prints the properties a link reports: its MTU, its
// number of queues (TAP links) and the offloads it negotiated (the DLPI
// capabilities). Only the MTU can be set (with ifconfig).
func writeLinkProps(w io.Writer, links []ctl.LinkInfo) error {
	var rows [][]string
	for _, l := range links {
		rows = append(rows, []string{l.Link, "mtu", "rw", strconv.FormatUint(uint64(l.MTU), 10), "", ""})
		if l.Queues > 0 {
			rows = append(rows, []string{l.Link, "queues", "r-", strconv.Itoa(l.Queues), "", ""})
		}
		rows = append(rows, []string{l.Link, "offloads", "r-", strings.Join(l.Capabilities, ","), "", ""})
	}
	return writeTable(w, linkPropColumns, rows)
}

// The headers of `netstat -rn`, as illumos prints them (trailing spaces
// included: illumos leaves room for the security-attribute column).
const (
	routeHeaderV4 = "\nRouting Table: IPv4\n" +
		"  Destination           Gateway           Flags  Ref     Use     Interface \n" +
		"-------------------- -------------------- ----- ----- ---------- --------- \n"
	routeHeaderV6 = "\nRouting Table: IPv6\n" +
		"  Destination/Mask            Gateway                   Flags Ref   Use    If   \n" +
		"--------------------------- --------------------------- ----- --- ------- ----- \n"
)

// splitRoutes returns the routes netstat -rn shows, IPv4 and IPv6 apart:
// without -a, local and broadcast entries are hidden, as in illumos.
func splitRoutes(routes []ctl.RouteEntry, all bool) (v4, v6 []ctl.RouteEntry) {
	for _, r := range routes {
		if !all && (r.Type == "LOCAL" || r.Type == "BROADCAST") {
			continue
		}
		if r.Destination.Addr().Unmap().Is4() {
			v4 = append(v4, r)
		} else {
			v6 = append(v6, r)
		}
	}
	return v4, v6
}

// writeRoutes writes the IPv4 then the IPv6 routing table in the illumos
// `netstat -rn` format. A table with no entries is omitted, header and all,
// as illumos does. The daemon keeps no per-route use counts, so Use is 0.
func writeRoutes(w io.Writer, v4, v6 []ctl.RouteEntry) error {
	var b strings.Builder
	if len(v4) > 0 {
		b.WriteString(routeHeaderV4)
	}
	for _, r := range v4 {
		fmt.Fprintf(&b, "%-20s %-20s %-5s  %4d %10d %-9s \n",
			routeDest4(r.Destination), routeGateway4(r.Gateway), r.Flags, r.Refs, 0, r.Interface)
	}
	if len(v6) > 0 {
		b.WriteString(routeHeaderV6)
	}
	for _, r := range v6 {
		fmt.Fprintf(&b, "%-27s %-27s %-5s %3d %7d %-5s \n",
			routeDest6(r.Destination), routeGateway6(r.Gateway), r.Flags, r.Refs, 0, r.Interface)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// routeDest4 prints an IPv4 destination as illumos netstat -rn does: the
// address without its mask, "default" for 0.0.0.0/0.
func routeDest4(p netip.Prefix) string {
	if p.Bits() == 0 {
		return "default"
	}
	return p.Addr().Unmap().String()
}

// routeDest6 prints an IPv6 destination: ADDR/PLEN, a host route without
// "/128", "default" for ::/0.
func routeDest6(p netip.Prefix) string {
	switch p.Bits() {
	case 0:
		return "default"
	case 128:
		return p.Addr().String()
	}
	return p.String()
}

func routeGateway4(a netip.Addr) string {
	if !a.IsValid() || a.IsUnspecified() {
		return "--"
	}
	return a.Unmap().String()
}

func routeGateway6(a netip.Addr) string {
	if !a.IsValid() || a.IsUnspecified() {
		return "    --"
	}
	return a.String()
}

// routeJSON is one route in `netstat -rn -o json`.
type routeJSON struct {
	Family      string `json:"family"`
	Destination string `json:"destination"`
	Gateway     string `json:"gateway,omitempty"`
	Flags       string `json:"flags"`
	Ref         int    `json:"ref"`
	Interface   string `json:"interface"`
	Type        string `json:"type"`
	Zone        string `json:"zone,omitempty"`
}

// writeRoutesJSON writes the routes (IPv4 first) as one JSON array.
func writeRoutesJSON(w io.Writer, v4, v6 []ctl.RouteEntry) error {
	out := make([]routeJSON, 0, len(v4)+len(v6))
	for _, r := range append(append([]ctl.RouteEntry{}, v4...), v6...) {
		j := routeJSON{
			Family:      string(ctl.FamilyOf(r.Destination.Addr().Unmap())),
			Destination: r.Destination.String(),
			Flags:       r.Flags,
			Ref:         r.Refs,
			Interface:   r.Interface,
			Type:        r.Type,
			Zone:        r.Zone,
		}
		if r.Gateway.IsValid() {
			j.Gateway = r.Gateway.String()
		}
		out = append(out, j)
	}
	return writeJSON(w, out)
}
