package netnstest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// fakeTB records what require does instead of ending the test. The
// embedded interface supplies testing.TB's unexported method; calling any
// method not overridden here panics, which is what a test wants.
type fakeTB struct {
	testing.TB
	fatal, skip string
}

func (f *fakeTB) Helper()                        {}
func (f *fakeTB) Fatalf(format string, a ...any) { f.fatal = fmt.Sprintf(format, a...) }
func (f *fakeTB) Skipf(format string, a ...any)  { f.skip = fmt.Sprintf(format, a...) }

func TestRequireDecision(t *testing.T) {
	lacks := []string{"not running as root", "no /dev/net/tun"}
	tests := []struct {
		name      string
		ci        bool
		missing   []string
		wantFatal bool
		wantSkip  bool
	}{
		{name: "all present", ci: false},
		{name: "all present under CI", ci: true},
		{name: "missing outside CI skips", ci: false, missing: lacks, wantSkip: true},
		{name: "missing under CI fails", ci: true, missing: lacks, wantFatal: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeTB{}
			require(f, tt.ci, tt.missing)
			if got := f.fatal != ""; got != tt.wantFatal {
				t.Errorf("fatal = %q, want fatal: %v", f.fatal, tt.wantFatal)
			}
			if got := f.skip != ""; got != tt.wantSkip {
				t.Errorf("skip = %q, want skip: %v", f.skip, tt.wantSkip)
			}
			msg := f.fatal + f.skip
			for _, m := range tt.missing {
				if !strings.Contains(msg, m) {
					t.Errorf("message %q does not say %q", msg, m)
				}
			}
			if tt.wantSkip && !strings.Contains(msg, "sudo make test") {
				t.Errorf("skip message %q does not say how to enable the test", msg)
			}
		})
	}
}

func TestUniqueName(t *testing.T) {
	seen := map[string]bool{}
	for _, prefix := range []string{"", "tap", "veth", "averylongprefixname"} {
		for range 50 {
			n := UniqueName(prefix)
			if len(n) > MaxIfNameLen {
				t.Errorf("UniqueName(%q) = %q: %d characters, want <= %d", prefix, n, len(n), MaxIfNameLen)
			}
			if want := prefix[:min(len(prefix), 9)]; !strings.HasPrefix(n, want) {
				t.Errorf("UniqueName(%q) = %q, want prefix %q", prefix, n, want)
			}
			if seen[n] {
				t.Errorf("UniqueName(%q) repeated %q", prefix, n)
			}
			seen[n] = true
		}
	}
}

func TestLookCmd(t *testing.T) {
	if _, err := LookCmd("sh"); err != nil {
		t.Errorf("LookCmd(sh): %v", err)
	}
	if _, err := LookCmd("no-such-command-tapstack"); err == nil {
		t.Error("LookCmd of a missing command succeeded")
	}
}

func netnsExists(t *testing.T, name string) bool {
	t.Helper()
	_, err := os.Stat("/run/netns/" + name)
	return err == nil
}

func TestNewNetns(t *testing.T) {
	Require(t)

	var name string
	t.Run("create", func(t *testing.T) {
		name = NewNetns(t)
		if len(name) > MaxIfNameLen {
			t.Errorf("namespace name %q longer than %d", name, MaxIfNameLen)
		}
		if !netnsExists(t, name) {
			t.Fatalf("namespace %s not in /run/netns", name)
		}
		out, err := Exec(t, name, "ip", "-o", "link", "show", "lo")
		if err != nil {
			t.Fatalf("ip link show lo: %v\n%s", err, out)
		}
		if !strings.Contains(out, "UP") {
			t.Errorf("lo is not up in %s: %s", name, out)
		}
		// Loopback works: lo is up.
		if out, err := Exec(t, name, "ping", "-c", "1", "-W", "2", "127.0.0.1"); err != nil {
			t.Errorf("ping 127.0.0.1 in %s: %v\n%s", name, err, out)
		}
		// It is a namespace of its own: only lo is in it.
		out, err = Exec(t, name, "ip", "-o", "link", "show")
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(strings.TrimSpace(out), "\n") + 1; n != 1 {
			t.Errorf("new namespace has %d links, want only lo:\n%s", n, out)
		}
	})
	if name == "" {
		t.Fatal("no namespace created")
	}
	if netnsExists(t, name) {
		t.Errorf("namespace %s still exists after its test ended", name)
	}

	// Two namespaces at once have different names.
	a, b := NewNetns(t), NewNetns(t)
	if a == b {
		t.Errorf("two namespaces named %s", a)
	}
}

func TestNewNetnsCleanupOnFailure(t *testing.T) {
	Require(t)
	// A subtest that fails after creating a namespace still removes it.
	// The failure is simulated in a fake test whose cleanups we run: a
	// real failing subtest would fail this test too.
	var name string
	ft := &cleanupTB{}
	name = NewNetns(ft)
	ft.runCleanups()
	if netnsExists(t, name) {
		t.Errorf("namespace %s survived its (failed) test", name)
	}
}

// cleanupTB is a fake test for NewNetns: Cleanup collects, Fatalf panics
// (NewNetns must not fail here).
type cleanupTB struct {
	testing.TB
	cleanups []func()
}

func (c *cleanupTB) Helper()               {}
func (c *cleanupTB) Cleanup(f func())      { c.cleanups = append(c.cleanups, f) }
func (c *cleanupTB) Errorf(string, ...any) {}
func (c *cleanupTB) Fatalf(format string, a ...any) {
	panic(fmt.Sprintf(format, a...))
}
func (c *cleanupTB) runCleanups() {
	for i := len(c.cleanups) - 1; i >= 0; i-- {
		c.cleanups[i]()
	}
}

func TestExec(t *testing.T) {
	Require(t)
	ns := NewNetns(t)

	out, err := Exec(t, ns, "sh", "-c", "echo out; echo err >&2")
	if err != nil {
		t.Fatalf("Exec: %v", err)
	}
	if !strings.Contains(out, "out") || !strings.Contains(out, "err") {
		t.Errorf("Exec output %q lacks stdout or stderr", out)
	}

	out, err = Exec(t, ns, "sh", "-c", "echo failing; exit 3")
	if err == nil {
		t.Error("Exec of a failing command returned no error")
	} else if !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("Exec error %q does not give the exit status", err)
	}
	if !strings.Contains(out, "failing") {
		t.Errorf("output of the failing command lost: %q", out)
	}

	if _, err := Exec(t, "tstnosuchnetns", "true"); err == nil {
		t.Error("Exec in a missing namespace returned no error")
	}
	if _, err := Exec(t, ns); err == nil {
		t.Error("Exec with no command returned no error")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	began := time.Now()
	_, err = ExecContext(ctx, ns, "sleep", "30")
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("ExecContext past its deadline: err = %v, want timed out", err)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("timed-out command took %v to return", d)
	}
}
