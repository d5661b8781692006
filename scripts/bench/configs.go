package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// bench is one run's settings and state.
type bench struct {
	ctx         context.Context
	secs        int
	tmp         string
	daemon, adm string // bin/tapstackd, bin/tapadm
	rr          string // the built rr tool
	pid         int
	queues      int // the TAP N row's queue count
	step, total int
}

// config is one column of the comparison: how to connect a namespace.
type config struct {
	name  string
	short string // in namespace and file names
	// up connects ns at mtu and returns where its client connects;
	// cleanups go to env.undo, which measure runs even when up fails.
	up func(b *bench, e *env, mtu int) error
}

// env is one configuration brought up at one MTU.
type env struct {
	ns     string
	target string // the address the namespace connects to
	bind   string // where the host's iperf3 and rr servers listen; "" for the stack's own services
	rrPort string // port of the rr server or the stack's echo service
	daemon int    // PID of the userspace network daemon, 0 for none
	undo   []func()
}

const (
	iperfPort = "5201"
	rrPort    = "5301"
	echoPort  = "7" // the stack's echo service (--services echo)
)

var mtus = []int{1500, 65520}

func (b *bench) configs() []config {
	return []config{
		{"veth", "veth", (*bench).upVeth},
		{"slirp4netns", "slirp", (*bench).upSlirp},
		{"pasta", "pasta", (*bench).upPasta},
		{"tapstack TAP 1 queue, loop", "tap1", func(b *bench, e *env, mtu int) error { return b.upTap(e, mtu, 1, "loop", false) }},
		{"tapstack TAP 1 queue, loop, no busy-poll", "tap1nb", func(b *bench, e *env, mtu int) error {
			return b.upTap(e, mtu, 1, "loop", false, "--busy-poll", "0")
		}},
		{"tapstack TAP 1 queue, pinned", "tap1p", func(b *bench, e *env, mtu int) error { return b.upTap(e, mtu, 1, "pinned", false) }},
		{fmt.Sprintf("tapstack TAP %d queues, pinned", b.queues), "tapnp", func(b *bench, e *env, mtu int) error { return b.upTap(e, mtu, b.queues, "pinned", false) }},
		{"TAP1 (stack iperf3 service)", "tap1s", func(b *bench, e *env, mtu int) error { return b.upTap(e, mtu, 1, "auto", true) }},
		{"AF_PACKET (stack iperf3 service)", "af", (*bench).upAFPacket},
	}
}

// measure brings c up at each MTU in a fresh namespace and runs every
// measurement; request/response and connections run at the first MTU.
func (b *bench) measure(c config) result {
	r := result{Name: c.name, Values: map[string]float64{}, Errors: map[string]string{}}
	var cpu, bytes float64
	for i, mtu := range mtus {
		e := &env{ns: fmt.Sprintf("tsb-%s-%d", c.short, b.pid)}
		err := b.bringUp(c, e, mtu)
		if err == nil {
			for _, col := range atMTU(mtu) {
				c0 := cpuSeconds(e.daemon)
				bps, n, err := b.iperf(e, col)
				if err != nil {
					r.fail(col.key(), err)
					b.progress("%s %s ... fail: %v", c.name, col.key(), err)
					continue
				}
				r.Values[col.key()] = bps / 1e9
				cpu += cpuSeconds(e.daemon) - c0
				bytes += n
				b.progress("%s %s ... %.2f Gbit/s", c.name, col.key(), bps/1e9)
			}
			if i == 0 {
				b.requestResponse(c, e, &r)
			}
			if e.daemon != 0 {
				r.Values[colRSS] = max(r.Values[colRSS], peakRSS(e.daemon))
			}
		} else {
			for _, col := range atMTU(mtu) {
				r.fail(col.key(), err)
				b.progress("%s %s ... fail: %v", c.name, col.key(), err)
			}
			if i == 0 {
				r.fail(colP50, err)
				r.fail(colP99, err)
				r.fail(colConn, err)
				b.progress("%s request/response ... fail", c.name)
				b.progress("%s connections ... fail", c.name)
			}
		}
		for j := len(e.undo) - 1; j >= 0; j-- {
			e.undo[j]()
		}
	}
	if bytes > 0 && c.short != "veth" {
		r.Values[colCPU] = cpu / (bytes / 1e9)
	}
	return r
}

// atMTU returns the throughput runs at mtu.
func atMTU(mtu int) []throughput {
	var ts []throughput
	for _, t := range throughputCols {
		if t.mtu == mtu {
			ts = append(ts, t)
		}
	}
	return ts
}

// bringUp creates the namespace and connects it.
func (b *bench) bringUp(c config, e *env, mtu int) error {
	if err := b.netns(e, e.ns); err != nil {
		return err
	}
	if err := c.up(b, e, mtu); err != nil {
		return err
	}
	if e.bind == "" {
		return nil // the stack's own services
	}
	if _, err := b.start(e, "iperf3", "-s", "-B", e.bind, "-p", iperfPort); err != nil {
		return err
	}
	if _, err := b.start(e, b.rr, "server", e.bind+":"+rrPort); err != nil {
		return err
	}
	return nil
}

// netns creates a namespace, deleted by e.undo, with loopback up and
// enough ephemeral ports for the connection-rate test.
func (b *bench) netns(e *env, name string) error {
	if o, err := command(context.Background(), "ip", "netns", "add", name); err != nil {
		return fmt.Errorf("ip netns add %s: %v: %s", name, err, strings.TrimSpace(o))
	}
	e.undo = append(e.undo, func() { command(context.Background(), "ip", "netns", "del", name) })
	if err := sh(b.ctx, "ip -n "+name+" link set lo up"); err != nil {
		return err
	}
	o, err := command(b.ctx, "ip", "netns", "exec", name, "sysctl", "-qw",
		"net.ipv4.ip_local_port_range=1024 65000", "net.ipv4.tcp_tw_reuse=1")
	if err != nil {
		return fmt.Errorf("sysctl in %s: %v: %s", name, err, lastLine(o))
	}
	return nil
}

func (b *bench) upVeth(e *env, mtu int) error {
	host := fmt.Sprintf("tsbv%d", b.pid)
	m := fmt.Sprint(mtu)
	e.target, e.bind, e.rrPort = "10.211.0.1", "10.211.0.1", rrPort
	// The pair goes with the namespace.
	return sh(b.ctx,
		"ip link add "+host+" mtu "+m+" type veth peer name veth0 mtu "+m+" netns "+e.ns,
		"ip addr add 10.211.0.1/24 dev "+host,
		"ip link set "+host+" up",
		"ip -n "+e.ns+" addr add 10.211.0.2/24 dev veth0",
		"ip -n "+e.ns+" link set veth0 up")
}

func (b *bench) upSlirp(e *env, mtu int) error {
	e.target, e.bind, e.rrPort = "10.0.2.2", "127.0.0.1", rrPort
	pid, err := b.start(e, "slirp4netns", "--configure", fmt.Sprintf("--mtu=%d", mtu),
		"--netns-type=path", "/run/netns/"+e.ns, "tap0")
	if err != nil {
		return err
	}
	e.daemon = pid
	return b.waitRoute(e)
}

func (b *bench) upPasta(e *env, mtu int) error {
	// The namespace reaches the host's loopback at the gateway address
	// (pasta maps it unless --no-map-gw); -f keeps it in the foreground
	// so that its PID is ours to measure and stop; no port forwards.
	e.target, e.bind, e.rrPort = "", "127.0.0.1", rrPort
	pid, err := b.start(e, "pasta", "-f", "-q", "--runas", "0", "-I", "tap0", "-m", fmt.Sprint(mtu),
		"-t", "none", "-u", "none", "-T", "none", "-U", "none", "--config-net", "--netns", "/run/netns/"+e.ns)
	if err != nil {
		return err
	}
	e.daemon = pid
	if err := b.waitRoute(e); err != nil {
		return err
	}
	o, err := command(b.ctx, "ip", "-n", e.ns, "route", "show", "default")
	if f := strings.Fields(o); err == nil && len(f) >= 3 {
		e.target = f[2]
		return nil
	}
	return fmt.Errorf("no default gateway in %s: %q", e.ns, o)
}

// upTap runs tapstackd --netns with --sched sched and the extra flags;
// with service the measurements go to the stack's own iperf3 and echo
// services at the gateway address instead of through the gateway to the
// host.
func (b *bench) upTap(e *env, mtu, queues int, sched string, service bool, extra ...string) error {
	e.target, e.bind, e.rrPort = "10.0.2.2", "127.0.0.1", rrPort
	args := []string{"--ctl", filepath.Join(b.tmp, e.ns+".sock"), "--netns", e.ns, "--configure",
		"--mtu", fmt.Sprint(mtu), "--queues", fmt.Sprint(queues), "--sched", sched, "--allow-host-loopback", "--ipv6=false"}
	if service {
		e.bind, e.rrPort = "", echoPort
		args = append(args, "--services", "iperf3,echo")
	}
	args = append(args, extra...)
	pid, err := b.start(e, b.daemon, args...)
	if err != nil {
		return err
	}
	e.daemon = pid
	return b.waitRoute(e)
}

// upAFPacket runs tapstackd in a second namespace with an AF_PACKET link
// over one end of a veth pair whose other end is e.ns's, and measures
// against the stack's own iperf3 and echo services.
func (b *bench) upAFPacket(e *env, mtu int) error {
	h := fmt.Sprintf("tsb-afh-%d", b.pid)
	if err := b.netns(e, h); err != nil {
		return err
	}
	m := fmt.Sprint(mtu)
	if err := sh(b.ctx,
		"ip -n "+h+" link add vh mtu "+m+" type veth peer name veth0 mtu "+m+" netns "+e.ns,
		"ip -n "+h+" link set vh up",
		"ip -n "+e.ns+" addr add 10.212.0.2/24 dev veth0",
		"ip -n "+e.ns+" link set veth0 up"); err != nil {
		return err
	}
	sock := filepath.Join(b.tmp, h+".sock")
	pid, err := b.start(e, "ip", "netns", "exec", h, b.daemon, "--ctl", sock, "--services", "iperf3,echo")
	if err != nil {
		return err
	}
	e.daemon = pid // ip netns exec execs tapstackd in place
	if err := waitFor(b.ctx, 5*time.Second, func() bool { _, err := os.Stat(sock); return err == nil }); err != nil {
		return fmt.Errorf("tapstackd control socket: %v", err)
	}
	adm := b.adm + " --ctl " + sock
	e.target, e.bind, e.rrPort = "10.212.0.1", "", echoPort
	return sh(b.ctx,
		adm+" dladm create-afpacket af0 --over vh --mtu "+m,
		adm+" ifconfig af0 plumb",
		adm+" ifconfig af0 10.212.0.1/24 up",
		"ip netns exec "+e.ns+" ping -c1 -W2 10.212.0.1")
}

// start starts a daemon, logging to a file in the temp directory; e.undo
// stops it (SIGTERM, then SIGKILL after 3s).
func (b *bench) start(e *env, name string, args ...string) (int, error) {
	log, err := os.Create(filepath.Join(b.tmp, fmt.Sprintf("%s-%s.log", e.ns, filepath.Base(name))))
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return 0, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); log.Close() }()
	e.undo = append(e.undo, func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	// A daemon that dies at once says why in its log.
	select {
	case <-done:
		o, _ := os.ReadFile(log.Name())
		return 0, fmt.Errorf("%s exited: %s", filepath.Base(name), lastLine(string(o)))
	case <-time.After(100 * time.Millisecond):
	}
	return cmd.Process.Pid, nil
}

// waitRoute waits for the namespace's default route, the sign that the
// daemon configured it.
func (b *bench) waitRoute(e *env) error {
	err := waitFor(b.ctx, 10*time.Second, func() bool {
		o, err := command(b.ctx, "ip", "-n", e.ns, "route", "show", "default")
		return err == nil && strings.TrimSpace(o) != ""
	})
	if err != nil {
		return fmt.Errorf("no default route in %s: %v", e.ns, err)
	}
	return nil
}

func waitFor(ctx context.Context, d time.Duration, ok func() bool) error {
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v", d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// sh runs each command line, split on spaces, in turn, stopping at the
// first failure.
func sh(ctx context.Context, lines ...string) error {
	for _, l := range lines {
		args := strings.Fields(l)
		if o, err := command(ctx, args[0], args[1:]...); err != nil {
			return fmt.Errorf("%s: %v: %s", l, err, lastLine(o))
		}
	}
	return nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func execCommand(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, name, args...)
}
