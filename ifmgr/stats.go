package ifmgr

// Per-interface statistics (spec §13.1): every ill of both families has an
// IP MIB (ipIfStats, plus ipv6IfIcmp for IPv6) that starts at zero when it
// is plumbed, and is added into the stack-wide totals of its family when
// it is unplumbed, so nothing counted is lost.
//
// The counters themselves are the stack's (gVisor's per-NIC counters and
// the counting endpoint, stack/stats.go). They cannot be reset, and a NIC
// outlives an ill when the phyint's other family stays plumbed, so each
// ill remembers what the NIC had counted when it was plumbed (its base) and
// reports the difference.

import (
	"net/netip"
	"reflect"
	"strings"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/stack"
)

// statsBook is the Manager's statistics state beyond its ills'.
//
// Locking: written only with Manager.mu held exclusively (plumb, unplumb,
// forwarding changes), read with it held at least shared; the same holds
// for each ill's illStats.
type statsBook struct {
	// folded are the MIBs of unplumbed ills, per family.
	folded      [2]ctl.IPIfStats
	foldedICMP6 ctl.ICMP6IfStats
}

// illStats is what an ill needs to report counts since its plumb.
type illStats struct {
	base stack.IPCounters // the NIC's counters when the ill was plumbed

	// ForwProhibits: datagrams the stack refused to forward because the
	// ill's ROUTER flag was off. gVisor counts them as datagrams for no
	// local address (notForUs), so the count is that counter's growth
	// while ROUTER is off: prohibited holds the closed off-periods,
	// offFrom the counter when ROUTER was last turned off (or at plumb).
	routerOn   bool
	offFrom    uint64
	prohibited uint64
}

// statsLocked returns m's statistics book.
func (m *Manager) statsLocked() *statsBook { return &m.stats }

// countersLocked reads the NIC counters of il's family. A NIC the stack
// does not know reads as zero (it cannot happen while il is plumbed).
func (m *Manager) countersLocked(il *ill) stack.IPCounters {
	c, err := m.stack.IPCounters(il.phy.name, il.v6)
	if err != nil {
		m.log.Warn("interface statistics", "interface", il.name, "err", err)
	}
	return c
}

// statsPlumbedLocked starts il's MIB at zero: called once il is in its
// phyint and its NIC exists.
func (m *Manager) statsPlumbedLocked(il *ill) {
	c := m.countersLocked(il)
	il.stats = &illStats{base: c, routerOn: il.flags&ctl.IFF_ROUTER != 0, offFrom: notForUs(&c)}
}

// statsUnplumbedLocked folds il's MIB into its family's totals: called
// before il leaves its phyint (and before its NIC may go).
func (m *Manager) statsUnplumbedLocked(il *ill) {
	b := m.statsLocked()
	ip, icmp6 := m.illMIBLocked(il)
	addCounters(&b.folded[famIndex(il.v6)], &ip)
	if icmp6 != nil {
		addCounters(&b.foldedICMP6, icmp6)
	}
	il.stats = nil
}

// statsRouterLocked records a change of il's ROUTER flag, which decides
// what counts as ForwProhibits.
func (m *Manager) statsRouterLocked(il *ill, on bool) {
	s := il.stats
	if s == nil || s.routerOn == on {
		return
	}
	c := m.countersLocked(il)
	cur := notForUs(&c)
	if on {
		s.prohibited += sat(cur, s.offFrom)
	} else {
		s.offFrom = cur
	}
	s.routerOn = on
}

// illMIBLocked returns il's MIB since it was plumbed, and its ICMPv6 MIB
// (nil for IPv4).
func (m *Manager) illMIBLocked(il *ill) (ctl.IPIfStats, *ctl.ICMP6IfStats) {
	cur := m.countersLocked(il)
	s := il.stats
	if s == nil {
		s = &illStats{routerOn: true} // not booked: count from the NIC's creation
	}
	d := cur
	subCounters(&d, &s.base)
	prohibited := s.prohibited
	if !s.routerOn {
		prohibited += sat(notForUs(&cur), s.offFrom)
	}
	ip := ipMIB(&d, prohibited)
	if !il.v6 {
		return ip, nil
	}
	icmp6 := icmp6MIB(&d.ICMP)
	return ip, &icmp6
}

// notForUs counts the unicast datagrams that arrived for another host and
// were not forwarded: gVisor's "no such destination" count without the
// multicast for groups not joined.
func notForUs(c *stack.IPCounters) uint64 {
	return sat(c.InvalidDestination, c.InvalidGroup)
}

// ipMIB maps the stack's counters (a difference) to ipIfStats.
func ipMIB(d *stack.IPCounters, prohibited uint64) ctl.IPIfStats {
	return ctl.IPIfStats{
		InReceives:    d.Received,
		InOctets:      d.InOctets,
		InHdrErrors:   d.Malformed,
		InAddrErrors:  sat(d.InvalidDestination+d.InvalidSource, prohibited),
		InDiscards:    d.Disabled + d.FilterInDrops + sat(d.ForwardErrors, d.ForwardUnroutable),
		InDelivers:    d.Delivered,
		InMcastPkts:   d.InMulticast,
		InBcastPkts:   d.InBroadcast,
		OutRequests:   sat(d.Sent, d.Forwarded),
		OutTransmits:  d.Transmitted,
		OutOctets:     d.OutOctets,
		OutDiscards:   d.OutErrors + d.FilterOutDrops,
		OutNoRoutes:   d.ForwardUnroutable,
		OutMcastPkts:  d.OutMulticast,
		OutBcastPkts:  d.OutBroadcast,
		ForwDatagrams: d.Forwarded,
		ForwProhibits: prohibited,
		ReasmFails:    d.MalformedFragments,
	}
}

// icmp6MIB maps the stack's ICMPv6 counters to ipv6IfIcmp.
func icmp6MIB(c *stack.ICMPv6Counters) ctl.ICMP6IfStats {
	in, out := &c.In, &c.Out
	return ctl.ICMP6IfStats{
		InMsgs:                    sumCounters(in) + c.InInvalid + c.InUnknown,
		InErrors:                  c.InInvalid,
		InDestUnreachs:            in.DstUnreachable,
		InPktTooBigs:              in.PacketTooBig,
		InTimeExcds:               in.TimeExceeded,
		InParmProblems:            in.ParamProblem,
		InEchos:                   in.EchoRequest,
		InEchoReplies:             in.EchoReply,
		InRouterSolicits:          in.RouterSolicit,
		InRouterAdvertisements:    in.RouterAdvert,
		InNeighborSolicits:        in.NeighborSolicit,
		InNeighborAdvertisements:  in.NeighborAdvert,
		InRedirects:               in.Redirect,
		InGroupMembQueries:        in.ListenerQuery,
		InGroupMembResponses:      in.ListenerReport + in.ListenerReportV2,
		InGroupMembReductions:     in.ListenerDone,
		OutMsgs:                   sumCounters(out),
		OutErrors:                 c.OutDropped,
		OutDestUnreachs:           out.DstUnreachable,
		OutPktTooBigs:             out.PacketTooBig,
		OutTimeExcds:              out.TimeExceeded,
		OutParmProblems:           out.ParamProblem,
		OutEchos:                  out.EchoRequest,
		OutEchoReplies:            out.EchoReply,
		OutRouterSolicits:         out.RouterSolicit,
		OutRouterAdvertisements:   out.RouterAdvert,
		OutNeighborSolicits:       out.NeighborSolicit,
		OutNeighborAdvertisements: out.NeighborAdvert,
		OutRedirects:              out.Redirect,
		OutGroupMembQueries:       out.ListenerQuery,
		OutGroupMembResponses:     out.ListenerReport + out.ListenerReportV2,
		OutGroupMembReductions:    out.ListenerDone,
	}
}

// linkStatsLocked returns the counters of il's link (shared by both
// families). lo0 has one loopback packet counter for both directions
// (spec §1.9).
func (m *Manager) linkStatsLocked(il *ill) ctl.LinkStats {
	lc, err := m.stack.LinkCounters(il.phy.name)
	if err != nil {
		m.log.Warn("link statistics", "interface", il.name, "err", err)
	}
	ls := ctl.LinkStats{
		IPackets: lc.InPackets, OPackets: lc.OutPackets,
		RBytes: lc.InBytes, OBytes: lc.OutBytes, OErrors: lc.OutNoBuffer,
	}
	if il.isLoopback() {
		ls.OPackets = ls.IPackets
	}
	return ls
}

// MIB2_IP_TRAFFIC_STATS: the per-interface MIBs of the socket's family (or
// both for AF_UNSPEC), of one interface or all, and the stack-wide totals.
func (m *Manager) mib2IPTrafficStats(c *call) error {
	req := c.ifStats
	name := req.Name
	if strings.Contains(name, ":") {
		return ctl.Errorf(ctl.EINVAL, "statistics are kept per interface, not per logical unit: ask for %s, not %s",
			name[:strings.IndexByte(name, ':')], name)
	}
	ills := m.illsOfLocked(c.family)
	if name != "" {
		var named []*ill
		for _, il := range ills {
			if il.name == name {
				named = append(named, il)
			}
		}
		if len(named) == 0 {
			return ctl.Errorf(ctl.ENXIO, "no %s interface named %q", famWords(c.family), name)
		}
		ills = named
	}
	b := m.statsLocked()
	out := make([]ctl.IfStats, 0, len(ills))
	for _, il := range ills {
		out = append(out, m.illStatsEntryLocked(il))
	}
	var totals []ctl.IPTotals
	for _, v6 := range []bool{false, true} {
		if c.family == ctl.AF_INET && v6 || c.family == ctl.AF_INET6 && !v6 {
			continue
		}
		t := ctl.IPTotals{Family: famOf(v6), IP: b.folded[famIndex(v6)]}
		var icmp6 ctl.ICMP6IfStats
		if v6 {
			icmp6 = b.foldedICMP6
		}
		for _, il := range m.illListLocked(v6) {
			ip, ic := m.illMIBLocked(il)
			addCounters(&t.IP, &ip)
			if ic != nil {
				addCounters(&icmp6, ic)
			}
		}
		if v6 {
			t.ICMP6 = &icmp6
		}
		totals = append(totals, t)
	}
	req.Interfaces, req.Totals = out, totals
	return nil
}

func famWords(f ctl.Family) string {
	if f == ctl.AF_UNSPEC {
		return "IPv4 or IPv6"
	}
	return famWord(f)
}

// illStatsEntryLocked describes il for netstat -i: its unit 0 and its
// counters.
func (m *Manager) illStatsEntryLocked(il *ill) ctl.IfStats {
	u := il.ipifs[0]
	ip, icmp6 := m.illMIBLocked(il)
	e := ctl.IfStats{
		Name: il.name, Family: il.family(), Index: il.phy.index, MTU: il.mtu,
		Flags: u.allFlags(), Addr: u.addr, IP: ip, ICMP6: icmp6,
		LinkStats: m.linkStatsLocked(il),
	}
	if u.subnet.IsValid() {
		e.Subnet = netip.PrefixFrom(u.subnet, prefixLen(u.mask))
	}
	if u.allFlags()&ctl.IFF_POINTOPOINT != 0 {
		e.Dst = u.dst
	}
	if il.phy.link != nil {
		e.Link = il.phy.link.Name()
	}
	return e
}

// sat is a-b, or 0 when b is larger (counters read at different moments,
// or a transient of notForUs: gVisor's count moves before the group miss
// is told apart).
func sat(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}

// addCounters adds src into dst, field by field; both are structs (of
// structs) of uint64 counters.
func addCounters[T any](dst, src *T) {
	walkCounters(reflect.ValueOf(dst).Elem(), reflect.ValueOf(src).Elem(), func(d, s uint64) uint64 { return d + s })
}

// subCounters subtracts base from dst, field by field.
func subCounters[T any](dst, base *T) {
	walkCounters(reflect.ValueOf(dst).Elem(), reflect.ValueOf(base).Elem(), sat)
}

// sumCounters adds up every counter of a struct.
func sumCounters[T any](v *T) uint64 {
	var total uint64
	var zero T
	walkCounters(reflect.ValueOf(&zero).Elem(), reflect.ValueOf(v).Elem(), func(_, s uint64) uint64 {
		total += s
		return 0
	})
	return total
}

func walkCounters(d, s reflect.Value, f func(d, s uint64) uint64) {
	switch d.Kind() {
	case reflect.Uint64:
		d.SetUint(f(d.Uint(), s.Uint()))
	case reflect.Struct:
		for i := range d.NumField() {
			walkCounters(d.Field(i), s.Field(i), f)
		}
	}
}
