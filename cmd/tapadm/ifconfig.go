package main

// The ifconfig verb: a command line becomes either a status query (one
// interface, or -a for all) or a plan of requests that is checked completely
// before the first one is sent.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/tapstack/tapstack/ctl"
)

const ifconfigUsage = `  tapadm ifconfig -a [-o json]
  tapadm ifconfig IF[:N] [inet|inet6] [-o json]
  tapadm ifconfig IF [inet|inet6] plumb | unplumb
  tapadm ifconfig IF[:N] [inet|inet6] [ADDR[/PREFIX] [DEST]] [netmask M|+] [broadcast B|+]
                         [destination D] [up|down] [mtu N] [metric N] [zone Z|-zone] [[-]FLAG]...
  tapadm ifconfig IF[:N] [inet|inet6] addif ADDR[/PREFIX] [up]
  tapadm ifconfig IF [inet|inet6] removeif ADDR
`

// lifcAll is the lifc_flags of `ifconfig -a`, as illumos asks: every
// address, including NOXMIT and TEMPORARY ones, those of all zones and those
// on IPMP underlying interfaces.
const lifcAll = ctl.LIFC_NOXMIT | ctl.LIFC_TEMPORARY | ctl.LIFC_ALLZONES | ctl.LIFC_UNDER_IPMP

// ifconfigCmd is a parsed ifconfig command line.
type ifconfigCmd struct {
	show bool // status display rather than a change
	json bool // -o json

	// -a[ud46]: every logical interface of families, filtered on flags.
	all      bool
	families []ctl.Family
	on, off  ctl.Flags

	name        string
	family      ctl.Family // the socket family: AF_INET unless inet6 was given
	familyGiven bool

	steps []step // requests to send, in order
}

type stepKind int

const (
	stepSend  stepKind = iota // send op with req, lifr_name filled in
	stepFlags                 // SIOCGLIFFLAGS, then SIOCSLIFFLAGS with set/clear applied
	stepAddif                 // SIOCLIFADDIF; later steps act on the new unit
	stepZone                  // SIOCSLIFZONE to zone zone, its id asked of the daemon
)

// step is one action of an ifconfig plan.
type step struct {
	kind       stepKind
	op         string
	req        ctl.Lifreq
	set, clear ctl.Flags
	zone       string // stepZone: the zone's name
}

// flagWord is a keyword that sets or clears interface flags.
type flagWord struct {
	set, clear ctl.Flags
	only       ctl.Family
}

// flagWords are the ifconfig keywords that set or clear one interface flag
// (illumos ifconfig's table). only restricts a keyword to one family.
var flagWords = map[string]flagWord{
	"up":          {set: ctl.IFF_UP},
	"down":        {clear: ctl.IFF_UP},
	"arp":         {clear: ctl.IFF_NOARP, only: ctl.AF_INET},
	"-arp":        {set: ctl.IFF_NOARP, only: ctl.AF_INET},
	"trailers":    {clear: ctl.IFF_NOTRAILERS},
	"-trailers":   {set: ctl.IFF_NOTRAILERS},
	"router":      {set: ctl.IFF_ROUTER},
	"-router":     {clear: ctl.IFF_ROUTER},
	"private":     {set: ctl.IFF_PRIVATE},
	"-private":    {clear: ctl.IFF_PRIVATE},
	"xmit":        {clear: ctl.IFF_NOXMIT},
	"-xmit":       {set: ctl.IFF_NOXMIT},
	"nud":         {clear: ctl.IFF_NONUD, only: ctl.AF_INET6},
	"-nud":        {set: ctl.IFF_NONUD, only: ctl.AF_INET6},
	"anycast":     {set: ctl.IFF_ANYCAST},
	"-anycast":    {clear: ctl.IFF_ANYCAST},
	"local":       {clear: ctl.IFF_NOLOCAL},
	"-local":      {set: ctl.IFF_NOLOCAL},
	"deprecated":  {set: ctl.IFF_DEPRECATED},
	"-deprecated": {clear: ctl.IFF_DEPRECATED},
	"preferred":   {set: ctl.IFF_PREFERRED, only: ctl.AF_INET6},
	"-preferred":  {clear: ctl.IFF_PREFERRED, only: ctl.AF_INET6},
	"failover":    {clear: ctl.IFF_NOFAILOVER},
	"-failover":   {set: ctl.IFF_NOFAILOVER},
	"standby":     {set: ctl.IFF_STANDBY},
	"-standby":    {clear: ctl.IFF_STANDBY},
}

// notYet are illumos ifconfig keywords whose requests tapadm does not send
// yet; naming them gives a clearer error than "bad address".
var notYet = map[string]bool{
	"index": true, "group": true, "ipmp": true, "usesrc": true,
	"token": true, "subnet": true,
	"ether": true, "dhcp": true, "auto-dhcp": true, "set": true, "tsrc": true,
	"tdst": true, "configinfo": true, "modlist": true, "modinsert": true,
	"modremove": true, "encaplimit": true, "-encaplimit": true,
	"thoplimit": true, "failed": true, "-failed": true,
}

func ifconfigUsagef(format string, args ...any) error {
	return usagef("ifconfig", format, args...)
}

// parseIfconfig turns an ifconfig command line (after the verb) into a
// status query or a complete request plan. It sends nothing.
func parseIfconfig(args []string) (*ifconfigCmd, error) {
	cmd := &ifconfigCmd{family: ctl.AF_INET}
	args, json, err := stripJSON("ifconfig", args)
	if err != nil {
		return nil, err
	}
	cmd.json = json
	if len(args) == 0 {
		return nil, ifconfigUsagef("missing interface name or -a")
	}
	if strings.HasPrefix(args[0], "-") {
		if err := cmd.parseAll(args[0]); err != nil {
			return nil, err
		}
		if len(args) > 1 {
			return nil, ifconfigUsagef("%s takes no further arguments (only -o json)", args[0])
		}
		return cmd, nil
	}
	cmd.name = args[0]
	if err := checkLifName(cmd.name); err != nil {
		return nil, err
	}
	rest := args[1:]
	if len(rest) > 0 && (rest[0] == "inet" || rest[0] == "inet6") {
		cmd.family = ctl.Family(rest[0])
		cmd.familyGiven = true
		rest = rest[1:]
	}
	if len(rest) == 0 {
		cmd.show = true
		return cmd, nil
	}
	if cmd.json {
		return nil, ifconfigUsagef("-o json applies only to showing interfaces")
	}
	steps, err := parsePlan(cmd.family, rest)
	if err != nil {
		return nil, err
	}
	cmd.steps = steps
	return cmd, nil
}

// parseAll parses -a and its companions: u (up only), d (down only), 4, 6.
func (cmd *ifconfigCmd) parseAll(opt string) error {
	cmd.show = true
	var v4, v6 bool
	for _, c := range opt[1:] {
		switch c {
		case 'a':
			cmd.all = true
		case 'u':
			cmd.on |= ctl.IFF_UP
		case 'd':
			cmd.off |= ctl.IFF_UP
		case '4':
			v4 = true
		case '6':
			v6 = true
		default:
			return ifconfigUsagef("unknown option -%c", c)
		}
	}
	if !cmd.all {
		return ifconfigUsagef("%s: options other than -a need -a", opt)
	}
	if v4 || !v6 {
		cmd.families = append(cmd.families, ctl.AF_INET)
	}
	if v6 || !v4 {
		cmd.families = append(cmd.families, ctl.AF_INET6)
	}
	return nil
}

// checkLifName rejects what cannot be a logical interface name (LIFNAMSIZ
// is 32 with the NUL).
func checkLifName(name string) error {
	if name == "" || len(name) > 31 || strings.ContainsAny(name, " \t\n/") {
		return ifconfigUsagef("bad interface name %q", name)
	}
	return nil
}

// segment collects the arguments between two plan boundaries (plumb,
// unplumb, addif, removeif) so they can be ordered as illumos ifconfig
// effectively applies them: netmask, then address (so the address is
// interpreted with its mask), then the rest in argument order, flag changes
// last.
type segment struct {
	family  ctl.Family
	addr    netip.Addr // local address to set
	prefix  int        // from ADDR/PREFIX; -1 if none
	mask    netip.Addr // last netmask/PREFIX argument
	dst     netip.Addr // a second bare address: the point-to-point destination
	inPlace []step     // netmask, broadcast, destination, mtu, metric
	flags   []step
}

func newSegment(f ctl.Family) *segment { return &segment{family: f, prefix: -1} }

// steps returns the segment's requests in the order they are sent.
func (s *segment) steps() []step {
	var out []step
	if s.addr.IsValid() {
		mask := s.mask
		if s.prefix >= 0 {
			mask = maskOf(s.prefix, s.family) // a prefix overrides netmask
		}
		if mask.IsValid() {
			out = append(out, step{op: "SIOCSLIFNETMASK", req: ctl.Lifreq{Addr: mask}})
		}
		out = append(out, step{op: "SIOCSLIFADDR", req: ctl.Lifreq{Addr: s.addr}})
		if s.dst.IsValid() {
			out = append(out, step{op: "SIOCSLIFDSTADDR", req: ctl.Lifreq{Dstaddr: s.dst}})
		}
	}
	for _, st := range s.inPlace {
		if st.op == "SIOCSLIFNETMASK" && s.addr.IsValid() {
			continue // sent just before the address
		}
		out = append(out, st)
	}
	return append(out, s.flags...)
}

// parsePlan parses the change arguments of ifconfig into the requests to
// send, left to right, in segments split by plumb, unplumb, addif and
// removeif.
func parsePlan(f ctl.Family, args []string) ([]step, error) {
	var plan []step
	seg := newSegment(f)
	flush := func() {
		plan = append(plan, seg.steps()...)
		seg = newSegment(f)
	}
	for i := 0; i < len(args); i++ {
		arg, v := args[i], ""
		if argKeywords[arg] {
			if i+1 >= len(args) {
				return nil, ifconfigUsagef("%s needs an argument", arg)
			}
			i++
			v = args[i]
		}
		if fw, ok := flagWords[arg]; ok {
			if fw.only != "" && fw.only != f {
				return nil, ifconfigUsagef("%s is not supported for %s", arg, f)
			}
			seg.flags = append(seg.flags, step{kind: stepFlags, set: fw.set, clear: fw.clear})
			continue
		}
		switch arg {
		case "plumb", "unplumb":
			flush()
			if arg == "plumb" {
				fl := ctl.IFF_IPV4
				if f == ctl.AF_INET6 {
					fl = ctl.IFF_IPV6
				}
				plan = append(plan, step{op: "SIOCSLIFNAME", req: ctl.Lifreq{PPA: 0, Flags: fl}})
			} else {
				plan = append(plan, step{op: "unplumb"})
			}
		case "addif":
			flush()
			plan = append(plan, step{kind: stepAddif, op: "SIOCLIFADDIF"})
			if err := seg.setAddr(v); err != nil {
				return nil, err
			}
		case "removeif":
			a, err := parseAddr(v, f)
			if err != nil {
				return nil, err
			}
			flush()
			plan = append(plan, step{op: "SIOCLIFREMOVEIF", req: ctl.Lifreq{Addr: a}})
		case "netmask":
			if f != ctl.AF_INET {
				return nil, ifconfigUsagef("netmask is not supported for %s; use ADDR/PREFIX", f)
			}
			if v == "+" {
				continue // the class default: the daemon derives it
			}
			m, err := parseNetmask(v)
			if err != nil {
				return nil, err
			}
			seg.mask = m
			seg.inPlace = append(seg.inPlace, step{op: "SIOCSLIFNETMASK", req: ctl.Lifreq{Addr: m}})
		case "broadcast":
			if f != ctl.AF_INET {
				return nil, ifconfigUsagef("broadcast is not supported for %s", f)
			}
			if v == "+" {
				continue // recomputed by the daemon from address and mask
			}
			b, err := parseAddr(v, f)
			if err != nil {
				return nil, err
			}
			seg.inPlace = append(seg.inPlace, step{op: "SIOCSLIFBRDADDR", req: ctl.Lifreq{Broadaddr: b}})
		case "destination":
			d, err := parseAddr(v, f)
			if err != nil {
				return nil, err
			}
			seg.inPlace = append(seg.inPlace, step{op: "SIOCSLIFDSTADDR", req: ctl.Lifreq{Dstaddr: d}})
		case "mtu":
			n, err := strconv.ParseUint(v, 10, 31)
			if err != nil || n == 0 {
				return nil, ifconfigUsagef("bad mtu %q", v)
			}
			seg.inPlace = append(seg.inPlace, step{op: "SIOCSLIFMTU", req: ctl.Lifreq{MTU: int64(n)}})
		case "metric":
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil || n < 0 {
				return nil, ifconfigUsagef("bad metric %q", v)
			}
			seg.inPlace = append(seg.inPlace, step{op: "SIOCSLIFMETRIC", req: ctl.Lifreq{Metric: int(n)}})
		case "zone":
			seg.inPlace = append(seg.inPlace, step{kind: stepZone, op: "SIOCSLIFZONE", zone: v})
		case "-zone":
			seg.inPlace = append(seg.inPlace, step{op: "SIOCSLIFZONE", req: ctl.Lifreq{ZoneID: ctl.GLOBAL_ZONEID}})
		case "all-zones":
			seg.inPlace = append(seg.inPlace, step{op: "SIOCSLIFZONE", req: ctl.Lifreq{ZoneID: ctl.ALL_ZONES}})
		case "auto-revarp":
			return nil, ifconfigUsagef("auto-revarp is not supported")
		case "inet", "inet6":
			return nil, ifconfigUsagef("the address family (%s) must come right after the interface name", arg)
		default:
			if notYet[arg] {
				return nil, ifconfigUsagef("%s is not supported by tapadm yet", arg)
			}
			if strings.HasPrefix(arg, "/") {
				// "/PREFIX" alone sets just the netmask, as in illumos.
				n, err := parsePrefixLen(arg[1:], f)
				if err != nil {
					return nil, err
				}
				m := maskOf(n, f)
				seg.mask = m
				seg.inPlace = append(seg.inPlace, step{op: "SIOCSLIFNETMASK", req: ctl.Lifreq{Addr: m}})
				continue
			}
			if !seg.addr.IsValid() {
				if err := seg.setAddr(arg); err != nil {
					return nil, err
				}
				continue
			}
			// A second address is the destination of a point-to-point unit.
			if seg.dst.IsValid() {
				return nil, ifconfigUsagef("unexpected argument %q", arg)
			}
			d, err := parseAddr(arg, f)
			if err != nil {
				return nil, err
			}
			seg.dst = d
		}
	}
	flush()
	return plan, nil
}

// setAddr records ADDR[/PREFIX] as the segment's local address.
func (s *segment) setAddr(v string) error {
	addr, plen, found := strings.Cut(v, "/")
	a, err := parseAddr(addr, s.family)
	if err != nil {
		return err
	}
	s.addr = a
	if found {
		n, err := parsePrefixLen(plen, s.family)
		if err != nil {
			return err
		}
		s.prefix = n
	}
	return nil
}

// parseAddr parses an address of family f (no hostnames, no zones).
func parseAddr(s string, f ctl.Family) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		if isKeyword(s) {
			return netip.Addr{}, ifconfigUsagef("expected an address, got keyword %q", s)
		}
		return netip.Addr{}, ifconfigUsagef("unknown argument or bad address %q", s)
	}
	switch {
	case f == ctl.AF_INET6 && !a.Is6():
		return netip.Addr{}, ifconfigUsagef("%s is not an IPv6 address", s)
	case f != ctl.AF_INET6 && !a.Is4():
		return netip.Addr{}, ifconfigUsagef("%s is not an IPv4 address (use inet6 for IPv6)", s)
	}
	return a, nil
}

// argKeywords are the ifconfig keywords that take an argument.
var argKeywords = map[string]bool{
	"addif": true, "removeif": true, "netmask": true, "broadcast": true,
	"destination": true, "mtu": true, "metric": true, "zone": true,
}

// isKeyword reports whether s is an ifconfig keyword of any kind.
func isKeyword(s string) bool {
	if _, isFlag := flagWords[s]; isFlag {
		return true
	}
	switch s {
	case "plumb", "unplumb", "auto-revarp", "inet", "inet6":
		return true
	}
	return argKeywords[s] || notYet[s]
}

// parsePrefixLen parses the PREFIX of ADDR/PREFIX for family f.
func parsePrefixLen(s string, f ctl.Family) (int, error) {
	limit := 32
	if f == ctl.AF_INET6 {
		limit = 128
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > limit || strings.HasPrefix(s, "+") {
		return 0, ifconfigUsagef("bad prefix length %q", s)
	}
	return n, nil
}

// parseNetmask parses an IPv4 netmask given as 0xffffff00, ffffff00 or
// 255.255.255.0.
func parseNetmask(s string) (netip.Addr, error) {
	bad := ifconfigUsagef("bad netmask %q (use 0xffffff00, ffffff00 or 255.255.255.0)", s)
	if strings.Contains(s, ".") {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return netip.Addr{}, bad
		}
		return a, nil
	}
	hex := s
	if h, ok := strings.CutPrefix(strings.ToLower(s), "0x"); ok {
		hex = h
		if hex == "" || len(hex) > 8 {
			return netip.Addr{}, bad
		}
	} else if len(hex) != 8 {
		return netip.Addr{}, bad
	}
	v, err := strconv.ParseUint(hex, 16, 32)
	if err != nil {
		return netip.Addr{}, bad
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), nil
}

// stripJSON removes "-o json" from args, wherever it appears.
func stripJSON(cmd string, args []string) (rest []string, json bool, err error) {
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-o":
			if i+1 >= len(args) {
				return nil, false, usagef(cmd, "-o needs an argument (json)")
			}
			if args[i+1] != "json" {
				return nil, false, usagef(cmd, "unsupported output format %q (only json)", args[i+1])
			}
			json = true
			i++
		case a == "-ojson" || a == "-o=json":
			json = true
		default:
			rest = append(rest, a)
		}
	}
	return rest, json, nil
}

// ifconfig runs the ifconfig verb.
func (a *app) ifconfig(ctx context.Context, args []string) error {
	cmd, err := parseIfconfig(args)
	if err != nil {
		return err
	}
	r, err := a.conn()
	if err != nil {
		return err
	}
	if !cmd.show {
		return a.execPlan(ctx, r, cmd)
	}
	var lifs []lifStatus
	if cmd.all {
		lifs, err = listAll(ctx, r, cmd)
	} else {
		var l lifStatus
		l, err = queryLif(ctx, r, cmd.name, cmd.family, !cmd.familyGiven)
		lifs = []lifStatus{l}
	}
	if err != nil {
		return err
	}
	if cmd.json {
		return writeIfconfigJSON(a.stdout, lifs)
	}
	return writeIfconfig(a.stdout, lifs)
}

// execPlan sends the plan's requests in order and stops at the first error.
// Equivalent to illumos ifconfig, which exits on the first failed ioctl.
func (a *app) execPlan(ctx context.Context, r requester, cmd *ifconfigCmd) error {
	name := cmd.name
	f := cmd.family
	for _, s := range cmd.steps {
		switch s.kind {
		case stepAddif:
			var res ctl.Lifreq
			if err := r.Do(ctx, s.op, f, ctl.Lifreq{Name: name}, &res); err != nil {
				return err
			}
			if res.Name == "" {
				return fmt.Errorf("%s: the daemon did not return the new interface's name", s.op)
			}
			name = res.Name
			if _, err := fmt.Fprintf(a.stdout, "Created new logical interface %s\n", name); err != nil {
				return err
			}
		case stepZone:
			id, err := zoneIDByName(ctx, r, s.zone)
			if err != nil {
				return err
			}
			if err := r.Do(ctx, s.op, f, ctl.Lifreq{Name: name, ZoneID: id}, nil); err != nil {
				return err
			}

		case stepFlags:
			var cur ctl.Lifreq
			if err := r.Do(ctx, "SIOCGLIFFLAGS", f, ctl.Lifreq{Name: name}, &cur); err != nil {
				return err
			}
			req := ctl.Lifreq{Name: name, Flags: (cur.Flags | s.set) &^ s.clear}
			if err := r.Do(ctx, "SIOCSLIFFLAGS", f, req, nil); err != nil {
				return err
			}
			if req.Flags&ctl.IFF_UP != 0 {
				// As illumos ifconfig: return once duplicate address
				// detection is over, so the address works (or is
				// reported as a duplicate).
				if err := r.Do(ctx, "wait-dad", f, ctl.WaitDAD{Name: name}, nil); err != nil {
					return err
				}
			}
		default:
			req := s.req
			req.Name = name
			if err := r.Do(ctx, s.op, f, req, nil); err != nil {
				return err
			}
		}
		if s.op == "SIOCSLIFZONE" {
			// An up unit changes zone by going down and up again.
			if err := r.Do(ctx, "wait-dad", f, ctl.WaitDAD{Name: name}, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// listAll gathers the status of every logical interface, IPv4 list then
// IPv6 list, as `ifconfig -a` does. Asking once per family (rather than
// once with AF_UNSPEC) tells each record's family even when it has no
// address. An interface that disappears while being listed is skipped.
func listAll(ctx context.Context, r requester, cmd *ifconfigCmd) ([]lifStatus, error) {
	var out []lifStatus
	for _, f := range cmd.families {
		var lc ctl.Lifconf
		if err := r.Do(ctx, "SIOCGLIFCONF", f, ctl.Lifconf{Family: f, Flags: lifcAll}, &lc); err != nil {
			return nil, err
		}
		for _, rec := range lc.Req {
			l, err := queryLif(ctx, r, rec.Name, f, true)
			if ctl.ErrnoOf(err) == ctl.ENXIO {
				continue // unplumbed meanwhile
			}
			if err != nil {
				return nil, err
			}
			if l.Flags&cmd.on != cmd.on || l.Flags&cmd.off != 0 {
				continue
			}
			out = append(out, l)
		}
	}
	return out, nil
}

// queryLif asks the daemon for what ifconfig shows about one logical
// interface, in the order illumos ifconfig asks: flags, metric, mtu, index,
// zone, address, netmask, destination or broadcast address, and, for unit 0
// when ether is wanted, the hardware address.
//
// As in illumos, an address the unit lacks (EADDRNOTAVAIL) shows as 0.0.0.0
// or ::, and the decorations (metric, zone, ether) are left out when the
// daemon will not give them; any other refusal is an error.
func queryLif(ctx context.Context, r requester, name string, f ctl.Family, ether bool) (lifStatus, error) {
	get := func(op string) (ctl.Lifreq, error) {
		var res ctl.Lifreq
		err := r.Do(ctx, op, f, ctl.Lifreq{Name: name}, &res)
		return res, err
	}
	// getAddr tolerates EADDRNOTAVAIL: the unit has no such address.
	getAddr := func(op string) (ctl.Lifreq, error) {
		res, err := get(op)
		if ctl.ErrnoOf(err) == ctl.EADDRNOTAVAIL {
			return ctl.Lifreq{}, nil
		}
		return res, err
	}
	// getOptional tolerates any refusal by the daemon.
	getOptional := func(op string) (ctl.Lifreq, bool, error) {
		res, err := get(op)
		var ce *ctl.Error
		if errors.As(err, &ce) {
			return ctl.Lifreq{}, false, nil
		}
		return res, err == nil, err
	}

	l := lifStatus{Name: displayName(name), Family: f}
	res, err := get("SIOCGLIFFLAGS")
	if err != nil {
		return l, err
	}
	l.Flags = res.Flags
	if res, _, err = getOptional("SIOCGLIFMETRIC"); err != nil {
		return l, err
	}
	l.Metric = res.Metric
	if res, err = get("SIOCGLIFMTU"); err != nil {
		return l, err
	}
	l.MTU = res.MTU
	if res, err = get("SIOCGLIFINDEX"); err != nil {
		return l, err
	}
	l.Index = res.Index
	if res, _, err = getOptional("SIOCGLIFZONE"); err != nil {
		return l, err
	}
	l.Zone = res.Zone
	if res, err = getAddr("SIOCGLIFADDR"); err != nil {
		return l, err
	}
	l.Addr = res.Addr
	addrlen := res.Addrlen
	if res, err = getAddr("SIOCGLIFNETMASK"); err != nil {
		return l, err
	}
	l.Netmask = res.Addr
	l.Prefixlen = addrlen
	if n, ok := maskBits(l.Netmask); ok && addrlen == 0 {
		l.Prefixlen = n
	}
	if l.Flags&ctl.IFF_POINTOPOINT != 0 {
		if res, err = getAddr("SIOCGLIFDSTADDR"); err != nil {
			return l, err
		}
		l.Dstaddr = res.Dstaddr
	}
	if l.Flags&ctl.IFF_BROADCAST != 0 {
		if res, err = getAddr("SIOCGLIFBRDADDR"); err != nil {
			return l, err
		}
		l.Broadaddr = res.Broadaddr
	}
	if ether && !strings.Contains(l.Name, ":") {
		res, ok, err := getOptional("SIOCGLIFHWADDR")
		if err != nil {
			return l, err
		}
		if ok && res.HWAddr != "" {
			l.Ether = formatMAC(res.HWAddr)
		}
	}
	return l, nil
}

// displayName is the name ifconfig prints: unit 0 without ":0".
func displayName(name string) string {
	return strings.TrimSuffix(name, ":0")
}
