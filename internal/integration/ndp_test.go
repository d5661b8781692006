package integration

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/internal/netnstest"
)

// IPv6 neighbour discovery with the Linux kernel as the peer: the kernel
// resolves tapstack's addresses (ndisc6), both neighbour tables agree
// after traffic, and entries made with tapadm ndp carry traffic.

// v6Setup is a setup with IPv6 on both sides of tap0: tapstack has its
// link-local on tap0 and PREFIX::1/64 on tap0:1, the kernel PREFIX::2/64.
type v6Setup struct {
	*setup
	prefix       string // "2001:db8:N::"
	stackLL      netip.Addr
	stackGlobal  netip.Addr
	kernelLL     netip.Addr
	kernelGlobal netip.Addr
	stackHW      string // MACs in the two-digit form the kernel prints
	kernelHW     string
}

func newV6Setup(t *testing.T, subnet byte) *v6Setup {
	t.Helper()
	s := &v6Setup{setup: newSetup(t, subnet), prefix: fmt.Sprintf("2001:db8:%x::", subnet)}
	s.stackGlobal = netip.MustParseAddr(s.prefix + "1")
	s.kernelGlobal = netip.MustParseAddr(s.prefix + "2")
	s.tapadm("ifconfig", s.tap, "inet6", "plumb")
	s.tapadm("ifconfig", s.tap, "inet6", "up")
	s.tapadm("ifconfig", s.tap, "inet6", "addif", s.stackGlobal.String()+"/64", "up")
	s.nsExec("ip", "-6", "addr", "add", s.kernelGlobal.String()+"/64", "dev", s.tap, "nodad")

	r := ctl.Lifreq{Name: s.tap}
	if err := s.do("SIOCGLIFADDR", ctl.AF_INET6, &r, &r); err != nil {
		t.Fatal(err)
	}
	s.stackLL = r.Addr
	hw := ctl.Lifreq{Name: s.tap}
	if err := s.do("SIOCGLIFHWADDR", ctl.AF_INET6, &hw, &hw); err != nil {
		t.Fatal(err)
	}
	s.stackHW = twoDigitMAC(hw.HWAddr)
	s.kernelHW = strings.TrimSpace(s.nsExec("cat", "/sys/class/net/"+s.tap+"/address"))

	// The kernel's link-local is usable once its DAD is over.
	ll := regexp.MustCompile(`inet6 (fe80::[0-9a-f:]+)/64 scope link\s`)
	waitUntil(t, "the kernel's link-local address", 10*time.Second, func() bool {
		out := s.nsExec("ip", "-6", "addr", "show", "dev", s.tap, "scope", "link")
		m := ll.FindStringSubmatch(out)
		if m == nil || strings.Contains(out, "tentative") {
			return false
		}
		s.kernelLL = netip.MustParseAddr(m[1])
		return true
	})
	return s
}

// ndisc6 solicits a from the namespace and returns the link-layer address
// the answer carried ("" if none came).
func (s *v6Setup) ndisc6(a netip.Addr) string {
	out, err := netnstest.Exec(s.t, s.ns, "ndisc6", "-n", "-r", "1", "-w", "1000", a.String(), s.tap)
	if err != nil {
		return ""
	}
	if m := regexp.MustCompile(`Target link-layer address: (\S+)`).FindStringSubmatch(out); m != nil {
		return strings.ToLower(m[1])
	}
	return ""
}

// ndEntries is `tapadm ndp -a -o json` by address.
func (s *v6Setup) ndEntries() map[netip.Addr]ctl.NdEntry {
	s.t.Helper()
	var es []ctl.NdEntry
	s.jsonOut(&es, "ndp", "-a")
	out := map[netip.Addr]ctl.NdEntry{}
	for _, e := range es {
		out[e.Addr] = e
	}
	return out
}

// (a) ndisc6 in the namespace resolves tapstack's link-local and global
// addresses to tapstack's MAC.
func TestNDPKernelResolvesStack(t *testing.T) {
	requireCmds(t, "ndisc6")
	s := newV6Setup(t, 0x71)
	for _, a := range []netip.Addr{s.stackLL, s.stackGlobal} {
		// Poll: the address may be tentative for a moment after up.
		var got string
		waitUntil(t, "an answer to ndisc6 "+a.String(), 15*time.Second, func() bool {
			got = s.ndisc6(a)
			return got != ""
		})
		if got != s.stackHW {
			t.Errorf("ndisc6 %s: link-layer address %s, want tapstack's %s", a, got, s.stackHW)
		}
	}
	// An address tapstack does not hold is not answered.
	if got := s.ndisc6(netip.MustParseAddr(s.prefix + "99")); got != "" {
		t.Errorf("ndisc6 of an address nobody holds answered with %s", got)
	}
}

// (b) After pings both ways, tapstack's table (ndp -a, ndp HOST) has the
// kernel's addresses with the kernel's MAC, and the kernel's table has
// tapstack's with tapstack's MAC.
func TestNDPTablesAgree(t *testing.T) {
	s := newV6Setup(t, 0x72)
	waitUntil(t, "namespace → tapstack ping6", 15*time.Second, func() bool { return s.nsPing(s.stackGlobal.String()) })
	if res := s.stackPing(s.kernelGlobal.String()); res.Received == 0 {
		t.Fatalf("tapstack → namespace ping6: %+v", res)
	}
	if !s.nsPing(s.stackLL.String() + "%" + s.tap) {
		t.Error("namespace → tapstack link-local ping6 failed")
	}

	es := s.ndEntries()
	e, ok := es[s.kernelGlobal]
	if !ok || twoDigitMAC(e.HdwAddr) != s.kernelHW || e.Type != "dynamic" {
		t.Errorf("ndp -a entry for %s = %+v (present %v), want dynamic at %s", s.kernelGlobal, e, ok, s.kernelHW)
	}
	for _, a := range []netip.Addr{s.stackLL, s.stackGlobal} {
		if e := es[a]; e.Type != "local" || twoDigitMAC(e.HdwAddr) != s.stackHW {
			t.Errorf("ndp -a entry for our %s = %+v, want local at %s", a, e, s.stackHW)
		}
	}
	var one ctl.Ndreq
	s.jsonOut(&one, "ndp", s.kernelGlobal.String())
	if one.Name != s.tap || twoDigitMAC(one.ND.HdwAddr) != s.kernelHW || one.ND.HdwLen != 6 || one.ND.Flags&ctl.NDF_STATIC != 0 {
		t.Errorf("ndp %s = %+v, want a dynamic entry on %s at %s", s.kernelGlobal, one, s.tap, s.kernelHW)
	}
	if out := s.tapadm("ndp", s.kernelGlobal.String()); !strings.Contains(out, "at "+formatMACShort(s.kernelHW)) {
		t.Errorf("ndp %s printed %q", s.kernelGlobal, out)
	}

	if got := s.kernelNeigh(s.stackGlobal.String()); got != s.stackHW {
		t.Errorf("kernel neighbour entry for %s: %q, want %s", s.stackGlobal, got, s.stackHW)
	}
	if got := s.kernelNeigh(s.stackLL.String()); got != s.stackHW {
		t.Errorf("kernel neighbour entry for %s: %q, want %s", s.stackLL, got, s.stackHW)
	}
}

// formatMACShort turns "02:00:0a:..." into the illumos "2:0:a:..." form.
func formatMACShort(s string) string {
	hw, err := net.ParseMAC(s)
	if err != nil {
		return s
	}
	parts := make([]string, len(hw))
	for i, b := range hw {
		parts[i] = fmt.Sprintf("%x", b)
	}
	return strings.Join(parts, ":")
}

// (c) An entry made with `ndp -s` is used at once: tapstack's packets to
// the address go to the entry's MAC with no neighbour solicitation; after
// `ndp -d` the address is solicited again.
func TestNDPStaticEntry(t *testing.T) {
	requireCmds(t, "tcpdump")
	s := newV6Setup(t, 0x73)
	waitUntil(t, "namespace → tapstack ping6", 15*time.Second, func() bool { return s.nsPing(s.stackGlobal.String()) })
	ghost := netip.MustParseAddr(s.prefix + "77")
	const ghostMAC = "02:00:00:00:00:77"

	s.tapadm("ndp", "-s", ghost.String(), ghostMAC)
	if out := s.tapadm("ndp", ghost.String()); !strings.Contains(out, "at 2:0:0:0:0:77") || strings.Contains(out, "temp") {
		t.Errorf("ndp %s after -s: %q, want a permanent entry at 2:0:0:0:0:77", ghost, out)
	}
	stop := s.capture(t, "icmp6")
	s.tryTapadm("ping", ghost.String(), "-c", "1") // nobody answers; the echo request is what counts
	pkts := stop()
	toGhost, solicited := ndpTraffic(pkts, ghost)
	if len(toGhost) == 0 {
		t.Errorf("no echo request to %s on the wire (%d ICMPv6 frames)", ghost, len(pkts))
	}
	for _, mac := range toGhost {
		if mac != ghostMAC {
			t.Errorf("echo request to %s went to %s, want the ndp -s MAC %s", ghost, mac, ghostMAC)
		}
	}
	if solicited {
		t.Errorf("tapstack solicited %s although ndp -s made its entry", ghost)
	}

	s.tapadm("ndp", "-d", ghost.String())
	if out, err := s.tryTapadm("ndp", "-i", s.tap, ghost.String()); err == nil || !strings.Contains(out, "SIOCLIFGETND: ESRCH") {
		t.Errorf("ndp %s after -d: %v\n%s", ghost, err, out)
	}
	if out, err := s.tryTapadm("ndp", "-i", s.tap, "-d", ghost.String()); err == nil || !strings.Contains(out, "SIOCLIFDELND: ESRCH") {
		t.Errorf("second ndp -d %s: %v\n%s", ghost, err, out)
	}
	stop = s.capture(t, "icmp6")
	s.tryTapadm("ping", ghost.String(), "-c", "1")
	pkts = stop()
	if _, solicited := ndpTraffic(pkts, ghost); !solicited {
		t.Errorf("no neighbour solicitation for %s after ndp -d (%d ICMPv6 frames)", ghost, len(pkts))
	}
}

// ndpTraffic returns the destination MACs of the IPv6 packets to a and
// whether any neighbour solicitation asked for a.
func ndpTraffic(pkts []gopacket.Packet, a netip.Addr) (macs []string, solicited bool) {
	ip := net.IP(a.AsSlice())
	for _, p := range pkts {
		if ns, ok := p.Layer(layers.LayerTypeICMPv6NeighborSolicitation).(*layers.ICMPv6NeighborSolicitation); ok {
			if ns.TargetAddress.Equal(ip) {
				solicited = true
			}
			continue
		}
		v6, ok := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		eth, ok2 := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		if ok && ok2 && v6.DstIP.Equal(ip) {
			macs = append(macs, eth.DstMAC.String())
		}
	}
	return macs, solicited
}

// capture runs tcpdump on the namespace's end of the TAP with filter and
// returns once tcpdump has opened the device (it says "listening on");
// stop interrupts it and returns the frames it wrote.
func (s *setup) capture(t *testing.T, filter string) (stop func() []gopacket.Packet) {
	t.Helper()
	tcpdump, err := netnstest.LookCmd("tcpdump")
	if err != nil {
		t.Fatal(err)
	}
	ip, err := netnstest.LookCmd("ip")
	if err != nil {
		t.Fatal(err)
	}
	pcap := filepath.Join(t.TempDir(), "capture.pcap")
	cmd := exec.Command(ip, "netns", "exec", s.ns, tcpdump, "-i", s.tap, "-n", "-U", "-w", pcap, filter)
	stderr, stderrW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = stderrW
	err = cmd.Start()
	stderrW.Close()
	if err != nil {
		stderr.Close()
		t.Fatalf("tcpdump: %v", err)
	}
	listening := make(chan struct{})
	var log strings.Builder
	var logMu sync.Mutex
	go func() {
		defer stderr.Close()
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			logMu.Lock()
			log.WriteString(sc.Text() + "\n")
			logMu.Unlock()
			if strings.Contains(sc.Text(), "listening on") {
				once.Do(func() { close(listening) })
			}
		}
	}()
	var once sync.Once
	end := func() {
		once.Do(func() {
			cmd.Process.Signal(syscall.SIGINT)
			cmd.Wait()
		})
	}
	t.Cleanup(end)
	select {
	case <-listening:
	case <-time.After(10 * time.Second):
		end()
		logMu.Lock()
		defer logMu.Unlock()
		t.Fatalf("tcpdump did not start listening:\n%s", log.String())
	}
	return func() []gopacket.Packet {
		end()
		return pcapPackets(t, pcap)
	}
}
