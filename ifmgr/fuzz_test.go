package ifmgr

import (
	"net/netip"
	"testing"

	"github.com/tapstack/tapstack/ctl"
)

// fuzzOps are the requests the sequence fuzzer draws from.
var fuzzOps = []string{
	"SIOCSLIFNAME", "unplumb", "SIOCLIFADDIF", "SIOCLIFREMOVEIF", "SIOCSLIFADDR",
	"SIOCSLIFNETMASK", "SIOCSLIFBRDADDR", "SIOCSLIFDSTADDR", "SIOCSLIFFLAGS",
	"SIOCSLIFMTU", "SIOCSLIFSUBNET", "SIOCSLIFTOKEN", "SIOCSLIFINDEX",
	"SIOCSLIFUSESRC", "SIOCCLIFFLAGS", "SIOCADDRT", "SIOCDELRT",
}

var fuzzNames = []string{"tap0", "tap0:1", "tap0:2", "tap1", "tap1:1", "lo0", "lo0:1", "tap0:300"}

var fuzzAddrs = []netip.Addr{
	netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.255"),
	netip.MustParseAddr("192.168.1.0"), netip.MustParseAddr("255.255.255.0"), netip.MustParseAddr("255.0.255.0"),
	netip.MustParseAddr("0.0.0.0"), netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("fe80::1"),
	netip.MustParseAddr("fd00::1"), netip.MustParseAddr("::"), netip.MustParseAddr("ffff:ffff:ffff:ffff::"), {},
}

// FuzzRequestSequences drives random request sequences and checks the
// invariants after each: unique units, up units own exactly their IREs,
// no kernel IRE without an owner, flags at their levels, no panic.
func FuzzRequestSequences(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 4, 1, 0, 0, 8, 0, 0, 1, 2, 2, 3, 0})
	f.Add([]byte{0, 3, 0, 0, 2, 0, 0, 0, 4, 1, 1, 0, 8, 1, 0, 1, 1, 0, 0, 0})
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
			var arg any
			switch op {
			case "SIOCADDRT", "SIOCDELRT":
				flags := 0
				if n&1 != 0 {
					flags |= ctl.RTF_GATEWAY
				}
				if n&2 != 0 {
					flags |= ctl.RTF_HOST
				}
				arg = &ctl.Rtentry{Dst: fuzzAddrs[n%len(fuzzAddrs)], Gateway: a, Flags: flags}
			default:
				r := &ctl.Lifreq{Name: name, Addr: a, Dstaddr: a, Broadaddr: a, Subnet: a, Token: a,
					Addrlen: n % 140, MTU: int64(n) * 16, Index: uint32(n % 5)}
				switch op {
				case "SIOCSLIFNAME":
					r.Flags = ctl.IFF_IPV4
					if fam == ctl.AF_INET6 {
						r.Flags = ctl.IFF_IPV6
					}
				case "SIOCSLIFFLAGS":
					r.Flags = ctl.Flags(n) | ctl.Flags(n&0xf0)<<20
				case "SIOCCLIFFLAGS":
					r.Cflags = &ctl.Cflags{ModFlags: ctl.Flags(n), ModMask: 0xff, OrigMask: ctl.Flags(n & 1)}
				}
				arg = r
			}
			fx.m.Do(root, op, fam, arg)
			fx.m.mu.RLock()
			checkInvariants(t, fx.m)
			checkFlagLevels(t, fx.m)
			fx.m.mu.RUnlock()
			if t.Failed() {
				t.Fatalf("after %s %s %v %d", op, name, a, n)
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
}
