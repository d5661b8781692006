package ipadm

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tapstack/tapstack/ctl"
)

func TestInterfaces(t *testing.T) {
	f := newFixture(t, filepath.Join(t.TempDir(), "state.json"), "tap0")
	f.must(f.r.CreateIP(root, ctl.IpadmIf{Name: "tap0"}))
	_, err := f.r.CreateAddr(root, static("tap0/v4", "10.0.0.1/24"))
	f.must(err)
	f.must(f.r.SetIfProp(root, ctl.IpadmProp{Ifname: "tap0", Proto: "ipv6", Name: "standby", Value: "on"}))
	ifs, err := f.r.ShowIf(ctl.IpadmIf{})
	f.must(err)
	want := []ctl.IfInfo{
		{Name: "lo0", Class: "loopback", State: "ok", Current: "-m-v------46", Persistent: "---"},
		{Name: "tap0", Class: "ip", State: "ok", Current: "bm---si---46", Persistent: "s46"},
	}
	if d := cmp.Diff(want, ifs); d != "" {
		t.Errorf("show-if (-want +got):\n%s", d)
	}

	f.must(f.r.DisableIf(root, ctl.IpadmIf{Name: "tap0"}))
	if f.r.plumbed("tap0", ctl.AF_INET) || f.r.plumbed("tap0", ctl.AF_INET6) {
		t.Errorf("tap0 still plumbed after disable-if")
	}
	if got := rowsOf(f.showAddr("tap0/")); len(got) != 1 || got[0].State != "disabled" {
		t.Errorf("show-addr of a disabled interface: %+v", got)
	}
	// Disabled persistently: a restart leaves it unplumbed.
	g := f.restart("tap0")
	if g.r.plumbed("tap0", ctl.AF_INET) {
		t.Errorf("disabled interface plumbed after restart")
	}
	g.must(g.r.EnableIf(root, ctl.IpadmIf{Name: "tap0"}))
	if got := rowsOf(g.showAddr("tap0/v4")); got[0].State != "ok" {
		t.Errorf("after enable-if: %+v", got)
	}
	sb, err := g.r.ShowIfProp(ctl.IpadmShowProps{Ifname: "tap0", Proto: "ipv6", Names: []string{"standby"}})
	g.must(err)
	if sb[0].Current != "on" {
		t.Errorf("standby after enable-if: %+v", sb[0])
	}

	g.must(g.r.DeleteIP(root, ctl.IpadmIf{Name: "tap0"}))
	if g.r.plumbed("tap0", ctl.AF_INET) {
		t.Errorf("tap0 plumbed after delete-ip")
	}
	h := g.restart("tap0")
	if h.r.plumbed("tap0", ctl.AF_INET) || len(h.r.Persistent().Interfaces) != 0 {
		t.Errorf("delete-ip not persisted: %+v", h.r.Persistent())
	}
}

// TestSaveFailureUndoes: when the state file cannot be written, the
// change is taken back, so the running configuration never differs from
// the recorded one by a change the caller was told failed.
func TestSaveFailureUndoes(t *testing.T) {
	f := newFixture(t, filepath.Join(t.TempDir(), "state.json"), "tap0")
	_, err := f.r.CreateAddr(root, static("tap0/v4", "10.0.0.1/24"))
	f.must(err)
	f.r.store.write = func(io.Writer, []byte) error { return errors.New("disk full") }
	for _, tc := range []struct {
		name   string
		change func() error
	}{
		{"create-addr", func() error { _, err := f.r.CreateAddr(root, static("tap0/b", "10.0.0.2/24")); return err }},
		{"delete-addr", func() error { return f.r.DeleteAddr(root, ctl.IpadmAddrObj{Obj: "tap0/v4"}) }},
		{"disable-addr", func() error { return f.r.DisableAddr(root, ctl.IpadmAddrObj{Obj: "tap0/v4"}) }},
		{"set-ifprop", func() error {
			return f.r.SetIfProp(root, ctl.IpadmProp{Ifname: "tap0", Proto: "ipv4", Name: "mtu", Value: "1300"})
		}},
		{"set-prop", func() error {
			return f.r.SetProp(root, ctl.IpadmProp{Proto: "ip", Name: "_dup_recovery", Value: "1000"})
		}},
		{"disable-if", func() error { return f.r.DisableIf(root, ctl.IpadmIf{Name: "tap0"}) }},
		{"delete-ip", func() error { return f.r.DeleteIP(root, ctl.IpadmIf{Name: "tap0"}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.t = t
			f.fails(ctl.ENOSPC, tc.change)
		})
	}
}

// TestConcurrentChanges runs changes from many clients at once (with
// -race): every one succeeds and the state file ends with all of them.
func TestConcurrentChanges(t *testing.T) {
	f := newFixture(t, filepath.Join(t.TempDir(), "state.json"), "tap0", "tap1")
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 16 {
		wg.Go(func() {
			ifname := fmt.Sprintf("tap%d", i%2)
			obj := fmt.Sprintf("%s/a%d", ifname, i)
			if _, err := f.r.CreateAddr(root, static(obj, fmt.Sprintf("10.%d.%d.1/24", i%2, i))); err != nil {
				errs <- err
				return
			}
			if _, err := f.r.ShowAddr(ctl.IpadmAddrObj{}); err != nil {
				errs <- err
			}
			if i%4 == 0 {
				if err := f.r.DeleteAddr(root, ctl.IpadmAddrObj{Obj: obj}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	g := f.restart("tap0", "tap1")
	n := 0
	for _, r := range rowsOf(g.showAddr("")) {
		if r.Obj != "lo0/v4" && r.Obj != "lo0/v6" {
			n++
			if r.State != "ok" {
				t.Errorf("%+v after restart", r)
			}
		}
	}
	if n != 12 {
		t.Errorf("%d address objects after restart, want 12", n)
	}
}
