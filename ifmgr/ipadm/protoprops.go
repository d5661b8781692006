package ipadm

import (
	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/ifmgr"
)

// SetProp is ipadm set-prop: a protocol property through SIOCSETPROP,
// recorded (unless temporary) with the value it has afterwards.
func (r *Registry) SetProp(c ifmgr.Caller, a ctl.IpadmProp) error {
	flags := ctl.MOD_PROP_ACTIVE | a.Flags&(ctl.MOD_PROP_APPEND|ctl.MOD_PROP_REMOVE)
	return r.protoPropChange(c, a, flags)
}

// ResetProp is ipadm reset-prop: the default value, and forgotten.
func (r *Registry) ResetProp(c ifmgr.Caller, a ctl.IpadmProp) error {
	a.Value = ""
	return r.protoPropChange(c, a, ctl.MOD_PROP_DEFAULT)
}

func (r *Registry) protoPropChange(c ifmgr.Caller, a ctl.IpadmProp, flags int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := ctl.Prop{Proto: a.Proto, Name: a.Name, Flags: ctl.MOD_PROP_ACTIVE}
	oldErr := r.m.Do(system, "SIOCGETPROP", "", &old)
	p := ctl.Prop{Proto: a.Proto, Name: a.Name, Val: a.Value, Flags: flags}
	if err := r.m.Do(c, "SIOCSETPROP", "", &p); err != nil {
		return err
	}
	var back undo
	if oldErr == nil {
		back.add(func() {
			p := ctl.Prop{Proto: a.Proto, Name: a.Name, Val: old.Val, Flags: ctl.MOD_PROP_ACTIVE}
			r.m.Do(system, "SIOCSETPROP", "", &p)
		})
	}
	val := ""
	if flags != ctl.MOD_PROP_DEFAULT {
		cur := ctl.Prop{Proto: a.Proto, Name: a.Name, Flags: ctl.MOD_PROP_ACTIVE}
		if err := r.m.Do(system, "SIOCGETPROP", "", &cur); err == nil {
			val = cur.Val
		} else {
			val = a.Value
		}
	}
	mut := func(cfg *Config) {
		cfg.Props = setProp(cfg.Props, Prop{Proto: a.Proto, Name: a.Name, Value: val})
	}
	return r.commitLocked(a.Temporary, mut, back)
}

// PersistentProps lists the protocol properties the state file holds (for
// show-prop's PERSISTENT column).
func (r *Registry) PersistentProps() []ctl.IpadmProp {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []ctl.IpadmProp{}
	for _, p := range r.persist.Props {
		out = append(out, ctl.IpadmProp{Proto: p.Proto, Name: p.Name, Value: p.Value})
	}
	return out
}
