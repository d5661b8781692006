package main

// The ipadm verb: address objects (create-addr, show-addr, ...),
// interfaces (create-ip, show-if, ...), and protocol, interface and
// address properties. The daemon keeps the address objects and, unless -t
// is given, records every change in its state file; tapadm only parses and
// formats. The property reads of show-prop go through SIOCGETPROP.

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"

	"github.com/tapstack/tapstack/ctl"
)

const ipadmUsage = `  tapadm ipadm create-ip [-t] IF | delete-ip IF
  tapadm ipadm disable-if [-t] IF | enable-if [-t] IF
  tapadm ipadm show-if [[-p] -o FIELD,...] [IF] [-o json]
  tapadm ipadm create-addr [-t] -T static -a [local=]ADDR/PREFIX[,remote=ADDR] IF/NAME
  tapadm ipadm create-addr [-t] -T addrconf IF/NAME
  tapadm ipadm delete-addr ADDROBJ
  tapadm ipadm show-addr [[-p] -o FIELD,...] [ADDROBJ|IF/] [-o json]
  tapadm ipadm up-addr|down-addr|refresh-addr|disable-addr|enable-addr [-t] ADDROBJ
  tapadm ipadm set-ifprop [-t] -p PROP=VALUE -m ipv4|ipv6 IF
  tapadm ipadm reset-ifprop [-t] -p PROP -m ipv4|ipv6 IF
  tapadm ipadm show-ifprop [-p PROP[,...]] [-m ipv4|ipv6] IF [-o json]
  tapadm ipadm set-addrprop [-t] -p PROP=VALUE ADDROBJ | reset-addrprop [-t] -p PROP ADDROBJ
  tapadm ipadm show-addrprop [-p PROP[,...]] [ADDROBJ] [-o json]
  tapadm ipadm set-prop [-t] -p PROP=VALUE|PROP+=VALUE|PROP-=VALUE PROTO
  tapadm ipadm reset-prop [-t] -p PROP PROTO
  tapadm ipadm show-prop [-p PROP[,...]] [PROTO] [-o json]
`

func ipadmUsagef(format string, args ...any) error {
	return usagef("ipadm", format, args...)
}

// ipadmOpts are the options of one ipadm subcommand.
type ipadmOpts struct {
	temp     bool     // -t
	parsable bool     // -p of show-addr and show-if
	props    []string // -p, split at commas (set-*: one PROP=VALUE)
	proto    string   // -m
	typ      string   // -T
	addr     string   // -a
	fields   []string // -o FIELD,...
	pos      []string
	json     bool
}

// ipadmSpec says which options a subcommand takes: bools without an
// argument, args with one, fields whether -o also selects fields.
type ipadmSpec struct {
	bools, args string
	fields      bool
}

var ipadmSpecs = map[string]ipadmSpec{
	"create-ip": {bools: "t"}, "delete-ip": {}, "enable-if": {bools: "t"}, "disable-if": {bools: "t"},
	"show-if":     {bools: "p", args: "o", fields: true},
	"create-addr": {bools: "t", args: "Ta"}, "delete-addr": {},
	"show-addr": {bools: "p", args: "o", fields: true},
	"up-addr":   {bools: "t"}, "down-addr": {bools: "t"}, "refresh-addr": {bools: "t"},
	"disable-addr": {bools: "t"}, "enable-addr": {bools: "t"},
	"set-ifprop": {bools: "t", args: "pm"}, "reset-ifprop": {bools: "t", args: "pm"},
	"show-ifprop":  {args: "pmo"},
	"set-addrprop": {bools: "t", args: "p"}, "reset-addrprop": {bools: "t", args: "p"},
	"show-addrprop": {args: "po"},
	"set-prop":      {bools: "t", args: "p"}, "reset-prop": {bools: "t", args: "p"},
	"show-prop": {args: "po"},
}

// parseIpadmOpts parses the options of sub (options and operands may be
// mixed, as illumos getopt allows for ipadm).
func parseIpadmOpts(sub string, args []string) (ipadmOpts, error) {
	var o ipadmOpts
	spec := ipadmSpecs[sub]
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if len(arg) < 2 || arg[0] != '-' {
			o.pos = append(o.pos, arg)
			continue
		}
		c := rune(arg[1])
		if c == 'o' && !strings.ContainsRune(spec.args, 'o') {
			// -o json is for show commands only.
			val := arg[2:]
			if val == "" && i+1 < len(args) {
				val = args[i+1]
			}
			if val == "json" || val == "=json" {
				return o, ipadmUsagef("%s has no output to format", sub)
			}
		}
		if strings.ContainsRune(spec.bools, c) {
			if len(arg) > 2 {
				return o, ipadmUsagef("%s: unsupported option %s", sub, arg)
			}
			switch c {
			case 't':
				o.temp = true
			case 'p':
				o.parsable = true
			}
			continue
		}
		if !strings.ContainsRune(spec.args, c) {
			return o, ipadmUsagef("%s: unsupported option %s", sub, arg)
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
			if strings.HasPrefix(sub, "set-") || strings.HasPrefix(sub, "reset-") {
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
		case 'T':
			o.typ = val
		case 'a':
			o.addr = val
		case 'o':
			val = strings.TrimPrefix(val, "=")
			switch {
			case val == "json":
				o.json = true
			case spec.fields:
				o.fields = strings.Split(strings.ToLower(val), ",")
			default:
				return o, ipadmUsagef("unsupported output format %q (only json)", val)
			}
		}
	}
	if o.parsable && len(o.fields) == 0 {
		return o, ipadmUsagef("%s: -p needs -o FIELD,...", sub)
	}
	if o.parsable && o.json {
		return o, ipadmUsagef("%s: -p and -o json do not go together", sub)
	}
	return o, nil
}

// operand returns the one operand of a subcommand that takes exactly one.
func (o ipadmOpts) operand(sub, what string) (string, error) {
	if len(o.pos) != 1 || o.pos[0] == "" {
		return "", ipadmUsagef("%s takes exactly one %s", sub, what)
	}
	return o.pos[0], nil
}

// optionalOperand returns the operand of a subcommand that takes at most
// one ("" if none).
func (o ipadmOpts) optionalOperand(sub, what string) (string, error) {
	if len(o.pos) > 1 {
		return "", ipadmUsagef("%s takes at most one %s", sub, what)
	}
	if len(o.pos) == 1 {
		return o.pos[0], nil
	}
	return "", nil
}

// ipadm runs the ipadm verb.
func (a *app) ipadm(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return ipadmUsagef("missing subcommand")
	}
	sub, rest := args[0], args[1:]
	if _, ok := ipadmSpecs[sub]; !ok {
		return ipadmUsagef("unknown subcommand %q", sub)
	}
	o, err := parseIpadmOpts(sub, rest)
	if err != nil {
		return err
	}
	if err := checkFields(sub, o.fields); err != nil {
		return err
	}
	op, arg, err := ipadmRequest(sub, o)
	if err != nil {
		return err
	}
	r, err := a.conn()
	if err != nil {
		return err
	}
	switch sub {
	case "show-addr":
		var rows []ctl.AddrInfo
		if err := r.Do(ctx, op, "", arg, &rows); err != nil {
			return err
		}
		return writeShow(a.stdout, o, addrColumns, rows, addrFields)
	case "show-if":
		var rows []ctl.IfInfo
		if err := r.Do(ctx, op, "", arg, &rows); err != nil {
			return err
		}
		return writeShow(a.stdout, o, ifColumns, rows, ifFields)
	case "show-ifprop", "show-addrprop":
		rows := []ctl.PropInfo{}
		if err := r.Do(ctx, op, "", arg, &rows); err != nil {
			return err
		}
		if o.json {
			return writeJSON(a.stdout, rows)
		}
		if sub == "show-ifprop" {
			return writeProps(a.stdout, ifPropColumns, rows, ifPropValues)
		}
		return writeProps(a.stdout, addrPropColumns, rows, addrPropValues)
	case "show-prop":
		rows, err := a.showProp(ctx, r, arg.([]ctl.PropInfo))
		if err != nil {
			return err
		}
		if o.json {
			return writeJSON(a.stdout, rows)
		}
		return writeProps(a.stdout, propColumns, rows, propValues)
	}
	return r.Do(ctx, op, "", arg, nil)
}

// ipadmRequest makes the daemon request of a parsed subcommand line
// (show-prop: the rows to fill).
func ipadmRequest(sub string, o ipadmOpts) (op string, arg any, err error) {
	op = "ipadm." + sub
	switch sub {
	case "create-ip", "delete-ip", "enable-if", "disable-if":
		name, err := o.operand(sub, "interface")
		return op, ctl.IpadmIf{Name: name, Temporary: o.temp}, err
	case "show-if":
		name, err := o.optionalOperand(sub, "interface")
		return op, ctl.IpadmIf{Name: name}, err
	case "create-addr":
		obj, err := o.operand(sub, "address object (IF/NAME)")
		if err != nil {
			return "", nil, err
		}
		req, err := parseCreateAddr(o)
		req.Obj = obj
		return op, req, err
	case "delete-addr", "up-addr", "down-addr", "refresh-addr", "disable-addr", "enable-addr":
		obj, err := o.operand(sub, "address object (IF/NAME)")
		return op, ctl.IpadmAddrObj{Obj: obj, Temporary: o.temp}, err
	case "show-addr":
		obj, err := o.optionalOperand(sub, "address object (IF/NAME or IF/)")
		return op, ctl.IpadmAddrObj{Obj: obj}, err
	case "set-ifprop", "reset-ifprop":
		name, err := o.operand(sub, "interface")
		if err != nil {
			return "", nil, err
		}
		if o.proto == "" {
			return "", nil, ipadmUsagef("%s needs -m ipv4 or -m ipv6", sub)
		}
		p, err := parsePropSpec(sub, o)
		p.Ifname, p.Proto = name, o.proto
		return op, p, err
	case "set-addrprop", "reset-addrprop":
		obj, err := o.operand(sub, "address object (IF/NAME)")
		if err != nil {
			return "", nil, err
		}
		p, err := parsePropSpec(sub, o)
		p.Obj = obj
		return op, p, err
	case "set-prop", "reset-prop":
		proto, err := o.operand(sub, "protocol (ip, ipv4, ipv6, ...)")
		if err != nil {
			return "", nil, err
		}
		p, err := parsePropSpec(sub, o)
		p.Proto = proto
		return op, p, err
	case "show-ifprop":
		name, err := o.operand(sub, "interface")
		return op, ctl.IpadmShowProps{Ifname: name, Proto: o.proto, Names: o.props}, err
	case "show-addrprop":
		obj, err := o.optionalOperand(sub, "address object")
		return op, ctl.IpadmShowProps{Obj: obj, Names: o.props}, err
	case "show-prop":
		proto, err := o.optionalOperand(sub, "protocol")
		return op, showPropRows(o.props, proto), err
	}
	return "", nil, ipadmUsagef("unknown subcommand %q", sub)
}

// parsePropSpec reads the one -p of a set- or reset- subcommand:
// PROP=VALUE (set-prop also PROP+=VALUE, PROP-=VALUE), or PROP to reset.
func parsePropSpec(sub string, o ipadmOpts) (ctl.IpadmProp, error) {
	p := ctl.IpadmProp{Temporary: o.temp}
	if len(o.props) != 1 {
		return p, ipadmUsagef("%s takes exactly one -p", sub)
	}
	spec := o.props[0]
	if strings.HasPrefix(sub, "reset-") {
		if spec == "" || strings.ContainsAny(spec, "=,") {
			return p, ipadmUsagef("%s takes -p PROP, not %q", sub, spec)
		}
		p.Name = spec
		return p, nil
	}
	name, val, ok := strings.Cut(spec, "=")
	if !ok {
		return p, ipadmUsagef("%s takes -p PROP=VALUE, not %q", sub, spec)
	}
	if sub == "set-prop" {
		if n, ok := strings.CutSuffix(name, "+"); ok {
			name, p.Flags = n, ctl.MOD_PROP_APPEND
		} else if n, ok := strings.CutSuffix(name, "-"); ok {
			name, p.Flags = n, ctl.MOD_PROP_REMOVE
		}
	}
	if name == "" {
		return p, ipadmUsagef("%s: missing property name in %q", sub, spec)
	}
	if val == "" && sub != "set-prop" {
		return p, ipadmUsagef("%s: missing value in %q", sub, spec)
	}
	p.Name, p.Value = name, val
	return p, nil
}

// parseCreateAddr reads -T and -a of create-addr.
//
// Equivalent to: `ipadm create-addr -T static -a local=10.0.0.1/24 tap0/v4`.
func parseCreateAddr(o ipadmOpts) (ctl.IpadmAddr, error) {
	req := ctl.IpadmAddr{Type: o.typ, Temporary: o.temp}
	switch o.typ {
	case "":
		return req, ipadmUsagef("create-addr needs -T static or -T addrconf")
	case ctl.AddrAddrconf:
		if o.addr != "" {
			return req, ipadmUsagef("create-addr -T addrconf takes no -a")
		}
		return req, nil
	case ctl.AddrStatic:
	default:
		return req, ipadmUsagef("create-addr: -T takes static or addrconf, not %q", o.typ)
	}
	if o.addr == "" {
		return req, ipadmUsagef("create-addr -T static needs -a [local=]ADDR/PREFIX[,remote=ADDR]")
	}
	var local string
	for _, part := range strings.Split(o.addr, ",") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			k, v = "local", part
		}
		switch k {
		case "local":
			if local != "" {
				return req, ipadmUsagef("create-addr: -a gives the local address twice")
			}
			local = v
		case "remote":
			d, err := netip.ParseAddr(v)
			if err != nil || d.Zone() != "" {
				return req, ipadmUsagef("create-addr: bad remote address %q", v)
			}
			req.Remote = d
		default:
			return req, ipadmUsagef("create-addr: -a takes local= and remote=, not %q", k)
		}
	}
	if local == "" {
		return req, ipadmUsagef("create-addr: -a needs a local address")
	}
	if !strings.Contains(local, "/") {
		// A point-to-point address needs no prefix: it is the host's.
		a, err := netip.ParseAddr(local)
		if err != nil || !req.Remote.IsValid() {
			return req, ipadmUsagef("create-addr: the local address must be ADDR/PREFIX, not %q", local)
		}
		local = fmt.Sprintf("%s/%d", local, a.BitLen())
	}
	pfx, err := netip.ParsePrefix(local)
	if err != nil {
		return req, ipadmUsagef("create-addr: bad local address %q", local)
	}
	req.Local = pfx
	return req, nil
}

// Output of show-addr and show-if: a table of the default or chosen
// fields, ofmt's parsable form (-p -o), or JSON.
var (
	addrColumns = []column{{"ADDROBJ", 18}, {"TYPE", 9}, {"STATE", 13}, {"ADDR", 35}}
	addrFields  = map[string]func(ctl.AddrInfo) string{
		"addrobj": func(r ctl.AddrInfo) string { return r.Obj },
		"type":    func(r ctl.AddrInfo) string { return r.Type },
		"state":   func(r ctl.AddrInfo) string { return r.State },
		"addr":    func(r ctl.AddrInfo) string { return r.Addr },
	}
	ifColumns = []column{{"IFNAME", 11}, {"CLASS", 9}, {"STATE", 9}, {"CURRENT", 13}, {"PERSISTENT", 11}}
	ifFields  = map[string]func(ctl.IfInfo) string{
		"ifname":     func(r ctl.IfInfo) string { return r.Name },
		"class":      func(r ctl.IfInfo) string { return r.Class },
		"state":      func(r ctl.IfInfo) string { return r.State },
		"current":    func(r ctl.IfInfo) string { return r.Current },
		"persistent": func(r ctl.IfInfo) string { return r.Persistent },
	}
)

// checkFields refuses -o fields a show subcommand does not have, before
// anything is sent.
func checkFields(sub string, fields []string) error {
	var known func(string) bool
	switch sub {
	case "show-addr":
		known = func(f string) bool { _, ok := addrFields[f]; return ok }
	case "show-if":
		known = func(f string) bool { _, ok := ifFields[f]; return ok }
	default:
		return nil
	}
	for _, f := range fields {
		if !known(f) {
			return ipadmUsagef("%s: unknown field %q", sub, f)
		}
	}
	return nil
}

func writeShow[T any](w io.Writer, o ipadmOpts, cols []column, rows []T, fields map[string]func(T) string) error {
	if o.json {
		if rows == nil {
			rows = []T{}
		}
		return writeJSON(w, rows)
	}
	names := o.fields
	if len(names) == 0 {
		for _, c := range cols {
			names = append(names, strings.ToLower(c.name))
		}
	}
	out := make([][]string, 0, len(rows))
	for _, r := range rows {
		vals := make([]string, len(names))
		for i, n := range names {
			vals[i] = fields[n](r)
		}
		out = append(out, vals)
	}
	if o.parsable {
		return writeParsable(w, out)
	}
	var sel []column
	for _, n := range names {
		for _, c := range cols {
			if strings.ToLower(c.name) == n {
				sel = append(sel, c)
			}
		}
	}
	return writeTable(w, sel, out)
}

// writeParsable prints rows in libofmt's parsable form: values joined by
// ':', and, when there is more than one field, ':' and '\' in a value
// escaped with '\'.
func writeParsable(w io.Writer, rows [][]string) error {
	var b strings.Builder
	esc := strings.NewReplacer(`\`, `\\`, `:`, `\:`)
	for _, r := range rows {
		for i, v := range r {
			if i > 0 {
				b.WriteByte(':')
			}
			if len(r) > 1 {
				v = esc.Replace(v)
			}
			b.WriteString(v)
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
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

// showPropRows lists the (protocol, property) pairs show-prop asks for:
// the named properties (each under proto, or under the protocols
// propProtos gives), or every property of ctl.PropNames, ordered by
// protocol then name as ipadm does.
func showPropRows(names []string, proto string) []ctl.PropInfo {
	rows := []ctl.PropInfo{}
	if len(names) > 0 {
		for _, n := range names {
			protos := []string{proto}
			if proto == "" {
				if protos = propProtos(n); len(protos) == 0 {
					protos = []string{"ip"}
				}
			}
			for _, p := range protos {
				rows = append(rows, ctl.PropInfo{Proto: p, Property: n})
			}
		}
		return rows
	}
	for _, n := range ctl.PropNames {
		for _, p := range propProtos(n) {
			if proto == "" || p == proto {
				rows = append(rows, ctl.PropInfo{Proto: p, Property: n})
			}
		}
	}
	slices.SortStableFunc(rows, func(a, b ctl.PropInfo) int { return strings.Compare(a.Proto, b.Proto) })
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

// fillProp fills a row's PERM, CURRENT, DEFAULT and POSSIBLE.
func fillProp(ctx context.Context, r requester, row *ctl.PropInfo) error {
	p := ctl.Prop{Proto: row.Proto, Name: row.Property}
	for _, f := range []struct {
		flag int
		dst  *string
	}{
		{ctl.MOD_PROP_PERM, &row.Perm},
		{ctl.MOD_PROP_ACTIVE, &row.Current},
		{ctl.MOD_PROP_DEFAULT, &row.Default},
		{ctl.MOD_PROP_POSSIBLE, &row.Possible},
	} {
		v, err := getProp(ctx, r, p, f.flag)
		if err != nil {
			return err
		}
		*f.dst = v
	}
	return nil
}

// showProp fetches the rows' values, and PERSISTENT from the daemon's
// state file.
func (a *app) showProp(ctx context.Context, r requester, rows []ctl.PropInfo) ([]ctl.PropInfo, error) {
	for i := range rows {
		if err := fillProp(ctx, r, &rows[i]); err != nil {
			return nil, err
		}
	}
	var saved []ctl.IpadmProp
	if err := r.Do(ctx, "ipadm.persistent-props", "", nil, &saved); err != nil {
		return nil, err
	}
	for i := range rows {
		for _, s := range saved {
			if s.Proto == rows[i].Proto && s.Name == rows[i].Property {
				rows[i].Persistent = s.Value
			}
		}
	}
	return rows, nil
}

// The property tables' fields (illumos widths).
var (
	propColumns = []column{{"PROTO", 6}, {"PROPERTY", 20}, {"PERM", 5}, {"CURRENT", 14},
		{"PERSISTENT", 14}, {"DEFAULT", 14}, {"POSSIBLE", 20}}
	ifPropColumns = []column{{"IFNAME", 12}, {"PROPERTY", 16}, {"PROTO", 6}, {"PERM", 5},
		{"CURRENT", 11}, {"PERSISTENT", 11}, {"DEFAULT", 11}, {"POSSIBLE", 16}}
	addrPropColumns = []column{{"ADDROBJ", 16}, {"PROPERTY", 12}, {"PERM", 5}, {"CURRENT", 13},
		{"PERSISTENT", 13}, {"DEFAULT", 13}, {"POSSIBLE", 16}}
)

func propValues(r ctl.PropInfo) []string {
	return []string{r.Proto, r.Property, r.Perm, r.Current, r.Persistent, r.Default, r.Possible}
}

func ifPropValues(r ctl.PropInfo) []string {
	return []string{r.Ifname, r.Property, r.Proto, r.Perm, r.Current, r.Persistent, r.Default, r.Possible}
}

func addrPropValues(r ctl.PropInfo) []string {
	return []string{r.Obj, r.Property, r.Perm, r.Current, r.Persistent, r.Default, r.Possible}
}

func writeProps(w io.Writer, cols []column, rows []ctl.PropInfo, values func(ctl.PropInfo) []string) error {
	out := make([][]string, 0, len(rows))
	for _, r := range rows {
		out = append(out, values(r))
	}
	return writeTable(w, cols, out)
}
