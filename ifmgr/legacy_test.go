package ifmgr

import (
	"testing"

	"github.com/tapstack/tapstack/ctl"
)

func (f *fixture) ifreq(op string, fam ctl.Family, r ctl.Ifreq) (ctl.Ifreq, error) {
	err := f.m.Do(root, op, fam, &r)
	return r, err
}

// TestLegacyIFRequests covers the old struct ifreq forms (§2.0.3, §2.3.1,
// §2.3.3, §2.7.3, §2.8).
func TestLegacyIFRequests(t *testing.T) {
	f := newFixture(t, "tap0")
	f.plumb("tap0")
	f.must("SIOCSLIFNAME", ctl.AF_INET6, ctl.Lifreq{Name: "tap0", Flags: ctl.IFF_IPV6})
	if _, err := f.ifreq("SIOCSIFNETMASK", ctl.AF_INET, ctl.Ifreq{Name: "tap0", Addr: addr("255.255.255.0")}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ifreq("SIOCSIFADDR", ctl.AF_INET, ctl.Ifreq{Name: "tap0", Addr: addr("10.3.3.1")}); err != nil {
		t.Fatal(err)
	}
	// 16-bit flags: UP set through the IF form; upper bits kept.
	g, _ := f.ifreq("SIOCGIFFLAGS", ctl.AF_INET, ctl.Ifreq{Name: "tap0"})
	if g.Flags != uint16(0x842) {
		t.Errorf("SIOCGIFFLAGS %#x, want the low 16 bits 0x842", g.Flags)
	}
	if _, err := f.ifreq("SIOCSIFFLAGS", ctl.AF_INET, ctl.Ifreq{Name: "tap0", Flags: g.Flags | 1}); err != nil {
		t.Fatal(err)
	}
	if fl := f.flags("tap0", ctl.AF_INET); fl != 0x1000843 {
		t.Errorf("flags after SIOCSIFFLAGS %s", fl)
	}
	// MTU in ifr_metric.
	if _, err := f.ifreq("SIOCSIFMTU", ctl.AF_INET, ctl.Ifreq{Name: "tap0", Metric: 1280}); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.ifreq("SIOCGIFMTU", ctl.AF_INET, ctl.Ifreq{Name: "tap0"}); got.Metric != 1280 {
		t.Errorf("SIOCGIFMTU %d", got.Metric)
	}
	if _, err := f.ifreq("SIOCSIFMTU", ctl.AF_INET, ctl.Ifreq{Name: "tap0", Metric: 67}); ctl.ErrnoOf(err) != ctl.EINVAL {
		t.Errorf("SIOCSIFMTU 67: %v", err)
	}
	// IPv6 units are not reachable through the IF forms.
	if _, err := f.ifreq("SIOCGIFADDR", ctl.AF_INET6, ctl.Ifreq{Name: "tap0"}); ctl.ErrnoOf(err) != ctl.ENXIO {
		t.Errorf("IF request on IPv6: %v", err)
	}
	if _, err := f.ifreq("SIOCSIFNAME", ctl.AF_INET, ctl.Ifreq{Name: "tap0"}); ctl.ErrnoOf(err) != ctl.ENXIO {
		t.Errorf("SIOCSIFNAME: %v", err)
	}
	hw, err := f.ifreq("SIOCGIFHWADDR", ctl.AF_INET, ctl.Ifreq{Name: "tap0"})
	if err != nil || hw.HWFamily != 1 || hw.HWAddr != "2:0:0:0:0:1" {
		t.Errorf("SIOCGIFHWADDR %+v, %v", hw, err)
	}
	// Enumeration: IPv4 only; a short O_SIOCGIFCONF buffer is EINVAL.
	var n ctl.Ifnum
	if err := f.m.Do(root, "SIOCGIFNUM", ctl.AF_INET, &n); err != nil || n.Count != 2 {
		t.Errorf("SIOCGIFNUM %d, %v", n.Count, err)
	}
	ic := ctl.Ifconf{Len: ctl.IfreqSize}
	if err := f.m.Do(root, "SIOCGIFCONF", ctl.AF_INET, &ic); err != nil || len(ic.Req) != 1 || ic.Len != ctl.IfreqSize {
		t.Errorf("SIOCGIFCONF short: %+v, %v", ic, err)
	}
	oc := ctl.Ifconf{Len: ctl.IfreqSize}
	if err := f.m.Do(root, "O_SIOCGIFCONF", ctl.AF_INET, &oc); ctl.ErrnoOf(err) != ctl.EINVAL {
		t.Errorf("O_SIOCGIFCONF short: %v", err)
	}
}
