package stack

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/tapstack/tapstack/link/memory"
)

// host is a stack with one counted NIC "net0" on one end of an in-memory
// cable, addressed with the given prefixes, routing everything out of it
// (via gw when set).
func host(t *testing.T, ep *memory.Device, gw map[bool]string, prefixes ...string) *Stack {
	t.Helper()
	s := New()
	t.Cleanup(s.Close)
	if err := s.AddCountedNIC("net0", ep.Endpoint()); err != nil {
		t.Fatal(err)
	}
	if err := s.EnableNIC("net0"); err != nil {
		t.Fatal(err)
	}
	var routes []Route
	for _, p := range prefixes {
		pf := netip.MustParsePrefix(p)
		if err := s.AddAddress("net0", pf); err != nil {
			t.Fatal(err)
		}
		routes = append(routes, Route{Dest: pf.Masked(), NIC: "net0"})
		if g := gw[pf.Addr().Is6()]; g != "" {
			def := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
			if pf.Addr().Is6() {
				def = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
			}
			routes = append(routes, Route{Dest: def, Gateway: netip.MustParseAddr(g), NIC: "net0"})
		}
	}
	s.SetRoutes(routes)
	return s
}

func cable(t *testing.T, a, b string, i byte) (*memory.Device, *memory.Device) {
	t.Helper()
	la, lb := memory.NewPair(a, b, 1500, net.HardwareAddr{2, 0, 0, 0, i, 1}, net.HardwareAddr{2, 0, 0, 0, i, 2})
	t.Cleanup(func() { la.Close(); lb.Close() })
	return la.Device().(*memory.Device), lb.Device().(*memory.Device)
}

func pingN(t *testing.T, s *Stack, dst string, n int) {
	t.Helper()
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := s.Ping(ctx, netip.MustParseAddr(dst), uint16(i+1))
		cancel()
		if err != nil {
			t.Fatalf("ping %s #%d: %v", dst, i+1, err)
		}
	}
}

// growth is a counter read before and after some traffic, and the least
// the traffic must have added.
type growth struct {
	what        string
	before, now uint64
	atLeast     uint64
}

// settled reads net0's counters until done accepts them, or for ten
// seconds; the caller checks what it got.
func settled(t *testing.T, s *Stack, v6 bool, done func(IPCounters) bool) IPCounters {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := ipCounters(t, s, "net0", v6)
		if done(c) || time.Now().After(deadline) {
			return c
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ipCounters(t *testing.T, s *Stack, nic string, v6 bool) IPCounters {
	t.Helper()
	c, err := s.IPCounters(nic, v6)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCountersFollowTraffic pings between two stacks over both IP versions
// and checks that each side's counters, gVisor's and the counting
// endpoint's, grew by at least what was sent.
func TestCountersFollowTraffic(t *testing.T) {
	const n = 5
	da, db := cable(t, "a", "b", 1)
	a := host(t, da, nil, "10.1.0.1/24", "fd00:1::1/64")
	b := host(t, db, nil, "10.1.0.2/24", "fd00:1::2/64")
	for _, tc := range []struct {
		v6  bool
		dst string
		min uint64 // smallest IP echo request, header included
	}{
		{false, "10.1.0.2", 20 + 8},
		{true, "fd00:1::2", 40 + 8},
	} {
		beforeA, beforeB := ipCounters(t, a, "net0", tc.v6), ipCounters(t, b, "net0", tc.v6)
		pingN(t, a, tc.dst, n)
		// A host counts a datagram as sent once its link took it, which
		// may be after the peer already answered: wait for the counts.
		ca := settled(t, a, tc.v6, func(c IPCounters) bool { return c.Sent-beforeA.Sent >= n })
		cb := settled(t, b, tc.v6, func(c IPCounters) bool {
			return c.Sent-beforeB.Sent >= n && (!tc.v6 || c.ICMP.Out.EchoReply-beforeB.ICMP.Out.EchoReply >= n)
		})
		checks := []growth{
			{"a Sent", beforeA.Sent, ca.Sent, n},
			{"a Transmitted", beforeA.Transmitted, ca.Transmitted, n},
			{"a OutOctets", beforeA.OutOctets, ca.OutOctets, n * tc.min},
			{"a Received", beforeA.Received, ca.Received, n},
			{"a Delivered", beforeA.Delivered, ca.Delivered, n},
			{"a InOctets", beforeA.InOctets, ca.InOctets, n * tc.min},
			{"b Received", beforeB.Received, cb.Received, n},
			{"b Sent", beforeB.Sent, cb.Sent, n},
		}
		if tc.v6 {
			checks = append(checks,
				growth{"b ICMPv6 in echo requests", beforeB.ICMP.In.EchoRequest, cb.ICMP.In.EchoRequest, n},
				growth{"b ICMPv6 out echo replies", beforeB.ICMP.Out.EchoReply, cb.ICMP.Out.EchoReply, n},
				// Neighbour solicitation goes to a solicited-node group.
				growth{"a OutMulticast", 0, ca.OutMulticast, 1},
			)
		}
		for _, c := range checks {
			if c.now-c.before < c.atLeast {
				t.Errorf("v6=%v: %s grew by %d, want at least %d", tc.v6, c.what, c.now-c.before, c.atLeast)
			}
		}
		if ca.Forwarded != 0 || cb.Forwarded != 0 {
			t.Errorf("v6=%v: end hosts counted forwarded datagrams: %d, %d", tc.v6, ca.Forwarded, cb.Forwarded)
		}
	}
	// A datagram for a group a has not joined is an addressing error, not
	// a datagram for another host.
	b.SetRoutes([]Route{
		{Dest: netip.MustParsePrefix("fd00:1::/64"), NIC: "net0"},
		{Dest: netip.MustParsePrefix("ff00::/8"), NIC: "net0"},
	})
	before := ipCounters(t, a, "net0", true)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	b.Ping(ctx, netip.MustParseAddr("ff02::99"), 1)
	cancel()
	after := ipCounters(t, a, "net0", true)
	groups, dests := after.InvalidGroup-before.InvalidGroup, after.InvalidDestination-before.InvalidDestination
	if groups < 1 || groups != dests {
		t.Errorf("a datagram to a group not joined: InvalidGroup grew by %d, InvalidDestination by %d; want the same, at least 1", groups, dests)
	}
	if after.InMulticast == before.InMulticast {
		t.Error("a multicast datagram did not count as InMulticast")
	}

	l, err := a.LinkCounters("net0")
	if err != nil {
		t.Fatal(err)
	}
	if l.OutPackets < 2*n || l.InPackets < 2*n {
		t.Errorf("link counters %+v: want at least %d frames each way", l, 2*n)
	}
	if _, err := a.IPCounters("nope", false); err == nil {
		t.Error("IPCounters of an unknown NIC succeeded")
	}
	if _, err := a.LinkCounters("nope"); err == nil {
		t.Error("LinkCounters of an unknown NIC succeeded")
	}
}

// TestForwardedCounted routes pings through a middle stack and checks the
// forwarded datagrams are counted on the NIC they leave by, and only when
// forwarding is on.
func TestForwardedCounted(t *testing.T) {
	const n = 4
	da, dra := cable(t, "a", "ra", 1)
	db, drb := cable(t, "b", "rb", 2)
	a := host(t, da, map[bool]string{false: "10.1.0.1"}, "10.1.0.2/24")
	host(t, db, map[bool]string{false: "10.2.0.1"}, "10.2.0.2/24")
	r := New()
	t.Cleanup(r.Close)
	for _, nic := range []struct {
		name string
		dev  *memory.Device
		pfx  string
	}{{"ra", dra, "10.1.0.1/24"}, {"rb", drb, "10.2.0.1/24"}} {
		if err := r.AddCountedNIC(nic.name, nic.dev.Endpoint()); err != nil {
			t.Fatal(err)
		}
		if err := r.EnableNIC(nic.name); err != nil {
			t.Fatal(err)
		}
		if err := r.AddAddress(nic.name, netip.MustParsePrefix(nic.pfx)); err != nil {
			t.Fatal(err)
		}
	}
	r.SetRoutes([]Route{
		{Dest: netip.MustParsePrefix("10.1.0.0/24"), NIC: "ra"},
		{Dest: netip.MustParsePrefix("10.2.0.0/24"), NIC: "rb"},
	})

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	_, err := a.Ping(ctx, netip.MustParseAddr("10.2.0.2"), 1)
	cancel()
	if err == nil {
		t.Fatal("ping went through a stack that does not forward")
	}
	if c := ipCounters(t, r, "ra", false); c.InvalidDestination == 0 {
		t.Errorf("ra: a datagram for elsewhere while not forwarding was not counted: %+v", c)
	}

	for _, nic := range []string{"ra", "rb"} {
		if err := r.SetForwarding(nic, false, true); err != nil {
			t.Fatal(err)
		}
		if on, err := r.Forwarding(nic, false); err != nil || !on {
			t.Fatalf("Forwarding(%s) = %v, %v after turning it on", nic, on, err)
		}
	}
	if on, err := r.Forwarding("ra", true); err != nil || on {
		t.Errorf("IPv6 forwarding on ra = %v, %v; only IPv4 was turned on", on, err)
	}
	beforeA, beforeB := ipCounters(t, r, "ra", false), ipCounters(t, r, "rb", false)
	pingN(t, a, "10.2.0.2", n)
	ra, rb := ipCounters(t, r, "ra", false), ipCounters(t, r, "rb", false)
	if got := rb.Forwarded - beforeB.Forwarded; got < n {
		t.Errorf("rb forwarded %d echo requests, want at least %d", got, n)
	}
	if got := ra.Forwarded - beforeA.Forwarded; got < n {
		t.Errorf("ra forwarded %d echo replies, want at least %d", got, n)
	}
	if got := ra.Received - beforeA.Received; got < n {
		t.Errorf("ra received %d, want at least %d", got, n)
	}
	if ra.ForwardOctets-beforeA.ForwardOctets < n*28 {
		t.Errorf("ra forwarded octets grew by %d, want at least %d", ra.ForwardOctets-beforeA.ForwardOctets, n*28)
	}
	if ra.Delivered != beforeA.Delivered {
		t.Errorf("forwarded datagrams were delivered locally on ra: %d → %d", beforeA.Delivered, ra.Delivered)
	}
}
