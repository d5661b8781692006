package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/internal/netnstest"
)

// IPv4 DAD with the Linux kernel as the other host (spec §6).

// dadPair is a daemon and a namespace joined by tap0, both sides up, no
// stack address yet.
type dadPair struct {
	*setup
}

func newDADPair(t *testing.T, subnet byte) *dadPair {
	t.Helper()
	netnstest.Require(t)
	ns := netnstest.NewNetns(t)
	// A state file of its own: set-prop persists, and the tunables set
	// here must not reach other tests' daemons.
	d := startDaemon(t, "--state", filepath.Join(t.TempDir(), "state.json"))
	d.tapadm("ipadm", "set-prop", "-p", "_arp_no_defense=0", "ip")
	s := &setup{daemon: d, ns: ns, tap: "tap0",
		stackIP: fmt.Sprintf("10.%d.0.1", subnet), kernelIP: fmt.Sprintf("10.%d.0.2", subnet)}
	d.tapadm("dladm", "create-tap", s.tap, "--netns", ns, "--mtu", "1500")
	d.tapadm("ifconfig", s.tap, "plumb")
	s.nsExec("ip", "link", "set", s.tap, "up")
	return &dadPair{s}
}

func (p *dadPair) flags(name string) ctl.Flags {
	p.t.Helper()
	r := ctl.Lifreq{Name: name}
	if err := p.do("SIOCGLIFFLAGS", ctl.AF_INET, &r, &r); err != nil {
		p.t.Fatal(err)
	}
	return r.Flags
}

func (p *dadPair) dadState(name string) int {
	p.t.Helper()
	r := ctl.Lifreq{Name: name}
	if err := p.do("SIOCGLIFDADSTATE", ctl.AF_INET, &r, &r); err != nil {
		p.t.Fatal(err)
	}
	return r.DADState
}

// waitUntil polls cond (real time: the kernel is the peer); the deadline
// only bounds a failure.
func waitUntil(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The namespace owns the address first: tapstack's probes are answered
// by the kernel, so the unit ends DUPLICATE, not UP, and the address is
// not used. When the kernel gives it up, tapstack recovers it after a
// shortened _dup_recovery.
func TestDADKernelHoldsAddress(t *testing.T) {
	p := newDADPair(t, 91)
	p.tapadm("ipadm", "set-prop", "-p", "_dup_recovery=2000", "ip")
	p.nsExec("ip", "addr", "add", p.stackIP+"/24", "dev", p.tap)
	waitUntil(t, "tap0 RUNNING", 10*time.Second, func() bool { return p.flags(p.tap)&ctl.IFF_RUNNING != 0 })
	// ifconfig waits for DAD, as illumos ifconfig does, and reports the
	// duplicate.
	if out, err := p.tryTapadm("ifconfig", p.tap, p.stackIP+"/24", "up"); err == nil || !strings.Contains(out, "EADDRINUSE") {
		t.Errorf("ifconfig up of an address the kernel holds: %v, want EADDRINUSE:\n%s", err, out)
	}
	waitUntil(t, "tap0 DUPLICATE", 10*time.Second, func() bool { return p.flags(p.tap)&ctl.IFF_DUPLICATE != 0 })
	if f := p.flags(p.tap); f&ctl.IFF_UP != 0 {
		t.Fatalf("duplicate unit is UP: %s", f)
	}
	out := p.tapadm("ifconfig", p.tap)
	if !strings.Contains(out, "DUPLICATE") {
		t.Errorf("ifconfig does not show DUPLICATE:\n%s", out)
	}
	// The kernel gives the address up: recovery brings the unit back.
	p.nsExec("ip", "addr", "del", p.stackIP+"/24", "dev", p.tap)
	p.nsExec("ip", "addr", "add", p.kernelIP+"/24", "dev", p.tap)
	waitUntil(t, "tap0 recovered", 15*time.Second, func() bool {
		f := p.flags(p.tap)
		return f&ctl.IFF_UP != 0 && f&ctl.IFF_DUPLICATE == 0 && p.dadState(p.tap) == 2
	})
	if !p.nsPing(p.stackIP) {
		t.Error("recovered address does not answer ping")
	}
}

// tapstack owns the address: an RFC 5227 probe from the namespace
// (arping -0, sender 0.0.0.0) is answered with tapstack's MAC.
func TestDADDefendsAgainstKernelProbe(t *testing.T) {
	p := newDADPair(t, 92)
	p.nsExec("ip", "addr", "add", p.kernelIP+"/24", "dev", p.tap)
	p.tapadm("ifconfig", p.tap, p.stackIP+"/24", "up")
	waitUntil(t, "DAD done", 10*time.Second, func() bool { return p.dadState(p.tap) == 2 })
	hw := ctl.Lifreq{Name: p.tap}
	if err := p.do("SIOCGLIFHWADDR", ctl.AF_INET, &hw, &hw); err != nil {
		t.Fatal(err)
	}
	out, err := netnstest.Exec(t, p.ns, "arping", "-0", "-c", "2", "-w", "3", "-r", "-i", p.tap, p.stackIP)
	if err != nil {
		t.Fatalf("no answer to a probe for our address: %v\n%s", err, out)
	}
	if !strings.Contains(strings.ToLower(out), twoDigitMAC(hw.HWAddr)) {
		t.Errorf("probe answered by %q, want %s", out, hw.HWAddr)
	}
	if f := p.flags(p.tap); f&ctl.IFF_DUPLICATE != 0 || f&ctl.IFF_UP == 0 {
		t.Errorf("a probe from another host cost us the address: %s", f)
	}
}

// twoDigitMAC turns "2:0:0:0:0:1" into "02:00:00:00:00:01".
func twoDigitMAC(s string) string {
	parts := strings.Split(s, ":")
	for i, x := range parts {
		if len(x) == 1 {
			parts[i] = "0" + x
		}
	}
	return strings.Join(parts, ":")
}

// Probe count and spacing on the wire follow the tunables (within a
// tolerance for scheduling); announcements follow DAD.
func TestDADProbesOnTheWire(t *testing.T) {
	p := newDADPair(t, 93)
	tcpdump, err := netnstest.LookCmd("tcpdump")
	if err != nil {
		t.Fatalf("%v: run make deps", err)
	}
	p.tapadm("ipadm", "set-prop", "-p", "_arp_fastprobe_count=4", "ip")
	p.tapadm("ipadm", "set-prop", "-p", "_arp_fastprobe_interval=400", "ip")
	p.tapadm("ipadm", "set-prop", "-p", "_arp_fastprobe_delay=200", "ip")
	pcap := filepath.Join(t.TempDir(), "dad.pcap")
	cap := startInNetns(t, p.ns, tcpdump, "-i", p.tap, "-U", "-w", pcap, "arp")
	time.Sleep(time.Second) // tcpdump has no ready signal; give it time to open the device
	p.tapadm("ifconfig", p.tap, p.stackIP+"/24", "up")
	waitUntil(t, "DAD done", 10*time.Second, func() bool { return p.dadState(p.tap) == 2 })
	time.Sleep(500 * time.Millisecond) // the first announcement
	cap()

	r := openPcap(t, pcap)
	var probes []time.Time
	announced := false
	for {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		pkt := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
		a, ok := pkt.Layer(layers.LayerTypeARP).(*layers.ARP)
		if !ok || a.Operation != layers.ARPRequest {
			continue
		}
		src, dst := fmt.Sprint(a.SourceProtAddress), fmt.Sprint(a.DstProtAddress)
		switch {
		case src == "[0 0 0 0]" && ipBytes(p.stackIP) == dst:
			probes = append(probes, ci.Timestamp)
		case src == dst && ipBytes(p.stackIP) == dst:
			announced = true
		}
	}
	if len(probes) != 4 {
		t.Fatalf("%d probes on the wire, want _arp_fastprobe_count=4", len(probes))
	}
	for i := 1; i < len(probes); i++ {
		if gap := probes[i].Sub(probes[i-1]); gap < 300*time.Millisecond || gap > 700*time.Millisecond {
			t.Errorf("probe %d came %v after the previous one, want about 400ms", i+1, gap)
		}
	}
	if !announced {
		t.Error("no gratuitous ARP after DAD")
	}
}

// startInNetns starts a command in namespace ns and returns a function
// that interrupts it and waits for it to exit (also run at cleanup).
func startInNetns(t *testing.T, ns, path string, args ...string) (stop func()) {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, path}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cmd.Process.Signal(syscall.SIGINT)
			cmd.Wait()
		})
	}
	t.Cleanup(stop)
	return stop
}

func ipBytes(s string) string {
	var a, b, c, d byte
	fmt.Sscanf(s, "%d.%d.%d.%d", &a, &b, &c, &d)
	return fmt.Sprint([]byte{a, b, c, d})
}

// openPcap opens a capture file for reading; it is closed when the test
// ends.
func openPcap(t *testing.T, path string) *pcapgo.Reader {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
