package integration

import (
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/internal/netnstest"
)

// kill ends tapstackd with SIGKILL: no shutdown code runs.
func (d *daemon) kill() {
	d.t.Helper()
	if d.client != nil {
		d.client.Close()
	}
	d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.done
}

// addrObjects returns show-addr's rows without the loopback's own.
func (d *daemon) addrObjects() []ctl.AddrInfo {
	d.t.Helper()
	var rows []ctl.AddrInfo
	d.jsonOut(&rows, "ipadm", "show-addr")
	return slices.DeleteFunc(rows, func(r ctl.AddrInfo) bool { return r.Obj == "lo0/v4" || r.Obj == "lo0/v6" })
}

// TestPersistAcrossSIGKILL configures a TAP's addresses and properties
// through tapadm ipadm, kills tapstackd with SIGKILL, and starts a new
// one on the same state file: once the TAP exists again, show-addr is the
// same (the temporary object excepted) and the kernel in the namespace
// reaches the restored addresses.
func TestPersistAcrossSIGKILL(t *testing.T) {
	netnstest.Require(t)
	ns := netnstest.NewNetns(t)
	state := filepath.Join(t.TempDir(), "state.json")
	d := startDaemon(t, "--state", state)
	d.tapadm("dladm", "create-tap", "tap0", "--netns", ns, "--mac", tapMAC)
	d.tapadm("ipadm", "create-addr", "-T", "static", "-a", "10.61.0.1/24", "tap0/v4")
	d.tapadm("ipadm", "create-addr", "-T", "static", "-a", "local=10.61.0.3/24", "tap0/extra")
	d.tapadm("ipadm", "create-addr", "-T", "addrconf", "tap0/ll")
	d.tapadm("ipadm", "create-addr", "-t", "-T", "static", "-a", "10.61.0.9/24", "tap0/tmp")
	d.tapadm("ipadm", "set-ifprop", "-p", "mtu=1400", "-m", "ipv4", "tap0")
	d.tapadm("ipadm", "set-prop", "-p", "_arp_probe_count=4", "ip")
	before := slices.DeleteFunc(d.settledAddrObjects(), func(r ctl.AddrInfo) bool { return r.Obj == "tap0/tmp" })
	if len(before) != 3 {
		t.Fatalf("show-addr before the kill: %+v", before)
	}
	d.kill()

	d = startDaemon(t, "--state", state)
	// The TAP went with the killed process; until it is back, its
	// addresses are kept but inaccessible.
	for _, r := range d.addrObjects() {
		if r.State != ctl.AddrInaccessible {
			t.Errorf("%s is %s before its link exists, want inaccessible", r.Obj, r.State)
		}
	}
	createTapAgain(t, d, ns)
	after := d.settledAddrObjects()
	if d := cmp.Diff(before, after); d != "" {
		t.Errorf("show-addr after SIGKILL and restart (-want +got):\n%s", d)
	}
	var props []ctl.PropInfo
	d.jsonOut(&props, "ipadm", "show-ifprop", "-p", "mtu", "-m", "ipv4", "tap0")
	if len(props) != 1 || props[0].Current != "1400" || props[0].Persistent != "1400" {
		t.Errorf("mtu after restart: %+v", props)
	}
	d.jsonOut(&props, "ipadm", "show-prop", "-p", "_arp_probe_count")
	if len(props) != 1 || props[0].Current != "4" {
		t.Errorf("_arp_probe_count after restart: %+v", props)
	}
	s := &setup{daemon: d, ns: ns, tap: "tap0"}
	s.nsExec("ip", "addr", "add", "10.61.0.2/24", "dev", "tap0")
	s.nsExec("ip", "link", "set", "tap0", "up")
	for _, a := range []string{"10.61.0.1", "10.61.0.3"} {
		if !s.nsPing(a) {
			t.Errorf("the namespace cannot ping the restored %s", a)
		}
	}
}

// tapMAC is the TAP's MAC, the same in both daemons so the IPv6
// link-local of tap0/ll is too.
const tapMAC = "2:0:0:61:0:1"

// settledAddrObjects is addrObjects once duplicate address detection has
// finished for every address.
func (d *daemon) settledAddrObjects() []ctl.AddrInfo {
	d.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		rows := d.addrObjects()
		if !slices.ContainsFunc(rows, func(r ctl.AddrInfo) bool { return r.State == ctl.AddrTentative }) ||
			time.Now().After(deadline) {
			return rows
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// createTapAgain creates tap0 in ns, waiting for the kernel to finish
// removing the device of the killed daemon.
func createTapAgain(t *testing.T, d *daemon, ns string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := d.tryTapadm("dladm", "create-tap", "tap0", "--netns", ns, "--mac", tapMAC)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("create-tap after restart: %v\n%s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// persistedConfig is what the kill test compares: the address objects
// with their addresses and one protocol property.
type persistedConfig struct {
	Addrs map[string]string
	Probe string
}

func (d *daemon) persistedConfig() persistedConfig {
	d.t.Helper()
	c := persistedConfig{Addrs: map[string]string{}}
	for _, r := range d.addrObjects() {
		c.Addrs[r.Obj] = r.Addr
	}
	var props []ctl.PropInfo
	d.jsonOut(&props, "ipadm", "show-prop", "-p", "_arp_probe_count", "ip")
	if len(props) == 1 {
		c.Probe = props[0].Current
	}
	return c
}

// TestPersistKillDuringChanges kills tapstackd with SIGKILL at random
// moments while tapadm makes a change, again and again: every restart
// finds the configuration from before or from after the interrupted
// change, never a mix or a damaged file. The addresses are on lo0, which
// every daemon has, so no TAP is needed.
func TestPersistKillDuringChanges(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	state := filepath.Join(t.TempDir(), "state.json")
	d := startDaemon(t, "--state", state)
	cur := d.persistedConfig()
	interrupted, completed := 0, 0
	for i := range 16 {
		next := persistedConfig{Addrs: map[string]string{}, Probe: cur.Probe}
		for k, v := range cur.Addrs {
			next.Addrs[k] = v
		}
		var args []string
		switch {
		case i%4 == 3:
			v := fmt.Sprint(1 + rng.IntN(19))
			args = []string{"ipadm", "set-prop", "-p", "_arp_probe_count=" + v, "ip"}
			next.Probe = v
		case i%3 == 2 && len(cur.Addrs) > 0:
			var objs []string
			for k := range cur.Addrs {
				objs = append(objs, k)
			}
			slices.Sort(objs)
			obj := objs[rng.IntN(len(objs))]
			args = []string{"ipadm", "delete-addr", obj}
			delete(next.Addrs, obj)
		default:
			obj, addr := fmt.Sprintf("lo0/a%d", i), fmt.Sprintf("10.62.%d.1/32", i)
			args = []string{"ipadm", "create-addr", "-T", "static", "-a", addr, obj}
			next.Addrs[obj] = addr
		}
		cmd := exec.Command(filepath.Join(binDir, "tapadm"), append([]string{"--ctl", d.sock}, args...)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// tapadm needs some milliseconds to start: the window covers
		// killing before it connects, while the daemon works, and after.
		time.Sleep(time.Duration(rng.IntN(30000)) * time.Microsecond)
		d.kill()
		cmd.Wait()

		d = startDaemon(t, "--state", state)
		got := d.persistedConfig()
		switch {
		case cmp.Equal(got, cur):
			interrupted++
		case cmp.Equal(got, next):
			completed++
		default:
			t.Fatalf("change %d (tapadm %s): restarted with\n%+v\nneither the before\n%+v\nnor the after\n%+v",
				i, strings.Join(args, " "), got, cur, next)
		}
		cur = got
	}
	t.Logf("%d changes lost to the kill, %d completed", interrupted, completed)
}
