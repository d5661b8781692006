package slirp

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapstack/tapstack/internal/netnstest"
)

// TestMain lets the test binary be the helper: OpenTap runs
// `EXE __tap-open SPEC`, and EXE is this binary in TestOpenTap.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == HelperCommand {
		os.Exit(HelperMain(os.Args[2:], os.Stderr))
	}
	os.Exit(m.Run())
}

func TestNsenterArgs(t *testing.T) {
	tests := []struct {
		name string
		t    TapTarget
		want string
	}{
		{"pid", TapTarget{PID: 42}, "--target 42 --user --net --preserve-credentials"},
		{"pid and userns", TapTarget{PID: 42, UsernsPath: "/u"}, "--target 42 --user=/u --net --preserve-credentials"},
		{"paths", TapTarget{NetnsPath: "/n", UsernsPath: "/u"}, "--user=/u --net=/n --preserve-credentials"},
		{"netns path only", TapTarget{NetnsPath: "/n"}, "--net=/n --preserve-credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Join(tt.t.nsenterArgs(), " "); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestNeedsHelper covers the cases without a second user namespace;
// TestOpenTap and the integration tests cover the helper's.
func TestNeedsHelper(t *testing.T) {
	self := os.Getpid()
	tests := []struct {
		name string
		o    Options
		want bool
	}{
		{"our own userns path", Options{PID: self, UsernsPath: "/proc/self/ns/user"}, false},
		{"own user namespace", Options{PID: self}, false},
		{"path without userns", Options{NetnsPath: "/proc/self/ns/net"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, got := tt.o.NeedsHelper(); got != tt.want {
				t.Errorf("NeedsHelper() = %v, want %v", got, tt.want)
			}
		})
	}
}

// userNetns starts `unshare -r -n sleep` (a network namespace owned by a
// user namespace of its own, as rootless tools make) and returns its pid;
// the process is killed when the test ends.
func userNetns(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("unshare", "--user", "--map-root-user", "--net", "sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	// The namespaces are ready, uid map included, once unshare has
	// exec'd sleep.
	deadline := time.Now().Add(5 * time.Second)
	for {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid))
		if err == nil && string(comm) == "sleep\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("unshare -r -n did not start sleep")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return cmd.Process.Pid
}

func inNs(t *testing.T, pid int, args ...string) string {
	t.Helper()
	out, err := exec.Command("nsenter", append([]string{"-t", strconv.Itoa(pid), "-U", "-n", "--preserve-credentials"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestOpenTap runs the helper in a user-owned namespace: it creates and
// configures the TAP there and passes the descriptor back, and the
// device lives as long as the descriptor.
func TestOpenTap(t *testing.T) {
	netnstest.Require(t)
	if _, err := findNsenter(); err != nil {
		t.Fatal(err)
	}
	pid := userNetns(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	spec := TapSpec{Name: "tap0", MTU: 65520, VnetHdr: true, Configure: &NetConfig{
		MAC:   "02:00:00:00:00:42",
		Addr4: netip.MustParsePrefix("10.0.2.100/24"), Gateway4: netip.MustParseAddr("10.0.2.2"),
		Addr6: netip.MustParsePrefix("fd00::100/64"), Gateway6: netip.MustParseAddr("fd00::2"),
	}}
	ctx := context.Background()
	fd, err := OpenTap(ctx, exe, TapTarget{PID: pid, UsernsPath: fmt.Sprintf("/proc/%d/ns/user", pid)}, spec)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			unix.Close(fd)
		}
	})
	ifr, err := unix.NewIfreq("")
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlIfreq(fd, unix.TUNGETIFF, ifr); err != nil {
		t.Fatalf("TUNGETIFF on the descriptor: %v", err)
	}
	if ifr.Name() != "tap0" || ifr.Uint16()&(unix.IFF_TAP|unix.IFF_VNET_HDR) != unix.IFF_TAP|unix.IFF_VNET_HDR {
		t.Errorf("descriptor is %s flags %#x, want TAP tap0", ifr.Name(), ifr.Uint16())
	}
	link := inNs(t, pid, "ip", "-o", "link", "show", "tap0")
	for _, want := range []string{"mtu 65520", "02:00:00:00:00:42", ",UP"} {
		if !strings.Contains(link, want) {
			t.Errorf("tap0 lacks %q: %s", want, link)
		}
	}
	addrs := inNs(t, pid, "ip", "-o", "addr", "show", "tap0")
	for _, want := range []string{"inet 10.0.2.100/24", "inet6 fd00::100/64"} {
		if !strings.Contains(addrs, want) {
			t.Errorf("tap0 lacks %q: %s", want, addrs)
		}
	}
	routes := inNs(t, pid, "ip", "route", "show", "default") + inNs(t, pid, "ip", "-6", "route", "show", "default")
	for _, want := range []string{"default via 10.0.2.2 dev tap0", "default via fd00::2 dev tap0"} {
		if !strings.Contains(routes, want) {
			t.Errorf("no %q: %s", want, routes)
		}
	}
	if lo := inNs(t, pid, "ip", "-o", "link", "show", "lo"); !strings.Contains(lo, ",UP") {
		t.Errorf("lo is not up: %s", lo)
	}

	// The name is taken now: the helper's error comes back.
	_, err = OpenTap(ctx, exe, TapTarget{PID: pid, UsernsPath: fmt.Sprintf("/proc/%d/ns/user", pid)}, TapSpec{Name: "tap0"})
	if err == nil || !strings.Contains(err.Error(), "create TAP tap0") {
		t.Errorf("second open: %v, want the helper's error", err)
	}

	unix.Close(fd)
	closed = true
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, _ := exec.Command("nsenter", "-t", strconv.Itoa(pid), "-U", "-n", "--preserve-credentials", "ip", "link", "show", "tap0").CombinedOutput()
		if strings.Contains(string(out), "does not exist") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tap0 outlived its descriptor: %s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestOpenTapErrors: what goes wrong in the helper is reported with the
// helper's words.
func TestOpenTapErrors(t *testing.T) {
	netnstest.Require(t)
	pid := userNetns(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	target := TapTarget{PID: pid, UsernsPath: fmt.Sprintf("/proc/%d/ns/user", pid)}
	tests := []struct {
		name   string
		target TapTarget
		spec   TapSpec
		want   string
	}{
		{"bad mtu", target, TapSpec{Name: "tapx", MTU: 70000}, "set mtu 70000 on tapx"},
		{"bad name", target, TapSpec{Name: "a/b"}, "create TAP a/b"},
		{"no such process", TapTarget{PID: 1 << 30}, TapSpec{Name: "tapx"}, "open tapx in the namespace of process 1073741824"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fd, err := OpenTap(ctx, exe, tt.target, tt.spec)
			if err == nil {
				unix.Close(fd)
				t.Fatal("OpenTap succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to say %q", err, tt.want)
			}
		})
	}
	// Nothing is left behind.
	if out := inNs(t, pid, "ip", "-o", "link"); strings.Contains(out, "tapx") {
		t.Errorf("a failed open left a device: %s", out)
	}
}
