package link_test

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/tapstack/tapstack/link"
	"github.com/tapstack/tapstack/link/memory"
	"github.com/tapstack/tapstack/stack"
)

// pairStacks joins two stacks over a memory pair: a at 10.9.0.1, b at 10.9.0.2.
func pairStacks(t *testing.T) (la *link.Link, a, b *stack.Stack) {
	t.Helper()
	la, lb := memory.NewPair("a0", "b0", 1500, nil, nil)
	t.Cleanup(func() { la.Close(); lb.Close() })
	a, b = stack.New(), stack.New()
	t.Cleanup(func() { a.Close(); b.Close() })
	for _, x := range []struct {
		s    *stack.Stack
		l    *link.Link
		addr string
	}{{a, la, "10.9.0.1/24"}, {b, lb, "10.9.0.2/24"}} {
		if err := x.s.AddNIC("n", x.l.Endpoint()); err != nil {
			t.Fatal(err)
		}
		x.s.EnableNIC("n")
		p := netip.MustParsePrefix(x.addr)
		x.s.AddAddress("n", p)
		x.s.SetRoutes([]stack.Route{{Dest: p.Masked(), NIC: "n"}})
	}
	return la, a, b
}

func ping(s *stack.Stack, dst string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := s.Ping(ctx, netip.MustParseAddr(dst), 1)
	return err
}

func TestTapSeesBothDirections(t *testing.T) {
	la, a, _ := pairStacks(t)
	var mu sync.Mutex
	seen := map[link.Direction][]uint16{}
	remove := la.AddTap(func(dir link.Direction, frame []byte) {
		if len(frame) < header.EthernetMinimumSize {
			t.Errorf("frame of %d bytes", len(frame))
			return
		}
		mu.Lock()
		seen[dir] = append(seen[dir], uint16(header.Ethernet(frame).Type()))
		mu.Unlock()
	})
	if err := ping(a, "10.9.0.2"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	for _, dir := range []link.Direction{link.Inbound, link.Outbound} {
		var arp, ip bool
		for _, et := range seen[dir] {
			arp = arp || et == uint16(header.ARPProtocolNumber)
			ip = ip || et == uint16(header.IPv4ProtocolNumber)
		}
		if !arp || !ip {
			t.Errorf("direction %d: ethertypes %x, want ARP and IPv4", dir, seen[dir])
		}
	}
	n := len(seen[link.Inbound]) + len(seen[link.Outbound])
	mu.Unlock()
	remove()
	if err := ping(a, "10.9.0.2"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if m := len(seen[link.Inbound]) + len(seen[link.Outbound]); m != n {
		t.Errorf("removed tap still saw %d frames", m-n)
	}
}

func TestDiverterConsumes(t *testing.T) {
	la, a, _ := pairStacks(t)
	var diverted atomic.Int32
	la.SetDiverter(func(proto tcpip.NetworkProtocolNumber, pkt *gstack.PacketBuffer) bool {
		if proto != ipv4.ProtocolNumber {
			return false
		}
		ip := header.IPv4(pkt.Data().AsRange().ToSlice())
		if ip.TransportProtocol() == header.ICMPv4ProtocolNumber {
			diverted.Add(1)
			return true
		}
		return false
	})
	if err := ping(a, "10.9.0.2"); err == nil {
		t.Fatal("ping reply reached the stack through a diverter that consumes ICMP")
	}
	if diverted.Load() == 0 {
		t.Fatal("diverter saw no ICMP")
	}
	la.SetDiverter(nil)
	if err := ping(a, "10.9.0.2"); err != nil {
		t.Fatalf("after removing the diverter: %v", err)
	}
}
