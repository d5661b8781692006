package integration

import (
	"net/netip"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/internal/netnstest"
)

// stackMAC returns the stack's MAC on tap0 as the kernel writes it.
func (s *setup) stackMAC() string {
	s.t.Helper()
	var r ctl.Lifreq
	if err := s.do("SIOCGLIFHWADDR", ctl.AF_INET, ctl.Lifreq{Name: s.tap}, &r); err != nil {
		s.t.Fatal(err)
	}
	parts := strings.Split(r.HWAddr, ":")
	for i, p := range parts {
		if len(p) == 1 {
			parts[i] = "0" + p
		}
	}
	return strings.Join(parts, ":")
}

// kernelNeigh returns the lladdr the namespace's neighbour table has for a.
func (s *setup) kernelNeigh(a string) string {
	out := s.nsExec("ip", "neigh", "show", a, "dev", s.tap)
	if m := regexp.MustCompile(`lladdr (\S+)`).FindStringSubmatch(out); m != nil {
		return m[1]
	}
	return ""
}

// stackPing pings from the stack itself (tapadm ping).
func (s *setup) stackPing(a string) ctl.PingResult {
	s.t.Helper()
	var res ctl.PingResult
	s.jsonOut(&res, "ping", a, "-c", "2")
	return res
}

// TestPingAndARPBothWays: the stack resolves the kernel with ARP and pings
// it; the kernel resolves the stack with ARP and pings it.
func TestPingAndARPBothWays(t *testing.T) {
	s := newSetup(t, 61)
	mac := s.stackMAC()

	// Stack → kernel first, on a fresh namespace: the stack must send an
	// ARP request, from which the kernel learns the stack's MAC.
	if res := s.stackPing(s.kernelIP); res.Received != 2 {
		t.Fatalf("stack → kernel ping: %+v", res)
	}
	if got := s.kernelNeigh(s.stackIP); got != mac {
		t.Errorf("kernel learned %q for %s from the stack's ARP, want %s", got, s.stackIP, mac)
	}

	// Kernel → stack with an empty neighbour table: the stack must answer
	// the kernel's ARP request.
	s.nsExec("ip", "neigh", "flush", "dev", s.tap)
	if !s.nsPing(s.stackIP) {
		t.Fatal("kernel → stack ping failed")
	}
	if got := s.kernelNeigh(s.stackIP); got != mac {
		t.Errorf("kernel resolved %s to %q, want %s", s.stackIP, got, mac)
	}
}

// TestEchoServices: TCP and UDP echo and discard from the namespace to the
// stack's own services.
func TestEchoServices(t *testing.T) {
	s := newSetup(t, 62, "--services", "echo,discard")
	if _, err := exec.LookPath("socat"); err != nil {
		netnstest.Require(t) // socat is installed by make deps
		t.Fatal("socat is missing: run make deps")
	}
	for _, proto := range []string{"TCP", "UDP"} {
		cmd := exec.Command("ip", "netns", "exec", s.ns, "socat", "-t", "2", "-T", "3", "-", proto+":"+s.stackIP+":7")
		cmd.Stdin = strings.NewReader("hello tapstack\n")
		out, err := cmd.CombinedOutput()
		if err != nil || string(out) != "hello tapstack\n" {
			t.Errorf("%s echo: %q, %v", proto, out, err)
		}
	}
	cmd := exec.Command("ip", "netns", "exec", s.ns, "socat", "-t", "1", "-", "TCP:"+s.stackIP+":9")
	cmd.Stdin = strings.NewReader("into the void\n")
	if out, err := cmd.CombinedOutput(); err != nil || len(out) != 0 {
		t.Errorf("TCP discard: %q, %v (want a connection and no data)", out, err)
	}
	// A port with no service is refused, not silently dropped.
	cmd = exec.Command("ip", "netns", "exec", s.ns, "socat", "-T", "2", "-", "TCP:"+s.stackIP+":8")
	cmd.Stdin = strings.NewReader("x")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "refused") {
		t.Errorf("TCP to a closed port: %q, %v (want connection refused)", out, err)
	}
}

// TestLogicalInterfaceUpDown: an addif'd address answers, down silences
// it, up restores it, and the primary address is unaffected throughout.
func TestLogicalInterfaceUpDown(t *testing.T) {
	s := newSetup(t, 63)
	second := "10.63.0.3"
	out := s.tapadm("ifconfig", s.tap, "addif", second+"/24", "up")
	if !strings.Contains(out, "Created new logical interface tap0:1") {
		t.Errorf("addif output %q", out)
	}
	if !s.nsPing(second) {
		t.Fatal("logical interface address not reachable")
	}
	s.tapadm("ifconfig", "tap0:1", "down")
	if s.nsPing(second) {
		t.Error("address still answers after down")
	}
	if !s.nsPing(s.stackIP) {
		t.Error("primary address stopped answering when tap0:1 went down")
	}
	s.tapadm("ifconfig", "tap0:1", "up")
	if !s.nsPing(second) {
		t.Error("up did not restore the address")
	}
	s.tapadm("ifconfig", s.tap, "removeif", second)
	if s.nsPing(second) {
		t.Error("address answers after removeif")
	}
}

// TestUnplumbAndDelete: unplumb releases the addresses and routes; a
// plumbed link cannot be deleted; delete-link removes the TAP device.
func TestUnplumbAndDelete(t *testing.T) {
	s := newSetup(t, 64)
	if !s.nsPing(s.stackIP) {
		t.Fatal("no connectivity before unplumb")
	}
	out, err := s.tryTapadm("dladm", "delete-link", s.tap)
	if err == nil || !strings.Contains(out, "EBUSY") {
		t.Errorf("delete-link of a plumbed link: %q, %v (want EBUSY)", out, err)
	}
	s.tapadm("ifconfig", s.tap, "unplumb")
	for _, r := range s.routes(ctl.AF_UNSPEC) {
		if r.Interface == s.tap {
			t.Errorf("route left after unplumb: %+v", r)
		}
	}
	if s.nsPing(s.stackIP) {
		t.Error("stack answers after unplumb")
	}
	if out, err := s.tryTapadm("ifconfig", s.tap); err == nil || !strings.Contains(out, "ENXIO") {
		t.Errorf("ifconfig of an unplumbed interface: %q, %v (want ENXIO)", out, err)
	}
	s.tapadm("dladm", "delete-link", s.tap)
	if _, err := netnstest.Exec(t, s.ns, "ip", "link", "show", s.tap); err == nil {
		t.Error("TAP device still exists after delete-link")
	}
}

// TestBadInputChangesNothing: refused requests name the request and errno
// and leave the configuration as it was.
func TestBadInputChangesNothing(t *testing.T) {
	s := newSetup(t, 65)
	before := s.tapadm("ifconfig", "-a")
	beforeRoutes := s.routes(ctl.AF_UNSPEC)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"ifconfig", s.tap, "netmask", "255.0.255.0"}, "tapadm: SIOCSLIFNETMASK: ENOTSUP"},
		{[]string{"ifconfig", s.tap, "mtu", "67"}, "tapadm: SIOCSLIFMTU: EINVAL"},
		{[]string{"ifconfig", s.tap, "mtu", "9000"}, "tapadm: SIOCSLIFMTU: EINVAL"},
		{[]string{"ifconfig", s.tap, "224.0.0.5"}, "tapadm: SIOCSLIFADDR: EADDRNOTAVAIL"},
		{[]string{"ifconfig", s.tap, "removeif", s.stackIP}, "tapadm: SIOCLIFREMOVEIF: EBUSY"},
		{[]string{"ifconfig", "tap9", "plumb"}, "tapadm: SIOCSLIFNAME: ENXIO"},
		{[]string{"ifconfig", s.tap, "plumb"}, "tapadm: SIOCSLIFNAME: EEXIST"},
		{[]string{"dladm", "create-tap", s.tap, "--netns", s.ns}, "EEXIST"},
		{[]string{"dladm", "create-tap", "tapx", "--netns", "no-such-ns-here"}, "no-such-ns-here"},
	} {
		out, err := s.tryTapadm(tc.args...)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("tapadm %s: %q, %v; want failure containing %q", strings.Join(tc.args, " "), out, err, tc.want)
		}
	}
	if after := s.tapadm("ifconfig", "-a"); after != before {
		t.Errorf("ifconfig -a changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if diff := cmp.Diff(beforeRoutes, s.routes(ctl.AF_UNSPEC), cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})); diff != "" {
		t.Errorf("routes changed (-before +after):\n%s", diff)
	}
}

// broadcasts returns the broadcast IRE destinations on ill, sorted.
func broadcasts(rs []ctl.RouteEntry, ill string) []string {
	var out []string
	for _, r := range rs {
		if r.Type == "BROADCAST" && r.Interface == ill {
			out = append(out, r.Destination.Addr().String())
		}
	}
	sort.Strings(out)
	return out
}

// TestBroadcastIRESets checks spec §5.3–5.4 through the running daemon.
func TestBroadcastIRESets(t *testing.T) {
	s := newSetup(t, 66)
	cases := []struct {
		name, addr string
		want       []string
	}{
		{"class C /24", "192.168.66.5/24", []string{"0.0.0.0", "192.168.66.0", "192.168.66.255", "255.255.255.255"}},
		{"class A /24 with the classful pair", "10.66.2.3/24", []string{"0.0.0.0", "10.0.0.0", "10.255.255.255", "10.66.2.0", "10.66.2.255", "255.255.255.255"}},
		{"/32", "192.168.66.5/32", []string{"0.0.0.0", "192.168.66.0", "192.168.66.255", "255.255.255.255"}},
		{"mask shorter than the class", "172.16.0.1/12", []string{"0.0.0.0", "172.16.0.0", "172.31.255.255", "255.255.255.255"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s.tapadm("ifconfig", s.tap, "down")
			s.tapadm("ifconfig", s.tap, tc.addr, "up")
			if diff := cmp.Diff(tc.want, broadcasts(s.routes(ctl.AF_INET), s.tap)); diff != "" {
				t.Errorf("broadcast IREs (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("shared subnet, one unit down", func(t *testing.T) {
		s.tapadm("ifconfig", s.tap, "down")
		s.tapadm("ifconfig", s.tap, "10.66.2.3/24", "up")
		s.tapadm("ifconfig", s.tap, "addif", "10.66.2.4/24", "up")
		s.tapadm("ifconfig", "tap0:1", "down")
		got := broadcasts(s.routes(ctl.AF_INET), s.tap)
		if !contains(got, "10.66.2.255") {
			t.Errorf("10.66.2.255 gone while tap0 still needs it: %v", got)
		}
		s.tapadm("ifconfig", s.tap, "down")
		if got := broadcasts(s.routes(ctl.AF_INET), s.tap); len(got) != 0 {
			t.Errorf("broadcast IREs left with every unit down: %v", got)
		}
	})
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// TestShowCommands checks the illumos output formats against a real link.
func TestShowCommands(t *testing.T) {
	s := newSetup(t, 67)
	mac := s.stackMAC()
	out := s.tapadm("ifconfig", "-a")
	for _, want := range []string{
		"lo0: flags=2001000849<UP,LOOPBACK,RUNNING,MULTICAST,IPv4,VIRTUAL> mtu 8232 index 1\n\tinet 127.0.0.1 netmask ff000000 \n",
		"tap0: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 2\n\tinet 10.67.0.1 netmask ffffff00 broadcast 10.67.0.255\n\tether " + strings.TrimLeft(strings.ReplaceAll(mac, ":0", ":"), "0") + " \n",
		"lo0: flags=2002000849<UP,LOOPBACK,RUNNING,MULTICAST,IPv6,VIRTUAL> mtu 8252 index 1\n\tinet6 ::1/128 \n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("ifconfig -a lacks\n%q\nin\n%s", want, out)
		}
	}
	var links []ctl.LinkInfo
	s.jsonOut(&links, "dladm", "show-link")
	if len(links) != 1 || links[0].Link != s.tap || links[0].Class != "tap" || links[0].MTU != 1500 || links[0].DLPIState != "IDLE" {
		t.Errorf("dladm show-link: %+v", links)
	}
	rt := s.tapadm("netstat", "-rn")
	if !regexp.MustCompile(`(?m)^10\.67\.0\.0\s+10\.67\.0\.1\s+U\s`).MatchString(rt) {
		t.Errorf("netstat -rn lacks the interface route:\n%s", rt)
	}
}

// TestSIGTERMRemovesTaps: the daemon exits cleanly on SIGTERM and the TAP
// devices it made are gone.
func TestSIGTERMRemovesTaps(t *testing.T) {
	netnstest.Require(t)
	ns := netnstest.NewNetns(t)
	d := startDaemon(t)
	d.tapadm("dladm", "create-tap", "tap5", "--netns", ns)
	d.tapadm("dladm", "create-tap", "tap6", "--netns", ns, "--mtu", "9000")
	d.tapadm("ifconfig", "tap5", "plumb")
	if out, err := netnstest.Exec(t, ns, "ip", "link", "show", "tap6"); err != nil || !strings.Contains(out, "mtu 9000") {
		t.Fatalf("tap6 in the namespace: %q, %v", out, err)
	}
	if err := d.stop(); err != nil {
		t.Fatalf("tapstackd exit: %v\n%s", err, d.stderr)
	}
	for _, dev := range []string{"tap5", "tap6"} {
		deadline := time.Now().Add(3 * time.Second)
		for {
			if _, err := netnstest.Exec(t, ns, "ip", "link", "show", dev); err != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s still exists after tapstackd exited", dev)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
