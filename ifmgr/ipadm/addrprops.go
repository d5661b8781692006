package ipadm

import (
	"net/netip"
	"slices"
	"strconv"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/ifmgr"
)

// addrFlagProp is an on/off address property kept as a logical-interface
// flag; inverted ones are on while the flag is clear (transmit: NOXMIT).
type addrFlagProp struct {
	flag     ctl.Flags
	inverted bool
}

var addrFlagProps = map[string]addrFlagProp{
	"deprecated": {ctl.IFF_DEPRECATED, false},
	"private":    {ctl.IFF_PRIVATE, false},
	"transmit":   {ctl.IFF_NOXMIT, true},
}

func (p addrFlagProp) def() string { return onOff(p.inverted) }

// flags returns the flags to set and clear for value v.
func (p addrFlagProp) flags(v string) (set, clear ctl.Flags) {
	if (v == "on") != p.inverted {
		return p.flag, 0
	}
	return 0, p.flag
}

// addrPropFlags are the flags an object's recorded properties ask for.
func addrPropFlags(props []Prop) (set, clear ctl.Flags) {
	for _, p := range props {
		if fp, ok := addrFlagProps[p.Name]; ok {
			s, c := fp.flags(p.Value)
			set, clear = set|s, clear|c
		}
	}
	return set, clear
}

// SetAddrProp is ipadm set-addrprop: deprecated, private and transmit
// (on/off) and prefixlen. zone is not supported yet (ENOTSUP).
func (r *Registry) SetAddrProp(c ifmgr.Caller, a ctl.IpadmProp) error {
	if a.Value == "" {
		return ctl.Errorf(ctl.EINVAL, "set-addrprop needs -p PROP=VALUE with a value")
	}
	return r.addrPropChange(c, a, "set-addrprop", a.Value)
}

// ResetAddrProp is ipadm reset-addrprop.
func (r *Registry) ResetAddrProp(c ifmgr.Caller, a ctl.IpadmProp) error {
	return r.addrPropChange(c, a, "reset-addrprop", "")
}

func (r *Registry) addrPropChange(c ifmgr.Caller, a ctl.IpadmProp, what, val string) error {
	if err := needPriv(c, what); err != nil {
		return err
	}
	fp, isFlag := addrFlagProps[a.Name]
	switch {
	case a.Name == "zone":
		return ctl.Errorf(ctl.ENOTSUP, "the zone of an address cannot be set yet")
	case isFlag:
		if val == "" {
			val = fp.def()
		}
		if err := checkOnOff(a.Name)(val); err != nil {
			return err
		}
	case a.Name == "prefixlen":
	default:
		return ctl.Errorf(ctl.ENOENT, "no address property %q (one of %v)", a.Name, ctl.AddrProps)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	i, obj, err := r.resolveLocked(a.Obj)
	if err != nil {
		return err
	}
	fam := obj.family()
	applied := ""
	if !obj.Disabled && !i.Disabled {
		applied, _ = r.findLifLocked(obj)
	}
	var back undo
	var mut func(*Config)
	if isFlag {
		if applied != "" {
			set, clear := fp.flags(val)
			restore, err := r.setFlags(c, applied, fam, set, clear)
			if err != nil {
				return err
			}
			back.add(restore)
		}
		stored := val
		if val == fp.def() {
			stored = "" // the default is not recorded
		}
		mut = func(cfg *Config) {
			if _, o := cfg.addr(a.Obj); o != nil {
				o.Props = setProp(o.Props, Prop{Name: a.Name, Value: stored})
			}
		}
	} else {
		bits, err := r.prefixLen(obj, val)
		if err != nil {
			return err
		}
		if applied != "" {
			old, err := r.lifreq(system, "SIOCGLIFNETMASK", fam, ctl.Lifreq{Name: applied})
			if err != nil {
				return err
			}
			if _, err := r.lifreq(c, "SIOCSLIFNETMASK", fam, ctl.Lifreq{Name: applied, Addr: prefixMask(bits, fam)}); err != nil {
				return err
			}
			back.add(func() { r.lifreq(system, "SIOCSLIFNETMASK", fam, ctl.Lifreq{Name: applied, Addr: old.Addr}) })
		}
		mut = func(cfg *Config) {
			if _, o := cfg.addr(a.Obj); o != nil && o.Type == ctl.AddrStatic {
				o.Local = netip.PrefixFrom(o.Local.Addr(), bits)
			}
		}
	}
	return r.commitLocked(a.Temporary, mut, back)
}

// prefixLen checks a prefixlen value ("" is the object's own).
func (r *Registry) prefixLen(obj *Addr, val string) (int, error) {
	max := 32
	if obj.family() == ctl.AF_INET6 {
		max = 128
	}
	if obj.Type != ctl.AddrStatic {
		return 0, ctl.Errorf(ctl.ENOTSUP, "the prefix length of %s (%s) is not set through ipadm", obj.Obj, obj.Type)
	}
	if val == "" {
		return obj.Local.Bits(), nil
	}
	n, err := strconv.Atoi(val)
	if err != nil || n < 1 || n > max {
		return 0, ctl.Errorf(ctl.EINVAL, "prefixlen takes 1 to %d, not %q", max, val)
	}
	return n, nil
}

// ShowAddrProp is ipadm show-addrprop: the named properties (all without
// names) of one address object, or of every object.
func (r *Registry) ShowAddrProp(q ctl.IpadmShowProps) ([]ctl.PropInfo, error) {
	names := q.Names
	if len(names) == 0 {
		names = ctl.AddrProps
	}
	for _, n := range names {
		if !slices.Contains(ctl.AddrProps, n) {
			return nil, ctl.Errorf(ctl.ENOENT, "no address property %q (one of %v)", n, ctl.AddrProps)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var objs []*Addr
	if q.Obj != "" {
		_, o, err := r.resolveLocked(q.Obj)
		if err != nil {
			return nil, err
		}
		objs = append(objs, o)
	} else {
		for k := range r.active.Interfaces {
			for j := range r.active.Interfaces[k].Addrs {
				objs = append(objs, &r.active.Interfaces[k].Addrs[j])
			}
		}
	}
	rows := []ctl.PropInfo{}
	for _, o := range objs {
		for _, n := range names {
			rows = append(rows, r.addrPropRowLocked(o, n))
		}
	}
	return rows, nil
}

func (r *Registry) addrPropRowLocked(o *Addr, name string) ctl.PropInfo {
	row := ctl.PropInfo{Obj: o.Obj, Property: name, Perm: "rw"}
	_, po := r.persist.addr(o.Obj)
	fam := o.family()
	lif, applied := r.findLifLocked(o)
	if fp, ok := addrFlagProps[name]; ok {
		row.Default, row.Possible = fp.def(), "on,off"
		row.Current = fp.def()
		if v, ok := getProp(o.Props, "", name); ok {
			row.Current = v
		}
		if applied {
			if fl, err := r.flags(lif, fam); err == nil {
				row.Current = onOff(fl&fp.flag != 0 != fp.inverted)
			}
		}
		if po != nil {
			row.Persistent = fp.def()
			if v, ok := getProp(po.Props, "", name); ok {
				row.Persistent = v
			}
		}
		return row
	}
	switch name {
	case "prefixlen":
		row.Possible = "1-32"
		if fam == ctl.AF_INET6 {
			row.Possible = "1-128"
		}
		if o.Type == ctl.AddrStatic {
			row.Current = strconv.Itoa(o.Local.Bits())
		}
		if applied {
			if lr, err := r.lifreq(system, "SIOCGLIFNETMASK", fam, ctl.Lifreq{Name: lif}); err == nil {
				row.Current = strconv.Itoa(lr.Addrlen)
			}
		}
		if po != nil && po.Type == ctl.AddrStatic {
			row.Persistent = strconv.Itoa(po.Local.Bits())
		}
	case "zone":
		row.Perm, row.Current, row.Default = "r-", "global", "global"
	}
	return row
}
