package ifmgr

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tapstack/tapstack/ctl"
)

func (f *fixture) prop(op string, p ctl.Prop) (ctl.Prop, error) {
	err := f.m.Do(root, op, ctl.AF_INET, &p)
	return p, err
}

func TestProps(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	get := func(p ctl.Prop) string {
		t.Helper()
		got, err := f.prop("SIOCGETPROP", p)
		if err != nil {
			t.Fatalf("get %+v: %v", p, err)
		}
		return got.Val
	}
	if v := get(ctl.Prop{Proto: "ip", Name: "_dup_recovery", Flags: ctl.MOD_PROP_ACTIVE}); v != "300000" {
		t.Errorf("_dup_recovery %s", v)
	}
	if v := get(ctl.Prop{Proto: "ip", Name: "_arp_probe_count", Flags: ctl.MOD_PROP_POSSIBLE}); v != "0-20" {
		t.Errorf("possible %s", v)
	}
	if _, err := f.prop("SIOCSETPROP", ctl.Prop{Proto: "ip", Name: "_arp_probe_count", Flags: ctl.MOD_PROP_ACTIVE, Val: "5"}); err != nil {
		t.Fatal(err)
	}
	if v := get(ctl.Prop{Proto: "ip", Name: "_arp_probe_count", Flags: ctl.MOD_PROP_ACTIVE}); v != "5" {
		t.Errorf("after set: %s", v)
	}
	if f.m.Tunable("_arp_probe_count") != 5 {
		t.Error("Tunable does not see the set value")
	}
	for _, tc := range []struct {
		op   string
		p    ctl.Prop
		want ctl.Errno
	}{
		{"SIOCSETPROP", ctl.Prop{Proto: "ip", Name: "_arp_probe_count", Flags: ctl.MOD_PROP_ACTIVE, Val: "21"}, ctl.EINVAL},
		{"SIOCSETPROP", ctl.Prop{Proto: "ip", Name: "_arp_probe_count", Flags: ctl.MOD_PROP_ACTIVE, Val: "x"}, ctl.EINVAL},
		{"SIOCSETPROP", ctl.Prop{Proto: "ip", Name: "_arp_probe_count", Flags: ctl.MOD_PROP_POSSIBLE}, ctl.EINVAL},
		{"SIOCSETPROP", ctl.Prop{Proto: "ax25", Name: "_arp_probe_count", Flags: ctl.MOD_PROP_ACTIVE, Val: "1"}, ctl.EINVAL},
		{"SIOCSETPROP", ctl.Prop{Proto: "ip", Name: "_nosuch", Flags: ctl.MOD_PROP_ACTIVE, Val: "1"}, ctl.ENOENT},
		{"SIOCGETPROP", ctl.Prop{Proto: "ip", Name: "_dup_recovery", Flags: ctl.MOD_PROP_APPEND}, ctl.EINVAL},
		{"SIOCSETPROP", ctl.Prop{Proto: "ipv4", Name: "forwarding", Ifname: "tap9", Flags: ctl.MOD_PROP_ACTIVE, Val: "on"}, ctl.ENXIO},
		{"SIOCSETPROP", ctl.Prop{Proto: "ipv4", Name: "forwarding", Flags: ctl.MOD_PROP_ACTIVE, Val: "maybe"}, ctl.EINVAL},
		{"SIOCSETPROP", ctl.Prop{Proto: "ipv4", Name: "mtu", Ifname: "tap0", Flags: ctl.MOD_PROP_ACTIVE, Val: "1400"}, ctl.EPERM},
		{"SIOCGETPROP", ctl.Prop{Proto: "ipv4", Name: "mtu", Flags: ctl.MOD_PROP_DEFAULT}, ctl.ENOTSUP},
	} {
		before := f.snapshot()
		if _, err := f.prop(tc.op, tc.p); ctl.ErrnoOf(err) != tc.want {
			t.Errorf("%s %+v: %v, want %v", tc.op, tc.p, err, tc.want)
		}
		_ = before
	}
	if v := get(ctl.Prop{Proto: "ip", Name: "_arp_probe_count", Flags: ctl.MOD_PROP_ACTIVE}); v != "5" {
		t.Errorf("refused sets changed the value to %s", v)
	}
	if v := get(ctl.Prop{Proto: "ipv4", Name: "mtu", Ifname: "tap0", Flags: ctl.MOD_PROP_POSSIBLE}); v != "68-1500" {
		t.Errorf("mtu possible %s", v)
	}
	// _addrs_per_if drives SIOCLIFADDIF.
	f.prop("SIOCSETPROP", ctl.Prop{Proto: "ip", Name: "_addrs_per_if", Flags: ctl.MOD_PROP_ACTIVE, Val: "2"})
	f.must("SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0"})
	f.fails("SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}, ctl.ERANGE)

	// Global forwarding sets ROUTER on every ill of the family, and new
	// ills inherit it; a per-interface set touches only that ill.
	f.prop("SIOCSETPROP", ctl.Prop{Proto: "ipv4", Name: "forwarding", Flags: ctl.MOD_PROP_ACTIVE, Val: "on"})
	if f.flags("tap0", ctl.AF_INET)&ctl.IFF_ROUTER == 0 {
		t.Error("global forwarding did not set ROUTER")
	}
	if f.flags("lo0", ctl.AF_INET)&ctl.IFF_ROUTER != 0 {
		t.Error("ROUTER set on lo0")
	}
	f.prop("SIOCSETPROP", ctl.Prop{Proto: "ipv4", Name: "forwarding", Ifname: "tap0", Flags: ctl.MOD_PROP_ACTIVE, Val: "off"})
	if v := get(ctl.Prop{Proto: "ipv4", Name: "forwarding", Ifname: "tap0", Flags: ctl.MOD_PROP_ACTIVE}); v != "off" {
		t.Errorf("per-interface forwarding %s", v)
	}
	if v := get(ctl.Prop{Proto: "ipv4", Name: "forwarding", Flags: ctl.MOD_PROP_ACTIVE}); v != "on" {
		t.Errorf("global forwarding %s", v)
	}
}

// TestPropNamesMatchCtl keeps ctl.PropNames, the list tapadm ipadm
// show-prop walks, equal to the properties the daemon implements, and
// checks show-prop's assumption that every tunable is reachable under ip.
func TestPropNamesMatchCtl(t *testing.T) {
	if d := cmp.Diff(ctl.PropNames, Props()); d != "" {
		t.Errorf("ctl.PropNames differs from ifmgr.Props() (-ctl +ifmgr):\n%s", d)
	}
	for name, tun := range tunables {
		if !hasProto(tun, "ip") {
			t.Errorf("tunable %s is not reachable under protocol ip", name)
		}
	}
}
