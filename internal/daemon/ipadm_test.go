package daemon

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tapstack/tapstack/ctl"
)

// startStateDaemon runs a daemon keeping its ipadm state in statePath,
// restored as tapstackd does at start.
func startStateDaemon(t *testing.T, statePath string) (*ctl.Client, func()) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "ctl.sock")
	d, err := New(Config{CtlPath: sock, StatePath: statePath})
	if err != nil {
		t.Fatal(err)
	}
	d.RestoreState()
	stopDaemon := serveInTest(t, d)
	c, err := ctl.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	stop := func() {
		c.Close()
		stopDaemon()
	}
	t.Cleanup(stop)
	return c, stop
}

func TestIpadmOpsPersist(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state.json")
	c, stop := startStateDaemon(t, state)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	obj := ctl.IpadmAddr{Obj: "lo0/extra", Type: ctl.AddrStatic, Local: netip.MustParsePrefix("10.77.0.1/32")}
	var info ctl.AddrInfo
	if err := c.Do(ctx, "ipadm.create-addr", "", obj, &info); err != nil {
		t.Fatal(err)
	}
	if info.Obj != "lo0/extra" || info.State != ctl.AddrOK || info.Lifname != "lo0:1" || !info.Persistent {
		t.Errorf("create-addr answered %+v", info)
	}
	if err := c.Do(ctx, "ipadm.create-addr", "", obj, nil); ctl.ErrnoOf(err) != ctl.EEXIST {
		t.Errorf("second create-addr: %v, want EEXIST", err)
	}
	if err := c.Do(ctx, "ipadm.set-prop", "", ctl.IpadmProp{Proto: "ip", Name: "_arp_probe_count", Value: "6"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, "ipadm.no-such", "", nil, nil); ctl.ErrnoOf(err) != ctl.EINVAL {
		t.Errorf("unknown ipadm op: %v, want EINVAL", err)
	}
	var before []ctl.AddrInfo
	if err := c.Do(ctx, "ipadm.show-addr", "", ctl.IpadmAddrObj{}, &before); err != nil {
		t.Fatal(err)
	}
	stop()

	c, _ = startStateDaemon(t, state)
	var after []ctl.AddrInfo
	if err := c.Do(ctx, "ipadm.show-addr", "", ctl.IpadmAddrObj{}, &after); err != nil {
		t.Fatal(err)
	}
	if len(after) != 3 || len(before) != 3 {
		t.Fatalf("show-addr before %+v, after restart %+v; want lo0/v4, lo0/extra, lo0/v6", before, after)
	}
	for i := range before {
		if before[i] != after[i] {
			t.Errorf("row %d: before %+v, after restart %+v", i, before[i], after[i])
		}
	}
	var saved []ctl.IpadmProp
	if err := c.Do(ctx, "ipadm.persistent-props", "", nil, &saved); err != nil {
		t.Fatal(err)
	}
	if len(saved) != 1 || saved[0].Value != "6" {
		t.Errorf("persistent props after restart: %+v", saved)
	}
}

// TestIpadmCorruptStateRefusesStart: a state file that is not ours stops
// the daemon rather than being overwritten at the first change.
func TestIpadmCorruptStateRefusesStart(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state.json")
	if err := writeFile(state, "not json"); err != nil {
		t.Fatal(err)
	}
	if d, err := New(Config{CtlPath: filepath.Join(t.TempDir(), "ctl.sock"), StatePath: state}); err == nil {
		d.Close()
		t.Fatal("New accepted a corrupt state file")
	}
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o644) }
