package integration

// The namespace gateway end to end (issue 3): tapstackd runs inside a
// "host" namespace H of the test's own (`ip netns exec H tapstackd
// --netns S --configure ...`), so its host sockets, and every server the
// tests start, live in H; the sandbox S gets its network from tapstackd; a
// client namespace C, joined to H by a veth pair, stands for a remote
// client of port forwards. Nothing leaves these namespaces.
//
// Addresses: H has 10.250.N.1/24 and fd51:N::1/64 on a veth (eth0); the
// H–C veth is 10.251.N.0/24 and fd52:N::/64 (H .1, C .2); S is
// 10.0.2.100/24 and fd00::100/64 behind the gateway 10.0.2.2 / fd00::2.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/internal/netnstest"
)

// gwEnv is one test's namespaces and addresses.
type gwEnv struct {
	t       *testing.T
	host    string // H: where tapstackd and the servers run
	sandbox string // S: the namespace tapstackd connects
	hostIP  string // 10.250.N.1 in H
	hostIP6 string // fd51:N::1 in H
	n       int
}

// requireCmds fails (or skips, outside CI) when commands a test needs are
// missing.
func requireCmds(t *testing.T, cmds ...string) {
	t.Helper()
	for _, c := range cmds {
		if _, err := netnstest.LookCmd(c); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%v (make deps installs it)", err)
			}
			netnstest.Unavailable(t, "%v (make deps installs it)", err)
		}
	}
}

// newGwEnv makes H (with its dummy addresses) and S; n (1..250) keeps
// each test's addresses apart.
func newGwEnv(t *testing.T, n int) *gwEnv {
	t.Helper()
	netnstest.Require(t)
	requireCmds(t, "socat")
	e := &gwEnv{t: t, n: n,
		hostIP: fmt.Sprintf("10.250.%d.1", n), hostIP6: fmt.Sprintf("fd51:%x::1", n)}
	e.host = netnstest.NewNetns(t)
	e.sandbox = netnstest.NewNetns(t)
	// A veth pair with both ends in H stands for the host's NIC (no
	// dummy module needed).
	e.ip("-n", e.host, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0peer")
	e.ip("-n", e.host, "addr", "add", e.hostIP+"/24", "dev", "eth0")
	e.ip("-n", e.host, "addr", "add", e.hostIP6+"/64", "dev", "eth0", "nodad")
	e.ip("-n", e.host, "link", "set", "eth0peer", "up")
	e.ip("-n", e.host, "link", "set", "eth0", "up")
	return e
}

// ip runs iproute2 and fails the test on error.
func (e *gwEnv) ip(args ...string) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ip, err := netnstest.LookCmd("ip")
	if err != nil {
		e.t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, ip, args...).CombinedOutput()
	if err != nil {
		e.t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// start runs tapstackd in H connected to S (--netns S --configure) with
// the extra flags.
func (e *gwEnv) start(flags ...string) *daemon {
	e.t.Helper()
	return startDaemonIn(e.t, e.host, append([]string{"--netns", e.sandbox, "--configure"}, flags...)...)
}

// inNs runs a command in ns with stdin and a timeout, and returns its
// combined output.
func inNs(ns, stdin string, timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return runCmd(ctx, stdin, append([]string{"ip", "netns", "exec", ns}, args...)...)
}

func runCmd(ctx context.Context, stdin string, args ...string) (string, error) {
	path, err := netnstest.LookCmd(args[0])
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, path, args[1:]...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// mustInNs is inNs that fails the test on error.
func (e *gwEnv) mustInNs(ns string, args ...string) string {
	e.t.Helper()
	out, err := inNs(ns, "", 10*time.Second, args...)
	if err != nil {
		e.t.Fatalf("in %s: %s: %v\n%s", ns, strings.Join(args, " "), err, out)
	}
	return out
}

// serve starts a server in ns in the background (its own process group,
// killed at cleanup) and waits until something listens on port (TCP), or
// briefly for UDP.
func (e *gwEnv) serve(ns string, port int, udp bool, args ...string) {
	e.t.Helper()
	ip, err := netnstest.LookCmd("ip")
	if err != nil {
		e.t.Fatal(err)
	}
	filter := fmt.Sprintf("sport = :%d", port)
	kind := "-Hltn"
	if udp {
		kind = "-Hlun"
	}
	// The server is up when the port has one listener more than before: a
	// second server on the port (the other family) must not count the
	// first one's socket as its own.
	listeners := func() (n int) {
		o, _ := inNs(ns, "", 5*time.Second, "ss", kind, filter) // on error: none seen
		for l := range strings.Lines(o) {
			if strings.TrimSpace(l) != "" {
				n++
			}
		}
		return n
	}
	before := listeners()
	cmd := exec.Command(ip, append([]string{"netns", "exec", ns}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	e.t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		if e.t.Failed() {
			e.t.Logf("server %s in %s:\n%s", strings.Join(args, " "), ns, out.String())
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		if n := listeners(); n > before {
			return
		}
		select {
		case <-done:
			e.t.Fatalf("server %s exited:\n%s", strings.Join(args, " "), out.String())
		default:
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("server %s does not listen on %d:\n%s", strings.Join(args, " "), port, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// httpServer serves "hello from the host" over HTTP/1.0 on addr:port in
// ns (addr "" for every address, both families).
func (e *gwEnv) httpServer(ns, addr string, port int) {
	e.t.Helper()
	listen := fmt.Sprintf("TCP6-LISTEN:%d,ipv6only=0,reuseaddr,fork", port)
	if addr != "" {
		listen = fmt.Sprintf("TCP-LISTEN:%d,bind=%s,reuseaddr,fork", port, addr)
	}
	resp := filepath.Join(e.t.TempDir(), "response")
	if err := os.WriteFile(resp, []byte("HTTP/1.0 200 OK\r\nContent-Length: 20\r\n\r\nhello from the host\n"), 0o644); err != nil {
		e.t.Fatal(err)
	}
	// -U: file to socket only. Both ways, socat fails writing the request
	// to the read-only file, and drops the connection, whenever the
	// request arrives before it has sent the response.
	e.serve(ns, port, false, "socat", "-U", listen, "OPEN:"+resp+",rdonly")
}

// peerServer answers every TCP connection on port in ns with the
// client's address as the server sees it, both families.
func (e *gwEnv) peerServer(ns string, port int) {
	e.t.Helper()
	e.serve(ns, port, false, "socat", fmt.Sprintf("TCP6-LISTEN:%d,ipv6only=0,reuseaddr,fork", port), `SYSTEM:echo $SOCAT_PEERADDR`)
}

// tcpGet connects from ns to addr:port and returns what the server sent.
func tcpGet(ns, addr string, port int) (string, error) {
	target := fmt.Sprintf("TCP:%s:%d", addr, port)
	if strings.Contains(addr, ":") {
		target = fmt.Sprintf("TCP6:[%s]:%d", addr, port)
	}
	return inNs(ns, "", 10*time.Second, "socat", "-T", "5", "-", target)
}

// waitFor retries f until it returns true or the deadline passes.
func waitFor(d time.Duration, f func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if f() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestGatewayConfiguresNamespace: --netns S --configure creates tap0 in S,
// configures both sides, and everything shows in tapadm.
func TestGatewayConfiguresNamespace(t *testing.T) {
	e := newGwEnv(t, 1)
	d := e.start("--mtu", "9000", "--mac", "02:00:00:00:01:64")

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"ip", "-4", "addr", "show", "tap0"}, "inet 10.0.2.100/24"},
		{[]string{"ip", "-6", "addr", "show", "tap0"}, "inet6 fd00::100/64"},
		{[]string{"ip", "link", "show", "tap0"}, "mtu 9000"},
		{[]string{"ip", "link", "show", "tap0"}, "link/ether 02:00:00:00:01:64"},
		{[]string{"ip", "link", "show", "lo"}, "UP"},
		{[]string{"ip", "-4", "route", "show", "default"}, "default via 10.0.2.2 dev tap0"},
		{[]string{"ip", "-6", "route", "show", "default"}, "default via fd00::2 dev tap0"},
	} {
		if out := e.mustInNs(e.sandbox, c.args...); !strings.Contains(out, c.want) {
			t.Errorf("%s in S: %q lacks %q", strings.Join(c.args, " "), out, c.want)
		}
	}
	if out := e.mustInNs(e.sandbox, "ip", "link", "show", "tap0"); !strings.Contains(out, "LOWER_UP") {
		t.Errorf("tap0 has no carrier in S: %s", out)
	}

	ifc := d.tapadm("ifconfig", "-a")
	for _, want := range []string{
		"tap0: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 9000 index 2\n\tinet 10.0.2.2 netmask ffffff00 broadcast 10.0.2.255\n",
		"tap0:1: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 9000 index 2\n\tinet 10.0.2.3 netmask ffffff00 broadcast 10.0.2.255\n",
		"\tinet6 fe80::2/64 \n",
		"\tinet6 fd00::2/64 \n",
		"\tinet6 fd00::3/64 \n",
	} {
		if !strings.Contains(ifc, want) {
			t.Errorf("tapadm ifconfig -a lacks %q:\n%s", want, ifc)
		}
	}
	rt := d.tapadm("netstat", "-rn")
	for _, re := range []string{`(?m)^10\.0\.2\.0\s+10\.0\.2\.2\s+U\s`, `(?m)^fd00::/64\s+fd00::2\s+U\s`} {
		if !regexp.MustCompile(re).MatchString(rt) {
			t.Errorf("tapadm netstat -rn lacks %s:\n%s", re, rt)
		}
	}
	var links []ctl.LinkInfo
	d.jsonOut(&links, "dladm", "show-link")
	if len(links) != 1 || links[0].Link != "tap0" || links[0].MTU != 9000 || links[0].Over != "/run/netns/"+e.sandbox {
		t.Errorf("dladm show-link: %+v", links)
	}
	// The session's link is not for deleting by hand.
	if out, err := d.tryTapadm("dladm", "delete-link", "tap0"); err == nil || !strings.Contains(out, "EBUSY") {
		t.Errorf("delete-link tap0: %q, %v; want EBUSY", out, err)
	}
	var fws []ctl.Forward
	d.jsonOut(&fws, "gateway", "list-forwards")
	if len(fws) != 0 {
		t.Errorf("forwards without -p: %+v", fws)
	}

	// SIGTERM: a clean exit, and the TAP goes.
	if err := d.stop(); err != nil {
		t.Fatalf("tapstackd exit: %v", err)
	}
	if !waitFor(3*time.Second, func() bool {
		_, err := inNs(e.sandbox, "", 5*time.Second, "ip", "link", "show", "tap0")
		return err != nil
	}) {
		t.Error("tap0 still in S after tapstackd exited")
	}
}

// TestGatewayIPv6Off: --ipv6=false plumbs and configures IPv4 only.
func TestGatewayIPv6Off(t *testing.T) {
	e := newGwEnv(t, 2)
	d := e.start("--ipv6=false", "--cidr", "10.77.0.0/24")
	if out := e.mustInNs(e.sandbox, "ip", "addr", "show", "tap0"); !strings.Contains(out, "inet 10.77.0.100/24") || strings.Contains(out, "fd00::") {
		t.Errorf("S's tap0: %s", out)
	}
	if out := d.tapadm("ifconfig", "-a"); strings.Contains(out, "fd00::") || !strings.Contains(out, "inet 10.77.0.3 ") {
		t.Errorf("tapadm ifconfig -a:\n%s", out)
	}
}

// failDaemon runs tapstackd in the test's H expecting it to fail at once;
// it returns stderr.
func (e *gwEnv) failDaemon(args ...string) string {
	e.t.Helper()
	sock := filepath.Join(e.t.TempDir(), "fail.sock")
	cmd := daemonCommand(e.t, e.host, append([]string{"--ctl", sock}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			e.t.Errorf("tapstackd %s: %v, want exit status 1\n%s", strings.Join(args, " "), err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		e.t.Fatalf("tapstackd %s did not fail within 10s\n%s", strings.Join(args, " "), stderr.String())
	}
	if _, err := os.Stat(sock); err == nil {
		e.t.Errorf("control socket left behind by a failed start")
	}
	if _, err := inNs(e.sandbox, "", 5*time.Second, "ip", "link", "show", "tap0"); err == nil {
		e.t.Errorf("tap0 left in S by a failed start")
	}
	return stderr.String()
}

// TestGatewayBadInput: bad command lines and requests get a clear error
// and change nothing.
func TestGatewayBadInput(t *testing.T) {
	e := newGwEnv(t, 3)
	t.Run("malformed -p", func(t *testing.T) {
		e := *e
		e.t = t
		out := e.failDaemon("--netns", e.sandbox, "--configure", "-p", "80:http")
		if !strings.Contains(out, "tapstackd:") || !strings.Contains(out, "80:http") {
			t.Errorf("message: %q", out)
		}
	})
	t.Run("no such netns", func(t *testing.T) {
		e := *e
		e.t = t
		out := e.failDaemon("--netns", "tapstack-no-such-ns", "--configure")
		if !strings.Contains(out, "netns tapstack-no-such-ns: no such network namespace") {
			t.Errorf("message: %q", out)
		}
	})
	t.Run("busy-poll out of range", func(t *testing.T) {
		e := *e
		e.t = t
		out := e.failDaemon("--netns", e.sandbox, "--configure", "--busy-poll", "5ms")
		if !strings.Contains(out, "busy-poll") || !strings.Contains(out, "5ms") || !strings.Contains(out, "1ms") {
			t.Errorf("message: %q (want the flag, the value and the limit)", out)
		}
	})
	t.Run("gateway flag without --netns", func(t *testing.T) {
		e := *e
		e.t = t
		if out := e.failDaemon("-p", "8080:80"); !strings.Contains(out, "-p needs --netns") {
			t.Errorf("message: %q", out)
		}
	})
	t.Run("port in use", func(t *testing.T) {
		e := *e
		e.t = t
		e.serve(e.host, 18080, false, "socat", "TCP-LISTEN:18080,bind="+e.hostIP+",reuseaddr,fork", "SYSTEM:echo busy")
		out := e.failDaemon("--netns", e.sandbox, "--configure", "-p", e.hostIP+":18080:80")
		if !strings.Contains(out, "18080") || !strings.Contains(strings.ToLower(out), "in use") {
			t.Errorf("message: %q (want the port and \"in use\")", out)
		}
	})
	t.Run("control requests", func(t *testing.T) {
		d := e.start()
		var before []ctl.Forward
		d.jsonOut(&before, "gateway", "list-forwards")
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"gateway", "add-forward", "80:http"}, "gateway.add-forward: EINVAL"},
			{[]string{"gateway", "add-forward", "99999:80"}, "gateway.add-forward: EINVAL"},
			{[]string{"gateway", "remove-forward", "4242"}, "gateway.remove-forward: ENOENT"},
		} {
			if out, err := d.tryTapadm(c.args...); err == nil || !strings.Contains(out, c.want) {
				t.Errorf("tapadm %s: %q, %v; want %q", strings.Join(c.args, " "), out, err, c.want)
			}
		}
		var after []ctl.Forward
		d.jsonOut(&after, "gateway", "list-forwards")
		if len(after) != len(before) {
			t.Errorf("forwards changed: %+v → %+v", before, after)
		}
	})
}

// TestGatewayNoSession: the forward requests on a daemon without a
// namespace are ENXIO.
func TestGatewayNoSession(t *testing.T) {
	netnstest.Require(t)
	d := startDaemon(t)
	out, err := d.tryTapadm("gateway", "list-forwards")
	if err == nil || !strings.Contains(out, "ENXIO: no namespace gateway is running") {
		t.Errorf("list-forwards: %q, %v", out, err)
	}
}

// TestGatewayExitsWhenNamespaceGoes: the daemon exits 0, its TAP gone,
// when the namespace is deleted, its TAP is deleted, or its process (for
// --netns PID) exits.
func TestGatewayExitsWhenNamespaceGoes(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(e *gwEnv) (netnsArg string, end func())
	}{
		{"ip netns delete", func(e *gwEnv) (string, func()) {
			return e.sandbox, func() { e.ip("netns", "delete", e.sandbox) }
		}},
		{"TAP deleted", func(e *gwEnv) (string, func()) {
			return e.sandbox, func() { e.ip("-n", e.sandbox, "link", "delete", "tap0") }
		}},
		{"process exits", func(e *gwEnv) (string, func()) {
			ip, _ := netnstest.LookCmd("ip")
			cmd := exec.Command(ip, "netns", "exec", e.sandbox, "sleep", "60")
			if err := cmd.Start(); err != nil {
				e.t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			e.t.Cleanup(func() { cmd.Process.Kill(); <-done })
			return fmt.Sprint(cmd.Process.Pid), func() { cmd.Process.Kill(); <-done }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			netnstest.Require(t)
			e := &gwEnv{t: t}
			e.host = netnstest.NewNetns(t)
			// S may be deleted by the test: its cleanup tolerates that.
			e.sandbox = netnstest.UniqueName("tgw")
			e.ip("netns", "add", e.sandbox)
			t.Cleanup(func() {
				if _, err := os.Stat("/run/netns/" + e.sandbox); err == nil {
					runCmd(context.Background(), "", "ip", "netns", "delete", e.sandbox)
				}
			})
			arg, end := tc.run(e)
			d := startDaemonIn(t, e.host, "--netns", arg, "--configure")
			end()
			select {
			case err := <-d.done:
				d.done <- err // for stop in cleanup
				if err != nil {
					t.Errorf("tapstackd exited with %v, want status 0\n%s", err, d.stderr)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("tapstackd still runs 5s after the namespace went\n%s", d.stderr)
			}
			if !strings.Contains(d.stderr.String(), "namespace gone") {
				t.Errorf("log does not say why it exited:\n%s", d.stderr)
			}
			if _, err := os.Stat("/run/netns/" + e.sandbox); err == nil {
				if _, err := inNs(e.sandbox, "", 5*time.Second, "ip", "link", "show", "tap0"); err == nil {
					t.Error("tap0 still exists after tapstackd exited")
				}
			}
		})
	}
}

// TestGatewayExitFD: tapstackd exits when its --exit-fd is closed.
func TestGatewayExitFD(t *testing.T) {
	e := newGwEnv(t, 4)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	sock := filepath.Join(t.TempDir(), "x.sock")
	cmd := daemonCommand(t, e.host, "--ctl", sock, "--netns", e.sandbox, "--configure", "--exit-fd", "3")
	cmd.ExtraFiles = []*os.File{r}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-done
		}
	})
	if !waitFor(5*time.Second, func() bool {
		_, err := inNs(e.sandbox, "", 5*time.Second, "ip", "-4", "addr", "show", "tap0")
		return err == nil
	}) {
		t.Fatalf("tap0 never appeared\n%s", stderr.String())
	}
	w.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit: %v\n%s", err, stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("tapstackd still runs 5s after --exit-fd closed\n%s", stderr.String())
	}
}

// The tests below depend on the gateway's data paths (outbound TCP, UDP,
// ICMP, the DNS forwarder, port forwards).

// TestGatewayPing: the namespace pings the gateway's addresses and a host
// address through the ICMP proxy.
func TestGatewayPing(t *testing.T) {
	e := newGwEnv(t, 5)
	e.start()
	for _, dst := range []string{"10.0.2.2", "10.0.2.3", "fd00::2", e.hostIP, e.hostIP6} {
		if out, err := inNs(e.sandbox, "", 10*time.Second, "ping", "-c", "1", "-W", "3", dst); err != nil {
			t.Errorf("ping %s from S: %v\n%s", dst, err, out)
		}
	}
}

// TestGatewayOutboundTCP: a TCP client in the namespace reaches a server
// on a host address, IPv4 and IPv6.
func TestGatewayOutboundTCP(t *testing.T) {
	e := newGwEnv(t, 6)
	e.start()
	e.httpServer(e.host, "", 8000)
	for _, addr := range []string{e.hostIP, e.hostIP6} {
		out, err := tcpGet(e.sandbox, addr, 8000)
		if err != nil || !strings.Contains(out, "hello from the host") {
			t.Errorf("S → %s:8000: %q, %v", addr, out, err)
		}
	}
	// A closed port is refused, not left to time out.
	if out, err := tcpGet(e.sandbox, e.hostIP, 8001); err == nil || !strings.Contains(out, "refused") {
		t.Errorf("S → closed port: %q, %v; want connection refused", out, err)
	}
}

// TestGatewayOutboundUDP: a UDP round trip from the namespace to a host
// echo server, IPv4 and IPv6.
func TestGatewayOutboundUDP(t *testing.T) {
	e := newGwEnv(t, 7)
	e.start()
	e.serve(e.host, 7007, true, "socat", "UDP6-RECVFROM:7007,ipv6only=0,fork", "PIPE")
	for _, target := range []string{"UDP:" + e.hostIP + ":7007", "UDP6:[" + e.hostIP6 + "]:7007"} {
		out, err := inNs(e.sandbox, "udp round trip\n", 10*time.Second, "socat", "-t", "3", "-T", "3", "-", target)
		if err != nil || out != "udp round trip\n" {
			t.Errorf("S → %s: %q, %v", target, out, err)
		}
	}
}

// TestGatewayHostLoopback: the gateway address reaches the host's
// loopback only with --allow-host-loopback; otherwise it is refused.
func TestGatewayHostLoopback(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags []string
		open  bool
	}{
		{"default refused", nil, false},
		{"allowed", []string{"--allow-host-loopback"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newGwEnv(t, 8)
			e.serve(e.host, 9009, false, "socat", "TCP6-LISTEN:9009,bind=[::1],ipv6only=1,reuseaddr,fork", "SYSTEM:echo loopback6")
			e.serve(e.host, 9009, false, "socat", "TCP-LISTEN:9009,bind=127.0.0.1,reuseaddr,fork", "SYSTEM:echo loopback4")
			// The servers answer on H's loopback.
			if out, err := tcpGet(e.host, "127.0.0.1", 9009); err != nil || out != "loopback4\n" {
				t.Fatalf("loopback server in H: %q, %v", out, err)
			}
			e.start(tc.flags...)
			for _, c := range []struct{ gw, want string }{{"10.0.2.2", "loopback4\n"}, {"fd00::2", "loopback6\n"}} {
				out, err := tcpGet(e.sandbox, c.gw, 9009)
				if tc.open && (err != nil || out != c.want) {
					t.Errorf("S → %s:9009: %q, %v; want %q", c.gw, out, err, c.want)
				}
				if !tc.open && (err == nil || !strings.Contains(out, "refused")) {
					t.Errorf("S → %s:9009: %q, %v; want connection refused", c.gw, out, err)
				}
			}
		})
	}
}

// TestGatewayDNS: the forwarder at 10.0.2.3 (and fd00::3) relays to the
// host's resolver, here dnsmasq on H's loopback stub address 127.0.0.53.
func TestGatewayDNS(t *testing.T) {
	e := newGwEnv(t, 9)
	requireCmds(t, "dnsmasq", "getent")
	const name = "gwtest.tapstack.test"
	want := fmt.Sprintf("10.250.%d.7", e.n)
	e.serve(e.host, 53, true, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
		"--listen-address=127.0.0.53", "--bind-interfaces", "--port=53", "--user=root", "--pid-file=",
		"--host-record="+name+","+want, "--log-queries", "--log-facility=-")
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 127.0.0.53\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.start("--resolv-conf", resolv)

	// `ip netns exec S` mounts /etc/netns/S/resolv.conf over /etc/resolv.conf.
	etc := filepath.Join("/etc/netns", e.sandbox)
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(etc) })
	for _, server := range []string{"10.0.2.3", "fd00::3"} {
		if err := os.WriteFile(filepath.Join(etc, "resolv.conf"), []byte("nameserver "+server+"\noptions timeout:2 attempts:2\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := inNs(e.sandbox, "", 15*time.Second, "getent", "hosts", name)
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("getent hosts %s via %s: %q, %v; want %s", name, server, out, err, want)
		}
	}
}

// forwardEnv is a gwEnv with a client namespace C on a veth to H and a
// server in S that answers with the client address it sees.
type forwardEnv struct {
	*gwEnv
	client    string // C
	hostVeth  string // H's veth address, 10.251.N.1
	hostVeth6 string // fd52:N::1
}

func newForwardEnv(t *testing.T, n int) *forwardEnv {
	t.Helper()
	e := &forwardEnv{gwEnv: newGwEnv(t, n),
		hostVeth: fmt.Sprintf("10.251.%d.1", n), hostVeth6: fmt.Sprintf("fd52:%x::1", n)}
	e.client = netnstest.NewNetns(t)
	e.ip("-n", e.host, "link", "add", "vh", "type", "veth", "peer", "name", "vc", "netns", e.client)
	e.ip("-n", e.host, "addr", "add", e.hostVeth+"/24", "dev", "vh")
	e.ip("-n", e.host, "addr", "add", e.hostVeth6+"/64", "dev", "vh", "nodad")
	e.ip("-n", e.host, "link", "set", "vh", "up")
	e.ip("-n", e.client, "addr", "add", fmt.Sprintf("10.251.%d.2/24", n), "dev", "vc")
	e.ip("-n", e.client, "addr", "add", fmt.Sprintf("fd52:%x::2/64", n), "dev", "vc", "nodad")
	e.ip("-n", e.client, "link", "set", "vc", "up")
	e.peerServer(e.sandbox, 80)
	return e
}

// peerSeen connects from C to H's veth address and port and returns the
// address the server in S saw.
func (e *forwardEnv) peerSeen(v6 bool, port int) (string, error) {
	addr := e.hostVeth
	if v6 {
		addr = e.hostVeth6
	}
	out, err := tcpGet(e.client, addr, port)
	return canonicalAddr(strings.TrimSpace(out)), err
}

// canonicalAddr turns socat's SOCAT_PEERADDR of an IPv6 listener
// ("[0000:...:ffff:0afb:0a02]") into the address's usual form.
func canonicalAddr(s string) string {
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return s
	}
	return a.Unmap().String()
}

// TestGatewayForward: -p carries connections from another machine into
// the namespace, and the server there sees the client's real address.
func TestGatewayForward(t *testing.T) {
	e := newForwardEnv(t, 10)
	d := e.start("-p", "8080:80")
	var fws []ctl.Forward
	d.jsonOut(&fws, "gateway", "list-forwards")
	if len(fws) != 1 || fws[0].HostPort != 8080 || fws[0].GuestPort != 80 || fws[0].Proto != "tcp" {
		t.Errorf("forwards: %+v", fws)
	}
	for _, c := range []struct {
		v6   bool
		want string
	}{{false, fmt.Sprintf("10.251.%d.2", e.n)}, {true, fmt.Sprintf("fd52:%x::2", e.n)}} {
		got, err := e.peerSeen(c.v6, 8080)
		if err != nil || got != c.want {
			t.Errorf("C → H:8080 → S:80 (IPv6 %v): server saw %q, %v; want %s", c.v6, got, err, c.want)
		}
	}
}

// TestGatewayForwardMasquerade: --masquerade-forwards makes forwarded
// connections come from the gateway address.
func TestGatewayForwardMasquerade(t *testing.T) {
	e := newForwardEnv(t, 11)
	e.start("-p", "8080:80", "--masquerade-forwards")
	if got, err := e.peerSeen(false, 8080); err != nil || got != "10.0.2.2" {
		t.Errorf("server saw %q, %v; want 10.0.2.2", got, err)
	}
}

// TestGatewayForwardAtRunTime: forwards added and removed through tapadm.
func TestGatewayForwardAtRunTime(t *testing.T) {
	e := newForwardEnv(t, 12)
	d := e.start()
	out := d.tapadm("gateway", "add-forward", e.hostVeth+":8081:80/tcp")
	m := regexp.MustCompile(`Created forward (\d+): tcp `).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("add-forward said %q", out)
	}
	id := m[1]
	if list := d.tapadm("gateway", "list-forwards"); !regexp.MustCompile(`(?m)^` + id + `\s+tcp\s+` + regexp.QuoteMeta(e.hostVeth) + `:8081\s+\*:80$`).MatchString(list) {
		t.Errorf("list-forwards:\n%s", list)
	}
	want := fmt.Sprintf("10.251.%d.2", e.n)
	if got, err := e.peerSeen(false, 8081); err != nil || !strings.Contains(got, want) {
		t.Errorf("through the new forward: %q, %v; want %s", got, err, want)
	}
	// Bound to the IPv4 veth address only.
	if got, err := e.peerSeen(true, 8081); err == nil {
		t.Errorf("IPv6 reached a forward bound to %s: %q", e.hostVeth, got)
	}
	var added ctl.Forward
	if err := json.Unmarshal([]byte(d.tapadm("gateway", "add-forward", "[::]:8082:80", "-o", "json")), &added); err != nil || added.ID == 0 {
		t.Fatalf("add-forward -o json: %+v, %v", added, err)
	}
	if got, err := e.peerSeen(true, 8082); err != nil || !strings.Contains(got, fmt.Sprintf("fd52:%x::2", e.n)) {
		t.Errorf("IPv6 forward: %q, %v", got, err)
	}
	d.tapadm("gateway", "remove-forward", id)
	if got, err := e.peerSeen(false, 8081); err == nil {
		t.Errorf("connected through a removed forward: %q", got)
	}
	var fws []ctl.Forward
	d.jsonOut(&fws, "gateway", "list-forwards")
	if len(fws) != 1 || fws[0].ID != added.ID {
		t.Errorf("forwards after remove: %+v", fws)
	}
	// The port is free again.
	out = d.tapadm("gateway", "add-forward", e.hostVeth+":8081:80")
	if !strings.Contains(out, "Created forward") {
		t.Errorf("re-adding the removed forward: %q", out)
	}
}

// TestGatewayForwardUDP: a UDP forward carries datagrams both ways.
func TestGatewayForwardUDP(t *testing.T) {
	e := newForwardEnv(t, 13)
	e.serve(e.sandbox, 53, true, "socat", "UDP6-RECVFROM:53,ipv6only=0,fork", "PIPE")
	e.start("-p", "5300:53/udp")
	out, err := inNs(e.client, "forwarded datagram\n", 10*time.Second, "socat", "-t", "3", "-T", "3", "-", "UDP:"+e.hostVeth+":5300")
	if err != nil || out != "forwarded datagram\n" {
		t.Errorf("C → H:5300/udp → S:53: %q, %v", out, err)
	}
}

// runTapstackd runs `tapstackd run ARGS` in H and returns its output and
// exit status.
func (e *gwEnv) runTapstackd(args ...string) (string, int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ip, err := netnstest.LookCmd("ip")
	if err != nil {
		e.t.Fatal(err)
	}
	sock := filepath.Join(e.t.TempDir(), "run.sock")
	cmd := exec.CommandContext(ctx, ip, append([]string{"netns", "exec", e.host, filepath.Join(binDir, "tapstackd"), "run", "--ctl", sock}, args...)...)
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	case err != nil:
		e.t.Fatalf("tapstackd run %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if _, err := os.Stat(sock); err == nil {
		e.t.Errorf("tapstackd run left its control socket")
	}
	return string(out), 0
}

// TestRun: `tapstackd run -- CMD` runs CMD in a connected namespace and
// exits with its status.
func TestRun(t *testing.T) {
	e := newGwEnv(t, 14)
	for _, tc := range []struct {
		name   string
		args   []string
		status int
		want   string
	}{
		{"exit status", []string{"--", "sh", "-c", "exit 7"}, 7, ""},
		{"success", []string{"--", "true"}, 0, ""},
		{"signal", []string{"--", "sh", "-c", "kill -TERM $$"}, 128 + 15, ""},
		{"not found", []string{"--", "/nonexistent/cmd"}, 127, "/nonexistent/cmd"},
		{"namespace configured", []string{"--", "ip", "-4", "addr", "show", "tap0"}, 0, "inet 10.0.2.100/24"},
		{"default route", []string{"--", "ip", "route"}, 0, "default via 10.0.2.2 dev tap0"},
		{"IPv6", []string{"--", "ip", "-6", "addr", "show", "tap0"}, 0, "fd00::100/64"},
		{"MTU", []string{"--mtu", "65520", "--", "ip", "link", "show", "tap0"}, 0, "mtu 65520"},
		{"tapadm from inside", []string{"--", filepath.Join(binDir, "tapadm"), "ifconfig", "tap0:1"}, 0, "inet 10.0.2.3 "},
		{"resolv.conf names the forwarder", []string{"--", "cat", "/etc/resolv.conf"}, 0, "nameserver 10.0.2.3"},
		{"no command", nil, 1, "no command given"},
		{"bad flag", []string{"--cidr", "fd00::/64", "--", "true"}, 1, "not an IPv4 prefix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := *e
			e.t = t
			out, status := e.runTapstackd(tc.args...)
			if status != tc.status || !strings.Contains(out, tc.want) {
				t.Errorf("tapstackd run %s: status %d, output %q; want %d and %q", strings.Join(tc.args, " "), status, out, tc.status, tc.want)
			}
		})
	}
}

// TestRunNewcomer is the "done when": a newcomer's first try.
func TestRunNewcomer(t *testing.T) {
	e := newGwEnv(t, 15)
	requireCmds(t, "curl", "getent")
	e.httpServer(e.host, e.hostIP, 8000)
	out, status := e.runTapstackd("--", "sh", "-c", "getent hosts localhost; curl -s http://"+e.hostIP+":8000/")
	if status != 0 || !strings.Contains(out, "localhost") || !strings.Contains(out, "hello from the host") {
		t.Errorf("tapstackd run -- sh -c 'getent hosts localhost; curl ...': status %d\n%s", status, out)
	}
}

// TestRunDNS: in `run`, DNS works out of the box through the forwarder.
func TestRunDNS(t *testing.T) {
	e := newGwEnv(t, 16)
	requireCmds(t, "dnsmasq", "getent")
	const name = "gwrun.tapstack.test"
	want := fmt.Sprintf("10.250.%d.8", e.n)
	e.serve(e.host, 53, true, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
		"--listen-address=127.0.0.1", "--bind-interfaces", "--port=53", "--user=root", "--pid-file=",
		"--host-record="+name+","+want)
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, status := e.runTapstackd("--resolv-conf", resolv, "--", "getent", "hosts", name)
	if status != 0 || !strings.Contains(out, want) {
		t.Errorf("tapstackd run -- getent hosts %s: status %d, %q; want %s", name, status, out, want)
	}
}

// TestGatewayOutboundFlags: --outbound-addr picks the host source address
// of re-originated connections and --outbound-if the interface they
// leave by, as a remote server in C sees them.
func TestGatewayOutboundFlags(t *testing.T) {
	e := newForwardEnv(t, 12)
	remote := fmt.Sprintf("10.251.%d.2", e.n)
	e.peerServer(e.client, 81)
	// C answers H's other address through the veth.
	e.ip("-n", e.client, "route", "add", fmt.Sprintf("10.250.%d.0/24", e.n), "via", e.hostVeth)

	// Default: the kernel's choice, H's veth address.
	d := e.start()
	if got, err := tcpGet(e.sandbox, remote, 81); err != nil || canonicalAddr(strings.TrimSpace(got)) != e.hostVeth {
		t.Errorf("default: the server saw %q, %v; want %s", got, err, e.hostVeth)
	}
	d.stop()

	// --outbound-addr (H's eth0 address) and --outbound-if vh.
	e.start("--outbound-addr", e.hostIP, "--outbound-if", "vh")
	if got, err := tcpGet(e.sandbox, remote, 81); err != nil || canonicalAddr(strings.TrimSpace(got)) != e.hostIP {
		t.Errorf("--outbound-addr %s: the server saw %q, %v", e.hostIP, got, err)
	}
}

// TestGatewayOutboundIfUnreachable: bound to an interface with no route
// to the destination, the connection fails (the namespace sees no
// connection), rather than leaving by another interface.
func TestGatewayOutboundIfUnreachable(t *testing.T) {
	e := newForwardEnv(t, 13)
	e.peerServer(e.client, 81)
	e.start("--outbound-if", "eth0")
	if got, err := tcpGet(e.sandbox, fmt.Sprintf("10.251.%d.2", e.n), 81); err == nil {
		t.Errorf("--outbound-if eth0 reached C through vh: %q", got)
	}
}

// TestGatewayUDPPortUnreachable: a datagram to a closed host port comes
// back to the namespace as ICMP port unreachable, so a connected socket
// there fails with "connection refused" instead of waiting, IPv4 and IPv6.
func TestGatewayUDPPortUnreachable(t *testing.T) {
	e := newGwEnv(t, 14)
	e.start()
	for _, target := range []string{"UDP:" + e.hostIP + ":7999", "UDP6:[" + e.hostIP6 + "]:7999"} {
		// Two datagrams: the host learns of the first one's fate from
		// the ICMP error, reports it on the socket, and the gateway
		// passes it on; socat's read then fails.
		// Without the error socat would end quietly at its -T timeout.
		out, err := inNs(e.sandbox, "one\ntwo\n", 10*time.Second, "socat", "-T", "5", "-", target)
		if err == nil || !strings.Contains(out, "Connection refused") {
			t.Errorf("S → %s (closed): %v\n%s; want connection refused", target, err, out)
		}
	}
}

// iperf3ToHost starts an iperf3 server on H's address and returns a
// function that runs a 2-second iperf3 client with args from S to it,
// failing the test if the client fails.
func (e *gwEnv) iperf3ToHost() func(args ...string) {
	e.t.Helper()
	e.serve(e.host, 5201, false, "iperf3", "-s", "-B", e.hostIP, "-p", "5201")
	return func(args ...string) {
		e.t.Helper()
		cmd := append([]string{"iperf3", "-c", e.hostIP, "-p", "5201", "-t", "2"}, args...)
		if out, err := inNs(e.sandbox, "", 20*time.Second, cmd...); err != nil {
			e.t.Fatalf("%s: %v\n%s", strings.Join(cmd, " "), err, out)
		}
	}
}

// TestGatewayWidensForBusyFlows: under the loop, the daemon runs on every
// CPU while two streams are busy and returns to one P after they end; a
// single stream (beside iperf3's idle control connection) does not widen.
func TestGatewayWidensForBusyFlows(t *testing.T) {
	requireCmds(t, "iperf3")
	if runtime.NumCPU() < 2 {
		netnstest.Unavailable(t, "one CPU: nothing to widen to")
	}
	e := newGwEnv(t, 17)
	d := e.start("-v", "--sched", "loop")
	iperf := e.iperf3ToHost()
	wide := fmt.Sprintf("gomaxprocs=%d", runtime.NumCPU())

	iperf("-P", "1")
	if log := d.stderr.String(); strings.Contains(log, wide) {
		t.Fatalf("one stream widened the loop:\n%s", log)
	}
	iperf("-P", "2")
	if log := d.stderr.String(); !strings.Contains(log, wide) {
		t.Fatalf("two streams did not widen the loop:\n%s", log)
	}
	// After a few quiet ticks it narrows again.
	if !waitFor(5*time.Second, func() bool {
		log := d.stderr.String()
		return strings.Contains(log[strings.LastIndex(log, wide):], "gomaxprocs=1")
	}) {
		t.Fatalf("the loop stayed wide after the streams ended:\n%s", d.stderr)
	}
}

// TestGatewayNoSpuriousRetransmissions: four streams from the host into
// the namespace at MTU 1500 reach it without duplicates. With gVisor's
// RACK and its floorless tail loss probe the namespace's kernel received
// hundreds of segments a second time (DSACKs sent) and each cost the
// stream half its congestion window.
func TestGatewayNoSpuriousRetransmissions(t *testing.T) {
	requireCmds(t, "iperf3", "nstat")
	e := newGwEnv(t, 18)
	e.start("--mtu", "1500")
	iperf := e.iperf3ToHost()
	dupsReceived := func() int {
		t.Helper()
		out := e.mustInNs(e.sandbox, "nstat", "-a", "-z", "-s", "TcpExtTCPDSACKOldSent")
		for l := range strings.Lines(out) {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "TcpExtTCPDSACKOldSent" {
				n, err := strconv.Atoi(f[1])
				if err != nil {
					t.Fatalf("nstat: %q", l)
				}
				return n
			}
		}
		t.Fatalf("nstat has no TcpExtTCPDSACKOldSent:\n%s", out)
		return 0
	}
	before := dupsReceived()
	iperf("-P", "4", "-R")
	// A real drop at the TAP is retransmitted once and is no duplicate;
	// a pause of the daemon past the 200 ms retransmission timeout could
	// be, hence a little slack.
	if dups := dupsReceived() - before; dups > 10 {
		t.Errorf("the namespace received %d segments twice in 2 s of iperf3 -R -P 4", dups)
	}
}
