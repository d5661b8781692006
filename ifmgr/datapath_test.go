package ifmgr

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/stack"
)

// peerStack puts a plain gVisor stack on the far end of an in-memory link
// with address a/24, standing in for the kernel in unit tests.
func peerStack(t *testing.T, f *fixture, linkName string, a string) *stack.Stack {
	t.Helper()
	ps := stack.New()
	t.Cleanup(ps.Close)
	if err := ps.AddNIC("peer", f.peers[linkName].Endpoint()); err != nil {
		t.Fatal(err)
	}
	if err := ps.EnableNIC("peer"); err != nil {
		t.Fatal(err)
	}
	p := netip.PrefixFrom(addr(a), 24)
	if err := ps.AddAddress("peer", p); err != nil {
		t.Fatal(err)
	}
	ps.SetRoutes([]stack.Route{{Dest: p.Masked(), NIC: "peer"}})
	return ps
}

// dialTCP connects from s to a:port, returning the error. Connections
// expected to work get a generous timeout (the machine may be loaded);
// ones expected to fail give up after a second.
func dialTCP(s *stack.Stack, a string, port uint16, expectOK bool) error {
	timeout := time.Second
	if expectOK {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := gonet.DialContextTCP(ctx, s.GVisor(), tcpip.FullAddress{Addr: tcpip.AddrFromSlice(addr(a).AsSlice()), Port: port}, ipv4.ProtocolNumber)
	if err != nil {
		return err
	}
	c.Close()
	return nil
}

// listen runs a TCP listener on the managed stack's wildcard address.
func listen(t *testing.T, s *gstack.Stack, port uint16) {
	t.Helper()
	ln, err := gonet.ListenTCP(s, tcpip.FullAddress{Port: port}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

// TestDataPathFollowsUpDown checks that what ifmgr decides reaches the
// wire: an up unit's address answers (ARP, then TCP), a logical unit's
// too, a down unit's does not, and unplumb silences the link.
func TestDataPathFollowsUpDown(t *testing.T) {
	f := newFixture(t, "tap0")
	peer := peerStack(t, f, "tap0", "10.7.0.2")
	listen(t, f.st.GVisor(), 5000)

	f.plumb("tap0")
	if err := dialTCP(peer, "10.7.0.1", 5000, false); err == nil {
		t.Fatal("connected to an address not yet configured")
	}
	f.configure("tap0", "10.7.0.1", 24)
	u := f.must("SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}).Name
	f.configure(u, "10.7.0.3", 24)
	for _, a := range []string{"10.7.0.1", "10.7.0.3"} {
		if err := dialTCP(peer, a, 5000, true); err != nil {
			t.Fatalf("connect to %s: %v", a, err)
		}
	}
	f.setUp(u, ctl.AF_INET, false)
	if err := dialTCP(peer, "10.7.0.3", 5000, false); err == nil {
		t.Error("connected to 10.7.0.3 while tap0:1 is down")
	}
	if err := dialTCP(peer, "10.7.0.1", 5000, true); err != nil {
		t.Errorf("tap0 stopped answering when tap0:1 went down: %v", err)
	}
	f.setUp(u, ctl.AF_INET, true)
	if err := dialTCP(peer, "10.7.0.3", 5000, true); err != nil {
		t.Errorf("up did not restore 10.7.0.3: %v", err)
	}
	f.must("unplumb", ctl.AF_INET, ctl.Lifreq{Name: "tap0"})
	if err := dialTCP(peer, "10.7.0.1", 5000, false); err == nil {
		t.Error("connected after unplumb")
	}
}
