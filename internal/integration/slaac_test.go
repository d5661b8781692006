package integration

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/internal/netnstest"
)

// Stateless autoconfiguration with the kernel as the router: radvd in the
// namespace advertises a prefix; tapstack makes an ADDRCONF unit with its
// EUI-64 interface identifier, a default route through the namespace's
// link-local, and, once temporary addresses are enabled, a TEMPORARY unit.

// radvdConf advertises prefix on tap0 as often as radvd allows.
const radvdConf = `interface %s {
	AdvSendAdvert on;
	MinRtrAdvInterval 3;
	MaxRtrAdvInterval 4;
	prefix %s {
		AdvOnLink on;
		AdvAutonomous on;
	};
};
`

// eui64Addr is the address SLAAC forms from prefix and mac: the modified
// EUI-64 identifier (universal/local bit flipped, ff:fe in the middle).
func eui64Addr(t *testing.T, prefix netip.Prefix, mac string) netip.Addr {
	t.Helper()
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 {
		t.Fatalf("MAC %q: %v", mac, err)
	}
	b := prefix.Addr().As16()
	copy(b[8:], []byte{hw[0] ^ 0x02, hw[1], hw[2], 0xff, 0xfe, hw[3], hw[4], hw[5]})
	return netip.AddrFrom16(b)
}

// ifconfigUnit is the part of `ifconfig -a -o json` these tests read.
type ifconfigUnit struct {
	Name      string   `json:"name"`
	Family    string   `json:"family"`
	FlagNames []string `json:"flag_names"`
	Addr      string   `json:"addr"`
	Prefixlen int      `json:"prefixlen"`
}

// unitsWithFlag returns the IPv6 units whose flags include flag.
func (s *v6Setup) unitsWithFlag(flag string) []ifconfigUnit {
	s.t.Helper()
	var all []ifconfigUnit
	s.jsonOut(&all, "ifconfig", "-a")
	var out []ifconfigUnit
	for _, u := range all {
		if u.Family == "inet6" && slices.Contains(u.FlagNames, flag) {
			out = append(out, u)
		}
	}
	return out
}

// netstatRoute is the part of `netstat -rn -o json` these tests read.
type netstatRoute struct {
	Destination string `json:"destination"`
	Gateway     string `json:"gateway"`
	Flags       string `json:"flags"`
	Interface   string `json:"interface"`
}

func (s *v6Setup) defaultRoutes() []netstatRoute {
	s.t.Helper()
	var all []netstatRoute
	s.jsonOut(&all, "netstat", "-rn")
	var out []netstatRoute
	for _, r := range all {
		if r.Destination == "::/0" {
			out = append(out, r)
		}
	}
	return out
}

func TestSLAACFromRadvd(t *testing.T) {
	requireCmds(t, "radvd", "sysctl")
	s := newV6Setup(t, 0x74)
	prefix := netip.MustParsePrefix("2001:db8:a74::/64")
	// radvd advertises only as a router; the namespace holds an address
	// in the prefix so that it can reach tapstack's address there.
	s.nsExec("sysctl", "-w", "net.ipv6.conf.all.forwarding=1")
	s.nsExec("ip", "-6", "addr", "add", prefix.Addr().Next().String()+"/64", "dev", s.tap, "nodad")

	dir := t.TempDir()
	conf := filepath.Join(dir, "radvd.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(radvdConf, s.tap, prefix)), 0o644); err != nil {
		t.Fatal(err)
	}
	radvd := s.startRadvd(t, conf, filepath.Join(dir, "radvd.pid"))

	stable := eui64Addr(t, prefix, s.stackHW)
	var units []ifconfigUnit
	waitUntil(t, "an ADDRCONF unit with "+stable.String(), 30*time.Second, func() bool {
		units = s.unitsWithFlag("ADDRCONF")
		return slices.ContainsFunc(units, func(u ifconfigUnit) bool { return u.Addr == stable.String() })
	})
	for _, u := range units {
		if u.Addr == stable.String() && (u.Prefixlen != 64 || !slices.Contains(u.FlagNames, "UP") || slices.Contains(u.FlagNames, "TEMPORARY")) {
			t.Errorf("ADDRCONF unit %+v: want UP, /64, not TEMPORARY", u)
		}
	}
	ifc := s.tapadm("ifconfig", "-a")
	if !regexp.MustCompile(`flags=[0-9a-f]+<[A-Za-z0-9,]*ADDRCONF[A-Za-z0-9,]*>[^\n]*\n\tinet6 ` + regexp.QuoteMeta(stable.String()) + `/64`).MatchString(ifc) {
		t.Errorf("ifconfig -a does not show %s/64 on an ADDRCONF unit:\n%s", stable, ifc)
	}

	// The router is the default route, through its link-local address.
	want := netstatRoute{Destination: "::/0", Gateway: s.kernelLL.String(), Flags: "UG", Interface: s.tap}
	waitUntil(t, "a default route via "+s.kernelLL.String(), 15*time.Second, func() bool {
		return slices.Contains(s.defaultRoutes(), want)
	})
	if rt := s.tapadm("netstat", "-rn"); !regexp.MustCompile(`(?m)^default\s+` + regexp.QuoteMeta(s.kernelLL.String()) + `\s+UG\s`).MatchString(rt) {
		t.Errorf("netstat -rn lacks the default route via %s:\n%s", s.kernelLL, rt)
	}
	if out := s.tapadm("ndp", "-i", s.tap, s.kernelLL.String()); !strings.Contains(out, " router") {
		t.Errorf("ndp %s: %q, want the router flag", s.kernelLL, out)
	}
	waitUntil(t, "namespace → ADDRCONF address ping6", 15*time.Second, func() bool { return s.nsPing(stable.String()) })

	// Temporary addresses (RFC 4941): the next advertisement adds one.
	on := true
	var conf6 ctl.NdpConf
	if err := s.do("ndp.set-conf", ctl.AF_INET6, &ctl.NdpConf{Name: s.tap, TmpAddrsEnabled: &on}, &conf6); err != nil {
		t.Fatal(err)
	}
	if conf6.TmpAddrsEnabled == nil || !*conf6.TmpAddrsEnabled {
		t.Errorf("ndp.set-conf answered %+v, want TmpAddrsEnabled", conf6)
	}
	var temp []ifconfigUnit
	waitUntil(t, "a TEMPORARY unit", 30*time.Second, func() bool {
		temp = s.unitsWithFlag("TEMPORARY")
		return len(temp) > 0
	})
	for _, u := range temp {
		a, err := netip.ParseAddr(u.Addr)
		if err != nil || !prefix.Contains(a) || a == stable || !slices.Contains(u.FlagNames, "ADDRCONF") {
			t.Errorf("TEMPORARY unit %+v: want an ADDRCONF address in %s other than %s", u, prefix, stable)
		}
	}

	// radvd's last advertisement, on SIGINT, has router lifetime 0: the
	// default route goes.
	radvd()
	waitUntil(t, "the default route to go with radvd", 15*time.Second, func() bool {
		return !slices.Contains(s.defaultRoutes(), want)
	})
}

// startRadvd runs radvd in the namespace in the foreground and returns a
// function that interrupts it and waits (also run at cleanup, before the
// namespace goes).
func (s *v6Setup) startRadvd(t *testing.T, conf, pidfile string) (stop func()) {
	t.Helper()
	radvd, err := netnstest.LookCmd("radvd")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := netnstest.Exec(t, s.ns, radvd, "-c", "-C", conf); err != nil {
		t.Fatalf("radvd rejects its configuration: %v\n%s", err, out)
	}
	return startInNetns(t, s.ns, radvd, "-C", conf, "-n", "-m", "stderr", "-p", pidfile)
}
