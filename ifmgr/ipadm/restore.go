package ipadm

import (
	"github.com/tapstack/tapstack/ctl"
)

// Restore applies the persistent configuration, once, at daemon start
// after the links the daemon creates itself exist: the protocol
// properties, then every enabled interface whose link is present. An
// interface whose link is missing stays configured but not applied (its
// addresses show as inaccessible) until the link appears (LinkAdded) or
// enable-if; a property or address the interface layer refuses is logged
// and skipped. Restore never fails the start.
func (r *Registry) Restore() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.active.Props {
		pr := ctl.Prop{Proto: p.Proto, Name: p.Name, Val: p.Value, Flags: ctl.MOD_PROP_ACTIVE}
		if err := r.m.Do(system, "SIOCSETPROP", "", &pr); err != nil {
			r.log.Warn("ipadm: restore property", "proto", p.Proto, "property", p.Name, "err", err)
		}
	}
	for k := range r.active.Interfaces {
		r.applyRestoredLocked(&r.active.Interfaces[k])
	}
	if r.store != nil {
		r.log.Info("ipadm: configuration restored", "state", r.store.Path(), "interfaces", len(r.active.Interfaces))
	}
}

// LinkAdded applies the configuration of interface name, if ipadm has
// one that is not applied yet: the daemon calls it when it creates a link,
// so a TAP created again after a restart gets its addresses back.
func (r *Registry) LinkAdded(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i := r.active.iface(name); i != nil {
		r.applyRestoredLocked(i)
	}
}

func (r *Registry) applyRestoredLocked(i *Interface) {
	if i.Disabled || r.ifApplied(i) && r.addrsApplied(i) {
		return
	}
	if _, err := r.applyIfLocked(system, i, false); err != nil {
		if isErrno(err, ctl.ENXIO) {
			r.log.Info("ipadm: interface not applied: its link does not exist yet; kept in the configuration", "interface", i.Name, "err", err)
			return
		}
		r.log.Warn("ipadm: interface not applied", "interface", i.Name, "err", err)
	}
}

// addrsApplied reports whether every enabled address object of i is on
// the interface layer.
func (r *Registry) addrsApplied(i *Interface) bool {
	for k := range i.Addrs {
		if i.Addrs[k].Disabled {
			continue
		}
		if !r.isAppliedLocked(&i.Addrs[k]) {
			return false
		}
	}
	return true
}
