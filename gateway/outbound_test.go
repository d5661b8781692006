package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tapstack/tapstack/internal/netnstest"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/tapstack/tapstack/link"
	"github.com/tapstack/tapstack/link/memory"
	"github.com/tapstack/tapstack/stack"
)

// The test network: a gVisor "guest" stack (the namespace) and the
// gateway's stack on the two ends of an in-memory Ethernet pair, addressed
// as slirp4netns addresses a namespace.
var (
	guest4 = netip.MustParseAddr("10.0.2.100")
	gw4    = netip.MustParseAddr("10.0.2.2")
	dns4   = netip.MustParseAddr("10.0.2.3")
	guest6 = netip.MustParseAddr("fd00::100")
	gw6    = netip.MustParseAddr("fd00::2")
	dns6   = netip.MustParseAddr("fd00::3")
	lo4    = netip.MustParseAddr("127.0.0.1")
	lo6    = netip.IPv6Loopback()
)

const (
	gwNIC    = "tap0"
	guestNIC = tcpip.NICID(1)
)

// testNet is one guest, one gateway stack and the link between them.
type testNet struct {
	gwStack *stack.Stack
	gwLink  *link.Link
	guest   *gstack.Stack
	dialer  *countingDialer
}

// newTestNet builds the network; the gateway is not started (start does).
func newTestNet(t *testing.T) *testNet {
	t.Helper()
	gwMAC := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02}
	gl, ll := memory.NewPair(gwNIC, "guest0", 1500, gwMAC, nil)
	t.Cleanup(func() { gl.Close(); ll.Close() })

	st := stack.NewWithOptions(stack.Options{NoHandleLocal: true})
	t.Cleanup(st.Close)
	if err := st.AddNIC(gwNIC, gl.Endpoint()); err != nil {
		t.Fatal(err)
	}
	if err := st.EnableNIC(gwNIC); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"10.0.2.2/24", "10.0.2.3/32", "fd00::2/64", "fd00::3/128", "fe80::2/64"} {
		if err := st.AddAddress(gwNIC, netip.MustParsePrefix(p)); err != nil {
			t.Fatal(err)
		}
	}
	st.SetRoutes([]stack.Route{
		{Dest: netip.MustParsePrefix("10.0.2.0/24"), NIC: gwNIC},
		{Dest: netip.MustParsePrefix("fd00::/64"), NIC: gwNIC},
		{Dest: netip.MustParsePrefix("fe80::/64"), NIC: gwNIC},
	})

	// The guest accepts loopback addresses from outside (a Linux guest
	// never sends to 127/8 through its gateway; this one does, so that
	// the loopback policy can be tested), and has the gateway's MAC for
	// them, since nothing answers ARP or NDP for them.
	g := gstack.New(gstack.Options{
		NetworkProtocols: []gstack.NetworkProtocolFactory{
			ipv4.NewProtocolWithOptions(ipv4.Options{AllowExternalLoopbackTraffic: true}),
			ipv6.NewProtocolWithOptions(ipv6.Options{
				AllowExternalLoopbackTraffic: true,
				DADConfigs:                   gstack.DADConfigurations{DupAddrDetectTransmits: 0},
			}),
			arp.NewProtocol,
		},
		TransportProtocols: []gstack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6},
	})
	t.Cleanup(func() { g.Close(); g.Wait() })
	if err := g.CreateNIC(guestNIC, ll.Endpoint()); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"10.0.2.100/24", "fd00::100/64", "fe80::100/64"} {
		pfx := netip.MustParsePrefix(p)
		proto := ipv4.ProtocolNumber
		if pfx.Addr().Is6() {
			proto = ipv6.ProtocolNumber
		}
		if err := g.AddProtocolAddress(guestNIC, tcpip.ProtocolAddress{
			Protocol:          proto,
			AddressWithPrefix: tcpip.AddressWithPrefix{Address: toTCPIP(pfx.Addr()), PrefixLen: pfx.Bits()},
		}, gstack.AddressProperties{}); err != nil {
			t.Fatal(err)
		}
	}
	g.SetRouteTable([]tcpip.Route{
		{Destination: subnet(t, "10.0.2.0/24"), NIC: guestNIC},
		{Destination: subnet(t, "fd00::/64"), NIC: guestNIC},
		{Destination: subnet(t, "fe80::/64"), NIC: guestNIC},
		{Destination: header.IPv4EmptySubnet, Gateway: toTCPIP(gw4), NIC: guestNIC},
		{Destination: header.IPv6EmptySubnet, Gateway: toTCPIP(gw6), NIC: guestNIC},
	})
	mac := tcpip.LinkAddress(gwMAC)
	g.AddStaticNeighbor(guestNIC, ipv4.ProtocolNumber, toTCPIP(lo4), mac)
	g.AddStaticNeighbor(guestNIC, ipv6.ProtocolNumber, toTCPIP(lo6), mac)
	return &testNet{gwStack: st, gwLink: gl, guest: g, dialer: &countingDialer{HostDialer: DefaultDialer}}
}

func subnet(t *testing.T, s string) tcpip.Subnet {
	t.Helper()
	p := netip.MustParsePrefix(s)
	mask := make([]byte, p.Addr().BitLen()/8)
	for i := 0; i < p.Bits(); i++ {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	sn, err := tcpip.NewSubnet(toTCPIP(p.Addr()), tcpip.MaskFromBytes(mask))
	if err != nil {
		t.Fatal(err)
	}
	return sn
}

// config is the gateway configuration for the test network; the
// Dialer counts host sockets.
func (n *testNet) config() Config {
	return Config{
		NIC:    gwNIC,
		Link:   n.gwLink,
		V4:     Addrs{Gateway: gw4, DNS: dns4, Guest: guest4, Prefix: 24},
		V6:     Addrs{Gateway: gw6, DNS: dns6, Guest: guest6, Prefix: 64},
		Dialer: n.dialer,
	}
}

// start starts a gateway with cfg, closed when the test ends.
func (n *testNet) start(t *testing.T, cfg Config) *Gateway {
	t.Helper()
	g, err := New(n.gwStack, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(g.Close)
	return g
}

func protoOf(a netip.Addr) tcpip.NetworkProtocolNumber {
	if a.Is4() {
		return ipv4.ProtocolNumber
	}
	return ipv6.ProtocolNumber
}

// dialTCP connects from the guest.
func (n *testNet) dialTCP(ctx context.Context, dst netip.AddrPort) (*gonet.TCPConn, error) {
	return gonet.DialContextTCP(ctx, n.guest, tcpip.FullAddress{Addr: toTCPIP(dst.Addr()), Port: dst.Port()}, protoOf(dst.Addr()))
}

// dialUDP opens a connected UDP socket on the guest.
func (n *testNet) dialUDP(t *testing.T, dst netip.AddrPort) *gonet.UDPConn {
	t.Helper()
	c, err := gonet.DialUDP(n.guest, nil, &tcpip.FullAddress{Addr: toTCPIP(dst.Addr()), Port: dst.Port()}, protoOf(dst.Addr()))
	if err != nil {
		t.Fatalf("guest dial udp %s: %v", dst, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// ping sends one echo request from the guest to dst and waits up to wait
// for the reply.
func (n *testNet) ping(dst netip.Addr, seq uint16, wait time.Duration) error {
	netProto, transProto := ipv4.ProtocolNumber, icmp.ProtocolNumber4
	typ := uint8(header.ICMPv4Echo)
	if dst.Is6() {
		netProto, transProto, typ = ipv6.ProtocolNumber, icmp.ProtocolNumber6, uint8(header.ICMPv6EchoRequest)
	}
	var wq waiter.Queue
	ep, terr := n.guest.NewEndpoint(transProto, netProto, &wq)
	if terr != nil {
		return fmt.Errorf("ping socket: %s", terr)
	}
	defer ep.Close()
	if terr := ep.Connect(tcpip.FullAddress{Addr: toTCPIP(dst)}); terr != nil {
		return fmt.Errorf("connect %s: %s", dst, terr)
	}
	payload := []byte("tapstack gateway test payload")
	req := make([]byte, 8+len(payload))
	req[0] = typ
	req[6], req[7] = byte(seq>>8), byte(seq)
	copy(req[8:], payload)
	we, ch := waiter.NewChannelEntry(waiter.ReadableEvents)
	wq.EventRegister(&we)
	defer wq.EventUnregister(&we)
	var r bytes.Reader
	r.Reset(req)
	if _, terr := ep.Write(&r, tcpip.WriteOptions{}); terr != nil {
		return fmt.Errorf("send echo to %s: %s", dst, terr)
	}
	deadline := time.After(wait)
	buf := make([]byte, 1500)
	for {
		w := tcpip.SliceWriter(buf)
		res, terr := ep.Read(&w, tcpip.ReadOptions{})
		if _, ok := terr.(*tcpip.ErrWouldBlock); ok {
			select {
			case <-ch:
				continue
			case <-deadline:
				return errNoReply
			}
		}
		if terr != nil {
			return fmt.Errorf("read echo reply from %s: %s", dst, terr)
		}
		got := buf[:res.Count]
		if len(got) < 8 || !bytes.Equal(got[8:], payload) {
			return fmt.Errorf("echo reply from %s: data %q, want %q", dst, got, payload)
		}
		if s := uint16(got[6])<<8 | uint16(got[7]); s != seq {
			return fmt.Errorf("echo reply from %s: seq %d, want %d", dst, s, seq)
		}
		return nil
	}
}

var errNoReply = errors.New("no echo reply")

// countingDialer is a HostDialer that counts the host sockets open.
type countingDialer struct {
	HostDialer
	open  atomic.Int64 // TCP and UDP sockets
	icmps atomic.Int64 // ICMP sockets ever opened
}

func (d *countingDialer) Dial(ctx context.Context, network string, laddr netip.Addr, device string, raddr netip.AddrPort) (net.Conn, error) {
	c, err := d.HostDialer.Dial(ctx, network, laddr, device, raddr)
	if err != nil {
		return nil, err
	}
	d.open.Add(1)
	return &countedConn{Conn: c, d: d}, nil
}

func (d *countingDialer) ListenICMP(network string, laddr netip.Addr, device string) (ICMPConn, error) {
	c, err := d.HostDialer.ListenICMP(network, laddr, device)
	if err == nil {
		d.icmps.Add(1)
	}
	return c, err
}

// countedConn decrements the count when closed; it keeps the
// syscall.Conn and CloseWrite/SetLinger of the socket it wraps.
type countedConn struct {
	net.Conn
	d    *countingDialer
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.d.open.Add(-1) })
	return c.Conn.Close()
}

func (c *countedConn) SyscallConn() (syscall.RawConn, error) {
	return c.Conn.(syscall.Conn).SyscallConn()
}

func (c *countedConn) CloseWrite() error {
	return c.Conn.(interface{ CloseWrite() error }).CloseWrite()
}

func (c *countedConn) SetLinger(sec int) error {
	if l, ok := c.Conn.(interface{ SetLinger(int) error }); ok {
		return l.SetLinger(sec)
	}
	return nil
}

// eventually polls cond for up to 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// families are the address families of the tests: the gateway address,
// and the host loopback it maps to.
var families = []struct {
	name     string
	gw, lo   netip.Addr
	listenOn string
}{
	{"IPv4", gw4, lo4, "127.0.0.1:0"},
	{"IPv6", gw6, lo6, "[::1]:0"},
}

// tcpServer runs handle for each connection accepted on a host loopback
// address, until the test ends.
func tcpServer(t *testing.T, addr string, handle func(net.Conn)) netip.AddrPort {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		netnstest.Unavailable(t, "no host loopback listener on %s: %v", addr, err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				handle(c)
			})
		}
	})
	return l.Addr().(*net.TCPAddr).AddrPort()
}

func echoHandler(c net.Conn) { io.Copy(c, c) }

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T, addr string) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		netnstest.Unavailable(t, "no host loopback listener on %s: %v", addr, err)
	}
	port := l.Addr().(*net.TCPAddr).AddrPort().Port()
	l.Close()
	return port
}

func TestTCPHostLoopback(t *testing.T) {
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			n := newTestNet(t)
			cfg := n.config()
			cfg.AllowHostLoopback = true
			n.start(t, cfg)
			var peer atomic.Value
			srv := tcpServer(t, f.listenOn, func(c net.Conn) {
				peer.Store(c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr())
				echoHandler(c)
			})

			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := n.dialTCP(ctx, netip.AddrPortFrom(f.gw, srv.Port()))
			if err != nil {
				t.Fatalf("guest connect to %s port %d: %v", f.gw, srv.Port(), err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			msg := bytes.Repeat([]byte("0123456789abcdef"), 8<<10) // 128 KiB: many segments, windows
			go c.Write(msg)
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatalf("read echo: %v", err)
			}
			if !bytes.Equal(got, msg) {
				t.Fatal("echo differs from what was sent")
			}
			if p, _ := peer.Load().(netip.Addr); p != f.lo {
				t.Errorf("host server saw the connection from %v, want %v", p, f.lo)
			}
		})
	}
}

// dialRefused connects from the guest to dst and wants a quick
// "connection refused" (a RST), not a timeout.
func dialRefused(t *testing.T, n *testNet, dst netip.AddrPort) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	c, err := n.dialTCP(ctx, dst)
	if err == nil {
		c.Close()
		t.Fatalf("guest connect to %s succeeded, want refused", dst)
	}
	if ctx.Err() != nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("guest connect to %s after %v: %v; want connection refused", dst, time.Since(start), err)
	}
}

func TestTCPRefused(t *testing.T) {
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			srv := tcpServer(t, f.listenOn, echoHandler)
			t.Run("GatewayWithoutHostLoopback", func(t *testing.T) {
				n := newTestNet(t)
				n.start(t, n.config())
				dialRefused(t, n, netip.AddrPortFrom(f.gw, srv.Port()))
				if got := n.dialer.open.Load(); got != 0 {
					t.Errorf("%d host sockets opened, want none", got)
				}
			})
			t.Run("ClosedHostPort", func(t *testing.T) {
				n := newTestNet(t)
				cfg := n.config()
				cfg.AllowHostLoopback = true
				n.start(t, cfg)
				dialRefused(t, n, netip.AddrPortFrom(f.gw, closedPort(t, f.listenOn)))
			})
			t.Run("DNSAddress", func(t *testing.T) {
				n := newTestNet(t)
				cfg := n.config()
				cfg.AllowHostLoopback = true
				cfg.DisableDNS = true
				n.start(t, cfg)
				dns := dns4
				if f.gw.Is6() {
					dns = dns6
				}
				dialRefused(t, n, netip.AddrPortFrom(dns, srv.Port()))
			})
		})
	}
}

func TestTCPHalfClose(t *testing.T) {
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			n := newTestNet(t)
			cfg := n.config()
			cfg.AllowHostLoopback = true
			n.start(t, cfg)
			// The server reads to EOF (the guest's half-close), then
			// answers with what it read, reversed, and closes.
			srv := tcpServer(t, f.listenOn, func(c net.Conn) {
				c.SetDeadline(time.Now().Add(5 * time.Second))
				b, err := io.ReadAll(c)
				if err != nil {
					return
				}
				for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
					b[i], b[j] = b[j], b[i]
				}
				c.Write(b)
			})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := n.dialTCP(ctx, netip.AddrPortFrom(f.gw, srv.Port()))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write([]byte("half-close")); err != nil {
				t.Fatal(err)
			}
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(c)
			if err != nil {
				t.Fatalf("read after half-close: %v", err)
			}
			if string(got) != "esolc-flah" {
				t.Fatalf("got %q after half-close, want %q", got, "esolc-flah")
			}
		})
	}
}

// udpServer echoes datagrams on a host loopback address and counts them.
func udpServer(t *testing.T, addr string) (netip.AddrPort, *atomic.Int64) {
	t.Helper()
	c, err := net.ListenPacket("udp", addr)
	if err != nil {
		netnstest.Unavailable(t, "no host loopback UDP socket on %s: %v", addr, err)
	}
	var got atomic.Int64
	var wg sync.WaitGroup
	t.Cleanup(func() { c.Close(); wg.Wait() })
	wg.Go(func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			got.Add(1)
			c.WriteTo(buf[:n], from)
		}
	})
	return c.LocalAddr().(*net.UDPAddr).AddrPort(), &got
}

// udpRoundTrip sends msg from c and wants it back.
func udpRoundTrip(c net.Conn, msg string) error {
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		return err
	}
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if string(buf[:n]) != msg {
		return fmt.Errorf("got %q, want %q", buf[:n], msg)
	}
	return nil
}

func TestUDPHostLoopback(t *testing.T) {
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			n := newTestNet(t)
			cfg := n.config()
			cfg.AllowHostLoopback = true
			n.start(t, cfg)
			srv, _ := udpServer(t, f.listenOn)
			// A connected guest socket accepts only replies from the
			// address and port it sent to: the gateway's, not 127.0.0.1.
			c := n.dialUDP(t, netip.AddrPortFrom(f.gw, srv.Port()))
			for i := range 3 {
				if err := udpRoundTrip(c, fmt.Sprintf("datagram %d", i)); err != nil {
					t.Fatalf("round trip %d: %v", i, err)
				}
			}
			if got := n.dialer.open.Load(); got != 1 {
				t.Errorf("%d host sockets for one flow, want 1", got)
			}
		})
	}
}

func TestUDPRefusedWithoutHostLoopback(t *testing.T) {
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			n := newTestNet(t)
			n.start(t, n.config())
			srv, got := udpServer(t, f.listenOn)
			unreach := n.guest.Stats().ICMP.V4.PacketsReceived.DstUnreachable
			if f.gw.Is6() {
				unreach = n.guest.Stats().ICMP.V6.PacketsReceived.DstUnreachable
			}
			c := n.dialUDP(t, netip.AddrPortFrom(f.gw, srv.Port()))
			if err := udpRoundTrip(c, "hello"); err == nil {
				t.Fatal("datagram to the gateway reached the host's loopback without AllowHostLoopback")
			}
			// The gateway answers ICMP port unreachable, as a host
			// without the port does. (gonet does not wake a reader for
			// the error, so look at the guest's counters.)
			if unreach.Value() == 0 {
				t.Error("the guest got no ICMP destination unreachable")
			}
			if got.Load() != 0 || n.dialer.open.Load() != 0 {
				t.Errorf("host server got %d datagrams, %d host sockets: want none", got.Load(), n.dialer.open.Load())
			}
		})
	}
}

func TestUDPFlowExpiry(t *testing.T) {
	n := newTestNet(t)
	cfg := n.config()
	cfg.AllowHostLoopback = true
	cfg.UDPIdleTimeout = 200 * time.Millisecond
	n.start(t, cfg)
	srv, _ := udpServer(t, "127.0.0.1:0")
	c := n.dialUDP(t, netip.AddrPortFrom(gw4, srv.Port()))
	if err := udpRoundTrip(c, "one"); err != nil {
		t.Fatal(err)
	}
	if got := n.dialer.open.Load(); got != 1 {
		t.Fatalf("%d host sockets, want 1", got)
	}
	eventually(t, "the idle flow to expire", func() bool { return n.dialer.open.Load() == 0 })
	// The next datagram of the same 4-tuple starts a new flow.
	if err := udpRoundTrip(c, "two"); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if got := n.dialer.open.Load(); got != 1 {
		t.Fatalf("%d host sockets after a new datagram, want 1", got)
	}
}

func TestUDPFlowLimit(t *testing.T) {
	defer func(old int) { udpMaxFlows = old }(udpMaxFlows)
	udpMaxFlows = 2
	n := newTestNet(t)
	cfg := n.config()
	cfg.AllowHostLoopback = true
	n.start(t, cfg)
	srv, _ := udpServer(t, "127.0.0.1:0")
	var conns []*gonet.UDPConn
	for i := range 3 {
		c := n.dialUDP(t, netip.AddrPortFrom(gw4, srv.Port()))
		if err := udpRoundTrip(c, fmt.Sprintf("flow %d", i)); err != nil {
			t.Fatalf("flow %d: %v", i, err)
		}
		conns = append(conns, c)
		time.Sleep(5 * time.Millisecond) // distinct activity times
	}
	eventually(t, "at most 2 flows", func() bool { return n.dialer.open.Load() <= 2 })
	// The newest flows still work without a new host socket...
	if err := udpRoundTrip(conns[2], "again"); err != nil {
		t.Fatalf("newest flow after eviction: %v", err)
	}
	if got := n.dialer.open.Load(); got != 2 {
		t.Errorf("%d host sockets, want 2", got)
	}
	// ...and the evicted one comes back as a new flow, evicting another.
	if err := udpRoundTrip(conns[0], "back"); err != nil {
		t.Fatalf("evicted flow: %v", err)
	}
	eventually(t, "at most 2 flows", func() bool { return n.dialer.open.Load() <= 2 })
}

// requireICMPSocket skips (fails under CI=true) when this process can open
// neither kind of host ICMP socket.
func requireICMPSocket(t *testing.T) {
	t.Helper()
	c, err := DefaultDialer.ListenICMP("ip4", netip.Addr{}, "")
	if err == nil {
		c.Close()
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("no host ICMP socket under CI=true: %v", err)
	}
	t.Skipf("no host ICMP socket (%v); to enable, run as root or widen net.ipv4.ping_group_range", err)
}

func TestPingGatewayAnsweredByStack(t *testing.T) {
	n := newTestNet(t)
	n.start(t, n.config())
	for _, dst := range []netip.Addr{gw4, dns4, gw6, dns6, netip.MustParseAddr("fe80::2")} {
		if err := n.ping(dst, 1, 2*time.Second); err != nil {
			t.Errorf("ping %s: %v", dst, err)
		}
	}
	if got := n.dialer.icmps.Load(); got != 0 {
		t.Errorf("%d host ICMP sockets opened for pings the stack answers, want none", got)
	}
}

func TestPingHostLoopback(t *testing.T) {
	requireICMPSocket(t)
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			t.Run("Allowed", func(t *testing.T) {
				n := newTestNet(t)
				cfg := n.config()
				cfg.AllowHostLoopback = true
				n.start(t, cfg)
				for seq := range uint16(3) {
					if err := n.ping(f.lo, seq, 2*time.Second); err != nil {
						t.Fatalf("ping %s seq %d: %v", f.lo, seq, err)
					}
				}
				if got := n.dialer.icmps.Load(); got != 1 {
					t.Errorf("%d host ICMP sockets, want 1", got)
				}
			})
			t.Run("Refused", func(t *testing.T) {
				n := newTestNet(t)
				n.start(t, n.config())
				if err := n.ping(f.lo, 1, 500*time.Millisecond); !errors.Is(err, errNoReply) {
					t.Fatalf("ping %s without AllowHostLoopback: %v, want no reply", f.lo, err)
				}
				if got := n.dialer.icmps.Load(); got != 0 {
					t.Errorf("%d host ICMP sockets, want none", got)
				}
			})
		})
	}
}

func TestCloseLeaksNoGoroutines(t *testing.T) {
	n := newTestNet(t)
	tcpSrv := tcpServer(t, "127.0.0.1:0", echoHandler)
	udpSrv, _ := udpServer(t, "127.0.0.1:0")
	before := runtime.NumGoroutine()

	cfg := n.config()
	cfg.AllowHostLoopback = true
	g, err := New(n.gwStack, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tc, err := n.dialTCP(ctx, netip.AddrPortFrom(gw4, tcpSrv.Port()))
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := tc.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(tc, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	uc := n.dialUDP(t, netip.AddrPortFrom(gw4, udpSrv.Port()))
	if err := udpRoundTrip(uc, "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := DefaultDialer.ListenICMP("ip4", netip.Addr{}, ""); err == nil {
		if err := n.ping(lo4, 1, 2*time.Second); err != nil {
			t.Fatal(err)
		}
	}

	g.Close()
	if n.dialer.open.Load() != 0 {
		t.Errorf("%d host sockets open after Close", n.dialer.open.Load())
	}
	// The spliced connection was reset.
	if _, err := tc.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("guest read after Close: %v, want a reset", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Close, %d before New:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRestartOnSameStack(t *testing.T) {
	n := newTestNet(t)
	cfg := n.config()
	cfg.AllowHostLoopback = true
	srv := tcpServer(t, "127.0.0.1:0", echoHandler)
	for i := range 2 {
		g, err := New(n.gwStack, cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := n.dialTCP(ctx, netip.AddrPortFrom(gw4, srv.Port()))
		cancel()
		if err != nil {
			t.Fatalf("gateway %d: %v", i, err)
		}
		c.Close()
		g.Close()
	}
	// Stopped, the gateway's address is a host without the port.
	dialRefused(t, n, netip.AddrPortFrom(gw4, srv.Port()))
}

func TestPolicy(t *testing.T) {
	n := newTestNet(t)
	base := n.config()
	base.OutboundAddr4 = netip.MustParseAddr("192.0.2.1")
	for _, tc := range []struct {
		dst      string
		loopback bool // AllowHostLoopback
		want     verdict
		to       string
		toLo     bool
	}{
		{dst: "10.0.2.2", want: refuse},
		{dst: "10.0.2.2", loopback: true, want: forward, to: "127.0.0.1", toLo: true},
		{dst: "fd00::2", loopback: true, want: forward, to: "::1", toLo: true},
		{dst: "fd00::2", want: refuse},
		{dst: "10.0.2.3", loopback: true, want: refuse},
		{dst: "fd00::3", want: refuse},
		{dst: "127.0.0.5", want: refuse},
		{dst: "127.0.0.5", loopback: true, want: forward, to: "127.0.0.5", toLo: true},
		{dst: "::1", want: refuse},
		{dst: "224.0.0.251", want: drop},
		{dst: "255.255.255.255", want: drop},
		{dst: "10.0.2.255", want: drop},
		{dst: "10.0.2.50", want: drop},
		{dst: "0.0.0.0", want: drop},
		{dst: "ff02::1", want: drop},
		{dst: "fe80::1", want: drop},
		{dst: "::ffff:192.0.2.7", want: drop},
		{dst: "fd00::77", want: drop},
		{dst: "192.0.2.7", want: forward, to: "192.0.2.7"},
		{dst: "169.254.169.254", want: forward, to: "169.254.169.254"},
		{dst: "2001:db8::7", want: forward, to: "2001:db8::7"},
	} {
		cfg := base
		cfg.AllowHostLoopback = tc.loopback
		p := newPolicy(cfg)
		name := tc.dst
		if tc.loopback {
			name += "/loopback"
		}
		t.Run(name, func(t *testing.T) {
			got, v := p.decide(netip.MustParseAddr(tc.dst))
			if v != tc.want {
				t.Fatalf("decide(%s) = %v, want %v", tc.dst, v, tc.want)
			}
			if v != forward {
				return
			}
			if got.addr.String() != tc.to || got.loopback != tc.toLo {
				t.Errorf("decide(%s) = %v (loopback %v), want %s (loopback %v)", tc.dst, got.addr, got.loopback, tc.to, tc.toLo)
			}
			laddr, _ := p.binding(got)
			if wantBound := !tc.toLo && got.addr.Is4(); laddr.IsValid() != wantBound {
				t.Errorf("binding(%s) = %v, want bound %v", got.addr, laddr, wantBound)
			}
		})
	}
}

func TestTCPHostHalfClose(t *testing.T) {
	n := newTestNet(t)
	cfg := n.config()
	cfg.AllowHostLoopback = true
	n.start(t, cfg)
	// The server sends, half-closes, then still reads what the guest
	// sends after seeing that end of file.
	got := make(chan string, 1)
	srv := tcpServer(t, "127.0.0.1:0", func(c net.Conn) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte("server done"))
		c.(*net.TCPConn).CloseWrite()
		b, _ := io.ReadAll(c)
		got <- string(b)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := n.dialTCP(ctx, netip.AddrPortFrom(gw4, srv.Port()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "server done" {
		t.Fatalf("guest read %q, %v; want %q then end of file", b, err, "server done")
	}
	if _, err := c.Write([]byte("guest still talking")); err != nil {
		t.Fatalf("guest write after the server's half-close: %v", err)
	}
	c.CloseWrite()
	select {
	case s := <-got:
		if s != "guest still talking" {
			t.Fatalf("server read %q after its half-close", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server never saw the guest's data and end of file")
	}
}

func TestTCPResetPropagates(t *testing.T) {
	n := newTestNet(t)
	cfg := n.config()
	cfg.AllowHostLoopback = true
	n.start(t, cfg)
	srv := tcpServer(t, "127.0.0.1:0", func(c net.Conn) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.ReadFull(c, make([]byte, 5))
		c.(*net.TCPConn).SetLinger(0) // close with a RST
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := n.dialTCP(ctx, netip.AddrPortFrom(gw4, srv.Port()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte("reset"))
	_, err = c.Read(make([]byte, 1))
	if err == nil || err == io.EOF || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("guest read after the server's reset: %v, want a reset", err)
	}
}

func TestICMPPendingExpire(t *testing.T) {
	s := &echoSocket{pending: map[uint16]pendingEcho{}}
	now := time.Now()
	host := netip.MustParseAddr("192.0.2.1")
	seq, ok := s.add(pendingEcho{host: host, expires: now.Add(icmpEchoTimeout)})
	if !ok {
		t.Fatal("add failed")
	}
	s.expire(now)
	if _, ok := s.take(seq, host); !ok {
		t.Fatal("a request was expired before its time")
	}
	s.add(pendingEcho{host: host, expires: now.Add(icmpEchoTimeout)})
	s.expire(now.Add(icmpEchoTimeout + time.Second))
	if len(s.pending) != 0 {
		t.Fatalf("%d requests pending after their timeout", len(s.pending))
	}
	for range icmpMaxPending {
		s.add(pendingEcho{host: host, expires: now})
	}
	if _, ok := s.add(pendingEcho{host: host}); ok {
		t.Fatalf("more than %d requests pending", icmpMaxPending)
	}
	if _, ok := s.take(s.nextSeq-1, netip.MustParseAddr("192.0.2.2")); ok {
		t.Fatal("a reply from another address matched a request")
	}
}
