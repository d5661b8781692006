// Package integration runs tapstack end to end: the real tapstackd and
// tapadm binaries, real TAP devices in real network namespaces, and the
// Linux kernel as the peer (ping, ip neigh, socat). It needs root and
// /dev/net/tun; outside CI it skips without them, under CI=true it fails.
package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/internal/netnstest"
)

// binDir holds tapstackd and tapadm built once for the whole package.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tapstack-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cmd := exec.Command("go", "build", "-o", dir, "github.com/tapstack/tapstack/cmd/tapstackd", "github.com/tapstack/tapstack/cmd/tapadm")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building binaries:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// daemon is a running tapstackd with its control socket.
type daemon struct {
	t      *testing.T
	sock   string
	cmd    *exec.Cmd
	stderr *lockedBuffer // its log; read while it runs
	done   chan error
	client *ctl.Client
}

// startDaemon runs tapstackd with the given extra flags and stops it (with
// SIGTERM) in t.Cleanup.
func startDaemon(t *testing.T, flags ...string) *daemon {
	t.Helper()
	return startDaemonIn(t, "", flags...)
}

// startDaemonIn is startDaemon inside network namespace netns
// (`ip netns exec NETNS tapstackd ...`: its host sockets live there), or
// in the test's own namespace if netns is "". It waits for --ready-fd, so
// a namespace given with --netns is connected when it returns.
func startDaemonIn(t *testing.T, netns string, flags ...string) *daemon {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "tapstackd.sock")
	d := &daemon{t: t, sock: sock, stderr: &lockedBuffer{}, done: make(chan error, 1)}
	ready, readyW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer ready.Close()
	args := []string{"--ctl", sock, "--ready-fd", "3"}
	if !slices.ContainsFunc(flags, func(f string) bool { return strings.HasPrefix(f, "--state") }) {
		// Never the system daemon's state file: tests would restore each
		// other's configuration.
		args = append(args, "--state=")
	}
	d.cmd = daemonCommand(t, netns, append(args, flags...)...)
	d.cmd.Stderr = d.stderr
	d.cmd.ExtraFiles = []*os.File{readyW}
	err = d.cmd.Start()
	readyW.Close()
	if err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			t.Logf("tapstackd log:\n%s", d.stderr)
		}
	})
	// "1", or end of file if tapstackd exits first.
	readyc := make(chan bool, 1)
	go func() {
		b := make([]byte, 1)
		n, _ := ready.Read(b)
		readyc <- n == 1 && b[0] == '1'
	}()
	select {
	case ok := <-readyc:
		if !ok {
			err := <-d.done
			t.Fatalf("tapstackd exited before it was ready: %v\n%s", err, d.stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("tapstackd not ready after 10s\n%s", d.stderr)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := ctl.Dial(sock)
		if err == nil {
			d.client = c
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("tapstackd did not open %s: %v\n%s", sock, err, d.stderr)
		}
		select {
		case err := <-d.done:
			t.Fatalf("tapstackd exited early: %v\n%s", err, d.stderr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// daemonCommand returns the command running tapstackd with args, inside
// netns unless it is "".
func daemonCommand(t *testing.T, netns string, args ...string) *exec.Cmd {
	t.Helper()
	bin := filepath.Join(binDir, "tapstackd")
	if netns == "" {
		return exec.Command(bin, args...)
	}
	ip, err := netnstest.LookCmd("ip")
	if err != nil {
		t.Fatal(err)
	}
	return exec.Command(ip, append([]string{"netns", "exec", netns, bin}, args...)...)
}

// stop sends SIGTERM and waits for a clean exit.
func (d *daemon) stop() error {
	if d.cmd.ProcessState != nil {
		return nil
	}
	if d.client != nil {
		d.client.Close()
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		return err
	case <-time.After(10 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
		return fmt.Errorf("tapstackd did not exit within 10s of SIGTERM")
	}
}

// tapadm runs the CLI against the daemon; it fails the test on error.
func (d *daemon) tapadm(args ...string) string {
	d.t.Helper()
	out, err := d.tryTapadm(args...)
	if err != nil {
		d.t.Fatalf("tapadm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// tryTapadm runs the CLI and returns combined output and the error.
func (d *daemon) tryTapadm(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "tapadm"), append([]string{"--ctl", d.sock}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// do sends one request through the Go client.
func (d *daemon) do(op string, fam ctl.Family, args, result any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return d.client.Do(ctx, op, fam, args, result)
}

// routes returns the IRE table as netstat.routes reports it.
func (d *daemon) routes(fam ctl.Family) []ctl.RouteEntry {
	d.t.Helper()
	var rs []ctl.RouteEntry
	if err := d.do("netstat.routes", fam, nil, &rs); err != nil {
		d.t.Fatal(err)
	}
	return rs
}

// setup is a namespace with a TAP from a fresh daemon, plumbed, with the
// stack at stackAddr/24 and the kernel at nsAddr/24.
type setup struct {
	*daemon
	ns       string
	tap      string
	stackIP  string
	kernelIP string
}

func newSetup(t *testing.T, subnet byte, flags ...string) *setup {
	t.Helper()
	netnstest.Require(t)
	ns := netnstest.NewNetns(t)
	d := startDaemon(t, flags...)
	s := &setup{daemon: d, ns: ns, tap: "tap0",
		stackIP: fmt.Sprintf("10.%d.0.1", subnet), kernelIP: fmt.Sprintf("10.%d.0.2", subnet)}
	d.tapadm("dladm", "create-tap", s.tap, "--netns", ns, "--mtu", "1500")
	d.tapadm("ifconfig", s.tap, "plumb")
	d.tapadm("ifconfig", s.tap, s.stackIP+"/24", "up")
	s.nsExec("ip", "addr", "add", s.kernelIP+"/24", "dev", s.tap)
	s.nsExec("ip", "link", "set", s.tap, "up")
	d.waitUsable(s.tap)
	return s
}

// waitUsable waits until logical interface name's IPv4 address is in
// use: its link is up (RUNNING) and duplicate address detection, which
// starts again when the link comes up, is over.
func (d *daemon) waitUsable(name string) {
	d.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var fl, st ctl.Lifreq
		d.jsonReq(&fl, "SIOCGLIFFLAGS", name)
		d.jsonReq(&st, "SIOCGLIFDADSTATE", name)
		switch {
		case fl.Flags&ctl.IFF_DUPLICATE != 0:
			d.t.Fatalf("%s: DAD found its address in use (flags %v)", name, fl.Flags)
		case fl.Flags&ctl.IFF_RUNNING != 0 && st.DADState == 2: // DAD_DONE
			return
		case time.Now().After(deadline):
			d.t.Fatalf("%s: not usable after 10 s: flags %v, DAD state %d", name, fl.Flags, st.DADState)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// jsonReq sends request op for logical interface name with tapadm
// request and decodes the reply.
func (d *daemon) jsonReq(v *ctl.Lifreq, op, name string) {
	d.t.Helper()
	out := d.tapadm("request", op, "lifr_name="+name)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		d.t.Fatalf("tapadm request %s: %v\n%s", op, err, out)
	}
}

// nsExec runs a command in the namespace and fails the test on error.
func (s *setup) nsExec(args ...string) string {
	s.t.Helper()
	out, err := netnstest.Exec(s.t, s.ns, args...)
	if err != nil {
		s.t.Fatalf("in %s: %s: %v\n%s", s.ns, strings.Join(args, " "), err, out)
	}
	return out
}

// nsPing pings from the namespace and reports success.
func (s *setup) nsPing(addr string) bool {
	_, err := netnstest.Exec(s.t, s.ns, "ping", "-c", "1", "-W", "2", addr)
	return err == nil
}

// jsonOut runs a tapadm show command with -o json and decodes it.
func (d *daemon) jsonOut(v any, args ...string) {
	d.t.Helper()
	out := d.tapadm(append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		d.t.Fatalf("tapadm %s -o json: %v\n%s", strings.Join(args, " "), err, out)
	}
}
