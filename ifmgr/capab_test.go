package ifmgr

import (
	"net"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/link"
	"github.com/tapstack/tapstack/link/memory"
	"github.com/tapstack/tapstack/stack"
)

// offloadingDevice is an in-memory device that advertises offloads.
type offloadingDevice struct {
	link.Device
	caps link.Capabilities
}

func (d offloadingDevice) Capabilities() link.Capabilities { return d.caps }

// TestBindEnablesCapabilities: bringing the first unit up binds the
// stream and enables what the link advertises (spec §8.5); the last unit
// down unbinds it, which resets them.
func TestBindEnablesCapabilities(t *testing.T) {
	offer := link.Capabilities{HCksum: link.HCKSUM_INET_PARTIAL, LSO: true, LSOMax: 65536, ZeroCopy: true}
	st := stack.New()
	reg := &link.Registry{}
	a, b := memory.NewPair("tap0-mem", "tap0-peer", 1500, net.HardwareAddr{2, 0, 0, 0, 0, 1}, nil)
	l := link.New("tap0", "memory", "", offloadingDevice{a.Device(), offer})
	if err := reg.Add(l); err != nil {
		t.Fatal(err)
	}
	m, err := New(Config{Stack: st, Links: reg})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		reg.CloseAll()
		b.Close()
		st.Close()
	})
	f := &fixture{t: t, m: m, st: st, links: reg}
	f.plumb("tap0")
	enabled := func() link.Capabilities {
		t.Helper()
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.byName["tap0"].ills[famIndex(false)].stream.Enabled()
	}
	if c := enabled(); c != (link.Capabilities{}) {
		t.Errorf("enabled before bind: %+v", c)
	}
	f.configure("tap0", "192.0.2.1", 24)
	want := offer
	want.Enabled = true
	if diff := cmp.Diff(want, enabled()); diff != "" {
		t.Errorf("enabled after up (-want +got):\n%s", diff)
	}
	if err := f.setUp("tap0", ctl.AF_INET, false); err != nil {
		t.Fatal(err)
	}
	if c := enabled(); c != (link.Capabilities{}) {
		t.Errorf("enabled after the last unit went down: %+v", c)
	}
}
