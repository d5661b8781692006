package integration

// The slirp4netns drop-in end to end: `tapstackd slirp4netns` against a
// namespace made the rootless way (`unshare -r -n sleep`: a network
// namespace owned by a user namespace of its own), driven as podman and
// rootlesskit drive slirp4netns: --ready-fd, --exit-fd, the API socket.
//
// The drop-in runs inside a "host" namespace H of the test's own (`ip
// netns exec H tapstackd slirp4netns ...`): its host sockets, the
// forwarded ports and the servers behind 10.0.2.2 are on H's loopback,
// and nothing leaves the test's namespaces.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tapstack/tapstack/internal/netnstest"
)

// slirpEnv is a rootless-style target namespace and the host namespace
// H the drop-in runs in.
type slirpEnv struct {
	t    *testing.T
	host string // H
	pid  int    // the target: unshare -r -n sleep
	proc *os.Process
	done chan struct{} // closed when the target process has been reaped
	dir  string        // for sockets
}

func newSlirpEnv(t *testing.T) *slirpEnv {
	t.Helper()
	netnstest.Require(t)
	requireCmds(t, "unshare", "nsenter", "socat", "ss")
	e := &slirpEnv{t: t, host: netnstest.NewNetns(t), dir: t.TempDir(), done: make(chan struct{})}
	unshare, _ := netnstest.LookCmd("unshare")
	cmd := exec.Command(unshare, "--user", "--map-root-user", "--net", "sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	e.pid, e.proc = cmd.Process.Pid, cmd.Process
	go func() { cmd.Wait(); close(e.done) }()
	t.Cleanup(func() {
		e.proc.Kill()
		<-e.done
	})
	// The namespaces are ready, uid map included, once unshare has
	// exec'd sleep.
	if !waitFor(5*time.Second, func() bool {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", e.pid))
		return err == nil && string(comm) == "sleep\n"
	}) {
		t.Fatal("unshare -r -n did not start sleep")
	}
	return e
}

// nsenterArgs enter the target's user and network namespaces.
func (e *slirpEnv) nsenterArgs(args ...string) []string {
	return append([]string{"nsenter", "-t", strconv.Itoa(e.pid), "-U", "-n", "--preserve-credentials"}, args...)
}

// inTarget runs a command in the target namespace.
func (e *slirpEnv) inTarget(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return runCmd(ctx, "", e.nsenterArgs(args...)...)
}

func (e *slirpEnv) mustInTarget(args ...string) string {
	e.t.Helper()
	out, err := e.inTarget(10*time.Second, args...)
	if err != nil {
		e.t.Fatalf("in the target: %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// background starts a server (its own process group, killed at cleanup)
// with args, as `nsenter ... args` in the target or `ip netns exec H args`,
// and waits until something listens on TCP port there.
func (e *slirpEnv) background(inTarget bool, port int, args ...string) {
	e.t.Helper()
	if inTarget {
		args = e.nsenterArgs(args...)
	} else {
		args = append([]string{"ip", "netns", "exec", e.host}, args...)
	}
	path, err := netnstest.LookCmd(args[0])
	if err != nil {
		e.t.Fatal(err)
	}
	cmd := exec.Command(path, args[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	e.t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		if e.t.Failed() {
			e.t.Logf("%s:\n%s", strings.Join(args, " "), out.String())
		}
	})
	ss := []string{"ss", "-Hltn", fmt.Sprintf("sport = :%d", port)}
	if !waitFor(5*time.Second, func() bool {
		var o string
		var err error
		if inTarget {
			o, err = e.inTarget(5*time.Second, ss...)
		} else {
			o, err = inNs(e.host, "", 5*time.Second, ss...)
		}
		return err == nil && strings.TrimSpace(o) != ""
	}) {
		e.t.Fatalf("%s does not listen on %d:\n%s", strings.Join(args, " "), port, out.String())
	}
}

// slirpProc is a running drop-in.
type slirpProc struct {
	t              *testing.T
	cmd            *exec.Cmd
	stdout, stderr *lockedBuffer // read while the drop-in runs
	done           chan struct{} // closed once cmd.Wait returned
	err            error         // what cmd.Wait returned
	exitW          *os.File      // the write end of the --exit-fd pipe, if asked for
}

// start runs `tapstackd slirp4netns --ready-fd=3 [--exit-fd=4] ARGS` in H
// and waits for the "1" on the ready descriptor. It is stopped (SIGTERM)
// at cleanup.
func (e *slirpEnv) start(withExitFD bool, args ...string) *slirpProc {
	e.t.Helper()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		e.t.Fatal(err)
	}
	defer readyR.Close()
	flags := []string{"--ready-fd=3"}
	files := []*os.File{readyW}
	var exitR *os.File
	p := &slirpProc{t: e.t, stdout: &lockedBuffer{}, stderr: &lockedBuffer{}, done: make(chan struct{})}
	if withExitFD {
		if exitR, p.exitW, err = os.Pipe(); err != nil {
			e.t.Fatal(err)
		}
		flags = append(flags, "--exit-fd=4")
		files = append(files, exitR)
	}
	ip, _ := netnstest.LookCmd("ip")
	p.cmd = exec.Command(ip, append([]string{"netns", "exec", e.host, filepath.Join(binDir, "tapstackd"), "slirp4netns"},
		append(flags, args...)...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.ExtraFiles = files
	if err := p.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	readyW.Close()
	if exitR != nil {
		exitR.Close()
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	e.t.Cleanup(func() {
		p.stop()
		if p.exitW != nil {
			p.exitW.Close()
		}
		if e.t.Failed() {
			e.t.Logf("slirp4netns %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), p.stdout, p.stderr)
		}
	})
	got := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(readyR) // the drop-in writes "1" and closes
		got <- string(b)
	}()
	select {
	case s := <-got:
		if s != "1" {
			p.wait(5 * time.Second)
			e.t.Fatalf("ready-fd gave %q, want \"1\" (exit: %v)\nstdout:\n%s\nstderr:\n%s", s, p.err, p.stdout, p.stderr)
		}
	case <-time.After(15 * time.Second):
		e.t.Fatalf("not ready after 15s\nstderr:\n%s", p.stderr)
	}
	return p
}

// lockedBuffer is a bytes.Buffer that a process writes while the test
// reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// wait waits up to d for the drop-in to exit and returns its exit status
// (-1 if it did not exit).
func (p *slirpProc) wait(d time.Duration) int {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		return -1
	}
}

// stop sends SIGTERM (SIGKILL after 10s) unless the drop-in has exited.
func (p *slirpProc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if p.wait(10*time.Second) < 0 {
		p.t.Errorf("slirp4netns did not exit within 10s of SIGTERM")
		p.cmd.Process.Kill()
		<-p.done
	}
}

// api sends one request to the API socket as slirp4netns's clients do
// (write, shut down the write side, read to the end) and returns the
// reply.
func api(t *testing.T, sock, req string) string {
	t.Helper()
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatalf("api socket: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	c.CloseWrite()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("api reply: %v", err)
	}
	return string(b)
}

// hostGet connects from H to addr:port and returns what the server sent.
func (e *slirpEnv) hostGet(addr string, port int) (string, error) {
	return inNs(e.host, "", 10*time.Second, "socat", "-T", "5", "-", fmt.Sprintf("TCP:%s:%d", addr, port))
}

// targetGet connects from the target to addr:port.
func (e *slirpEnv) targetGet(addr string, port int) (string, error) {
	return e.inTarget(10*time.Second, "socat", "-T", "5", "-", fmt.Sprintf("TCP:%s:%d", addr, port))
}

// TestSlirp4netns: the drop-in as podman runs it, against a PID.
func TestSlirp4netns(t *testing.T) {
	e := newSlirpEnv(t)
	sock := filepath.Join(e.dir, "api.sock")
	p := e.start(false, "--configure", "--mtu", "65520", "--api-socket", sock, strconv.Itoa(e.pid), "tap0")

	t.Run("configured", func(t *testing.T) {
		addr := e.mustInTarget("ip", "-4", "addr", "show", "tap0")
		for _, want := range []string{"inet 10.0.2.100/24", "mtu 65520", ",UP"} {
			if !strings.Contains(addr, want) {
				t.Errorf("tap0 lacks %q:\n%s", want, addr)
			}
		}
		if r := e.mustInTarget("ip", "-4", "route", "show", "default"); !strings.Contains(r, "default via 10.0.2.2 dev tap0") {
			t.Errorf("default route: %q", r)
		}
		if lo := e.mustInTarget("ip", "link", "show", "lo"); !strings.Contains(lo, ",UP") {
			t.Errorf("lo is not up: %s", lo)
		}
		for _, want := range []string{"Starting slirp", "* MTU:             65520", "* Gateway:         10.0.2.2",
			"* API Socket:      " + sock, "WARNING: 127.0.0.1:* on the host is accessible as 10.0.2.2"} {
			if !strings.Contains(p.stdout.String(), want) {
				t.Errorf("stdout lacks %q", want)
			}
		}
	})

	t.Run("api", func(t *testing.T) {
		steps := []struct{ req, want string }{
			{`{"execute": "list_hostfwd"}`, `{"return":{"entries":[]},"entries":[]}`},
			{`{"execute": "add_hostfwd", "arguments": {"proto": "sctp", "host_port": 8080, "guest_port": 80}}`,
				`{"error":{"desc":"bad request: add_hostfwd: bad arguments.proto"}}`},
			{`{"execute": "add_hostfwd", "arguments": {"proto": "tcp", "guest_port": 80}}`,
				`{"error":{"desc":"bad request: add_hostfwd: bad arguments.host_port"}}`},
			{`{"execute": "add_hostfwd", "arguments": {"proto": "tcp", "host_port": 8080}}`,
				`{"error":{"desc":"bad request: add_hostfwd: bad arguments.guest_port"}}`},
			{`{"execute": "add_hostfwd", "arguments": {"proto": "tcp", "host_addr": "0.0.0.0", "host_port": 8080, "guest_addr": "10.0.2.100", "guest_port": 80}}`,
				`{"return":{"id":1}}`},
			{`{"execute": "list_hostfwd"}`, `{"return":{"entries":[` + fwdEntry(1, 8080, 80) + `]},"entries":[` + fwdEntry(1, 8080, 80) + `]}`},
			{`{"execute": "add_hostfwd", "arguments": {"proto": "tcp", "host_port": 8080, "guest_port": 80}}`, ""}, // in use: an error
			{`{"execute": "remove_hostfwd", "arguments": {"id": 42}}`, `{"error":{"desc":"bad request: remove_hostfwd: bad arguments.id"}}`},
			{`{"execute": "remove_hostfwd", "arguments": {"id": 1}}`, `{"return":{}}`},
			{`{"execute": "list_hostfwd"}`, `{"return":{"entries":[]},"entries":[]}`},
			{`{"execute": "bogus"}`, `{"error":{"desc":"bad request: unknown execute"}}`},
			{`not json`, `{"error":{"desc":"bad request: cannot parse JSON"}}`},
		}
		for _, s := range steps {
			got := api(t, sock, s.req)
			if s.want == "" {
				var r struct {
					Error struct{ Desc string }
				}
				if json.Unmarshal([]byte(got), &r) != nil || !strings.HasPrefix(r.Error.Desc, "bad request: add_hostfwd: slirp_add_hostfwd failed") {
					t.Errorf("%s\n got %s\nwant slirp_add_hostfwd failed", s.req, got)
				}
				continue
			}
			if got != s.want {
				t.Errorf("%s\n got %s\nwant %s", s.req, got, s.want)
			}
		}
	})

	t.Run("forward", func(t *testing.T) {
		// The server answers with the client's address as it sees it:
		// masqueraded as 10.0.2.2, as slirp4netns does.
		e.background(true, 80, "socat", "TCP-LISTEN:80,reuseaddr,fork", "SYSTEM:echo $SOCAT_PEERADDR")
		reply := api(t, sock, `{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_addr":"127.0.0.1","host_port":8081,"guest_port":80}}`)
		var r struct {
			Return struct{ ID int }
		}
		if json.Unmarshal([]byte(reply), &r) != nil || r.Return.ID == 0 {
			t.Fatalf("add_hostfwd: %s", reply)
		}
		got, err := e.hostGet("127.0.0.1", 8081)
		if err != nil || strings.TrimSpace(got) != "10.0.2.2" {
			t.Errorf("H 127.0.0.1:8081 → target :80: server saw %q, %v; want 10.0.2.2", got, err)
		}
		api(t, sock, fmt.Sprintf(`{"execute":"remove_hostfwd","arguments":{"id":%d}}`, r.Return.ID))
		if got, err := e.hostGet("127.0.0.1", 8081); err == nil && strings.TrimSpace(got) != "" {
			t.Errorf("removed forward still carries: %q", got)
		}
	})

	t.Run("host loopback", func(t *testing.T) {
		// slirp4netns's default: the host's 127.0.0.1 is 10.0.2.2.
		e.background(false, 9090, "socat", "TCP-LISTEN:9090,bind=127.0.0.1,reuseaddr,fork", "SYSTEM:echo hello from host loopback")
		got, err := e.targetGet("10.0.2.2", 9090)
		if err != nil || strings.TrimSpace(got) != "hello from host loopback" {
			t.Errorf("target → 10.0.2.2:9090: %q, %v", got, err)
		}
	})

	t.Run("exits when the namespace's process exits", func(t *testing.T) {
		e.proc.Kill()
		<-e.done
		if code := p.wait(10 * time.Second); code != 0 {
			t.Fatalf("exit status %d (%v), want 0 within 10s", code, p.err)
		}
		if !strings.Contains(p.stderr.String(), "the namespace is gone") {
			t.Errorf("stderr does not say why it exited")
		}
		if _, err := os.Stat(sock); !os.IsNotExist(err) {
			t.Errorf("API socket left behind: %v", err)
		}
	})
}

func fwdEntry(id, host, guest int) string {
	return fmt.Sprintf(`{"id":%d,"proto":"tcp","host_addr":"0.0.0.0","host_port":%d,"guest_addr":"10.0.2.100","guest_port":%d}`, id, host, guest)
}

// TestSlirp4netnsUserns: with --userns-path (and a path, not a PID) the
// TAP is opened and configured by the helper from inside the user
// namespace, as rootless tapstack must; the link carries traffic; and
// --exit-fd ends the drop-in.
func TestSlirp4netnsUserns(t *testing.T) {
	e := newSlirpEnv(t)
	sock := filepath.Join(e.dir, "api.sock")
	p := e.start(true, "-c", "-6", "--disable-host-loopback", "--macaddress=02:00:5e:10:00:01", "-a", sock,
		"--netns-type=path", fmt.Sprintf("--userns-path=/proc/%d/ns/user", e.pid), fmt.Sprintf("/proc/%d/ns/net", e.pid), "tap1")
	if !strings.Contains(p.stderr.String(), "opening the TAP through a helper") {
		t.Errorf("the helper was not used:\n%s", p.stderr)
	}
	addr := e.mustInTarget("ip", "addr", "show", "tap1")
	for _, want := range []string{"02:00:5e:10:00:01", "inet 10.0.2.100/24", "inet6 fd00::100/64", "mtu 1500"} {
		if !strings.Contains(addr, want) {
			t.Errorf("tap1 lacks %q:\n%s", want, addr)
		}
	}
	routes := e.mustInTarget("ip", "route", "show", "default") + e.mustInTarget("ip", "-6", "route", "show", "default")
	for _, want := range []string{"default via 10.0.2.2 dev tap1", "default via fd00::2 dev tap1"} {
		if !strings.Contains(routes, want) {
			t.Errorf("no %q in:\n%s", want, routes)
		}
	}

	// The link the helper's descriptor makes carries a forward.
	e.background(true, 80, "socat", "TCP-LISTEN:80,reuseaddr,fork", "SYSTEM:echo $SOCAT_PEERADDR")
	if reply := api(t, sock, `{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_port":8082,"guest_port":80}}`); reply != `{"return":{"id":1}}` {
		t.Fatalf("add_hostfwd: %s", reply)
	}
	if got, err := e.hostGet("127.0.0.1", 8082); err != nil || strings.TrimSpace(got) != "10.0.2.2" {
		t.Errorf("H :8082 → target :80: server saw %q, %v; want 10.0.2.2", got, err)
	}

	// --disable-host-loopback: 10.0.2.2 does not reach H's loopback.
	e.background(false, 9091, "socat", "TCP-LISTEN:9091,bind=127.0.0.1,reuseaddr,fork", "SYSTEM:echo reached")
	if got, _ := e.targetGet("10.0.2.2", 9091); strings.Contains(got, "reached") {
		t.Errorf("host loopback reachable despite --disable-host-loopback")
	}

	p.exitW.Close()
	if code := p.wait(10 * time.Second); code != 0 {
		t.Fatalf("after closing the exit-fd: exit status %d (%v), want 0 within 10s", code, p.err)
	}
	if !strings.Contains(p.stderr.String(), "exit-fd event") {
		t.Errorf("stderr does not say why it exited")
	}
	if !waitFor(5*time.Second, func() bool {
		out, _ := e.inTarget(5*time.Second, "ip", "link", "show", "tap1")
		return strings.Contains(out, "does not exist")
	}) {
		t.Errorf("tap1 outlived the drop-in")
	}
}

// TestSlirp4netnsUsage: the command line's errors, help and version, with
// slirp4netns's exit status and words. Needs no root.
func TestSlirp4netnsUsage(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string // a line of standard error
		usage  bool   // the usage is on standard output
		stdout string // else this is the start of standard output
	}{
		{name: "help", args: []string{"-h"}, usage: true},
		{name: "version", args: []string{"--version"}, stdout: "slirp4netns version 1.3.2+tapstack\n"},
		{name: "no arguments", code: 1, usage: true},
		{name: "no tap name", args: []string{"1"}, code: 1, usage: true},
		{name: "unknown option", args: []string{"--bogus", "1", "tap0"}, code: 1, stderr: "slirp4netns: unrecognized option '--bogus'", usage: true},
		{name: "missing argument", args: []string{"1", "tap0", "-m"}, code: 1, stderr: "slirp4netns: option requires an argument -- 'm'", usage: true},
		{name: "mtu", args: []string{"--mtu=65522", "1", "tap0"}, code: 1, stderr: "MTU must be a positive integer (< 65522)", usage: true},
		{name: "pid", args: []string{"-c", "self", "tap0"}, code: 1, stderr: "PID must be a positive integer", usage: true},
		{name: "bess", args: []string{"--target-type=bess", "/tmp/bess.sock"}, code: 1,
			stderr: "--target-type=bess is not supported by tapstack (only netns)", usage: true},
		{name: "cidr", args: []string{"--cidr=10.0.2.100/24", "1", "tap0"}, code: 1,
			stderr: "CIDR needs to be a network address like 10.0.2.0/24, not like 10.0.2.100/24"},
		{name: "no such process", args: []string{"999999999", "tap0"}, code: 1, stderr: "slirp4netns: netns 999999999: no such process"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(filepath.Join(binDir, "tapstackd"), append([]string{"slirp4netns"}, tt.args...)...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			cmd.Run()
			if code := cmd.ProcessState.ExitCode(); code != tt.code {
				t.Errorf("exit status %d, want %d", code, tt.code)
			}
			if tt.stderr != "" && !containsLine(stderr.String(), tt.stderr) {
				t.Errorf("stderr %q lacks the line %q", stderr.String(), tt.stderr)
			}
			if tt.stderr == "" && stderr.Len() != 0 {
				t.Errorf("unexpected stderr %q", stderr.String())
			}
			switch {
			case tt.usage && !strings.HasPrefix(stdout.String(), "Usage: slirp4netns [OPTION]... PID|PATH [TAPNAME]\n"):
				t.Errorf("stdout is not the usage: %q", stdout.String())
			case !tt.usage && !strings.HasPrefix(stdout.String(), tt.stdout):
				t.Errorf("stdout %q, want it to start with %q", stdout.String(), tt.stdout)
			}
		})
	}

	t.Run("wrapper script", func(t *testing.T) {
		// Installed elsewhere, it finds tapstackd next to itself, else in
		// PATH.
		src, err := os.ReadFile("../../scripts/slirp4netns")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name    string
			besides bool
		}{{"next to it", true}, {"in PATH", false}} {
			dir := t.TempDir()
			script := filepath.Join(dir, "slirp4netns")
			if err := os.WriteFile(script, src, 0o755); err != nil {
				t.Fatal(err)
			}
			path := os.Getenv("PATH")
			if c.besides {
				if err := os.Symlink(filepath.Join(binDir, "tapstackd"), filepath.Join(dir, "tapstackd")); err != nil {
					t.Fatal(err)
				}
			} else {
				path = binDir + string(os.PathListSeparator) + path
			}
			cmd := exec.Command(script, "-v")
			cmd.Env = append(os.Environ(), "PATH="+path, "TAPSTACKD=")
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.HasPrefix(string(out), "slirp4netns version 1.3.2+tapstack\n") {
				t.Errorf("%s: slirp4netns -v: %v\n%s", c.name, err, out)
			}
		}
	})
}

func containsLine(s, line string) bool {
	for l := range strings.Lines(s) {
		if strings.TrimSuffix(l, "\n") == line {
			return true
		}
	}
	return false
}

// rootlessScript runs as root in H (`ip netns exec H sh -c SCRIPT`, a
// mount namespace of its own): it gives /dev/net/tun mode 0666 there (as
// most distributions have it; rootless slirp4netns needs that too), then
// runs everything else as nobody, the rootless way: the target from
// `unshare -r -n`, the drop-in unprivileged. It prints what the test
// checks.
const rootlessScript = `
set -eu
mknod -m 666 "$DIR/tun" c 10 200
mount --bind "$DIR/tun" /dev/net/tun
exec setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all sh -eu -c '
unshare -r -n sleep 300 >/dev/null 2>&1 &
pid=$!
until [ "$(cat /proc/$pid/comm)" = sleep ]; do sleep 0.05; done # namespaces and uid map ready
echo "uid $(id -u)"
"$DIR/tapstackd" slirp4netns -c -r 3 -a "$DIR/api.sock" $pid tap0 3>"$DIR/ready" >"$DIR/out" 2>"$DIR/err" &
drop=$!
i=0
until [ "$(cat "$DIR/ready")" = 1 ]; do
	i=$((i+1)); [ $i -lt 200 ] || { echo "not ready"; cat "$DIR/err"; exit 1; }
	sleep 0.05
done
ns() { nsenter -t $pid -U -n --preserve-credentials "$@"; }
ns ip -4 -o addr show tap0
nsenter -t $pid -U -n --preserve-credentials \
	socat TCP-LISTEN:80,reuseaddr,fork "SYSTEM:echo peer \$SOCAT_PEERADDR" >/dev/null 2>&1 &
server=$!
until ns ss -Hltn "sport = :80" | grep -q .; do sleep 0.05; done
printf "%s" "{\"execute\":\"add_hostfwd\",\"arguments\":{\"proto\":\"tcp\",\"host_addr\":\"127.0.0.1\",\"host_port\":8083,\"guest_port\":80}}" |
	socat -t 5 - UNIX-CONNECT:"$DIR/api.sock"
echo
socat -T 5 - TCP:127.0.0.1:8083 </dev/null
kill $server
kill $pid
status=0
wait $drop || status=$?
echo "drop-in exit $status"
grep -o "opening the TAP through a helper" "$DIR/err" || true
'
`

// TestSlirp4netnsRootless: the drop-in as an unprivileged user against a
// namespace that user made: the TAP is opened by the helper (chosen
// without --userns-path), configured, forwards work, and it exits when
// the namespace's process does.
func TestSlirp4netnsRootless(t *testing.T) {
	e := newSlirpEnv(t) // for H; its own target is not used
	requireCmds(t, "setpriv", "mknod")
	dir, err := os.MkdirTemp("", "tapstack-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// nobody must reach the binary and write the sockets.
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	exe, err := os.ReadFile(filepath.Join(binDir, "tapstackd"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tapstackd"), exe, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ip, _ := netnstest.LookCmd("ip")
	cmd := exec.CommandContext(ctx, ip, "netns", "exec", e.host, "sh", "-c", rootlessScript)
	cmd.Env = append(os.Environ(), "DIR="+dir)
	cmd.WaitDelay = time.Second
	b, err := cmd.CombinedOutput()
	out := string(b)
	if err != nil {
		errLog, _ := os.ReadFile(filepath.Join(dir, "err"))
		t.Fatalf("rootless run: %v\n%s\ndrop-in stderr:\n%s", err, out, errLog)
	}
	for _, want := range []string{
		"uid 65534",
		"inet 10.0.2.100/24",
		`{"return":{"id":1}}`,
		"peer 10.0.2.2",
		"drop-in exit 0",
		"opening the TAP through a helper",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if t.Failed() {
		errLog, _ := os.ReadFile(filepath.Join(dir, "err"))
		t.Logf("output:\n%s\ndrop-in stderr:\n%s", out, errLog)
	}
}
