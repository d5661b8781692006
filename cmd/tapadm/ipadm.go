package main

// The ipadm verb, protocol and interface properties for now: set-prop,
// reset-prop, show-prop and show-ifprop over SIOCSETPROP and SIOCGETPROP.
// Nothing is persisted yet (PERSISTENT is always "--"; -t is accepted and
// changes nothing).

import (
	"context"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/tapstack/tapstack/ctl"
)

const ipadmUsage = `  tapadm ipadm set-prop [-t] -p PROP=VALUE|PROP+=VALUE|PROP-=VALUE PROTO
  tapadm ipadm reset-prop [-t] -p PROP PROTO
  tapadm ipadm show-prop [-p PROP[,...]] [PROTO] [-o json]
  tapadm ipadm show-ifprop [-p PROP[,...]] [-m ipv4|ipv6] IF [-o json]
`

func ipadmUsagef(format string, args ...any) error {
	return usagef("ipadm", format, args...)
}

// propProtos are the protocols show-prop lists a property of ctl.PropNames
// (the table of ifmgr/props.go) under, when no protocol is named:
// forwarding under ipv4 and ipv6, the underscore-prefixed tunables under
// ip. mtu is a property of interfaces only (show-ifprop). A name the table
// does not know is asked for under ip, for the daemon to refuse.
func propProtos(name string) []string {
	switch name {
	case "forwarding":
		return []string{"ipv4", "ipv6"}
	case "mtu":
		return nil
	}
	return []string{"ip"}
}

// ifProps are the per-interface properties show-ifprop lists by default.
var ifProps = []string{"forwarding", "mtu"}

// ipadmOpts are the options of one ipadm subcommand.
type ipadmOpts struct {
	temp  bool     // -t
	props []string // -p, split at commas (set-prop: one PROP=VALUE)
	proto string   // -m
	pos   []string
	json  bool
}

// parseIpadmOpts parses the options of sub; allowed lists the letters it
// takes ("tp" for set-prop).
func parseIpadmOpts(sub string, args []string, allowed string) (ipadmOpts, error) {
	var o ipadmOpts
	args, jsonOut, err := stripJSON("ipadm", args)
	o.json = jsonOut
	if err != nil {
		return o, err
	}
	if o.json && !strings.HasPrefix(sub, "show-") {
		return o, ipadmUsagef("%s has no output to format", sub)
	}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if len(arg) < 2 || arg[0] != '-' {
			o.pos = append(o.pos, arg)
			continue
		}
		c := arg[1]
		if !strings.ContainsRune(allowed, rune(c)) || len(arg) > 2 && c == 't' {
			return o, ipadmUsagef("%s: unsupported option %s", sub, arg)
		}
		if c == 't' {
			o.temp = true
			continue
		}
		val := arg[2:]
		if val == "" {
			if i+1 >= len(args) {
				return o, ipadmUsagef("%s: -%c needs an argument", sub, c)
			}
			i++
			val = args[i]
		}
		switch c {
		case 'p':
			if sub == "set-prop" {
				o.props = append(o.props, val)
				continue
			}
			for _, p := range strings.Split(val, ",") {
				if p == "" {
					return o, ipadmUsagef("%s: empty property name in %q", sub, val)
				}
				o.props = append(o.props, p)
			}
		case 'm':
			if val != "ipv4" && val != "ipv6" {
				return o, ipadmUsagef("%s: -m takes ipv4 or ipv6, not %q", sub, val)
			}
			o.proto = val
		}
	}
	return o, nil
}

// ipadm runs the ipadm verb.
func (a *app) ipadm(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return ipadmUsagef("missing subcommand")
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "set-prop", "reset-prop":
		p, err := parseSetProp(sub, rest)
		if err != nil {
			return err
		}
		r, err := a.conn()
		if err != nil {
			return err
		}
		return r.Do(ctx, "SIOCSETPROP", "", p, nil)
	case "show-prop":
		o, err := parseIpadmOpts(sub, rest, "p")
		if err != nil {
			return err
		}
		if len(o.pos) > 1 {
			return ipadmUsagef("show-prop takes at most one protocol")
		}
		proto := ""
		if len(o.pos) == 1 {
			proto = o.pos[0]
		}
		rows, err := a.showProp(ctx, showPropRows(o.props, proto))
		if err != nil {
			return err
		}
		if o.json {
			return writeJSON(a.stdout, rows)
		}
		return writeProps(a.stdout, propColumns, rows, false)
	case "show-ifprop":
		o, err := parseIpadmOpts(sub, rest, "pm")
		if err != nil {
			return err
		}
		if len(o.pos) != 1 {
			return ipadmUsagef("show-ifprop takes exactly one interface")
		}
		rows, err := a.showIfProp(ctx, o.pos[0], o.props, o.proto)
		if err != nil {
			return err
		}
		if o.json {
			return writeJSON(a.stdout, rows)
		}
		return writeProps(a.stdout, ifPropColumns, rows, true)
	default:
		return ipadmUsagef("unknown subcommand %q", sub)
	}
}

// parseSetProp makes the SIOCSETPROP argument of set-prop or reset-prop.
//
// Equivalent to: `ipadm set-prop -p _arp_probe_count=5 ip` is SIOCSETPROP
// {mpr_proto ip, mpr_name _arp_probe_count, mpr_val 5, MOD_PROP_ACTIVE};
// reset-prop sends MOD_PROP_DEFAULT instead.
func parseSetProp(sub string, args []string) (ctl.Prop, error) {
	var p ctl.Prop
	o, err := parseIpadmOpts(sub, args, "tp")
	if err != nil {
		return p, err
	}
	if len(o.props) != 1 {
		return p, ipadmUsagef("%s takes exactly one -p", sub)
	}
	if len(o.pos) != 1 || o.pos[0] == "" {
		return p, ipadmUsagef("%s takes exactly one protocol (ip, ipv4, ipv6, ...)", sub)
	}
	p.Proto = o.pos[0]
	spec := o.props[0]
	if sub == "reset-prop" {
		if spec == "" || strings.ContainsAny(spec, "=,") {
			return p, ipadmUsagef("reset-prop takes -p PROP, not %q", spec)
		}
		p.Name, p.Flags = spec, ctl.MOD_PROP_DEFAULT
		return p, nil
	}
	name, val, ok := strings.Cut(spec, "=")
	if !ok {
		return p, ipadmUsagef("set-prop takes -p PROP=VALUE, not %q", spec)
	}
	p.Flags = ctl.MOD_PROP_ACTIVE
	if n, ok := strings.CutSuffix(name, "+"); ok {
		name, p.Flags = n, p.Flags|ctl.MOD_PROP_APPEND
	} else if n, ok := strings.CutSuffix(name, "-"); ok {
		name, p.Flags = n, p.Flags|ctl.MOD_PROP_REMOVE
	}
	if name == "" {
		return p, ipadmUsagef("set-prop: missing property name in %q", spec)
	}
	p.Name, p.Val = name, val
	return p, nil
}

// propRow is one line of show-prop or show-ifprop.
type propRow struct {
	Ifname     string `json:"ifname,omitempty"`
	Proto      string `json:"proto"`
	Property   string `json:"property"`
	Perm       string `json:"perm"`
	Current    string `json:"current"`
	Persistent string `json:"persistent"`
	Default    string `json:"default"`
	Possible   string `json:"possible"`
}

// showPropRows lists the (protocol, property) pairs show-prop asks for:
// the named properties (each under proto, or under the protocols
// propProtos gives), or every property of ctl.PropNames, ordered by
// protocol then name as ipadm does.
func showPropRows(names []string, proto string) []propRow {
	var rows []propRow
	if len(names) > 0 {
		for _, n := range names {
			protos := []string{proto}
			if proto == "" {
				if protos = propProtos(n); len(protos) == 0 {
					protos = []string{"ip"}
				}
			}
			for _, p := range protos {
				rows = append(rows, propRow{Proto: p, Property: n})
			}
		}
		return rows
	}
	for _, n := range ctl.PropNames {
		for _, p := range propProtos(n) {
			if proto == "" || p == proto {
				rows = append(rows, propRow{Proto: p, Property: n})
			}
		}
	}
	slices.SortStableFunc(rows, func(a, b propRow) int { return strings.Compare(a.Proto, b.Proto) })
	return rows
}

// getProp asks for one value (MOD_PROP_ACTIVE, DEFAULT, POSSIBLE or PERM)
// of a property.
func getProp(ctx context.Context, r requester, p ctl.Prop, flag int) (string, error) {
	p.Flags = flag
	var got ctl.Prop
	if err := r.Do(ctx, "SIOCGETPROP", "", p, &got); err != nil {
		return "", err
	}
	return got.Val, nil
}

// fillProp fills a row's PERM, CURRENT, DEFAULT and POSSIBLE. For an
// interface's property, a value the daemon does not keep (ENOTSUP: the
// mtu's PERM) is left empty ("--").
func fillProp(ctx context.Context, r requester, row *propRow) error {
	p := ctl.Prop{Proto: row.Proto, Name: row.Property, Ifname: row.Ifname}
	for _, f := range []struct {
		flag int
		dst  *string
	}{
		{ctl.MOD_PROP_PERM, &row.Perm},
		{ctl.MOD_PROP_ACTIVE, &row.Current},
		{ctl.MOD_PROP_DEFAULT, &row.Default},
		{ctl.MOD_PROP_POSSIBLE, &row.Possible},
	} {
		if f.dst == &row.Current && row.Property == "mtu" && row.Ifname != "" {
			continue // filled from SIOCGLIFMTU by showIfProp
		}
		v, err := getProp(ctx, r, p, f.flag)
		if row.Ifname != "" && ctl.ErrnoOf(err) == ctl.ENOTSUP {
			continue
		}
		if err != nil {
			return err
		}
		*f.dst = v
	}
	return nil
}

// showProp fetches the rows' values.
func (a *app) showProp(ctx context.Context, rows []propRow) ([]propRow, error) {
	r, err := a.conn()
	if err != nil {
		return nil, err
	}
	for i := range rows {
		if err := fillProp(ctx, r, &rows[i]); err != nil {
			return nil, err
		}
	}
	if rows == nil {
		rows = []propRow{}
	}
	return rows, nil
}

// showIfProp fetches the properties of one interface, for one protocol
// or both. The mtu's current value is the interface's (SIOCGLIFMTU); the
// daemon keeps only its default and range as a property. Without -m, a
// protocol the interface is not plumbed for (ENXIO) is left out.
func (a *app) showIfProp(ctx context.Context, ifname string, names []string, proto string) ([]propRow, error) {
	if len(names) == 0 {
		names = ifProps
	}
	protos := []string{"ipv4", "ipv6"}
	if proto != "" {
		protos = []string{proto}
	}
	r, err := a.conn()
	if err != nil {
		return nil, err
	}
	rows := []propRow{}
	var missing error
	for _, n := range names {
		for _, p := range protos {
			row := propRow{Ifname: ifname, Proto: p, Property: n}
			err := fillProp(ctx, r, &row)
			if err == nil && n == "mtu" {
				fam := ctl.AF_INET
				if p == "ipv6" {
					fam = ctl.AF_INET6
				}
				var lr ctl.Lifreq
				if err = r.Do(ctx, "SIOCGLIFMTU", fam, ctl.Lifreq{Name: ifname}, &lr); err == nil {
					row.Current = strconv.FormatInt(lr.MTU, 10)
				}
			}
			if proto == "" && ctl.ErrnoOf(err) == ctl.ENXIO {
				if missing == nil {
					missing = err
				}
				continue
			}
			if err != nil {
				return nil, err
			}
			rows = append(rows, row)
		}
	}
	if len(rows) == 0 && missing != nil {
		return nil, missing
	}
	return rows, nil
}

// propColumns are show-prop's fields, ifPropColumns show-ifprop's
// (illumos widths).
var (
	propColumns = []column{{"PROTO", 6}, {"PROPERTY", 20}, {"PERM", 5}, {"CURRENT", 14},
		{"PERSISTENT", 14}, {"DEFAULT", 14}, {"POSSIBLE", 20}}
	ifPropColumns = []column{{"IFNAME", 12}, {"PROPERTY", 16}, {"PROTO", 6}, {"PERM", 5},
		{"CURRENT", 11}, {"PERSISTENT", 11}, {"DEFAULT", 11}, {"POSSIBLE", 16}}
)

func writeProps(w io.Writer, cols []column, rows []propRow, perIf bool) error {
	out := make([][]string, 0, len(rows))
	for _, r := range rows {
		vals := []string{r.Proto, r.Property, r.Perm, r.Current, r.Persistent, r.Default, r.Possible}
		if perIf {
			vals = []string{r.Ifname, r.Property, r.Proto, r.Perm, r.Current, r.Persistent, r.Default, r.Possible}
		}
		out = append(out, vals)
	}
	return writeTable(w, cols, out)
}
