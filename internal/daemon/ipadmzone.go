package daemon

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/ifmgr"
)

// The ipadm registry answers show requests for the whole system; a client
// in a non-global zone (--zone-map) sees only what the interface layer
// shows it (spec §11): addresses on units of its zone, interfaces that
// have such a unit, and their properties. The global zone sees all.

// zoneLifs returns the names of the logical interfaces caller sees, both
// families, and the ifnames they belong to.
func (d *Daemon) zoneLifs(caller ifmgr.Caller) (lifs, ifs map[string]bool) {
	lifs, ifs = map[string]bool{}, map[string]bool{}
	for _, fam := range []ctl.Family{ctl.AF_INET, ctl.AF_INET6} {
		lc := ctl.Lifconf{Family: fam, Flags: ctl.LIFC_NOXMIT | ctl.LIFC_TEMPORARY | ctl.LIFC_UNDER_IPMP}
		if d.ifm.Do(caller, "SIOCGLIFCONF", fam, &lc) != nil {
			continue
		}
		for _, r := range lc.Req {
			lifs[string(fam)+" "+r.Name] = true
			ifname, _, _ := strings.Cut(r.Name, ":")
			ifs[ifname] = true
		}
	}
	return lifs, ifs
}

func (d *Daemon) zoneAddrs(caller ifmgr.Caller, rows []ctl.AddrInfo) []ctl.AddrInfo {
	if caller.Zone == "" {
		return rows
	}
	lifs, _ := d.zoneLifs(caller)
	return slices.DeleteFunc(rows, func(r ctl.AddrInfo) bool {
		return r.Lifname == "" || !lifs[string(addrFamily(r.Addr))+" "+r.Lifname]
	})
}

func (d *Daemon) zoneIfs(caller ifmgr.Caller, rows []ctl.IfInfo) []ctl.IfInfo {
	if caller.Zone == "" {
		return rows
	}
	_, ifs := d.zoneLifs(caller)
	return slices.DeleteFunc(rows, func(r ctl.IfInfo) bool { return !ifs[r.Name] })
}

func (d *Daemon) zoneProps(caller ifmgr.Caller, rows []ctl.PropInfo) []ctl.PropInfo {
	if caller.Zone == "" {
		return rows
	}
	_, ifs := d.zoneLifs(caller)
	objs := map[string]bool{}
	if all, err := d.ipadm.ShowAddr(ctl.IpadmAddrObj{}); err == nil {
		for _, a := range d.zoneAddrs(caller, all) {
			objs[a.Obj] = true
		}
	}
	return slices.DeleteFunc(rows, func(r ctl.PropInfo) bool {
		return !(r.Obj != "" && objs[r.Obj] || r.Obj == "" && ifs[r.Ifname])
	})
}

// addrFamily is the family of an ipadm address column ("A/P" or "A->D").
func addrFamily(addr string) ctl.Family {
	local, _, _ := strings.Cut(addr, "/")
	local, _, _ = strings.Cut(local, "->")
	if a, err := netip.ParseAddr(local); err == nil && a.Is6() {
		return ctl.AF_INET6
	}
	return ctl.AF_INET
}
