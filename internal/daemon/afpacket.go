package daemon

import (
	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/ifmgr"
)

// createAFPacket is dladm create-afpacket: a link over an existing
// Ethernet device, made by Config.CreateAFPacket.
func (d *Daemon) createAFPacket(caller ifmgr.Caller, a ctl.CreateAFPacket) (*ctl.LinkInfo, error) {
	if !caller.Privileged {
		return nil, ctl.Errorf(ctl.EPERM, "creating a link needs privilege")
	}
	if d.cfg.CreateAFPacket == nil {
		return nil, ctl.Errorf(ctl.ENOTSUP, "this daemon cannot create AF_PACKET links")
	}
	if a.Name == "" {
		return nil, ctl.Errorf(ctl.EINVAL, "create-afpacket needs a link name")
	}
	if a.Over == "" {
		return nil, ctl.Errorf(ctl.EINVAL, "create-afpacket needs a device to be over (--over)")
	}
	if a.Rings < 0 {
		return nil, ctl.Errorf(ctl.EINVAL, "create-afpacket: %d rings", a.Rings)
	}
	if _, ok := d.links.Get(a.Name); ok {
		return nil, ctl.Errorf(ctl.EEXIST, "link %s already exists", a.Name)
	}
	l, err := d.cfg.CreateAFPacket(a)
	if err != nil {
		return nil, err
	}
	if err := d.links.Add(l); err != nil {
		l.Close()
		return nil, ctl.Errorf(ctl.EEXIST, "%v", err)
	}
	d.log.Info("created link", "link", a.Name, "class", "afpacket", "over", a.Over, "netns", a.Netns)
	info := linkInfo(l)
	return &info, nil
}
