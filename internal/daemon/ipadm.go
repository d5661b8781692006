package daemon

import (
	"strings"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/ifmgr"
)

// The ipadm operations ("ipadm.create-addr", ...): address objects,
// interfaces and properties, kept by the ipadm registry (ifmgr/ipadm),
// which makes its changes through the request table and records them in
// the state file (Config.StatePath).

// RestoreState applies the configuration saved in the state file. Call it
// once after the links the daemon creates itself exist (the namespace
// gateway's); interfaces whose link is missing are applied when a link of
// their name is created.
func (d *Daemon) RestoreState() { d.ipadm.Restore() }

// linkAdded gives the ipadm configuration of a new link's interface a
// chance to be applied.
func (d *Daemon) linkAdded(name string) { d.ipadm.LinkAdded(name) }

// dispatchIpadm runs an "ipadm." operation; ok is false for other ops.
// Changes need privilege (the registry checks the caller first); the
// show operations are open to everyone.
func (d *Daemon) dispatchIpadm(caller ifmgr.Caller, req *ctl.Request) (result any, ok bool, err error) {
	sub, ok := strings.CutPrefix(req.Op, "ipadm.")
	if !ok {
		return nil, false, nil
	}
	reg := d.ipadm
	switch sub {
	case "create-ip", "delete-ip", "enable-if", "disable-if", "show-if":
		var a ctl.IpadmIf
		if err := decode(req, &a); err != nil {
			return nil, true, err
		}
		switch sub {
		case "create-ip":
			return nil, true, reg.CreateIP(caller, a)
		case "delete-ip":
			return nil, true, reg.DeleteIP(caller, a)
		case "enable-if":
			return nil, true, reg.EnableIf(caller, a)
		case "disable-if":
			return nil, true, reg.DisableIf(caller, a)
		}
		rows, err := reg.ShowIf(a)
		return d.zoneIfs(caller, rows), true, err
	case "create-addr":
		var a ctl.IpadmAddr
		if err := decode(req, &a); err != nil {
			return nil, true, err
		}
		info, err := reg.CreateAddr(caller, a)
		if err != nil {
			return nil, true, err
		}
		if err := d.waitAddrDAD(a.Obj); err != nil {
			return nil, true, err
		}
		return info, true, nil
	case "delete-addr", "up-addr", "down-addr", "enable-addr", "disable-addr", "refresh-addr", "show-addr":
		var a ctl.IpadmAddrObj
		if err := decode(req, &a); err != nil {
			return nil, true, err
		}
		if sub == "show-addr" {
			rows, err := reg.ShowAddr(a)
			return d.zoneAddrs(caller, rows), true, err
		}
		op := map[string]func(ifmgr.Caller, ctl.IpadmAddrObj) error{
			"delete-addr": reg.DeleteAddr, "up-addr": reg.UpAddr, "down-addr": reg.DownAddr,
			"enable-addr": reg.EnableAddr, "disable-addr": reg.DisableAddr, "refresh-addr": reg.RefreshAddr,
		}[sub]
		if err := op(caller, a); err != nil {
			return nil, true, err
		}
		switch sub {
		case "up-addr", "enable-addr", "refresh-addr":
			return nil, true, d.waitAddrDAD(a.Obj)
		}
		return nil, true, nil
	case "set-prop", "reset-prop", "set-ifprop", "reset-ifprop", "set-addrprop", "reset-addrprop":
		var a ctl.IpadmProp
		if err := decode(req, &a); err != nil {
			return nil, true, err
		}
		op := map[string]func(ifmgr.Caller, ctl.IpadmProp) error{
			"set-prop": reg.SetProp, "reset-prop": reg.ResetProp,
			"set-ifprop": reg.SetIfProp, "reset-ifprop": reg.ResetIfProp,
			"set-addrprop": reg.SetAddrProp, "reset-addrprop": reg.ResetAddrProp,
		}[sub]
		return nil, true, op(caller, a)
	case "show-ifprop", "show-addrprop":
		var a ctl.IpadmShowProps
		if err := decode(req, &a); err != nil {
			return nil, true, err
		}
		var rows []ctl.PropInfo
		if sub == "show-ifprop" {
			rows, err = reg.ShowIfProp(a)
		} else {
			rows, err = reg.ShowAddrProp(a)
		}
		return d.zoneProps(caller, rows), true, err
	case "persistent-props":
		return reg.PersistentProps(), true, nil
	}
	return nil, true, ctl.Errorf(ctl.EINVAL, "unknown ipadm operation %q", req.Op)
}

// linkCreated returns a function that passes a dladm create result
// through, first applying the ipadm configuration of the new link's
// interface when the link was created.
func (d *Daemon) linkCreated(name string) func(*ctl.LinkInfo, error) (any, error) {
	return func(info *ctl.LinkInfo, err error) (any, error) {
		if err != nil {
			return nil, err
		}
		d.linkAdded(name)
		return info, nil
	}
}
