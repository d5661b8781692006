package ipadm

import (
	"net/netip"
	"strings"

	"github.com/tapstack/tapstack/ctl"
)

// DAD states of SIOCGLIFDADSTATE.
const dadInProgress = 1

// ShowAddr is ipadm show-addr: every address of the interface layer (by
// its object's name, "IF/?" for one no object names, lo0/v4 and lo0/v6
// for the loopback), IPv4 then IPv6 in the interface layer's order, then
// the objects that are not configured now (disabled, inaccessible). q.Obj
// selects one object, or with "IF/" one interface.
func (r *Registry) ShowAddr(q ctl.IpadmAddrObj) ([]ctl.AddrInfo, error) {
	only, one := "", ""
	switch {
	case q.Obj == "":
	case strings.HasSuffix(q.Obj, "/"):
		only = strings.TrimSuffix(q.Obj, "/")
		if err := checkIfName(only); err != nil {
			return nil, err
		}
	default:
		if _, err := parseObj(q.Obj); err != nil {
			return nil, err
		}
		one = q.Obj
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if one != "" {
		if _, ok := builtin[one]; ok {
			only = "lo0"
		} else {
			_, obj, err := r.resolveLocked(one)
			if err != nil {
				return nil, err
			}
			return []ctl.AddrInfo{r.addrInfoLocked(obj)}, nil
		}
	}

	type key struct {
		fam ctl.Family
		lif string
	}
	owner := map[key]*Addr{}
	var unapplied []*Addr
	for k := range r.active.Interfaces {
		i := &r.active.Interfaces[k]
		for j := range i.Addrs {
			o := &i.Addrs[j]
			lif, ok := "", false
			if !o.Disabled && !i.Disabled {
				lif, ok = r.findLifLocked(o)
			}
			if ok {
				owner[key{o.family(), lif}] = o
			} else {
				unapplied = append(unapplied, o)
			}
		}
	}
	rows := []ctl.AddrInfo{}
	for _, fam := range bothFamilies {
		for _, rec := range r.lifList(fam) {
			ifname := lifIll(rec.Name)
			if only != "" && ifname != only {
				continue
			}
			if o := owner[key{fam, rec.Name}]; o != nil {
				rows = append(rows, r.addrInfoLocked(o))
				continue
			}
			if row, ok := r.unownedLocked(rec, fam); ok && (one == "" || row.Obj == one) {
				rows = append(rows, row)
			}
		}
	}
	for _, o := range unapplied {
		if only == "" || o.ifname() == only {
			rows = append(rows, r.addrInfoLocked(o))
		}
	}
	return rows, nil
}

// unownedLocked describes an address no object names; unset addresses,
// and IPv6 link-locals that are not up, are not shown.
func (r *Registry) unownedLocked(rec ctl.Lifreq, fam ctl.Family) (ctl.AddrInfo, bool) {
	if !rec.Addr.IsValid() || rec.Addr.IsUnspecified() {
		return ctl.AddrInfo{}, false
	}
	fl, err := r.flags(rec.Name, fam)
	if err != nil {
		return ctl.AddrInfo{}, false
	}
	if fam == ctl.AF_INET6 && rec.Addr.IsLinkLocalUnicast() && fl&ctl.IFF_UP == 0 {
		return ctl.AddrInfo{}, false
	}
	ifname := lifIll(rec.Name)
	name := ifname + "/?"
	if ifname == "lo0" && rec.Name == "lo0" {
		name = "lo0/v4"
		if fam == ctl.AF_INET6 {
			name = "lo0/v6"
		}
	}
	typ := ctl.AddrStatic
	switch {
	case fl&ctl.IFF_ADDRCONF != 0:
		typ = ctl.AddrAddrconf
	case fl&ctl.IFF_DHCPRUNNING != 0:
		typ = "dhcp"
	}
	mask, _ := r.lifreq(system, "SIOCGLIFNETMASK", fam, ctl.Lifreq{Name: rec.Name})
	addr := netip.PrefixFrom(rec.Addr, mask.Addrlen).String()
	if fl&ctl.IFF_POINTOPOINT != 0 {
		if d, err := r.lifreq(system, "SIOCGLIFDSTADDR", fam, ctl.Lifreq{Name: rec.Name}); err == nil && d.Dstaddr.IsValid() && !d.Dstaddr.IsUnspecified() {
			addr = rec.Addr.String() + "->" + d.Dstaddr.String()
		}
	}
	return ctl.AddrInfo{Obj: name, Type: typ, State: r.lifState(rec.Name, fam, fl), Addr: addr, Lifname: rec.Name}, true
}

// addrInfoLocked describes one address object.
func (r *Registry) addrInfoLocked(obj *Addr) ctl.AddrInfo {
	info := ctl.AddrInfo{Obj: obj.Obj, Type: obj.Type}
	_, po := r.persist.addr(obj.Obj)
	info.Persistent = po != nil
	if obj.Type == ctl.AddrStatic {
		info.Addr = obj.Local.String()
		if obj.Remote.IsValid() {
			info.Addr = obj.Local.Addr().String() + "->" + obj.Remote.String()
		}
	}
	if i := r.active.iface(obj.ifname()); obj.Disabled || i != nil && i.Disabled {
		info.State = ctl.AddrDisabled
		return info
	}
	lif, ok := r.findLifLocked(obj)
	if !ok {
		info.State = ctl.AddrInaccessible
		return info
	}
	fam := obj.family()
	info.Lifname = lif
	fl, err := r.flags(lif, fam)
	if err != nil {
		info.State = ctl.AddrInaccessible
		return info
	}
	info.State = r.lifState(lif, fam, fl)
	if obj.Type == ctl.AddrAddrconf {
		if lr, err := r.lifreq(system, "SIOCGLIFADDR", fam, ctl.Lifreq{Name: lif}); err == nil {
			info.Addr = netip.PrefixFrom(lr.Addr, lr.Addrlen).String()
		}
	}
	return info
}

// lifState is the show-addr STATE of a configured logical interface.
func (r *Registry) lifState(lif string, fam ctl.Family, fl ctl.Flags) string {
	switch {
	case fl&ctl.IFF_DUPLICATE != 0:
		return ctl.AddrDuplicate
	case fl&ctl.IFF_UP == 0:
		return ctl.AddrDown
	}
	if lr, err := r.lifreq(system, "SIOCGLIFDADSTATE", fam, ctl.Lifreq{Name: lif}); err == nil && lr.DADState == dadInProgress {
		return ctl.AddrTentative
	}
	return ctl.AddrOK
}

// ifFlagLetters are show-if's CURRENT letters, in order.
var ifFlagLetters = []struct {
	letter byte
	flag   ctl.Flags
}{
	{'b', ctl.IFF_BROADCAST}, {'m', ctl.IFF_MULTICAST}, {'p', ctl.IFF_POINTOPOINT},
	{'v', ctl.IFF_VIRTUAL}, {'I', ctl.IFF_IPMP}, {'s', ctl.IFF_STANDBY},
	{'i', ctl.IFF_INACTIVE}, {'V', ctl.IFF_VRRP}, {'a', ctl.IFF_NOACCEPT},
	{'Z', 0}, // L3 protection: tapstack has no such flag
	{'4', ctl.IFF_IPV4}, {'6', ctl.IFF_IPV6},
}

// ShowIf is ipadm show-if: the plumbed interfaces (IPv4 order, then
// IPv6-only ones), then those ipadm has configured but that are not
// plumbed (disabled, or their link is missing). q.Name selects one.
func (r *Registry) ShowIf(q ctl.IpadmIf) ([]ctl.IfInfo, error) {
	if q.Name != "" {
		if err := checkIfName(q.Name); err != nil {
			return nil, err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var names []string
	seen := map[string]bool{}
	add := func(n string) {
		if !seen[n] && (q.Name == "" || n == q.Name) {
			seen[n] = true
			names = append(names, n)
		}
	}
	for _, fam := range bothFamilies {
		for _, rec := range r.lifList(fam) {
			add(lifIll(rec.Name))
		}
	}
	for _, i := range r.active.Interfaces {
		add(i.Name)
	}
	if q.Name != "" && len(names) == 0 {
		return nil, ctl.Errorf(ctl.ENXIO, "no interface named %s", q.Name)
	}
	rows := make([]ctl.IfInfo, 0, len(names))
	for _, n := range names {
		rows = append(rows, r.ifInfoLocked(n))
	}
	return rows, nil
}

func (r *Registry) ifInfoLocked(name string) ctl.IfInfo {
	var fl ctl.Flags
	plumbed := false
	for _, fam := range bothFamilies {
		if f, err := r.flags(name, fam); err == nil {
			plumbed = true
			if fam == ctl.AF_INET6 {
				f &^= ctl.IFF_BROADCAST
			}
			fl |= f
		}
	}
	info := ctl.IfInfo{Name: name, Class: "ip", State: ctl.AddrOK}
	switch {
	case fl&ctl.IFF_LOOPBACK != 0:
		info.Class = "loopback"
	case fl&ctl.IFF_IPMP != 0:
		info.Class = "ipmp"
	}
	switch {
	case !plumbed:
		info.State = "disabled"
	case fl&ctl.IFF_OFFLINE != 0:
		info.State = "offline"
	case fl&ctl.IFF_FAILED != 0:
		info.State = "failed"
	case fl&ctl.IFF_RUNNING == 0:
		info.State = "down"
	}
	cur := make([]byte, len(ifFlagLetters))
	for k, l := range ifFlagLetters {
		cur[k] = '-'
		if l.flag != 0 && fl&l.flag != 0 {
			cur[k] = l.letter
		}
	}
	info.Current = string(cur)
	pers := []byte("---")
	if i := r.persist.iface(name); i != nil {
		if v, _ := getProp(i.Props, "ipv4", "standby"); v == "on" {
			pers[0] = 's'
		}
		if v, _ := getProp(i.Props, "ipv6", "standby"); v == "on" {
			pers[0] = 's'
		}
		if i.IPv4 {
			pers[1] = '4'
		}
		if i.IPv6 {
			pers[2] = '6'
		}
	}
	info.Persistent = string(pers)
	return info
}
