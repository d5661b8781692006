package ipadm

import (
	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/ifmgr"
)

var bothFamilies = []ctl.Family{ctl.AF_INET, ctl.AF_INET6}

// CreateIP is ipadm create-ip: the interface is plumbed for IPv4 and
// IPv6. An interface that is plumbed already, or configured but not
// present, is EEXIST.
//
// Equivalent to: `ifconfig tap0 plumb; ifconfig tap0 inet6 plumb`.
func (r *Registry) CreateIP(c ifmgr.Caller, a ctl.IpadmIf) error {
	if err := needPriv(c, "create-ip"); err != nil {
		return err
	}
	if err := checkIfName(a.Name); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if i := r.active.iface(a.Name); i != nil && (i.IPv4 || i.IPv6) {
		return ctl.Errorf(ctl.EEXIST, "interface %s already exists", a.Name)
	}
	for _, f := range bothFamilies {
		if r.plumbed(a.Name, f) {
			return ctl.Errorf(ctl.EEXIST, "interface %s is already plumbed for %s", a.Name, famProto(f))
		}
	}
	var back undo
	for _, f := range bothFamilies {
		if err := r.plumbLocked(c, a.Name, f, &back); err != nil {
			back.run()
			return err
		}
	}
	mut := func(cfg *Config) {
		i := cfg.ensureIface(a.Name)
		i.IPv4, i.IPv6 = true, true
	}
	if err := r.commitLocked(a.Temporary, mut, back); err != nil {
		return err
	}
	r.log.Info("ipadm: created interface", "interface", a.Name, "temporary", a.Temporary)
	return nil
}

// DeleteIP is ipadm delete-ip: the interface is unplumbed and forgotten
// with its address objects, in both configurations.
func (r *Registry) DeleteIP(c ifmgr.Caller, a ctl.IpadmIf) error {
	if err := needPriv(c, "delete-ip"); err != nil {
		return err
	}
	if err := checkIfName(a.Name); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	i := r.active.iface(a.Name)
	var fams []ctl.Family
	for _, f := range bothFamilies {
		if r.plumbed(a.Name, f) {
			fams = append(fams, f)
		}
	}
	if i == nil && len(fams) == 0 {
		return ctl.Errorf(ctl.ENXIO, "no interface named %s", a.Name)
	}
	apply := func() error {
		for _, f := range fams {
			if _, err := r.lifreq(c, "unplumb", f, ctl.Lifreq{Name: a.Name}); err != nil {
				return err
			}
		}
		for k := range r.lifs {
			if lifIll(k) == a.Name {
				delete(r.lifs, k)
			}
		}
		return nil
	}
	return r.commitFirstLocked(false, func(cfg *Config) { cfg.removeIface(a.Name) }, apply)
}

// DisableIf is ipadm disable-if: the interface is unplumbed but its
// configuration kept, to come back with enable-if (and, unless temporary,
// it stays down across a restart).
func (r *Registry) DisableIf(c ifmgr.Caller, a ctl.IpadmIf) error {
	return r.changeIface(c, "disable-if", a.Name, func(i *Interface) error {
		if i.Disabled {
			return ctl.Errorf(ctl.EALREADY, "interface %s is already disabled", a.Name)
		}
		apply := func() error {
			for _, f := range i.families() {
				if !r.plumbed(a.Name, f) {
					continue
				}
				if _, err := r.lifreq(c, "unplumb", f, ctl.Lifreq{Name: a.Name}); err != nil {
					return err
				}
			}
			return nil
		}
		return r.commitFirstLocked(a.Temporary, setIfDisabled(a.Name, true), apply)
	})
}

// EnableIf is ipadm enable-if: a disabled interface, or one whose link was
// missing, is configured again from the active configuration.
func (r *Registry) EnableIf(c ifmgr.Caller, a ctl.IpadmIf) error {
	return r.changeIface(c, "enable-if", a.Name, func(i *Interface) error {
		if !i.Disabled && r.ifApplied(i) {
			return ctl.Errorf(ctl.EALREADY, "interface %s is already enabled", a.Name)
		}
		back, err := r.applyIfLocked(c, i, true)
		if err != nil {
			return err
		}
		return r.commitLocked(a.Temporary, setIfDisabled(a.Name, false), back)
	})
}

func setIfDisabled(name string, on bool) func(*Config) {
	return func(cfg *Config) {
		if i := cfg.iface(name); i != nil {
			i.Disabled = on
		}
	}
}

// ifApplied reports whether every family of i is plumbed.
func (r *Registry) ifApplied(i *Interface) bool {
	for _, f := range i.families() {
		if !r.plumbed(i.Name, f) {
			return false
		}
	}
	return true
}

// applyIfLocked configures interface i: plumbs its families (those not
// plumbed yet), sets its properties and applies its enabled address
// objects. Strict stops at the first failure and undoes everything;
// otherwise (restore) a property or address that fails is logged and
// skipped, and only a failed plumb stops.
func (r *Registry) applyIfLocked(c ifmgr.Caller, i *Interface, strict bool) (undo, error) {
	var back undo
	fail := func(err error) (undo, error) {
		back.run()
		return nil, err
	}
	for _, f := range i.families() {
		if r.plumbed(i.Name, f) {
			continue
		}
		if err := r.plumbLocked(c, i.Name, f, &back); err != nil {
			return fail(err)
		}
	}
	for _, p := range i.Props {
		var pb undo
		if err := r.setIfPropLocked(c, i.Name, p.Proto, p.Name, p.Value, &pb); err != nil {
			pb.run()
			if strict {
				return fail(err)
			}
			r.log.Warn("ipadm: restore interface property", "interface", i.Name, "proto", p.Proto, "property", p.Name, "err", err)
			continue
		}
		back = append(back, pb...)
	}
	for k := range i.Addrs {
		obj := &i.Addrs[k]
		if obj.Disabled {
			continue
		}
		if r.isAppliedLocked(obj) {
			continue
		}
		var ab undo
		lif, err := r.applyAddrLocked(c, obj, &ab)
		if err != nil {
			ab.run()
			if strict {
				return fail(err)
			}
			r.log.Warn("ipadm: restore address object", "addrobj", obj.Obj, "err", err)
			continue
		}
		back = append(back, ab...)
		r.lifs[obj.Obj] = lif
	}
	return back, nil
}
