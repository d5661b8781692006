package integration

import (
	"strconv"
	"strings"
	"testing"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/internal/netnstest"
)

// ifMIB returns the IPv4 statistics entry of one interface from
// `tapadm netstat -i -I IF -f inet -o json`.
func (d *daemon) ifMIB(name string) ctl.IfStats {
	d.t.Helper()
	var r ctl.IfStatsReq
	d.jsonOut(&r, "netstat", "-i", "-I", name, "-f", "inet")
	if len(r.Interfaces) != 1 || r.Interfaces[0].Name != name {
		d.t.Fatalf("netstat -i -I %s: %+v", name, r.Interfaces)
	}
	return r.Interfaces[0]
}

// netstatIpkts reads the Ipkts column of an interface's line in the
// IPv4 block of `tapadm netstat -i`.
func (d *daemon) netstatIpkts(name string) uint64 {
	d.t.Helper()
	out := d.tapadm("netstat", "-i", "-f", "inet")
	lines := strings.Split(out, "\n")
	if hdr := strings.Fields(lines[0]); len(hdr) != 10 || hdr[4] != "Ipkts" {
		d.t.Fatalf("netstat -i header %q", lines[0])
	}
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) == 10 && f[0] == name {
			n, err := strconv.ParseUint(f[4], 10, 64)
			if err != nil {
				d.t.Fatalf("netstat -i: Ipkts of %s: %v\n%s", name, err, out)
			}
			return n
		}
	}
	d.t.Fatalf("netstat -i has no line for %s:\n%s", name, out)
	return 0
}

// grew fails the test unless counter what grew by at least min.
func grew(t *testing.T, what string, before, after, min uint64) {
	t.Helper()
	if after < before || after-before < min {
		t.Errorf("%s went from %d to %d; want growth of at least %d", what, before, after, min)
	}
}

// TestForwardingBetweenNamespaces routes the kernel's pings between two
// namespaces through one tapstackd: nothing passes until both interfaces
// forward, and the per-interface counters account for what was forwarded
// and what was refused.
func TestForwardingBetweenNamespaces(t *testing.T) {
	const n = 5
	a := newSetup(t, 83) // nsA on tap0: kernel 10.83.0.2, stack 10.83.0.1
	a.nsExec("ip", "route", "add", "default", "via", a.stackIP)

	nsB := netnstest.NewNetns(t)
	b := &setup{daemon: a.daemon, ns: nsB, tap: "tap1", stackIP: "10.84.0.1", kernelIP: "10.84.0.2"}
	a.tapadm("dladm", "create-tap", b.tap, "--netns", nsB, "--mtu", "1500")
	a.tapadm("ifconfig", b.tap, "plumb")
	a.tapadm("ifconfig", b.tap, b.stackIP+"/24", "up")
	b.nsExec("ip", "addr", "add", b.kernelIP+"/24", "dev", b.tap)
	b.nsExec("ip", "link", "set", b.tap, "up")
	b.nsExec("ip", "route", "add", "default", "via", b.stackIP)
	for _, s := range []*setup{a, b} {
		if !s.nsPing(s.stackIP) {
			t.Fatalf("%s cannot reach the stack at %s", s.ns, s.stackIP)
		}
	}
	pingB := func(count int) error {
		_, err := netnstest.Exec(t, a.ns, "ping", "-c", strconv.Itoa(count), "-i", "0.2", "-W", "2", b.kernelIP)
		return err
	}

	// Forwarding is off by default: the stack refuses and counts.
	if fl := a.ifMIB("tap0").Flags; fl&ctl.IFF_ROUTER != 0 {
		t.Fatalf("tap0 has ROUTER before anyone set it: %s", fl)
	}
	before := a.ifMIB("tap0").IP
	if err := pingB(1); err == nil {
		t.Fatal("a ping crossed tapstackd with forwarding off")
	}
	grew(t, "tap0 ForwProhibits", before.ForwProhibits, a.ifMIB("tap0").IP.ForwProhibits, 1)

	// Only the way there forwards: the replies are refused on tap1.
	a.tapadm("ifconfig", "tap0", "router")
	before1 := a.ifMIB("tap1").IP
	if err := pingB(1); err == nil {
		t.Fatal("a ping came back through tap1, which does not forward")
	}
	grew(t, "tap1 ForwProhibits", before1.ForwProhibits, a.ifMIB("tap1").IP.ForwProhibits, 1)

	// Both ways: every ping goes through and every counter moves.
	a.tapadm("ifconfig", "tap1", "router")
	s0, s1 := a.ifMIB("tap0"), a.ifMIB("tap1")
	ipkts0 := a.netstatIpkts("tap0")
	if err := pingB(n); err != nil {
		t.Fatalf("ping -c %d from %s to %s through tapstackd: %v", n, a.ns, b.kernelIP, err)
	}
	e0, e1 := a.ifMIB("tap0"), a.ifMIB("tap1")
	grew(t, "tap0 InReceives (echo requests in)", s0.IP.InReceives, e0.IP.InReceives, n)
	grew(t, "tap1 ForwDatagrams (echo requests out)", s1.IP.ForwDatagrams, e1.IP.ForwDatagrams, n)
	grew(t, "tap1 OutTransmits", s1.IP.OutTransmits, e1.IP.OutTransmits, n)
	grew(t, "tap1 InReceives (echo replies in)", s1.IP.InReceives, e1.IP.InReceives, n)
	grew(t, "tap0 ForwDatagrams (echo replies out)", s0.IP.ForwDatagrams, e0.IP.ForwDatagrams, n)
	grew(t, "tap0 link ipackets", s0.LinkStats.IPackets, e0.LinkStats.IPackets, n)
	grew(t, "tap1 link opackets", s1.LinkStats.OPackets, e1.LinkStats.OPackets, n)
	grew(t, "netstat -i Ipkts of tap0", ipkts0, a.netstatIpkts("tap0"), n)
	if e0.IP.ForwProhibits != s0.IP.ForwProhibits || e1.IP.ForwProhibits != s1.IP.ForwProhibits {
		t.Errorf("ForwProhibits moved while both interfaces forwarded: tap0 %d → %d, tap1 %d → %d",
			s0.IP.ForwProhibits, e0.IP.ForwProhibits, s1.IP.ForwProhibits, e1.IP.ForwProhibits)
	}
	if e0.IP.InDelivers-s0.IP.InDelivers >= n {
		t.Errorf("tap0 delivered %d datagrams locally; the pings were for %s", e0.IP.InDelivers-s0.IP.InDelivers, b.kernelIP)
	}

	// Off again: the path closes.
	a.tapadm("ifconfig", "tap1", "-router")
	if fl := a.ifMIB("tap1").Flags; fl&ctl.IFF_ROUTER != 0 {
		t.Errorf("-router left ROUTER on tap1: %s", fl)
	}
	if err := pingB(1); err == nil {
		t.Error("a ping came back through tap1 after its forwarding was turned off")
	}

	// The counts outlive the interface: unplumbing tap1 adds them to the
	// IPv4 totals.
	var tot ctl.IfStatsReq
	a.jsonOut(&tot, "netstat", "-s", "-f", "inet")
	last := a.ifMIB("tap1").IP
	a.tapadm("ifconfig", "tap1", "unplumb")
	var after ctl.IfStatsReq
	a.jsonOut(&after, "netstat", "-s", "-f", "inet")
	if len(tot.Totals) != 1 || len(after.Totals) != 1 {
		t.Fatalf("IPv4 totals: %+v then %+v", tot.Totals, after.Totals)
	}
	grew(t, "IPv4 ForwDatagrams total across unplumb", tot.Totals[0].IP.ForwDatagrams, after.Totals[0].IP.ForwDatagrams, 0)
	if after.Totals[0].IP.ForwDatagrams < last.ForwDatagrams+e0.IP.ForwDatagrams {
		t.Errorf("IPv4 ForwDatagrams total %d < tap1's %d + tap0's %d", after.Totals[0].IP.ForwDatagrams, last.ForwDatagrams, e0.IP.ForwDatagrams)
	}
}
