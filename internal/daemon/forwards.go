package daemon

// The gateway's control operations: inbound port forwards added, listed
// and removed at run time (tapadm gateway add-forward|list-forwards|
// remove-forward).

import (
	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/gateway"
	"github.com/tapstack/tapstack/ifmgr"
)

// addForwardArgs is the argument of "gateway.add-forward": a ctl.Forward,
// or {"spec": "[HOSTADDR:]HOSTPORT:GUESTPORT[/tcp|/udp]"}. The ID is the
// daemon's to assign and is ignored.
type addForwardArgs struct {
	ctl.Forward
	Spec string `json:"spec,omitempty"`
}

// session returns the gateway the forward operations act on: the one
// connected namespace's.
func (d *Daemon) session() (*Namespace, error) {
	ns := d.Namespaces()
	switch len(ns) {
	case 0:
		return nil, ctl.Errorf(ctl.ENXIO, "no namespace gateway is running")
	case 1:
		return ns[0], nil
	}
	return nil, ctl.Errorf(ctl.ENOTSUP, "%d namespace gateways are running; forwards over the control socket support one", len(ns))
}

func (d *Daemon) addForward(caller ifmgr.Caller, a addForwardArgs) (*ctl.Forward, error) {
	if !caller.Privileged {
		return nil, ctl.Errorf(ctl.EPERM, "adding a port forward needs privilege")
	}
	f := a.Forward
	if a.Spec != "" {
		if f != (ctl.Forward{ID: f.ID}) {
			return nil, ctl.Errorf(ctl.EINVAL, "give a forward as a spec or as fields, not both")
		}
		var err error
		if f, err = gateway.ParseForward(a.Spec); err != nil {
			return nil, ctl.Errorf(errnoOr(err, ctl.EINVAL), "%s", errMsg(err))
		}
	}
	f.ID = 0
	n, err := d.session()
	if err != nil {
		return nil, err
	}
	got, err := n.Gateway().AddForward(f)
	if err != nil {
		return nil, ctl.Errorf(errnoOr(err, ctl.EINVAL), "%s", errMsg(err))
	}
	n.log.Info("added forward", "id", got.ID, "forward", forwardString(got))
	return &got, nil
}

func (d *Daemon) listForwards() ([]ctl.Forward, error) {
	n, err := d.session()
	if err != nil {
		return nil, err
	}
	fs := n.Gateway().Forwards()
	if fs == nil {
		fs = []ctl.Forward{}
	}
	return fs, nil
}

func (d *Daemon) removeForward(caller ifmgr.Caller, id int) error {
	if !caller.Privileged {
		return ctl.Errorf(ctl.EPERM, "removing a port forward needs privilege")
	}
	n, err := d.session()
	if err != nil {
		return err
	}
	if err := n.Gateway().RemoveForward(id); err != nil {
		return ctl.Errorf(errnoOr(err, ctl.EINVAL), "%s", errMsg(err))
	}
	n.log.Info("removed forward", "id", id)
	return nil
}
