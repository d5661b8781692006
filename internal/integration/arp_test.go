package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/internal/netnstest"
)

// ARP with the kernel as the peer: both neighbour tables agree, tapadm
// arp sets and deletes entries, published entries are answered (proxy
// ARP), and our own addresses cannot be changed.
func TestARPWithKernel(t *testing.T) {
	s := newSetup(t, 94)
	waitUntil(t, "DAD done", 10*time.Second, func() bool {
		r := ctl.Lifreq{Name: s.tap}
		return s.do("SIOCGLIFDADSTATE", ctl.AF_INET, &r, &r) == nil && r.DADState == 2
	})
	if !s.nsPing(s.stackIP) {
		t.Fatal("no ping")
	}
	hw := ctl.Lifreq{Name: s.tap}
	if err := s.do("SIOCGLIFHWADDR", ctl.AF_INET, &hw, &hw); err != nil {
		t.Fatal(err)
	}
	kernelMAC := strings.TrimSpace(s.nsExec("cat", "/sys/class/net/"+s.tap+"/address"))

	// The kernel's table has tapstack's MAC; tapstack's has the kernel's.
	if neigh := s.nsExec("ip", "neigh", "show", s.stackIP, "dev", s.tap); !strings.Contains(neigh, twoDigitMAC(hw.HWAddr)) {
		t.Errorf("kernel: %q, want %s", neigh, twoDigitMAC(hw.HWAddr))
	}
	var entries []ctl.ArpEntry
	s.jsonOut(&entries, "arp", "-a")
	found := map[string]string{}
	for _, e := range entries {
		found[e.Addr.String()] = e.HWAddr
	}
	if got := found[s.kernelIP]; twoDigitMAC(got) != kernelMAC {
		t.Errorf("tapstack's entry for %s: %q, want %s (arp -a: %+v)", s.kernelIP, got, kernelMAC, entries)
	}
	if found[s.stackIP] != hw.HWAddr {
		t.Errorf("our own address missing from arp -a: %+v", entries)
	}
	if out := s.tapadm("arp", "-a"); !strings.Contains(out, "SPLA") {
		t.Errorf("arp -a does not flag our address SPLA:\n%s", out)
	}

	// [CHECK-13] through the CLI: our own address is not ours to set.
	out, err := s.tryTapadm("arp", "-s", s.stackIP, "2:0:0:0:0:5")
	if err == nil || !strings.Contains(out, "ENOTSUP") {
		t.Errorf("arp -s of our address: %v\n%s", err, out)
	}

	// Proxy ARP: a published entry is answered to the kernel, which then
	// sends to the published MAC.
	pub := "10.94.0.50"
	s.tapadm("arp", "-s", pub, "2:0:0:0:0:50", "pub")
	if out, err := netnstest.Exec(t, s.ns, "arping", "-c", "2", "-w", "3", "-r", "-i", s.tap, pub); err != nil || out == "" {
		t.Errorf("arping %s: no answer (%v)", pub, err)
	}
	netnstest.Exec(t, s.ns, "ping", "-c", "1", "-W", "1", pub) // nobody answers the ping; ARP resolves
	if neigh := s.nsExec("ip", "neigh", "show", pub, "dev", s.tap); !strings.Contains(neigh, "02:00:00:00:00:50") {
		t.Errorf("kernel resolved %s as %q, want the published 02:00:00:00:00:50", pub, neigh)
	}
	if got := s.tapadm("arp", pub); !strings.Contains(got, "2:0:0:0:0:50 permanent published") {
		t.Errorf("arp %s: %q", pub, got)
	}
	s.tapadm("arp", "-d", pub)
	if out, err := s.tryTapadm("arp", pub); err == nil || !strings.Contains(out, "ENXIO") {
		t.Errorf("arp %s after delete: %v\n%s", pub, err, out)
	}
	out, err = netnstest.Exec(t, s.ns, "arping", "-c", "1", "-w", "2", "-r", "-i", s.tap, pub)
	if err == nil || out != "" {
		t.Errorf("deleted published entry still answered: %s", out)
	}

}
