package memory_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/refs"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"

	"github.com/tapstack/tapstack/link"
	"github.com/tapstack/tapstack/link/memory"
)

func TestMain(m *testing.M) {
	refs.SetLeakMode(refs.LeaksPanic)
	code := m.Run()
	refs.DoLeakCheck()
	os.Exit(code)
}

var (
	addrA = tcpip.AddrFrom4([4]byte{192, 0, 2, 1})
	addrB = tcpip.AddrFrom4([4]byte{192, 0, 2, 2})
)

// newStack returns a gVisor stack with l as NIC 1, addressed addr/24.
// The stack is closed before l.
func newStack(t *testing.T, l *link.Link, addr tcpip.Address) *stack.Stack {
	t.Helper()
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{udp.NewProtocol, tcp.NewProtocol, icmp.NewProtocol4},
	})
	t.Cleanup(func() {
		s.Close()
		s.Wait()
		l.Close()
	})
	if err := s.CreateNIC(1, l.Endpoint()); err != nil {
		t.Fatalf("CreateNIC: %v", err)
	}
	pa := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: addr.WithPrefix()}
	pa.AddressWithPrefix.PrefixLen = 24
	if err := s.AddProtocolAddress(1, pa, stack.AddressProperties{}); err != nil {
		t.Fatalf("AddProtocolAddress: %v", err)
	}
	s.SetRouteTable([]tcpip.Route{{Destination: pa.AddressWithPrefix.Subnet(), NIC: 1}})
	return s
}

func newStacks(t *testing.T) (*link.Link, *link.Link, *stack.Stack, *stack.Stack) {
	t.Helper()
	la, lb := memory.NewPair("mem0", "mem1", 1500, nil, nil)
	return la, lb, newStack(t, la, addrA), newStack(t, lb, addrB)
}

func TestUDPAcrossPair(t *testing.T) {
	_, _, sa, sb := newStacks(t)

	srv, err := gonet.DialUDP(sb, &tcpip.FullAddress{NIC: 1, Addr: addrB, Port: 7}, nil, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer srv.Close()
	cli, err := gonet.DialUDP(sa, nil, &tcpip.FullAddress{NIC: 1, Addr: addrB, Port: 7}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer cli.Close()

	// The first datagram waits for ARP: the pair must carry Ethernet
	// broadcast and the reply.
	msg := []byte("hello over the pair")
	if _, err := cli.Write(msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	n, from, err := srv.ReadFrom(buf)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if !bytes.Equal(buf[:n], msg) {
		t.Errorf("got %q, want %q", buf[:n], msg)
	}
	if got := from.(*net.UDPAddr).IP.String(); got != addrA.String() {
		t.Errorf("from %v, want %v", got, addrA)
	}
}

func TestTCPAcrossPair(t *testing.T) {
	_, _, sa, sb := newStacks(t)

	ln, err := gonet.ListenTCP(sb, tcpip.FullAddress{NIC: 1, Addr: addrB, Port: 80}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	payload := bytes.Repeat([]byte("0123456789abcdef"), 64<<10/16) // many segments
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write(payload)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := gonet.DialContextTCP(ctx, sa, tcpip.FullAddress{NIC: 1, Addr: addrB, Port: 80}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got bytes.Buffer
	if _, err := got.ReadFrom(c); err != nil {
		t.Fatalf("read: %v", err)
	}
	if !bytes.Equal(got.Bytes(), payload) {
		t.Errorf("received %d bytes, want %d identical", got.Len(), len(payload))
	}
}

func TestCarrierDownDrops(t *testing.T) {
	la, _, sa, sb := newStacks(t)
	dev := la.Device().(*memory.Device)

	srv, err := gonet.DialUDP(sb, &tcpip.FullAddress{NIC: 1, Addr: addrB, Port: 7}, nil, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer srv.Close()
	cli, err := gonet.DialUDP(sa, nil, &tcpip.FullAddress{NIC: 1, Addr: addrB, Port: 7}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer cli.Close()

	exchange := func(msg string) error {
		t.Helper()
		if _, err := cli.Write([]byte(msg)); err != nil {
			t.Fatalf("write: %v", err)
		}
		buf := make([]byte, 32)
		srv.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, _, err := srv.ReadFrom(buf)
		if err == nil && string(buf[:n]) != msg {
			t.Fatalf("got %q, want %q", buf[:n], msg)
		}
		return err
	}
	// Resolve ARP first, so that the datagram sent while unplugged really
	// goes onto the wire instead of waiting in gVisor's resolution queue.
	if err := exchange("before"); err != nil {
		t.Fatalf("before unplugging: %v", err)
	}

	dev.SetCarrier(false)
	if la.Up() {
		t.Fatalf("link still up after SetCarrier(false)")
	}
	drops := dev.Drops()
	cli.Write([]byte("lost"))
	srv.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, _, err := srv.ReadFrom(make([]byte, 32)); err == nil {
		t.Fatalf("received %d bytes through an unplugged cable", n)
	}
	if dev.Drops() != drops+1 {
		t.Errorf("drops = %d, want %d", dev.Drops(), drops+1)
	}

	dev.SetCarrier(true)
	if err := exchange("after"); err != nil {
		t.Fatalf("after replugging: %v", err)
	}
}

func TestSetMACAndMTU(t *testing.T) {
	la, lb := memory.NewPair("mem0", "mem1", 1500, nil, nil)
	defer la.Close()
	defer lb.Close()
	dev := la.Device().(*memory.Device)

	mac := net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 1}
	dev.SetMAC(mac)
	dev.SetMTU(1280)
	if got := la.Endpoint().LinkAddress(); string(got) != string(mac) {
		t.Errorf("endpoint MAC = %v, want %v", got, mac)
	}
	if got := la.Addr().String(); got != mac.String() {
		t.Errorf("link MAC = %v, want %v", got, mac)
	}
	if la.SDU() != 1280 || dev.MaxSDU() != 1280 || la.Endpoint().MTU() != 1280 {
		t.Errorf("MTU: link %d device %d endpoint %d, want 1280", la.SDU(), dev.MaxSDU(), la.Endpoint().MTU())
	}
	if lb.SDU() != 1500 {
		t.Errorf("peer MTU changed to %d", lb.SDU())
	}
}

func TestRandomMACs(t *testing.T) {
	la, lb := memory.NewPair("mem0", "mem1", 1500, nil, nil)
	defer la.Close()
	defer lb.Close()
	a, b := la.Addr(), lb.Addr()
	if len(a) != 6 || a[0]&0x03 != 0x02 || b[0]&0x03 != 0x02 {
		t.Errorf("MACs %v, %v are not locally administered unicast", a, b)
	}
	if a.String() == b.String() {
		t.Errorf("both ends got MAC %v", a)
	}
	if la.Class() != "memory" || la.Over() != "mem1" {
		t.Errorf("class/over = %q/%q", la.Class(), la.Over())
	}
}
