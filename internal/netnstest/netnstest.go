// Package netnstest holds helpers for integration tests that use real
// network namespaces, with the Linux kernel as the peer: checking the
// prerequisites (Require), creating a namespace that is removed when the
// test ends (NewNetns), running a command inside it (Exec) and naming
// devices (UniqueName).
//
// The helpers drive iproute2 (`ip netns ...`) rather than setns(2), so that
// what a test does can be repeated by hand in a shell.
package netnstest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// ExecTimeout bounds every command the helpers run.
const ExecTimeout = 60 * time.Second

// MaxIfNameLen is the longest Linux interface name (IFNAMSIZ - 1).
const MaxIfNameLen = 15

// EnableHint says how to run the tests these helpers guard.
const EnableHint = "run as root with /dev/net/tun, e.g. sudo make test"

// requiredCmds are the commands every netns test needs.
var requiredCmds = []string{"ip", "ping"}

// sbinDirs are searched after PATH: a non-login root shell (sudo with a
// secure_path that lacks them, cron) may not have them in PATH.
var sbinDirs = []string{"/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"}

// LookCmd finds a command in PATH or, failing that, in the sbin
// directories; it returns the path to run.
func LookCmd(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range sbinDirs {
		p := d + "/" + name
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("command %q not found in PATH or %s", name, strings.Join(sbinDirs, ", "))
}

// missing lists the prerequisites of a netns test this machine lacks.
func missing() []string {
	var m []string
	if os.Geteuid() != 0 {
		m = append(m, "not running as root")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		m = append(m, "no /dev/net/tun ("+err.Error()+")")
	}
	for _, c := range requiredCmds {
		if _, err := LookCmd(c); err != nil {
			m = append(m, err.Error()+" (make deps installs it)")
		}
	}
	return m
}

// inCI reports whether the tests run under CI, where nothing may be skipped.
func inCI() bool { return os.Getenv("CI") == "true" }

// Require skips the test, saying how to enable it, when the machine lacks
// what netns tests need: root, /dev/net/tun and the commands ip and ping.
// Under CI=true a missing prerequisite fails the test instead.
func Require(t testing.TB) {
	t.Helper()
	require(t, inCI(), missing())
}

func require(t testing.TB, ci bool, missing []string) {
	t.Helper()
	if len(missing) == 0 {
		return
	}
	why := strings.Join(missing, "; ")
	if ci {
		t.Fatalf("netns test prerequisites missing under CI=true: %s", why)
		return
	}
	t.Skipf("skipping netns test: %s; to enable, %s", why, EnableHint)
}

// UniqueName returns prefix followed by 6 random hex digits, cut to a valid
// interface name: a prefix longer than 9 characters is shortened so the
// result has at most 15.
func UniqueName(prefix string) string {
	const suffix = 6
	if len(prefix) > MaxIfNameLen-suffix {
		prefix = prefix[:MaxIfNameLen-suffix]
	}
	return fmt.Sprintf("%s%06x", prefix, rand.Uint32()&0xffffff)
}

// netnsName returns a new namespace name: "tst", the process id, and 4 hex
// digits (at most 14 characters with Linux's largest pid, 4194304).
func netnsName() string {
	return fmt.Sprintf("tst%d%04x", os.Getpid(), rand.Uint32()&0xffff)
}

// NewNetns creates a network namespace with a unique name, brings its lo
// up, and returns the name. The namespace is deleted when the test and its
// subtests end, whether they passed or not. The caller has called Require.
func NewNetns(t testing.TB) string {
	t.Helper()
	for range 5 {
		name := netnsName()
		if _, err := os.Stat("/run/netns/" + name); err == nil {
			continue // taken, improbably
		}
		if out, err := run(context.Background(), "ip", "netns", "add", name); err != nil {
			t.Fatalf("create netns %s: %v\n%s", name, err, out)
		}
		t.Cleanup(func() {
			if out, err := run(context.Background(), "ip", "netns", "delete", name); err != nil {
				t.Errorf("delete netns %s: %v\n%s", name, err, out)
			}
		})
		if out, err := run(context.Background(), "ip", "-n", name, "link", "set", "lo", "up"); err != nil {
			t.Fatalf("netns %s: bring lo up: %v\n%s", name, err, out)
		}
		return name
	}
	t.Fatal("create netns: no free name after 5 tries")
	return ""
}

// Exec runs args inside namespace ns (`ip netns exec NS ARGS...`) and
// returns its combined stdout and stderr. It fails with an error, never
// the test, when the command fails or runs longer than ExecTimeout.
func Exec(t testing.TB, ns string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ExecTimeout)
	defer cancel()
	return ExecContext(ctx, ns, args...)
}

// ExecContext is Exec with the caller's deadline instead of ExecTimeout.
func ExecContext(ctx context.Context, ns string, args ...string) (string, error) {
	if len(args) == 0 {
		return "", errors.New("netnstest: Exec needs a command")
	}
	return run(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...)
}

// run runs a command with a deadline (ExecTimeout unless ctx has an
// earlier one) and returns its combined output. The error names the
// command and says when it timed out.
func run(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, ExecTimeout)
	defer cancel()
	path, err := LookCmd(name)
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, path, args...)
	// A killed command's children may hold the output pipe open; do not
	// wait for them past this.
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		line := strings.Join(append([]string{name}, args...), " ")
		if ctx.Err() != nil {
			return string(out), fmt.Errorf("%s: timed out: %w", line, ctx.Err())
		}
		return string(out), fmt.Errorf("%s: %w", line, err)
	}
	return string(out), nil
}

// Unavailable reports that something a test needs from the machine (a
// command, IPv6, a loopback address) is missing: outside CI the test
// skips with the reason; under CI=true, where `make deps` installs
// everything, it fails.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if inCI() {
		t.Fatalf("missing in CI: "+format, args...)
	}
	t.Skipf(format, args...)
}
