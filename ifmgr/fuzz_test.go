package ifmgr

import (
	"net/netip"
	"testing"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/route"
)

// fuzzOps are the requests the sequence fuzzer draws from: every set
// request of the table that a test without a wire can drive, and the gets
// whose handlers walk the state (they must not panic on any of it).
var fuzzOps = []string{
	"SIOCSLIFNAME", "unplumb", "SIOCLIFADDIF", "SIOCLIFREMOVEIF", "SIOCSLIFADDR",
	"SIOCSLIFNETMASK", "SIOCSLIFBRDADDR", "SIOCSLIFDSTADDR", "SIOCSLIFFLAGS",
	"SIOCSLIFMTU", "SIOCSLIFSUBNET", "SIOCSLIFTOKEN", "SIOCSLIFINDEX",
	"SIOCSLIFUSESRC", "SIOCCLIFFLAGS", "SIOCADDRT", "SIOCDELRT",
	// Added with the conformance suite: zones, ARP, ND, properties,
	// statistics and the remaining per-interface sets.
	"SIOCSLIFZONE", "zoneadm.create", "zoneadm.ready", "zoneadm.boot", "zoneadm.halt", "zoneadm.delete",
	"SIOCSARP", "SIOCDARP", "SIOCSXARP", "SIOCLIFSETND", "SIOCLIFDELND",
	"SIOCSETPROP", "SIOCSLIFPREFIX", "SIOCSLIFLNKINFO", "SIOCSLIFMETRIC", "SIOCSLIFMUXID",
	"MIB2_IP_TRAFFIC_STATS", "MIB2_IP_MEDIA", "ndp.list", "SIOCGLIFCONF", "SIOCGLIFSRCOF",
	"SIOCLIFGETND", "SIOCGARP", "SIOCGLIFZONE",
}

var fuzzNames = []string{"tap0", "tap0:1", "tap0:2", "tap1", "tap1:1", "lo0", "lo0:1", "tap0:300"}

var fuzzAddrs = []netip.Addr{
	netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.255"),
	netip.MustParseAddr("192.168.1.0"), netip.MustParseAddr("255.255.255.0"), netip.MustParseAddr("255.0.255.0"),
	netip.MustParseAddr("0.0.0.0"), netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("fe80::1"),
	netip.MustParseAddr("fd00::1"), netip.MustParseAddr("::"), netip.MustParseAddr("ffff:ffff:ffff:ffff::"), {},
}

// fuzzZones are the zone names the fuzzer creates and moves units to;
// their ids follow creation order (1, 2, ...), which fuzzZoneID draws.
var fuzzZones = []string{"z1", "z2"}

// fuzzProps are the properties the fuzzer sets, with a value drawn from n.
var fuzzProps = []struct {
	proto, name string
	vals        []string
}{
	{"ip", "_addrs_per_if", []string{"1", "3", "256"}},
	{"ipv4", "forwarding", []string{"0", "1"}},
	{"ipv6", "forwarding", []string{"0", "1"}},
	{"ip", "_arp_no_defense", []string{"0", "1"}},
}

// fuzzArg builds the argument of op from the fuzzer's bytes: family,
// logical name, address and a free number n.
func fuzzArg(op string, fam ctl.Family, name string, a netip.Addr, n int) any {
	arg, err := NewArg(op)
	if err != nil {
		return &ctl.Lifreq{Name: name}
	}
	switch x := arg.(type) {
	case *ctl.Rtentry:
		flags := 0
		if n&1 != 0 {
			flags |= ctl.RTF_GATEWAY
		}
		if n&2 != 0 {
			flags |= ctl.RTF_HOST
		}
		x.Dst, x.Gateway, x.Flags = fuzzAddrs[n%len(fuzzAddrs)], a, flags
		if n&4 != 0 {
			x.Ifp = fuzzNames[n%len(fuzzNames)]
		}
	case *ctl.Zone:
		x.Name = fuzzZones[n%len(fuzzZones)]
	case *ctl.Arpreq:
		x.PA, x.HA, x.Flags = a, "2:0:0:0:0:"+itoa(n%16), n&(ctl.ATF_PERM|ctl.ATF_PUBL)
	case *ctl.Xarpreq:
		hw := []byte{2, 0, 0, 0, 0, byte(n)}
		x.PA, x.HA = a, xha("", hw)
		if n&1 != 0 {
			x.HA = xha(name, hw)
		}
	case *ctl.Ndreq:
		x.Name = name
		x.ND = ctl.LifNdReq{Addr: a, StateCreate: n % 4, HdwLen: 6, HdwAddr: "2:0:0:0:0:" + itoa(n%16)}
	case *ctl.Prop:
		p := fuzzProps[n%len(fuzzProps)]
		x.Proto, x.Name, x.Flags, x.Val = p.proto, p.name, ctl.MOD_PROP_ACTIVE, p.vals[(n/len(fuzzProps))%len(p.vals)]
	case *ctl.IfStatsReq:
		if n&1 != 0 {
			x.Name = name
		}
	case *ctl.Lifconf:
		x.Family, x.Flags = fam, n&0x3f
	case *ctl.Lifsrcof:
		x.Ifindex, x.Maxlen = uint32(n%6), n*ctl.LifreqSize/64
	case *ctl.Lifreq:
		*x = ctl.Lifreq{Name: name, Addr: a, Dstaddr: a, Broadaddr: a, Subnet: a, Token: a,
			Addrlen: n % 140, MTU: int64(n) * 16, Index: uint32(n % 5), Metric: n, IPMuxID: n}
		switch op {
		case "SIOCSLIFNAME":
			x.Flags = ctl.IFF_IPV4
			if fam == ctl.AF_INET6 {
				x.Flags = ctl.IFF_IPV6
			}
		case "SIOCSLIFFLAGS":
			x.Flags = ctl.Flags(n) | ctl.Flags(n&0xf0)<<20
		case "SIOCCLIFFLAGS":
			x.Cflags = &ctl.Cflags{ModFlags: ctl.Flags(n), ModMask: 0xff, OrigMask: ctl.Flags(n & 1)}
		case "SIOCSLIFZONE":
			x.ZoneID = int32(n % 4) // global, the fuzzer's zones, or one that does not exist
			if n == 255 {
				x.ZoneID = ctl.ALL_ZONES
			}
		case "SIOCSLIFLNKINFO":
			x.Ifinfo = &ctl.Ifinfo{MaxHops: uint8(n), ReachTime: uint32(n) * 20000, ReachRetrans: uint32(n) * 500, MaxMTU: uint32(n) * 8}
		}
	}
	return arg
}

// FuzzRequestSequences drives random request sequences and checks the
// invariants after each: unique units and indexes, up units own exactly
// their IREs and every one they need, no IRE without an owner (an up unit,
// or a saved route of its ill), flags at their levels and within their
// allowed combinations, IREs in their unit's zone, sound usesrc rings, no
// panic.
func FuzzRequestSequences(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 4, 1, 0, 0, 8, 0, 0, 1, 2, 2, 3, 0})
	f.Add([]byte{0, 3, 0, 0, 2, 0, 0, 0, 4, 1, 1, 0, 8, 1, 0, 1, 1, 0, 0, 0})
	// Plumb tap0, address and up, a zone booted, a unit moved into it.
	f.Add([]byte{0, 0, 0, 0, 4, 0, 0, 0, 8, 0, 0, 1, 2, 0, 0, 0, 4, 1, 1, 0, 8, 1, 0, 1,
		18, 0, 0, 0, 20, 0, 0, 0, 17, 1, 0, 1})
	// Plumb tap0 for IPv6, bring the link-local up, set an ND entry and a token.
	f.Add([]byte{0, 0x80, 0, 0, 8, 0x80, 0, 1, 26, 0x80, 8, 2, 11, 0x80, 9, 64})
	// Up 10.0.0.1, ARP entries, forwarding on, stats.
	f.Add([]byte{0, 0, 0, 0, 4, 0, 0, 0, 8, 0, 0, 1, 23, 0, 1, 0, 25, 0, 1, 1, 28, 0, 0, 1, 33, 0, 0, 0})
	f.Fuzz(func(t *testing.T, prog []byte) {
		fx := newFixture(t, "tap0", "tap1")
		for len(prog) >= 4 {
			op := fuzzOps[int(prog[0])%len(fuzzOps)]
			fam := ctl.AF_INET
			if prog[1]&0x80 != 0 {
				fam = ctl.AF_INET6
			}
			name := fuzzNames[int(prog[1]&0x7f)%len(fuzzNames)]
			a := fuzzAddrs[int(prog[2])%len(fuzzAddrs)]
			n := int(prog[3])
			prog = prog[4:]
			fx.m.Do(root, op, fam, fuzzArg(op, fam, name, a, n))
			fx.m.mu.RLock()
			checkInvariants(t, fx.m)
			checkFlagLevels(t, fx.m)
			checkUnitIREs(t, fx.m)
			checkIREOwners(t, fx.m)
			checkFlagSets(t, fx.m)
			checkLists(t, fx.m)
			fx.m.mu.RUnlock()
			if t.Failed() {
				t.Fatalf("after %s %s %s %v %d", op, fam, name, a, n)
			}
		}
	})
}

// checkFlagLevels: every flag lives at its level, UP matches the IREs, and
// indexes are unique.
func checkFlagLevels(t *testing.T, m *Manager) {
	t.Helper()
	seen := map[uint32]string{}
	for name, p := range m.byName {
		if p.flags&^phyintFlags != 0 {
			t.Errorf("%s: phyint holds non-phyint flags %s", name, p.flags&^phyintFlags)
		}
		if o, dup := seen[p.index]; dup {
			t.Errorf("index %d used by %s and %s", p.index, o, name)
		}
		seen[p.index] = name
		if m.byIndex[p.index] != p {
			t.Errorf("%s: index table out of sync", name)
		}
		for _, il := range p.ills {
			if il == nil {
				continue
			}
			if il.flags&^illFlags != 0 {
				t.Errorf("%s: ill holds non-ill flags %s", il.name, il.flags&^illFlags)
			}
			for _, u := range il.ipifs {
				if u.flags&^ipifFlags != 0 {
					t.Errorf("%s: unit holds non-unit flags %s", u.name(), u.flags&^ipifFlags)
				}
				if u.up() && len(u.ires) == 0 && !u.addr.IsUnspecified() {
					t.Errorf("%s is up with no IREs", u.name())
				}
			}
		}
	}
	if len(m.byIndex) != len(m.byName) {
		t.Errorf("%d indexes for %d phyints", len(m.byIndex), len(m.byName))
	}
}

// checkUnitIREs: every up unit has the IREs spec §5.3/§5.5 give it (its
// local IRE, its interface IRE, its broadcast IREs), installed in the
// table, on its ill, in its zone; a down unit has none.
func checkUnitIREs(t *testing.T, m *Manager) {
	t.Helper()
	for _, il := range m.illsOfLocked(ctl.AF_UNSPEC) {
		for _, u := range il.ipifs {
			for _, e := range u.ires {
				if e.Zone != u.zone || e.Ill != il.name {
					t.Errorf("%s (zone %q) owns IRE %s %s on %s in zone %q", u.name(), u.zone, e.Type, e.Dest, e.Ill, e.Zone)
				}
			}
			if !u.up() {
				continue
			}
			has := func(match func(e route.IRE) bool) bool {
				for _, e := range u.ires {
					if match(e) && m.routes.Has(e) {
						return true
					}
				}
				return false
			}
			need := func(what string, t2 route.Type, dest netip.Prefix) {
				if !has(func(e route.IRE) bool { return e.Type == t2 && e.Dest == dest }) {
					t.Errorf("%s is up without its %s IRE %s %s", u.name(), what, t2, dest)
				}
			}
			noxmit := u.flags&ctl.IFF_NOXMIT != 0
			if !u.addr.IsUnspecified() && u.flags&ctl.IFF_NOLOCAL == 0 &&
				!has(func(e route.IRE) bool {
					return (e.Type == route.IRE_LOCAL || e.Type == route.IRE_LOOPBACK) && e.Dest == hostPrefix(u.addr)
				}) {
				t.Errorf("%s is up without a local IRE for %s", u.name(), u.addr)
			}
			if !il.isLoopback() && !noxmit {
				switch {
				case u.flags&ctl.IFF_POINTOPOINT != 0 && !u.dst.IsUnspecified():
					if !has(func(e route.IRE) bool { return e.Type.IsInterface() && e.Dest == hostPrefix(u.dst) }) {
						t.Errorf("%s is up without an interface IRE to its destination %s", u.name(), u.dst)
					}
				case u.flags&ctl.IFF_POINTOPOINT == 0 && !u.subnet.IsUnspecified():
					p := netip.PrefixFrom(u.subnet, prefixLen(u.mask))
					if !has(func(e route.IRE) bool { return e.Type.IsInterface() && e.Dest == p }) {
						t.Errorf("%s is up without an interface IRE for %s", u.name(), p)
					}
				}
			}
			if !il.v6 && u.flags&ctl.IFF_BROADCAST != 0 && !noxmit {
				need("broadcast", route.IRE_BROADCAST, hostPrefix(netip.IPv4Unspecified()))
				need("broadcast", route.IRE_BROADCAST, hostPrefix(ipv4Bcast))
				if prefixLen(u.mask) < 32 {
					need("subnet broadcast", route.IRE_BROADCAST, hostPrefix(fromV4(v4(u.subnet)|^v4(u.mask))))
				}
			}
		}
	}
}

// checkIREOwners: an IRE the administrator added and bound to an ill is
// one of that ill's saved routes (spec §5.6); kernel IREs are checked
// against their owning units by checkInvariants.
func checkIREOwners(t *testing.T, m *Manager) {
	t.Helper()
	for _, e := range m.routes.All() {
		if e.Flags&route.RTF_KERNEL != 0 || e.Ill == "" {
			continue
		}
		il := m.lookupIllLocked(e.Ill, e.Dest.Addr().Is6())
		if il == nil {
			t.Errorf("route %s %s is bound to %s, which is not plumbed", e.Type, e.Dest, e.Ill)
			continue
		}
		saved := false
		for _, s := range il.saved {
			if s.Type == e.Type && s.Dest == e.Dest && s.Gateway == e.Gateway {
				saved = true
			}
		}
		if !saved {
			t.Errorf("route %s %s via %v on %s is not among the ill's saved routes", e.Type, e.Dest, e.Gateway, e.Ill)
		}
	}
}

// checkFlagSets: flags stay within the combinations the requests allow
// (spec §3.1–3.3).
func checkFlagSets(t *testing.T, m *Manager) {
	t.Helper()
	for _, il := range m.illsOfLocked(ctl.AF_UNSPEC) {
		wantFam := ctl.IFF_IPV4
		if il.v6 {
			wantFam = ctl.IFF_IPV6
		}
		if il.flags&(ctl.IFF_IPV4|ctl.IFF_IPV6) != wantFam {
			t.Errorf("%s %s: family flags %s", il.name, famWord(il.family()), il.flags&(ctl.IFF_IPV4|ctl.IFF_IPV6))
		}
		p := il.phy
		if p.flags&(ctl.IFF_FAILED|ctl.IFF_INACTIVE) == ctl.IFF_FAILED|ctl.IFF_INACTIVE {
			t.Errorf("%s is both FAILED and INACTIVE", p.name)
		}
		if p.loopback != (p.flags&ctl.IFF_LOOPBACK != 0) {
			t.Errorf("%s: LOOPBACK flag %v on a loopback=%v phyint", p.name, p.flags&ctl.IFF_LOOPBACK != 0, p.loopback)
		}
		if p.loopback && il.flags&ctl.IFF_ROUTER != 0 {
			t.Errorf("%s: ROUTER on the loopback", il.name)
		}
		for _, u := range il.ipifs {
			f := u.flags
			switch {
			case f&(ctl.IFF_BROADCAST|ctl.IFF_POINTOPOINT) == ctl.IFF_BROADCAST|ctl.IFF_POINTOPOINT:
				t.Errorf("%s is both BROADCAST and POINTOPOINT", u.name())
			case il.v6 && f&ctl.IFF_BROADCAST != 0:
				t.Errorf("IPv6 %s is BROADCAST", u.name())
			case f&(ctl.IFF_UP|ctl.IFF_DUPLICATE) == ctl.IFF_UP|ctl.IFF_DUPLICATE:
				t.Errorf("%s is both UP and DUPLICATE", u.name())
			case f&ctl.IFF_NOFAILOVER != 0 && f&ctl.IFF_DEPRECATED == 0:
				t.Errorf("%s is NOFAILOVER without DEPRECATED", u.name())
			case !il.v6 && f&ctl.IFF_TEMPORARY != 0:
				t.Errorf("IPv4 %s is TEMPORARY", u.name())
			}
		}
	}
}

// checkLists: the type lists, the name index and the phyints agree; units
// are sorted by id with unit 0 first; usesrc rings are closed, with one
// provider whose index every client holds.
func checkLists(t *testing.T, m *Manager) {
	t.Helper()
	n := 0
	for _, il := range m.illsOfLocked(ctl.AF_UNSPEC) {
		n++
		if p := m.byName[il.name]; p == nil || p.ills[famIndex(il.v6)] != il {
			t.Errorf("%s %s is listed but not reachable by name", il.name, famWord(il.family()))
		}
		if len(il.ipifs) == 0 || il.ipifs[0].id != 0 {
			t.Errorf("%s has no unit 0", il.name)
		}
		for i := 1; i < len(il.ipifs); i++ {
			if il.ipifs[i-1].id >= il.ipifs[i].id {
				t.Errorf("%s: units out of order (%d before %d)", il.name, il.ipifs[i-1].id, il.ipifs[i].id)
			}
		}
		if !il.inRing() {
			if il.usesrcIndex != 0 {
				t.Errorf("%s has usesrc index %d outside a ring", il.name, il.usesrcIndex)
			}
			continue
		}
		var prov *ill
		steps := 0
		for x := il; ; x = x.usesrcNext {
			if x == nil || steps > 64 {
				t.Errorf("%s: usesrc ring is open or too long", il.name)
				break
			}
			if x.isProvider() {
				if prov != nil && prov != x {
					t.Errorf("%s: two providers in one ring (%s, %s)", il.name, prov.name, x.name)
				}
				prov = x
			}
			steps++
			if x.usesrcNext == il {
				break
			}
		}
		if prov == nil {
			t.Errorf("%s: usesrc ring without a provider", il.name)
		} else if !il.isProvider() && il.usesrcIndex != prov.phy.index {
			t.Errorf("%s: usesrc index %d, provider %s has %d", il.name, il.usesrcIndex, prov.name, prov.phy.index)
		}
	}
	m2 := 0
	for _, p := range m.byName {
		for _, il := range p.ills {
			if il != nil {
				m2++
			}
		}
	}
	if n != m2 {
		t.Errorf("%d ills in the type lists, %d reachable by name", n, m2)
	}
}
