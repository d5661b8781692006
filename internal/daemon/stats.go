package daemon

import (
	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/ifmgr"
	"github.com/tapstack/tapstack/link/afpacket"
	"github.com/tapstack/tapstack/link/tap"
)

// interfaceStats answers netstat.interfaces (tapadm netstat -i, -s): the
// interface layer's MIB2 get, with each link's own error counts added to
// the link counters, as the link kstats carry them in illumos.
func (d *Daemon) interfaceStats(caller ifmgr.Caller, fam ctl.Family, req ctl.IfStatsReq) (*ctl.IfStatsReq, error) {
	if fam == "" {
		fam = ctl.AF_UNSPEC
	}
	if err := d.ifm.Do(caller, "MIB2_IP_TRAFFIC_STATS", fam, &req); err != nil {
		return nil, err
	}
	for i := range req.Interfaces {
		e := &req.Interfaces[i]
		if e.Link == "" {
			continue
		}
		if l, ok := d.links.Get(e.Link); ok {
			in, out := deviceErrors(l.Device())
			e.LinkStats.IErrors += in
			e.LinkStats.OErrors += out
		}
	}
	return &req, nil
}

// deviceErrors returns the frames a link device dropped or failed to read
// (in) and failed to write (out), for the devices that count them.
func deviceErrors(dev any) (in, out uint64) {
	switch d := dev.(type) {
	case interface{ Stats() tap.Stats }:
		s := d.Stats()
		return s.RXDropped + s.RXErrors, s.TXErrors
	case interface{ Stats() []afpacket.RingStats }:
		for _, r := range d.Stats() {
			in += r.RxDropped + r.KernelDrops
			out += r.TxErrors
		}
		return in, out
	case interface{ Drops() uint64 }: // the in-memory pair
		return d.Drops(), 0
	}
	return 0, 0
}
