package ipadm

import (
	"slices"
	"strconv"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/ifmgr"
)

// ifProp is one interface property of set-ifprop/show-ifprop, mapped onto
// the requests that read and change it.
type ifProp struct {
	protos []string // families it exists in
	// def and possible give DEFAULT and POSSIBLE; get reads CURRENT.
	def      func(r *Registry, ifname string, fam ctl.Family) string
	possible func(r *Registry, ifname string, fam ctl.Family) string
	get      func(r *Registry, ifname string, fam ctl.Family) (string, error)
	// set applies a value already checked by check; the inverse step
	// goes to back.
	set   func(r *Registry, c ifmgr.Caller, ifname string, fam ctl.Family, val string, back *undo) error
	check func(val string) error
}

var both = []string{"ipv4", "ipv6"}

// ifProps are the interface properties, by name (ctl.IfProps lists them).
var ifProps = map[string]ifProp{
	"arp":             flagIfProp([]string{"ipv4"}, ctl.IFF_NOARP, true, "on"),
	"nud":             flagIfProp([]string{"ipv6"}, ctl.IFF_NONUD, true, "on"),
	"exchange_routes": flagIfProp(both, ctl.IFF_NORTEXCH, true, "on"),
	"standby":         flagIfProp(both, ctl.IFF_STANDBY, false, "off"),
	"mtu": {
		protos: both,
		def: func(r *Registry, n string, f ctl.Family) string {
			return r.getPropVal(n, f, "mtu", ctl.MOD_PROP_DEFAULT)
		},
		possible: func(r *Registry, n string, f ctl.Family) string {
			return r.getPropVal(n, f, "mtu", ctl.MOD_PROP_POSSIBLE)
		},
		get: func(r *Registry, n string, f ctl.Family) (string, error) {
			lr, err := r.lifreq(system, "SIOCGLIFMTU", f, ctl.Lifreq{Name: n})
			return strconv.FormatInt(lr.MTU, 10), err
		},
		check: checkUint("mtu"),
		set: func(r *Registry, c ifmgr.Caller, n string, f ctl.Family, v string, back *undo) error {
			return r.setLifInt(c, n, f, "SIOCGLIFMTU", "SIOCSLIFMTU", v, back, func(lr *ctl.Lifreq) *int64 { return &lr.MTU })
		},
	},
	"metric": {
		protos:   both,
		def:      constant("0"),
		possible: constant(""),
		get: func(r *Registry, n string, f ctl.Family) (string, error) {
			lr, err := r.lifreq(system, "SIOCGLIFMETRIC", f, ctl.Lifreq{Name: n})
			return strconv.Itoa(lr.Metric), err
		},
		check: checkUint("metric"),
		set: func(r *Registry, c ifmgr.Caller, n string, f ctl.Family, v string, back *undo) error {
			old, err := r.lifreq(system, "SIOCGLIFMETRIC", f, ctl.Lifreq{Name: n})
			if err != nil {
				return err
			}
			m, _ := strconv.Atoi(v)
			if _, err := r.lifreq(c, "SIOCSLIFMETRIC", f, ctl.Lifreq{Name: n, Metric: m}); err != nil {
				return err
			}
			back.add(func() { r.lifreq(system, "SIOCSLIFMETRIC", f, ctl.Lifreq{Name: n, Metric: old.Metric}) })
			return nil
		},
	},
	"forwarding": {
		protos:   both,
		def:      constant("off"),
		possible: constant("on,off"),
		get:      getForwarding,
		check:    checkOnOff("forwarding"),
		set: func(r *Registry, c ifmgr.Caller, n string, f ctl.Family, v string, back *undo) error {
			old, err := getForwarding(r, n, f)
			if err != nil {
				return err
			}
			p := ctl.Prop{Proto: famProto(f), Name: "forwarding", Ifname: n, Flags: ctl.MOD_PROP_ACTIVE, Val: v}
			if err := r.m.Do(c, "SIOCSETPROP", "", &p); err != nil {
				return err
			}
			back.add(func() {
				p := ctl.Prop{Proto: famProto(f), Name: "forwarding", Ifname: n, Flags: ctl.MOD_PROP_ACTIVE, Val: old}
				r.m.Do(system, "SIOCSETPROP", "", &p)
			})
			return nil
		},
	},
	"usesrc": {
		protos:   both,
		def:      constant("none"),
		possible: constant(""),
		get: func(r *Registry, n string, f ctl.Family) (string, error) {
			lr, err := r.lifreq(system, "SIOCGLIFUSESRC", f, ctl.Lifreq{Name: n})
			if err != nil || lr.Index == 0 {
				return "none", err
			}
			return r.nameOfIndex(lr.Index, f), nil
		},
		check: func(string) error { return nil },
		set: func(r *Registry, c ifmgr.Caller, n string, f ctl.Family, v string, back *undo) error {
			var idx uint32
			if v != "none" {
				lr, err := r.lifreq(c, "SIOCGLIFINDEX", f, ctl.Lifreq{Name: v})
				if err != nil {
					return err
				}
				idx = lr.Index
			}
			old, err := r.lifreq(system, "SIOCGLIFUSESRC", f, ctl.Lifreq{Name: n})
			if err != nil {
				return err
			}
			if _, err := r.lifreq(c, "SIOCSLIFUSESRC", f, ctl.Lifreq{Name: n, Index: idx}); err != nil {
				return err
			}
			back.add(func() { r.lifreq(system, "SIOCSLIFUSESRC", f, ctl.Lifreq{Name: n, Index: old.Index}) })
			return nil
		},
	},
}

func getForwarding(r *Registry, n string, f ctl.Family) (string, error) {
	p := ctl.Prop{Proto: famProto(f), Name: "forwarding", Ifname: n, Flags: ctl.MOD_PROP_ACTIVE}
	err := r.m.Do(system, "SIOCGETPROP", "", &p)
	return p.Val, err
}

// flagIfProp is an on/off property kept as an interface flag; inverted
// properties are on when the flag is clear (arp is on without NOARP).
func flagIfProp(protos []string, flag ctl.Flags, inverted bool, def string) ifProp {
	return ifProp{
		protos:   protos,
		def:      constant(def),
		possible: constant("on,off"),
		get: func(r *Registry, n string, f ctl.Family) (string, error) {
			fl, err := r.flags(n, f)
			return onOff(fl&flag != 0 != inverted), err
		},
		check: checkOnOff("value"),
		set: func(r *Registry, c ifmgr.Caller, n string, f ctl.Family, v string, back *undo) error {
			set, clear := flag, ctl.Flags(0)
			if (v == "on") == inverted {
				set, clear = 0, flag
			}
			restore, err := r.setFlags(c, n, f, set, clear)
			if err != nil {
				return err
			}
			back.add(restore)
			return nil
		},
	}
}

func constant(v string) func(*Registry, string, ctl.Family) string {
	return func(*Registry, string, ctl.Family) string { return v }
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

func checkOnOff(name string) func(string) error {
	return func(v string) error {
		if v != "on" && v != "off" {
			return ctl.Errorf(ctl.EINVAL, "%s takes on or off, not %q", name, v)
		}
		return nil
	}
}

func checkUint(name string) func(string) error {
	return func(v string) error {
		if _, err := strconv.ParseUint(v, 10, 31); err != nil {
			return ctl.Errorf(ctl.EINVAL, "%s takes a non-negative integer, not %q", name, v)
		}
		return nil
	}
}

// setLifInt sets an integer field of unit 0 with set after reading it with
// get, adding the restore step to back.
func (r *Registry) setLifInt(c ifmgr.Caller, n string, f ctl.Family, get, set, v string, back *undo, field func(*ctl.Lifreq) *int64) error {
	old, err := r.lifreq(system, get, f, ctl.Lifreq{Name: n})
	if err != nil {
		return err
	}
	x, _ := strconv.ParseInt(v, 10, 64)
	req := ctl.Lifreq{Name: n}
	*field(&req) = x
	if _, err := r.lifreq(c, set, f, req); err != nil {
		return err
	}
	back.add(func() {
		req := ctl.Lifreq{Name: n}
		*field(&req) = *field(&old)
		r.lifreq(system, set, f, req)
	})
	return nil
}

// getPropVal reads one SIOCGETPROP value of an interface property ("" if
// the interface layer has none).
func (r *Registry) getPropVal(ifname string, f ctl.Family, name string, flag int) string {
	p := ctl.Prop{Proto: famProto(f), Name: name, Ifname: ifname, Flags: flag}
	if err := r.m.Do(system, "SIOCGETPROP", "", &p); err != nil {
		return ""
	}
	return p.Val
}

// nameOfIndex returns the interface with index idx in family f.
func (r *Registry) nameOfIndex(idx uint32, f ctl.Family) string {
	for _, rec := range r.lifList(f) {
		if lifIll(rec.Name) != rec.Name {
			continue
		}
		if lr, err := r.lifreq(system, "SIOCGLIFINDEX", f, ctl.Lifreq{Name: rec.Name}); err == nil && lr.Index == idx {
			return rec.Name
		}
	}
	return strconv.FormatUint(uint64(idx), 10)
}

// lookupIfProp checks a property name and its family.
func lookupIfProp(name, proto string) (ifProp, ctl.Family, error) {
	p, ok := ifProps[name]
	if !ok {
		return p, "", ctl.Errorf(ctl.ENOENT, "no interface property %q (one of %v)", name, ctl.IfProps)
	}
	fam, err := protoFam(proto)
	if err != nil {
		return p, "", err
	}
	if !slices.Contains(p.protos, proto) {
		return p, "", ctl.Errorf(ctl.ENOENT, "%s is not a property of %s interfaces", name, proto)
	}
	return p, fam, nil
}

// setIfPropLocked applies one interface property value ("" resets it to
// its default).
func (r *Registry) setIfPropLocked(c ifmgr.Caller, ifname, proto, name, val string, back *undo) error {
	p, fam, err := lookupIfProp(name, proto)
	if err != nil {
		return err
	}
	if !r.plumbed(ifname, fam) {
		return ctl.Errorf(ctl.ENXIO, "no %s interface named %s", proto, ifname)
	}
	if val == "" {
		if val = p.def(r, ifname, fam); val == "" {
			return ctl.Errorf(ctl.ENOTSUP, "%s of %s has no default to reset to", name, ifname)
		}
	}
	if err := p.check(val); err != nil {
		return err
	}
	return p.set(r, c, ifname, fam, val, back)
}

// SetIfProp is ipadm set-ifprop.
//
// Equivalent to: `ifconfig tap0 mtu 1400` for -p mtu=1400 -m ipv4.
func (r *Registry) SetIfProp(c ifmgr.Caller, a ctl.IpadmProp) error {
	if a.Value == "" {
		return ctl.Errorf(ctl.EINVAL, "set-ifprop needs -p PROP=VALUE with a value")
	}
	return r.ifPropChange(c, a, "set-ifprop", a.Value)
}

// ResetIfProp is ipadm reset-ifprop: back to the default, and forgotten.
func (r *Registry) ResetIfProp(c ifmgr.Caller, a ctl.IpadmProp) error {
	return r.ifPropChange(c, a, "reset-ifprop", "")
}

func (r *Registry) ifPropChange(c ifmgr.Caller, a ctl.IpadmProp, what, val string) error {
	if err := needPriv(c, what); err != nil {
		return err
	}
	if err := checkIfName(a.Ifname); err != nil {
		return err
	}
	p, fam, err := lookupIfProp(a.Name, a.Proto)
	if err != nil {
		return err
	}
	if val != "" {
		if err := p.check(val); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.plumbed(a.Ifname, fam) {
		return ctl.Errorf(ctl.ENXIO, "no %s interface named %s", a.Proto, a.Ifname)
	}
	apply := func() error {
		var back undo
		if err := r.setIfPropLocked(c, a.Ifname, a.Proto, a.Name, val, &back); err != nil {
			back.run()
			return err
		}
		return nil
	}
	mut := func(cfg *Config) {
		i := cfg.iface(a.Ifname)
		if i == nil {
			if val == "" {
				return
			}
			i = cfg.ensureIface(a.Ifname)
		}
		i.setFamily(fam)
		i.Props = setProp(i.Props, Prop{Proto: a.Proto, Name: a.Name, Value: val})
	}
	return r.commitFirstLocked(a.Temporary, mut, apply)
}

// ShowIfProp is ipadm show-ifprop: the named properties (all without
// names) of one interface, in one family or both. Without a family, one
// the interface is not plumbed for is left out.
func (r *Registry) ShowIfProp(q ctl.IpadmShowProps) ([]ctl.PropInfo, error) {
	if err := checkIfName(q.Ifname); err != nil {
		return nil, err
	}
	names := q.Names
	if len(names) == 0 {
		names = ctl.IfProps
	}
	protos := both
	if q.Proto != "" {
		if _, err := protoFam(q.Proto); err != nil {
			return nil, err
		}
		protos = []string{q.Proto}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var persisted []Prop
	if i := r.persist.iface(q.Ifname); i != nil {
		persisted = i.Props
	}
	rows := []ctl.PropInfo{}
	plumbedAny := false
	for _, n := range names {
		p, ok := ifProps[n]
		if !ok {
			return nil, ctl.Errorf(ctl.ENOENT, "no interface property %q (one of %v)", n, ctl.IfProps)
		}
		for _, proto := range protos {
			if !slices.Contains(p.protos, proto) {
				if q.Proto != "" && len(q.Names) > 0 {
					return nil, ctl.Errorf(ctl.ENOENT, "%s is not a property of %s interfaces", n, proto)
				}
				continue
			}
			fam, _ := protoFam(proto)
			if !r.plumbed(q.Ifname, fam) {
				continue
			}
			plumbedAny = true
			cur, err := p.get(r, q.Ifname, fam)
			if err != nil {
				return nil, err
			}
			pers, _ := getProp(persisted, proto, n)
			rows = append(rows, ctl.PropInfo{Ifname: q.Ifname, Proto: proto, Property: n, Perm: "rw",
				Current: cur, Persistent: pers, Default: p.def(r, q.Ifname, fam), Possible: p.possible(r, q.Ifname, fam)})
		}
	}
	if !plumbedAny {
		what := "IPv4 or IPv6"
		if q.Proto != "" {
			what = q.Proto
		}
		return nil, ctl.Errorf(ctl.ENXIO, "no %s interface named %s", what, q.Ifname)
	}
	return rows, nil
}
