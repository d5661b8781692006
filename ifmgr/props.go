package ifmgr

import (
	"fmt"
	"sort"
	"strconv"

	"github.com/tapstack/tapstack/ctl"
)

// tunable is one protocol property (ip_tunables.c): an integer with a
// default and a range.
type tunable struct {
	protos   []string // protocols it is reachable under
	def      int64
	min, max int64
}

// tunables are the properties tapstack implements, by name. The
// underscore-prefixed ones are the illumos private tunables.
var tunables = map[string]tunable{
	"_addrs_per_if":                      {[]string{"ip"}, 256, 1, 8192},
	"_arp_probe_delay":                   {[]string{"ip", "ipv4"}, 1000, 0, 20000},
	"_arp_fastprobe_delay":               {[]string{"ip", "ipv4"}, 100, 0, 20000},
	"_arp_probe_interval":                {[]string{"ip", "ipv4"}, 1500, 10, 20000},
	"_arp_fastprobe_interval":            {[]string{"ip", "ipv4"}, 150, 10, 20000},
	"_arp_probe_count":                   {[]string{"ip", "ipv4"}, 3, 0, 20},
	"_arp_fastprobe_count":               {[]string{"ip", "ipv4"}, 3, 0, 20},
	"_arp_publish_count":                 {[]string{"ip", "ipv4"}, 5, 1, 20},
	"_arp_publish_interval":              {[]string{"ip", "ipv4"}, 2000, 1000, 20000},
	"_arp_defend_interval":               {[]string{"ip", "ipv4"}, 300000, 0, 3600000},
	"_arp_defend_rate":                   {[]string{"ip", "ipv4"}, 100, 0, 20000},
	"_arp_defend_period":                 {[]string{"ip", "ipv4"}, 3600, 5, 86400},
	"_ndp_dad_transmits":                 {[]string{"ip", "ipv6"}, 3, 0, 20},
	"_ndp_defend_interval":               {[]string{"ip", "ipv6"}, 300000, 0, 3600000},
	"_ndp_defend_rate":                   {[]string{"ip", "ipv6"}, 100, 0, 20000},
	"_ndp_defend_period":                 {[]string{"ip", "ipv6"}, 3600, 5, 86400},
	"_ndp_unsolicit_interval":            {[]string{"ip", "ipv6"}, 2000, 1000, 20000},
	"_ndp_unsolicit_count":               {[]string{"ip", "ipv6"}, 3, 1, 20},
	"_dad_announce_interval":             {[]string{"ip", "ipv4", "ipv6"}, 15000, 0, 3600000},
	"_max_defend":                        {[]string{"ip"}, 3, 0, 1000},
	"_max_temp_defend":                   {[]string{"ip"}, 1, 0, 1000},
	"_defend_interval":                   {[]string{"ip"}, 30, 0, 999999},
	"_dup_recovery":                      {[]string{"ip"}, 300000, 0, 3600000},
	"_arp_no_defense":                    {[]string{"ip", "ipv4"}, 1, 0, 1},
	"_respond_to_address_mask_broadcast": {[]string{"ip"}, 0, 0, 1},
	"_broadcast_ttl":                     {[]string{"ip"}, 1, 1, 254},
}

// validProtos are the protocols SIOCSETPROP accepts (spec §2.22).
var validProtos = map[string]bool{"ip": true, "ipv4": true, "ipv6": true, "rawip": true, "tcp": true, "udp": true, "sctp": true}

// Tunable returns the current value of a tunable (for the arp and ndp
// packages, through the daemon).
func (m *Manager) Tunable(name string) int64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.tunableLocked(name)
}

func (m *Manager) tunableLocked(name string) int64 {
	if v, ok := m.tun[name]; ok {
		return v
	}
	return tunables[name].def
}

func (m *Manager) propArgs(p *ctl.Prop, set bool) error {
	if !validProtos[p.Proto] {
		return ctl.Errorf(ctl.EINVAL, "protocol %q is not one of ip, ipv4, ipv6, rawip, tcp, udp, sctp", p.Proto)
	}
	if set {
		switch p.Flags {
		case ctl.MOD_PROP_DEFAULT, ctl.MOD_PROP_ACTIVE, ctl.MOD_PROP_ACTIVE | ctl.MOD_PROP_APPEND, ctl.MOD_PROP_ACTIVE | ctl.MOD_PROP_REMOVE:
		default:
			return ctl.Errorf(ctl.EINVAL, "mpr_flags %#x: a set takes DEFAULT, ACTIVE, ACTIVE|APPEND or ACTIVE|REMOVE", p.Flags)
		}
	} else if p.Flags&(ctl.MOD_PROP_ACTIVE|ctl.MOD_PROP_DEFAULT|ctl.MOD_PROP_POSSIBLE|ctl.MOD_PROP_PERM) == 0 {
		return ctl.Errorf(ctl.EINVAL, "mpr_flags %#x: a get needs ACTIVE, DEFAULT, POSSIBLE or PERM", p.Flags)
	}
	return nil
}

func hasProto(t tunable, proto string) bool {
	for _, p := range t.protos {
		if p == proto {
			return true
		}
	}
	return false
}

// SIOCGETPROP (spec §2.22, §7.1, §13.3).
func (m *Manager) sioGetProp(c *call) error {
	p := c.prop
	if err := m.propArgs(p, false); err != nil {
		return err
	}
	switch p.Name {
	case "forwarding":
		return m.getForwardingLocked(p, c.caller.Zone)
	case "mtu":
		return m.getMTUPropLocked(p, c.caller.Zone)
	}
	t, ok := tunables[p.Name]
	if !ok || !hasProto(t, p.Proto) {
		return ctl.Errorf(ctl.ENOENT, "no property %s for protocol %s", p.Name, p.Proto)
	}
	switch {
	case p.Flags&ctl.MOD_PROP_PERM != 0:
		p.Val = "rw"
	case p.Flags&ctl.MOD_PROP_DEFAULT != 0:
		p.Val = strconv.FormatInt(t.def, 10)
	case p.Flags&ctl.MOD_PROP_POSSIBLE != 0:
		p.Val = fmt.Sprintf("%d-%d", t.min, t.max)
	default:
		p.Val = strconv.FormatInt(m.tunableLocked(p.Name), 10)
	}
	return nil
}

// SIOCSETPROP (spec §2.22).
func (m *Manager) sioSetProp(c *call) error {
	p := c.prop
	if err := m.propArgs(p, true); err != nil {
		return err
	}
	switch p.Name {
	case "forwarding":
		return m.setForwardingLocked(p)
	case "mtu":
		return ctl.Errorf(ctl.EPERM, "mtu is read-only here; set it with SIOCSLIFMTU (ifconfig NAME mtu N)")
	}
	t, ok := tunables[p.Name]
	if !ok || !hasProto(t, p.Proto) {
		return ctl.Errorf(ctl.ENOENT, "no property %s for protocol %s", p.Name, p.Proto)
	}
	if p.Flags&(ctl.MOD_PROP_APPEND|ctl.MOD_PROP_REMOVE) != 0 {
		return ctl.Errorf(ctl.EINVAL, "%s is a single value; it cannot be appended to or removed from", p.Name)
	}
	v := t.def
	if p.Flags != ctl.MOD_PROP_DEFAULT {
		var err error
		v, err = strconv.ParseInt(p.Val, 10, 64)
		if err != nil || v < t.min || v > t.max {
			return ctl.Errorf(ctl.EINVAL, "%s: value %q is not an integer in %d..%d", p.Name, p.Val, t.min, t.max)
		}
	}
	m.tun[p.Name] = v
	if p.Name == "_addrs_per_if" {
		m.addrsPerIf = int(v)
	}
	return nil
}

// Props lists the tunable names (for ipadm show-prop).
func Props() []string {
	out := []string{"forwarding", "mtu"}
	for n := range tunables {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// forwardingFamily maps a protocol to the family whose forwarding it sets.
func forwardingFamily(proto string) (bool, error) {
	switch proto {
	case "ipv4":
		return false, nil
	case "ipv6":
		return true, nil
	}
	return false, ctl.Errorf(ctl.ENOENT, "forwarding is a property of ipv4 or ipv6, not %s", proto)
}

func (m *Manager) getForwardingLocked(p *ctl.Prop, zone string) error {
	v6, err := forwardingFamily(p.Proto)
	if err != nil {
		return err
	}
	switch {
	case p.Flags&ctl.MOD_PROP_PERM != 0:
		p.Val = "rw"
		return nil
	case p.Flags&ctl.MOD_PROP_DEFAULT != 0:
		p.Val = "off"
		return nil
	case p.Flags&ctl.MOD_PROP_POSSIBLE != 0:
		p.Val = "on,off"
		return nil
	}
	on := m.forwarding[famIndex(v6)]
	if p.Ifname != "" {
		il, err := m.propIllLocked(p.Ifname, v6, zone)
		if err != nil {
			return err
		}
		on = il.flags&ctl.IFF_ROUTER != 0
	}
	p.Val = "off"
	if on {
		p.Val = "on"
	}
	return nil
}

// setForwardingLocked is ill_forward_set (spec §13.3): globally every ill
// of the family, or one named ill.
func (m *Manager) setForwardingLocked(p *ctl.Prop) error {
	v6, err := forwardingFamily(p.Proto)
	if err != nil {
		return err
	}
	on := false
	if p.Flags != ctl.MOD_PROP_DEFAULT {
		switch p.Val {
		case "1", "on":
			on = true
		case "0", "off":
		default:
			return ctl.Errorf(ctl.EINVAL, "forwarding: value %q is not on/off (1/0)", p.Val)
		}
	}
	var ills []*ill
	if p.Ifname != "" {
		il := m.lookupIllLocked(p.Ifname, v6)
		if il == nil {
			return ctl.Errorf(ctl.ENXIO, "no %s interface named %q", famWord(famOf(v6)), p.Ifname)
		}
		if il.isLoopback() {
			return ctl.Errorf(ctl.EINVAL, "forwarding cannot be set on the loopback interface")
		}
		ills = []*ill{il}
	} else {
		m.forwarding[famIndex(v6)] = on
		for _, il := range m.illListLocked(v6) {
			if !il.isLoopback() {
				ills = append(ills, il)
			}
		}
	}
	for _, il := range ills {
		m.setRouterLocked(il, on)
	}
	return nil
}

// setRouterLocked sets or clears an ill's ROUTER flag and tells gVisor.
func (m *Manager) setRouterLocked(il *ill, on bool) {
	if (il.flags&ctl.IFF_ROUTER != 0) == on {
		return
	}
	if on {
		il.flags |= ctl.IFF_ROUTER
	} else {
		il.flags &^= ctl.IFF_ROUTER
	}
	m.statsRouterLocked(il, on)
	if err := m.stack.SetForwarding(il.name, il.v6, on); err != nil {
		m.log.Warn("forwarding", "interface", il.name, "err", err)
	}
	m.emitLocked(RTM_IFINFO, il.ipifs[0])
}

// getMTUPropLocked is the read-only per-interface "mtu" property (§7.1).
func (m *Manager) getMTUPropLocked(p *ctl.Prop, zone string) error {
	if p.Ifname == "" || p.Flags&(ctl.MOD_PROP_DEFAULT|ctl.MOD_PROP_POSSIBLE) == 0 {
		return ctl.Errorf(ctl.ENOTSUP, "mtu needs an interface name and DEFAULT or POSSIBLE")
	}
	v6 := p.Proto == "ipv6"
	il, err := m.propIllLocked(p.Ifname, v6, zone)
	if err != nil {
		return err
	}
	if p.Flags&ctl.MOD_PROP_DEFAULT != 0 {
		p.Val = strconv.FormatUint(uint64(il.linkMTU()), 10)
	} else {
		p.Val = fmt.Sprintf("%d-%d", il.minMTU(), il.maxFrag)
	}
	return nil
}

// propIllLocked finds the ill a per-interface property names, as a
// caller in zone sees it: an ill with no unit in that zone does not exist
// there (ENXIO).
func (m *Manager) propIllLocked(name string, v6 bool, zone string) (*ill, error) {
	il := m.lookupIllLocked(name, v6)
	if il == nil || !illVisible(il, zone) {
		return nil, ctl.Errorf(ctl.ENXIO, "no %s interface named %q", famWord(famOf(v6)), name)
	}
	return il, nil
}
