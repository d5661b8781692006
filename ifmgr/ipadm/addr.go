package ipadm

import (
	"net/netip"
	"strings"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/ifmgr"
)

// builtin are the names show-addr gives lo0's own addresses, as ipadm
// does; they are not objects ipadm can change.
var builtin = map[string]ctl.Family{"lo0/v4": ctl.AF_INET, "lo0/v6": ctl.AF_INET6}

// CreateAddr is ipadm create-addr: a static address (on unit 0 of the
// interface if that has no address yet, else on a new logical unit) or
// the addrconf object of an interface (its IPv6 link-local unit, up).
// The interface is plumbed in the address's family if it is not yet.
//
// Equivalent to: `ifconfig tap0 addif 10.0.0.3/24 up` (static, unit 0 in
// use), or `ifconfig tap0 inet6 plumb up` (addrconf).
func (r *Registry) CreateAddr(c ifmgr.Caller, a ctl.IpadmAddr) (ctl.AddrInfo, error) {
	if err := needPriv(c, "create-addr"); err != nil {
		return ctl.AddrInfo{}, err
	}
	ifname, err := parseObj(a.Obj)
	if err != nil {
		return ctl.AddrInfo{}, err
	}
	obj := Addr{Obj: a.Obj, Type: a.Type}
	switch a.Type {
	case ctl.AddrStatic:
		if err := checkStatic(a.Local, a.Remote); err != nil {
			return ctl.AddrInfo{}, err
		}
		obj.Local, obj.Remote = a.Local, a.Remote
	case ctl.AddrAddrconf:
		if a.Local.IsValid() || a.Remote.IsValid() {
			return ctl.AddrInfo{}, ctl.Errorf(ctl.EINVAL, "an addrconf address object takes no address (-a)")
		}
	case "dhcp":
		return ctl.AddrInfo{}, ctl.Errorf(ctl.ENOTSUP, "DHCP address objects are not supported")
	default:
		return ctl.AddrInfo{}, ctl.Errorf(ctl.EINVAL, "address type %q is not static or addrconf", a.Type)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := builtin[a.Obj]; ok {
		return ctl.AddrInfo{}, ctl.Errorf(ctl.EEXIST, "address object %s exists (the loopback address)", a.Obj)
	}
	if _, old := r.active.addr(a.Obj); old != nil {
		return ctl.AddrInfo{}, ctl.Errorf(ctl.EEXIST, "address object %s already exists", a.Obj)
	}
	iface := r.active.iface(ifname)
	if iface != nil && iface.Disabled {
		return ctl.AddrInfo{}, ctl.Errorf(ctl.EINVAL, "interface %s is disabled (ipadm enable-if %s)", ifname, ifname)
	}
	if a.Type == ctl.AddrAddrconf && iface != nil {
		for _, o := range iface.Addrs {
			if o.Type == ctl.AddrAddrconf {
				return ctl.AddrInfo{}, ctl.Errorf(ctl.EEXIST, "%s already has an addrconf address object, %s", ifname, o.Obj)
			}
		}
	}
	fam := obj.family()
	var back undo
	if !r.plumbed(ifname, fam) {
		if err := r.plumbLocked(c, ifname, fam, &back); err != nil {
			return ctl.AddrInfo{}, err
		}
	}
	lif, err := r.applyAddrLocked(c, &obj, &back)
	if err != nil {
		back.run()
		return ctl.AddrInfo{}, err
	}
	if err := r.commitLocked(a.Temporary, func(cfg *Config) { cfg.putAddr(obj) }, back); err != nil {
		return ctl.AddrInfo{}, err
	}
	r.lifs[obj.Obj] = lif
	r.log.Info("ipadm: created address object", "addrobj", obj.Obj, "lif", lif, "temporary", a.Temporary)
	return r.addrInfoLocked(&obj), nil
}

// checkStatic validates a static address and its destination.
func checkStatic(local netip.Prefix, remote netip.Addr) error {
	if !local.IsValid() {
		return ctl.Errorf(ctl.EINVAL, "a static address object needs an address: -a ADDR/PREFIX")
	}
	if local.Addr().Zone() != "" {
		return ctl.Errorf(ctl.EINVAL, "address %s: zones (%%IF) are not allowed", local)
	}
	if local.Addr().Is4In6() {
		return ctl.Errorf(ctl.EINVAL, "address %s is an IPv4-mapped IPv6 address", local)
	}
	if remote.IsValid() && remote.Is4() != local.Addr().Is4() {
		return ctl.Errorf(ctl.EINVAL, "remote address %s is not of the family of %s", remote, local.Addr())
	}
	return nil
}

// plumbLocked plumbs ifname in one family, adding the unplumb to back.
func (r *Registry) plumbLocked(c ifmgr.Caller, ifname string, fam ctl.Family, back *undo) error {
	fl := ctl.IFF_IPV4
	if fam == ctl.AF_INET6 {
		fl = ctl.IFF_IPV6
	}
	if _, err := r.lifreq(c, "SIOCSLIFNAME", fam, ctl.Lifreq{Name: ifname, Flags: fl}); err != nil {
		return err
	}
	back.add(func() { r.lifreq(system, "unplumb", fam, ctl.Lifreq{Name: ifname}) })
	return nil
}

// applyAddrLocked configures obj on its (plumbed) interface and returns
// the logical interface it is on; the inverse steps go to back.
func (r *Registry) applyAddrLocked(c ifmgr.Caller, obj *Addr, back *undo) (string, error) {
	fam := obj.family()
	ifname := obj.ifname()
	set, clear := addrPropFlags(obj.Props)
	if obj.Type == ctl.AddrAddrconf {
		lr, err := r.lifreq(c, "SIOCGLIFADDR", fam, ctl.Lifreq{Name: ifname})
		if err != nil {
			return "", err
		}
		if !lr.Addr.IsValid() || lr.Addr.IsUnspecified() {
			return "", ctl.Errorf(ctl.EADDRNOTAVAIL, "%s has no IPv6 link-local address to bring up (plumbed with NOLINKLOCAL?)", ifname)
		}
		restore, err := r.setFlags(c, ifname, fam, set|ctl.IFF_UP, clear)
		if err != nil {
			return "", err
		}
		back.add(restore)
		return ifname, nil
	}

	lif := ifname
	unit0 := false
	if fam == ctl.AF_INET {
		cur, err := r.lifreq(c, "SIOCGLIFADDR", fam, ctl.Lifreq{Name: ifname})
		if err != nil {
			return "", err
		}
		unit0 = !cur.Addr.IsValid() || cur.Addr.IsUnspecified()
	}
	if unit0 {
		mask, err := r.lifreq(c, "SIOCGLIFNETMASK", fam, ctl.Lifreq{Name: lif})
		if err != nil {
			return "", err
		}
		// Only a point-to-point unit has a destination to restore.
		var dst ctl.Lifreq
		if obj.Remote.IsValid() {
			if dst, err = r.lifreq(c, "SIOCGLIFDSTADDR", fam, ctl.Lifreq{Name: lif}); err != nil {
				return "", err
			}
		}
		back.add(func() {
			r.lifreq(system, "SIOCSLIFADDR", fam, ctl.Lifreq{Name: lif, Addr: zeroAddr(fam)})
			r.lifreq(system, "SIOCSLIFNETMASK", fam, ctl.Lifreq{Name: lif, Addr: mask.Addr})
			if dst.Dstaddr.IsValid() {
				r.lifreq(system, "SIOCSLIFDSTADDR", fam, ctl.Lifreq{Name: lif, Dstaddr: dst.Dstaddr})
			}
		})
	} else {
		res, err := r.lifreq(c, "SIOCLIFADDIF", fam, ctl.Lifreq{Name: ifname})
		if err != nil {
			return "", err
		}
		lif = res.Name
		back.add(func() { r.lifreq(system, "SIOCLIFREMOVEIF", fam, ctl.Lifreq{Name: lif}) })
	}
	steps := []struct {
		op string
		lr ctl.Lifreq
	}{
		{"SIOCSLIFNETMASK", ctl.Lifreq{Name: lif, Addr: prefixMask(obj.Local.Bits(), fam)}},
		{"SIOCSLIFADDR", ctl.Lifreq{Name: lif, Addr: obj.Local.Addr()}},
	}
	if obj.Remote.IsValid() {
		steps = append(steps, struct {
			op string
			lr ctl.Lifreq
		}{"SIOCSLIFDSTADDR", ctl.Lifreq{Name: lif, Dstaddr: obj.Remote}})
	}
	for _, s := range steps {
		if _, err := r.lifreq(c, s.op, fam, s.lr); err != nil {
			return "", err
		}
	}
	restore, err := r.setFlags(c, lif, fam, set|ctl.IFF_UP, clear)
	if err != nil {
		return "", err
	}
	back.add(restore)
	return lif, nil
}

// unapplyAddrLocked takes obj off the interface layer (its logical unit
// removed, or unit 0 down and cleared); an object that is not applied is
// left alone.
func (r *Registry) unapplyAddrLocked(c ifmgr.Caller, obj *Addr) error {
	lif, ok := r.findLifLocked(obj)
	if !ok {
		return nil
	}
	fam := obj.family()
	delete(r.lifs, obj.Obj)
	switch {
	case obj.Type == ctl.AddrAddrconf:
		_, err := r.setFlags(c, lif, fam, 0, ctl.IFF_UP)
		return err
	case strings.Contains(lif, ":"):
		_, err := r.lifreq(c, "SIOCLIFREMOVEIF", fam, ctl.Lifreq{Name: lif})
		return err
	}
	if _, err := r.setFlags(c, lif, fam, 0, ctl.IFF_UP); err != nil {
		return err
	}
	if _, err := r.lifreq(c, "SIOCSLIFADDR", fam, ctl.Lifreq{Name: lif, Addr: zeroAddr(fam)}); err != nil {
		return err
	}
	_, err := r.lifreq(c, "SIOCSLIFNETMASK", fam, ctl.Lifreq{Name: lif, Addr: zeroAddr(fam)})
	return err
}

// findLifLocked returns the logical interface carrying obj, checking the
// remembered one against the interface layer and searching the
// interface's units by address otherwise (after a restart, or a change
// made with ifconfig).
func (r *Registry) findLifLocked(obj *Addr) (string, bool) {
	fam := obj.family()
	ifname := obj.ifname()
	if obj.Type == ctl.AddrAddrconf {
		return ifname, r.plumbed(ifname, fam)
	}
	want := obj.Local.Addr()
	if lif, ok := r.lifs[obj.Obj]; ok {
		if lr, err := r.lifreq(system, "SIOCGLIFADDR", fam, ctl.Lifreq{Name: lif}); err == nil && lr.Addr == want {
			return lif, true
		}
	}
	for _, rec := range r.lifList(fam) {
		if lifIll(rec.Name) == ifname && rec.Addr == want {
			r.lifs[obj.Obj] = rec.Name
			return rec.Name, true
		}
	}
	return "", false
}

// isAppliedLocked reports whether obj is configured on the interface
// layer: its static address is on a unit, or its addrconf unit is up.
func (r *Registry) isAppliedLocked(obj *Addr) bool {
	lif, ok := r.findLifLocked(obj)
	if !ok || obj.Type != ctl.AddrAddrconf {
		return ok
	}
	fl, err := r.flags(lif, obj.family())
	return err == nil && fl&ctl.IFF_UP != 0
}

// resolveLocked finds an address object of the active configuration.
func (r *Registry) resolveLocked(obj string) (*Interface, *Addr, error) {
	if _, err := parseObj(obj); err != nil {
		return nil, nil, err
	}
	if _, ok := builtin[obj]; ok {
		return nil, nil, ctl.Errorf(ctl.ENOTSUP, "%s is the loopback address; ipadm does not change it", obj)
	}
	i, a := r.active.addr(obj)
	if a == nil {
		return nil, nil, ctl.Errorf(ctl.ENOENT, "no address object %s", obj)
	}
	return i, a, nil
}

// DeleteAddr is ipadm delete-addr: the address goes, from the active and
// the persistent configuration.
func (r *Registry) DeleteAddr(c ifmgr.Caller, a ctl.IpadmAddrObj) error {
	return r.changeAddr(c, "delete-addr", a.Obj, func(i *Interface, obj *Addr) error {
		name := obj.Obj
		apply := func() error {
			if obj.Disabled || i.Disabled {
				return nil
			}
			return r.unapplyAddrLocked(c, obj)
		}
		// delete-addr has no -t: the object leaves both configurations.
		return r.commitFirstLocked(false, func(cfg *Config) { cfg.removeAddr(name) }, apply)
	})
}

// UpAddr and DownAddr are ipadm up-addr and down-addr. As in illumos,
// they change the running state only; the object comes back up when it is
// restored.
func (r *Registry) UpAddr(c ifmgr.Caller, a ctl.IpadmAddrObj) error {
	return r.updown(c, a, "up-addr", ctl.IFF_UP, 0)
}

// DownAddr: see UpAddr.
func (r *Registry) DownAddr(c ifmgr.Caller, a ctl.IpadmAddrObj) error {
	return r.updown(c, a, "down-addr", 0, ctl.IFF_UP)
}

// RefreshAddr is ipadm refresh-addr: the address is taken down and
// brought up again, which restarts duplicate address detection.
func (r *Registry) RefreshAddr(c ifmgr.Caller, a ctl.IpadmAddrObj) error {
	if err := r.updown(c, a, "refresh-addr", 0, ctl.IFF_UP); err != nil {
		return err
	}
	return r.updown(c, a, "refresh-addr", ctl.IFF_UP, 0)
}

func (r *Registry) updown(c ifmgr.Caller, a ctl.IpadmAddrObj, what string, set, clear ctl.Flags) error {
	if err := needPriv(c, what); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	lif, obj, err := r.appliedLocked(a.Obj)
	if err != nil {
		return err
	}
	_, err = r.setFlags(c, lif, obj.family(), set, clear)
	return err
}

// appliedLocked resolves an object that must be configured now.
func (r *Registry) appliedLocked(name string) (string, *Addr, error) {
	i, obj, err := r.resolveLocked(name)
	if err != nil {
		return "", nil, err
	}
	if obj.Disabled || i.Disabled {
		return "", nil, ctl.Errorf(ctl.EINVAL, "address object %s is disabled (ipadm enable-addr %s)", name, name)
	}
	lif, ok := r.findLifLocked(obj)
	if !ok {
		return "", nil, ctl.Errorf(ctl.ENXIO, "address object %s is not configured: interface %s is not present", name, obj.ifname())
	}
	return lif, obj, nil
}

// DisableAddr is ipadm disable-addr: the address leaves the interface
// layer but stays configured (and, unless temporary, disabled across a
// restart too).
func (r *Registry) DisableAddr(c ifmgr.Caller, a ctl.IpadmAddrObj) error {
	return r.changeAddr(c, "disable-addr", a.Obj, func(i *Interface, obj *Addr) error {
		if obj.Disabled {
			return ctl.Errorf(ctl.EALREADY, "address object %s is already disabled", a.Obj)
		}
		apply := func() error {
			if i.Disabled {
				return nil
			}
			return r.unapplyAddrLocked(c, obj)
		}
		return r.commitFirstLocked(a.Temporary, setAddrDisabled(a.Obj, true), apply)
	})
}

// EnableAddr is ipadm enable-addr.
func (r *Registry) EnableAddr(c ifmgr.Caller, a ctl.IpadmAddrObj) error {
	return r.changeAddr(c, "enable-addr", a.Obj, func(i *Interface, obj *Addr) error {
		if !obj.Disabled {
			return ctl.Errorf(ctl.EALREADY, "address object %s is already enabled", a.Obj)
		}
		if i.Disabled {
			return ctl.Errorf(ctl.EINVAL, "interface %s is disabled (ipadm enable-if %s)", i.Name, i.Name)
		}
		fam := obj.family()
		if !r.plumbed(i.Name, fam) {
			return ctl.Errorf(ctl.ENXIO, "interface %s is not plumbed for %s", i.Name, famProto(fam))
		}
		var back undo
		lif, err := r.applyAddrLocked(c, obj, &back)
		if err != nil {
			back.run()
			return err
		}
		if err := r.commitLocked(a.Temporary, setAddrDisabled(a.Obj, false), back); err != nil {
			return err
		}
		r.lifs[a.Obj] = lif
		return nil
	})
}

func setAddrDisabled(obj string, on bool) func(*Config) {
	return func(cfg *Config) {
		if _, a := cfg.addr(obj); a != nil {
			a.Disabled = on
		}
	}
}

// prefixMask is the netmask of a prefix length in family f.
func prefixMask(bits int, f ctl.Family) netip.Addr {
	n := 4
	if f == ctl.AF_INET6 {
		n = 16
	}
	b := make([]byte, n)
	for i := 0; i < bits && i < n*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
