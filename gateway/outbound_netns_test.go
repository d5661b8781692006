//go:build linux

package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/tapstack/tapstack/internal/netnstest"
)

// inNetns runs f on a thread in network namespace ns. Sockets f creates
// stay in ns after the thread goes back.
func inNetns(ns netns.NsHandle, f func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	ferr := f()
	if err := netns.Set(orig); err != nil {
		// The thread stays locked, so it ends with its goroutine rather
		// than running others in the wrong namespace.
		return fmt.Errorf("restore network namespace: %w", err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// netnsDialer opens the gateway's host sockets in another namespace,
// through DefaultDialer, and records the kind of ICMP socket it got.
type netnsDialer struct {
	ns       netns.NsHandle
	datagram atomic.Int32 // ICMP sockets that were datagram sockets
	raw      atomic.Int32 // ... raw sockets
}

func (d *netnsDialer) Dial(ctx context.Context, network string, laddr netip.Addr, device string, raddr netip.AddrPort) (c net.Conn, err error) {
	ierr := inNetns(d.ns, func() error {
		c, err = DefaultDialer.Dial(ctx, network, laddr, device, raddr)
		return nil
	})
	return c, errors.Join(ierr, err)
}

func (d *netnsDialer) ListenICMP(network string, laddr netip.Addr, device string) (c ICMPConn, err error) {
	ierr := inNetns(d.ns, func() error {
		c, err = DefaultDialer.ListenICMP(network, laddr, device)
		return nil
	})
	if err == nil && ierr == nil {
		if c.Datagram() {
			d.datagram.Add(1)
		} else {
			d.raw.Add(1)
		}
	}
	return c, errors.Join(ierr, err)
}

func mustExec(t *testing.T, ns string, args ...string) {
	t.Helper()
	if out, err := netnstest.Exec(t, ns, args...); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// TestOutboundAnyDestination re-originates the guest's traffic to
// addresses that exist only inside namespaces the test creates: the
// gateway's host sockets live in "host", which reaches "remote" over a
// veth pair:
//
//	guest (gVisor) ── memory link ── gateway stack ─ host sockets in ns host
//	  10.0.2.100                      10.0.2.2        vethH 192.0.2.1, .2
//	  fd00::100                       fd00::2               2001:db8::1
//	                                                    │ veth
//	                                                  ns remote: vethR 192.0.2.10, 2001:db8::10
//	                                                    TCP and UDP echo servers
//
// It checks TCP, UDP and ping both ways for IPv4 and IPv6, the source
// address binding (OutboundAddr4) and the device binding (OutboundIf), a
// refused port (RST), an unreachable host (silence), and both kinds of
// ICMP socket (raw, then datagram once ping_group_range admits us).
func TestOutboundAnyDestination(t *testing.T) {
	netnstest.Require(t)
	hostNS := netnstest.NewNetns(t)
	remoteNS := netnstest.NewNetns(t)
	vethH, vethR := netnstest.UniqueName("gwh"), netnstest.UniqueName("gwr")
	mustExec(t, hostNS, "ip", "link", "add", vethH, "type", "veth", "peer", "name", vethR, "netns", remoteNS)
	mustExec(t, hostNS, "ip", "addr", "add", "192.0.2.1/24", "dev", vethH)
	mustExec(t, hostNS, "ip", "addr", "add", "192.0.2.2/24", "dev", vethH)
	mustExec(t, hostNS, "ip", "addr", "add", "2001:db8::1/64", "dev", vethH, "nodad")
	mustExec(t, hostNS, "ip", "link", "set", vethH, "up")
	mustExec(t, remoteNS, "ip", "addr", "add", "192.0.2.10/24", "dev", vethR)
	mustExec(t, remoteNS, "ip", "addr", "add", "2001:db8::10/64", "dev", vethR, "nodad")
	mustExec(t, remoteNS, "ip", "link", "set", vethR, "up")

	host, err := netns.GetFromName(hostNS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close() })
	remote, err := netns.GetFromName(remoteNS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { remote.Close() })

	// Servers in the remote namespace, on the wildcard address.
	var (
		tl     net.Listener
		uc     net.PacketConn
		closed uint16
	)
	if err := inNetns(remote, func() error {
		var err error
		if tl, err = net.Listen("tcp", ":0"); err != nil {
			return err
		}
		if uc, err = net.ListenPacket("udp", ":0"); err != nil {
			return err
		}
		l, err := net.Listen("tcp", ":0")
		if err != nil {
			return err
		}
		closed = uint16(l.Addr().(*net.TCPAddr).Port)
		return l.Close()
	}); err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		peers sync.Map // the client addresses the TCP server saw
	)
	t.Cleanup(func() { tl.Close(); uc.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			peers.Store(c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap(), true)
			wg.Go(func() { defer c.Close(); io.Copy(c, c) })
		}
	})
	wg.Go(func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := uc.ReadFrom(buf)
			if err != nil {
				return
			}
			uc.WriteTo(buf[:n], from)
		}
	})
	tcpPort := uint16(tl.Addr().(*net.TCPAddr).Port)
	udpPort := uint16(uc.LocalAddr().(*net.UDPAddr).Port)

	n := newTestNet(t)
	d := &netnsDialer{ns: host}
	cfg := n.config()
	cfg.Dialer = d
	cfg.OutboundAddr4 = netip.MustParseAddr("192.0.2.2")
	cfg.OutboundIf = vethH
	g, err := New(n.gwStack, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)

	remotes := []netip.Addr{netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("2001:db8::10")}
	for _, dst := range remotes {
		t.Run("TCP/"+dst.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := n.dialTCP(ctx, netip.AddrPortFrom(dst, tcpPort))
			if err != nil {
				t.Fatalf("guest connect: %v", err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			msg := strings.Repeat("through the gateway ", 1000)
			go c.Write([]byte(msg))
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
				t.Fatalf("echo: %v", err)
			}
			if dst.Is4() {
				if _, ok := peers.Load(netip.MustParseAddr("192.0.2.2")); !ok {
					t.Error("the remote server never saw a connection from OutboundAddr4 192.0.2.2")
				}
			}
			dialRefused(t, n, netip.AddrPortFrom(dst, closed))
		})
		t.Run("UDP/"+dst.String(), func(t *testing.T) {
			c := n.dialUDP(t, netip.AddrPortFrom(dst, udpPort))
			for i := range 3 {
				if err := udpRoundTrip(c, fmt.Sprintf("datagram %d to %s", i, dst)); err != nil {
					t.Fatalf("round trip %d: %v", i, err)
				}
			}
		})
	}
	t.Run("TCP/unreachable", func(t *testing.T) {
		// Nothing answers ARP for 192.0.2.99: the host's connect fails
		// with EHOSTUNREACH after about 3 s, and the guest, like a client
		// behind a router that sends no ICMP, just times out.
		ctx, cancel := context.WithTimeout(context.Background(), 6*time.Second)
		defer cancel()
		c, err := n.dialTCP(ctx, netip.AddrPortFrom(netip.MustParseAddr("192.0.2.99"), tcpPort))
		if err == nil {
			c.Close()
			t.Fatal("connected to a host that does not exist")
		}
		if strings.Contains(err.Error(), "refused") {
			t.Fatalf("guest saw %v for an unreachable host, want a timeout", err)
		}
	})
	t.Run("Ping/raw", func(t *testing.T) {
		for _, dst := range remotes {
			if err := n.ping(dst, 1, 2*time.Second); err != nil {
				t.Errorf("ping %s: %v", dst, err)
			}
		}
		if err := n.ping(netip.MustParseAddr("192.0.2.99"), 1, 500*time.Millisecond); !errors.Is(err, errNoReply) {
			t.Errorf("ping of a host that does not exist: %v, want no reply", err)
		}
		if d.raw.Load() == 0 {
			t.Error("no raw ICMP socket was used (ping_group_range should exclude us in a new namespace)")
		}
	})
	t.Run("Ping/datagram", func(t *testing.T) {
		mustExec(t, hostNS, "sysctl", "-q", "-w", "net.ipv4.ping_group_range=0 2147483647")
		g.Close()
		d.datagram.Store(0)
		g2, err := New(n.gwStack, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer g2.Close()
		for _, dst := range remotes {
			for seq := range uint16(3) {
				if err := n.ping(dst, seq, 2*time.Second); err != nil {
					t.Errorf("ping %s seq %d: %v", dst, seq, err)
				}
			}
		}
		if d.datagram.Load() == 0 {
			t.Error("no datagram ICMP socket was used")
		}
	})
}
