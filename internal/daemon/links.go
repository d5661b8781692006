package daemon

import (
	"errors"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/ifmgr"
	"github.com/tapstack/tapstack/link"
	"github.com/tapstack/tapstack/route"
)

func (d *Daemon) createTap(caller ifmgr.Caller, a ctl.CreateTap) (*ctl.LinkInfo, error) {
	if !caller.Privileged {
		return nil, ctl.Errorf(ctl.EPERM, "creating a link needs privilege")
	}
	if d.cfg.CreateTap == nil {
		return nil, ctl.Errorf(ctl.ENOTSUP, "this daemon cannot create TAP links")
	}
	if a.Name == "" {
		return nil, ctl.Errorf(ctl.EINVAL, "create-tap needs a link name")
	}
	if _, ok := d.links.Get(a.Name); ok {
		return nil, ctl.Errorf(ctl.EEXIST, "link %s already exists", a.Name)
	}
	l, err := d.cfg.CreateTap(a)
	if err != nil {
		return nil, err
	}
	if err := d.links.Add(l); err != nil {
		l.Close()
		return nil, ctl.Errorf(ctl.EEXIST, "%v", err)
	}
	d.log.Info("created link", "link", a.Name, "netns", a.Netns)
	info := linkInfo(l)
	return &info, nil
}

func (d *Daemon) deleteLink(caller ifmgr.Caller, name string) error {
	if !caller.Privileged {
		return ctl.Errorf(ctl.EPERM, "deleting a link needs privilege")
	}
	if _, ok := d.links.Get(name); !ok {
		return ctl.Errorf(ctl.ENXIO, "no link named %s", name)
	}
	if d.isSessionLink(name) {
		return ctl.Errorf(ctl.EBUSY, "link %s serves a namespace gateway; it goes when the namespace or the daemon does", name)
	}
	if d.ifm.Plumbed(name) {
		return ctl.Errorf(ctl.EBUSY, "link %s is plumbed; unplumb it first (tapadm ifconfig %s unplumb)", name, name)
	}
	l, err := d.links.Remove(name)
	if err != nil {
		if errors.Is(err, link.ErrNotExist) {
			return ctl.Errorf(ctl.ENXIO, "no link named %s", name)
		}
		return err
	}
	d.log.Info("deleted link", "link", name)
	return l.Close()
}

func linkInfo(l *link.Link) ctl.LinkInfo {
	state := "down"
	if l.Up() {
		state = "up"
	}
	caps := l.Device().Capabilities().Names()
	mac := ""
	if a := l.Addr(); len(a) > 0 {
		mac = a.String()
	}
	queues := 0
	if q, ok := l.Device().(interface{ Queues() int }); ok {
		queues = q.Queues()
	}
	return ctl.LinkInfo{
		Link: l.Name(), Class: l.Class(), MTU: l.SDU(), State: state, Over: l.Over(),
		MAC: mac, DLPIState: l.DLPIState().String(), Capabilities: caps, Queues: queues,
	}
}

func (d *Daemon) showLinks() []ctl.LinkInfo {
	out := []ctl.LinkInfo{}
	for _, l := range d.links.List() {
		out = append(out, linkInfo(l))
	}
	return out
}

// routeEntries lists the IRE table for netstat, one family or both.
func (d *Daemon) routeEntries(fam ctl.Family) []ctl.RouteEntry {
	out := []ctl.RouteEntry{}
	for _, e := range d.routes.All() {
		v6 := e.Dest.Addr().Is6()
		if fam == ctl.AF_INET && v6 || fam == ctl.AF_INET6 && !v6 {
			continue
		}
		out = append(out, ctl.RouteEntry{
			Destination: e.Dest, Gateway: e.Gateway, Type: e.Type.String(),
			Flags: route.NetstatFlags(e.IRE), Interface: e.Ill, Refs: e.Refs, Zone: e.Zone,
		})
	}
	return out
}
