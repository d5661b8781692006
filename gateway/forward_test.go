package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tapstack/tapstack/internal/netnstest"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/link/memory"
	"github.com/tapstack/tapstack/stack"
)

// The tests of the inbound half (forwards, DNS) run a gateway stack and a
// guest stack, both gVisor, joined by an in-memory Ethernet pair:
//
//	guest eth0 10.0.2.100/24 fd00::100/64, default routes via 10.0.2.2 / fd00::2
//	gateway tap0 10.0.2.2/24 10.0.2.3/24 fd00::2/64 fd00::3/64
//
// Helpers are prefixed inb so they do not collide with the outbound
// tests of the same package.

var inbCmp = cmpopts.EquateComparable(netip.Addr{}, netip.AddrPort{})

// inbEnv is a gateway and the guest stack behind it.
type inbEnv struct {
	gw    *Gateway
	st    *stack.Stack // the gateway's stack
	guest *stack.Stack
}

// inbConfig is the configuration newInbEnv starts from.
func inbConfig() Config {
	return Config{
		NIC: "tap0",
		V4: Addrs{
			Gateway: DefaultGatewayV4, DNS: DefaultDNSV4, Guest: DefaultGuestV4, Prefix: 24,
		},
		V6: Addrs{
			Gateway: DefaultGatewayV6, DNS: DefaultDNSV6, Guest: DefaultGuestV6, Prefix: 64,
		},
		ResolvConf: "/nonexistent/resolv.conf",
	}
}

// newInbEnv builds the two stacks and starts a gateway with inbConfig as
// changed by mod (which may be nil). Everything is closed when the test
// ends.
func newInbEnv(t *testing.T, mod func(*Config)) *inbEnv {
	t.Helper()
	la, lb := memory.NewPair("tap0", "eth0", 1500, nil, nil)
	t.Cleanup(func() { la.Close(); lb.Close() })
	st := stack.NewWithOptions(stack.Options{NoHandleLocal: true}) // as the gateway requires
	guest := stack.New()
	t.Cleanup(func() { st.Close(); guest.Close() })

	if err := st.AddNIC("tap0", la.Endpoint()); err != nil {
		t.Fatal(err)
	}
	if err := guest.AddNIC("eth0", lb.Endpoint()); err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		s     *stack.Stack
		nic   string
		addrs []string
	}{
		{st, "tap0", []string{"10.0.2.2/24", "10.0.2.3/24", "fd00::2/64", "fd00::3/64"}},
		{guest, "eth0", []string{"10.0.2.100/24", "fd00::100/64"}},
	} {
		if err := x.s.EnableNIC(x.nic); err != nil {
			t.Fatal(err)
		}
		for _, a := range x.addrs {
			if err := x.s.AddAddress(x.nic, netip.MustParsePrefix(a)); err != nil {
				t.Fatal(err)
			}
		}
	}
	st.SetRoutes([]stack.Route{
		{Dest: netip.MustParsePrefix("10.0.2.0/24"), NIC: "tap0"},
		{Dest: netip.MustParsePrefix("fd00::/64"), NIC: "tap0"},
	})
	guest.SetRoutes([]stack.Route{
		{Dest: netip.MustParsePrefix("10.0.2.0/24"), NIC: "eth0"},
		{Dest: netip.MustParsePrefix("fd00::/64"), NIC: "eth0"},
		{Dest: netip.MustParsePrefix("0.0.0.0/0"), Gateway: DefaultGatewayV4, NIC: "eth0"},
		{Dest: netip.MustParsePrefix("::/0"), Gateway: DefaultGatewayV6, NIC: "eth0"},
	})

	cfg := inbConfig()
	cfg.Link = la
	if mod != nil {
		mod(&cfg)
	}
	gw, err := New(st, cfg)
	if err != nil {
		t.Fatalf("gateway.New: %v", err)
	}
	t.Cleanup(gw.Close)
	return &inbEnv{gw: gw, st: st, guest: guest}
}

// inbListenV6Only opens a TCP listener on the wildcard address of proto
// in s, IPv6 only for IPv6, so an IPv4 and an IPv6 listener share a port.
func inbListen(t *testing.T, s *stack.Stack, proto tcpip.NetworkProtocolNumber, port uint16) *gonet.TCPListener {
	t.Helper()
	var wq waiter.Queue
	ep, terr := s.GVisor().NewEndpoint(tcp.ProtocolNumber, proto, &wq)
	if terr != nil {
		t.Fatal(terr)
	}
	if proto == header.IPv6ProtocolNumber {
		ep.SocketOptions().SetV6Only(true)
	}
	if terr := ep.Bind(tcpip.FullAddress{Port: port}); terr != nil {
		t.Fatal(terr)
	}
	if terr := ep.Listen(16); terr != nil {
		t.Fatal(terr)
	}
	return gonet.NewTCPListener(s.GVisor(), &wq, ep)
}

// inbGuestTCPServer runs a server in the guest on port, IPv4 and IPv6:
// for each connection it writes "from ADDR:PORT\n" (the peer it sees),
// echoes what it reads until the peer's FIN, then closes. Each peer seen
// is also sent on the returned channel (buffered; never blocks). The
// server stops, closing its connections, when the test ends.
func inbGuestTCPServer(t *testing.T, guest *stack.Stack, port uint16) <-chan netip.AddrPort {
	t.Helper()
	seen := make(chan netip.AddrPort, 64)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		conns  = map[net.Conn]bool{}
		closed bool
	)
	var ls []*gonet.TCPListener
	for _, proto := range []tcpip.NetworkProtocolNumber{header.IPv4ProtocolNumber, header.IPv6ProtocolNumber} {
		ls = append(ls, inbListen(t, guest, proto, port))
	}
	t.Cleanup(func() {
		mu.Lock()
		closed = true
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		for _, l := range ls {
			l.Shutdown()
			l.Close()
		}
		wg.Wait()
	})
	for _, l := range ls {
		wg.Go(func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				if closed {
					mu.Unlock()
					c.Close()
					return
				}
				conns[c] = true
				mu.Unlock()
				wg.Go(func() {
					defer func() {
						mu.Lock()
						delete(conns, c)
						mu.Unlock()
						c.Close()
					}()
					peer := c.RemoteAddr().(*net.TCPAddr).AddrPort()
					select {
					case seen <- peer:
					default:
					}
					fmt.Fprintf(c, "from %s\n", peer)
					io.Copy(c, c)
				})
			}
		})
	}
	return seen
}

// inbGuestUDPServer runs a UDP server in the guest on port (IPv4 and
// IPv6): it answers each datagram P with "from ADDR:PORT P".
func inbGuestUDPServer(t *testing.T, guest *stack.Stack, port uint16) {
	t.Helper()
	var (
		wg    sync.WaitGroup
		conns []*gonet.UDPConn
	)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
	})
	for _, proto := range []tcpip.NetworkProtocolNumber{header.IPv4ProtocolNumber, header.IPv6ProtocolNumber} {
		var wq waiter.Queue
		ep, terr := guest.GVisor().NewEndpoint(udp.ProtocolNumber, proto, &wq)
		if terr != nil {
			t.Fatal(terr)
		}
		if proto == header.IPv6ProtocolNumber {
			ep.SocketOptions().SetV6Only(true)
		}
		if terr := ep.Bind(tcpip.FullAddress{Port: port}); terr != nil {
			ep.Close()
			t.Fatal(terr)
		}
		c := gonet.NewUDPConn(&wq, ep)
		conns = append(conns, c)
		wg.Go(func() {
			buf := make([]byte, 2048)
			for {
				n, from, err := c.ReadFrom(buf)
				if err != nil {
					return
				}
				c.WriteTo(fmt.Appendf(nil, "from %s %s", from.(*net.UDPAddr).AddrPort(), buf[:n]), from)
			}
		})
	}
}

// inbFreePort returns a port free on the host for network at addr (it may
// be taken again by the time it is used; the tests live with that).
func inbFreePort(t *testing.T, network, addr string) uint16 {
	t.Helper()
	if strings.HasPrefix(network, "udp") {
		c, err := net.ListenPacket(network, net.JoinHostPort(addr, "0"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return uint16(c.LocalAddr().(*net.UDPAddr).Port)
	}
	l, err := net.Listen(network, net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

// inbHasIPv6Loopback reports whether the host can listen on ::1.
func inbHasIPv6Loopback() bool {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// inbTalkTCP connects to addr, reads the server's "from" line, sends msg,
// half-closes, and returns the peer the guest saw and the echo.
func inbTalkTCP(t *testing.T, addr string, msg string) (netip.AddrPort, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read the server's greeting through %s: %v (got %q)", addr, err, line)
	}
	peer, err := netip.ParseAddrPort(strings.TrimSpace(strings.TrimPrefix(line, "from ")))
	if err != nil {
		t.Fatalf("greeting %q: %v", line, err)
	}
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	echo, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read the echo through %s: %v", addr, err)
	}
	return peer, string(echo)
}

func TestParseForward(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want ctl.Forward
	}{
		{"8080:80", ctl.Forward{Proto: "tcp", HostPort: 8080, GuestPort: 80}},
		{"8080:80/tcp", ctl.Forward{Proto: "tcp", HostPort: 8080, GuestPort: 80}},
		{"5353:53/udp", ctl.Forward{Proto: "udp", HostPort: 5353, GuestPort: 53}},
		{"5353:53/UDP", ctl.Forward{Proto: "udp", HostPort: 5353, GuestPort: 53}},
		{"127.0.0.1:8080:80", ctl.Forward{Proto: "tcp", HostAddr: netip.MustParseAddr("127.0.0.1"), HostPort: 8080, GuestPort: 80}},
		{"0.0.0.0:1:65535/udp", ctl.Forward{Proto: "udp", HostAddr: netip.MustParseAddr("0.0.0.0"), HostPort: 1, GuestPort: 65535}},
		{"[::1]:8080:80", ctl.Forward{Proto: "tcp", HostAddr: netip.MustParseAddr("::1"), HostPort: 8080, GuestPort: 80}},
		{"[::]:8080:80/udp", ctl.Forward{Proto: "udp", HostAddr: netip.MustParseAddr("::"), HostPort: 8080, GuestPort: 80}},
		{"[fe80::1%eth0]:8080:80", ctl.Forward{Proto: "tcp", HostAddr: netip.MustParseAddr("fe80::1%eth0"), HostPort: 8080, GuestPort: 80}},
		{"[::ffff:192.0.2.1]:8080:80", ctl.Forward{Proto: "tcp", HostAddr: netip.MustParseAddr("192.0.2.1"), HostPort: 8080, GuestPort: 80}},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			got, err := ParseForward(tc.spec)
			if err != nil {
				t.Fatalf("ParseForward(%q): %v", tc.spec, err)
			}
			if diff := cmp.Diff(tc.want, got, inbCmp); diff != "" {
				t.Errorf("ParseForward(%q) (-want +got):\n%s", tc.spec, diff)
			}
		})
	}
}

func TestParseForwardErrors(t *testing.T) {
	for _, tc := range []struct {
		name, spec, msg string
	}{
		{"empty", "", `empty port forward; want [HOSTADDR:]HOSTPORT:GUESTPORT[/tcp|/udp]`},
		{"one port", "8080", `port forward "8080": want [HOSTADDR:]HOSTPORT:GUESTPORT[/tcp|/udp]`},
		{"bad proto", "8080:80/sctp", `port forward "8080:80/sctp": unknown protocol "sctp"; want tcp or udp`},
		{"empty proto", "8080:80/", `port forward "8080:80/": empty protocol after /; want tcp or udp`},
		{"port zero", "0:80", `port forward "0:80": host port 0 is out of range 1-65535`},
		{"guest port zero", "80:0", `port forward "80:0": guest port 0 is out of range 1-65535`},
		{"port too big", "65536:80", `port forward "65536:80": host port 65536 is out of range 1-65535`},
		{"huge port", "99999999999:80", `port forward "99999999999:80": host port 99999999999 is out of range 1-65535`},
		{"not a number", "http:80", `port forward "http:80": host port "http" is not a number`},
		{"signed", "+80:80", `port forward "+80:80": host port "+80" is not a number`},
		{"empty host port", ":80", `port forward ":80": empty host port`},
		{"empty guest port", "80:", `port forward "80:": empty guest port`},
		{"space", " 80:80", `port forward " 80:80": host port " 80" is not a number`},
		{"bad address", "localhost:80:80", `port forward "localhost:80:80": host address "localhost" is not an IP address`},
		{"empty address", ":8080:80", `port forward ":8080:80": empty host address`},
		{"bad IPv4", "256.0.0.1:80:80", `port forward "256.0.0.1:80:80": host address "256.0.0.1" is not an IP address`},
		{"IPv6 unbracketed", "::1:8080:80", `port forward "::1:8080:80": too many colons; want [HOSTADDR:]HOSTPORT:GUESTPORT[/tcp|/udp] (an IPv6 host address goes in brackets, as in [::1]:8080:80)`},
		{"too many fields", "1.2.3.4:1:2:3", `port forward "1.2.3.4:1:2:3": too many colons; want [HOSTADDR:]HOSTPORT:GUESTPORT[/tcp|/udp] (an IPv6 host address goes in brackets, as in [::1]:8080:80)`},
		{"bracket unclosed", "[::1:8080:80", `port forward "[::1:8080:80": missing ] after the IPv6 host address`},
		{"no colon after bracket", "[::1]8080:80", `port forward "[::1]8080:80": want : after ]`},
		{"bracketed IPv4", "[127.0.0.1]:8080:80", `port forward "[127.0.0.1]:8080:80": brackets are for IPv6 addresses; write an IPv4 host address without them`},
		{"bracketed junk", "[nope]:8080:80", `port forward "[nope]:8080:80": host address "nope" is not an IP address`},
		{"bracketed one port", "[::1]:8080", `port forward "[::1]:8080": want [HOSTADDR:]HOSTPORT:GUESTPORT[/tcp|/udp]`},
		{"bracketed three ports", "[::1]:1:2:3", `port forward "[::1]:1:2:3": want [HOSTADDR:]HOSTPORT:GUESTPORT[/tcp|/udp]`},
		{"multicast", "224.0.0.1:80:80/udp", `port forward "224.0.0.1:80:80/udp": host address 224.0.0.1 is multicast`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseForward(tc.spec)
			if err == nil {
				t.Fatalf("ParseForward(%q) = %+v, want EINVAL", tc.spec, got)
			}
			if e := ctl.ErrnoOf(err); e != ctl.EINVAL {
				t.Errorf("ParseForward(%q): errno %v, want EINVAL", tc.spec, e)
			}
			var ce *ctl.Error
			if !errors.As(err, &ce) {
				t.Fatalf("ParseForward(%q): error %T is not a *ctl.Error", tc.spec, err)
			}
			if diff := cmp.Diff(tc.msg, ce.Msg); diff != "" {
				t.Errorf("ParseForward(%q) message (-want +got):\n%s", tc.spec, diff)
			}
		})
	}
}

func FuzzParseForward(f *testing.F) {
	for _, s := range []string{"8080:80", "[::1]:8080:80/udp", "127.0.0.1:1:2/tcp", "[", "::", "1:2:3:4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		fw, err := ParseForward(spec)
		if err != nil {
			if ctl.ErrnoOf(err) != ctl.EINVAL {
				t.Fatalf("ParseForward(%q): %v, want EINVAL", spec, err)
			}
			return
		}
		if fw.HostPort == 0 || fw.GuestPort == 0 || (fw.Proto != "tcp" && fw.Proto != "udp") {
			t.Fatalf("ParseForward(%q) = %+v: invalid result", spec, fw)
		}
		if fw.HostAddr.Is4In6() {
			t.Fatalf("ParseForward(%q) = %+v: mapped host address", spec, fw)
		}
	})
}

func mustParseForward(t *testing.T, spec string) ctl.Forward {
	t.Helper()
	f, err := ParseForward(spec)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestAddForwardErrors checks each refused AddForward and RemoveForward:
// the errno, and that the forwards are unchanged.
func TestAddForwardErrors(t *testing.T) {
	e := newInbEnv(t, nil)
	existing, err := e.gw.AddForward(mustParseForward(t, fmt.Sprintf("127.0.0.1:%d:80", inbFreePort(t, "tcp4", "127.0.0.1"))))
	if err != nil {
		t.Fatal(err)
	}

	// Ports held by the test itself.
	busyTCP, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busyTCP.Close()
	busyUDP, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busyUDP.Close()
	tcpPort := uint16(busyTCP.Addr().(*net.TCPAddr).Port)
	udpPort := uint16(busyUDP.LocalAddr().(*net.UDPAddr).Port)
	// A port that is free on 127.0.0.1 but held on 0.0.0.0 by nobody: the
	// wildcard forward of a held port fails and must release what it
	// opened.
	lo := netip.MustParseAddr("127.0.0.1")

	for _, tc := range []struct {
		name  string
		f     ctl.Forward
		errno ctl.Errno
		msg   string
	}{
		{"TCP port in use", ctl.Forward{Proto: "tcp", HostAddr: lo, HostPort: tcpPort, GuestPort: 80}, ctl.EADDRINUSE,
			fmt.Sprintf("port forward tcp 127.0.0.1:%d -> :80: host port tcp4 127.0.0.1:%d is already in use", tcpPort, tcpPort)},
		{"UDP port in use", ctl.Forward{Proto: "udp", HostAddr: lo, HostPort: udpPort, GuestPort: 53}, ctl.EADDRINUSE,
			fmt.Sprintf("port forward udp 127.0.0.1:%d -> :53: host port udp4 127.0.0.1:%d is already in use", udpPort, udpPort)},
		{"wildcard, port in use", ctl.Forward{Proto: "tcp", HostPort: tcpPort, GuestPort: 80}, ctl.EADDRINUSE,
			fmt.Sprintf("port forward tcp *:%d -> :80: host port tcp4 0.0.0.0:%d is already in use", tcpPort, tcpPort)},
		{"duplicate", existing, ctl.EEXIST,
			fmt.Sprintf("port forward tcp 127.0.0.1:%d -> :80: host port already forwarded by forward %d (tcp 127.0.0.1:%d -> :80)", existing.HostPort, existing.ID, existing.HostPort)},
		{"overlaps", ctl.Forward{Proto: "tcp", HostPort: existing.HostPort, GuestPort: 81}, ctl.EEXIST,
			fmt.Sprintf("port forward tcp *:%d -> :81: host port already forwarded by forward %d (tcp 127.0.0.1:%d -> :80)", existing.HostPort, existing.ID, existing.HostPort)},
		{"proto", ctl.Forward{Proto: "sctp", HostPort: 9999, GuestPort: 80}, ctl.EINVAL,
			`port forward: unknown protocol "sctp"; want tcp or udp`},
		{"host port 0", ctl.Forward{Proto: "tcp", GuestPort: 80}, ctl.EINVAL,
			"port forward tcp *:0 -> :80: host port 0; want 1-65535"},
		{"guest port 0", ctl.Forward{Proto: "udp", HostPort: 9999}, ctl.EINVAL,
			"port forward udp *:9999 -> :0: guest port 0; want 1-65535"},
		{"guest loopback", ctl.Forward{Proto: "tcp", HostPort: 9999, GuestAddr: lo, GuestPort: 80}, ctl.EINVAL,
			"port forward tcp *:9999 -> 127.0.0.1:80: guest address 127.0.0.1 is not a unicast address"},
		{"guest is gateway", ctl.Forward{Proto: "tcp", HostPort: 9999, GuestAddr: DefaultGatewayV4, GuestPort: 80}, ctl.EINVAL,
			"port forward tcp *:9999 -> 10.0.2.2:80: guest address 10.0.2.2 is the gateway's own"},
		{"not a host address", ctl.Forward{Proto: "tcp", HostAddr: netip.MustParseAddr("198.51.100.77"), HostPort: 9999, GuestPort: 80}, ctl.EADDRNOTAVAIL,
			"port forward tcp 198.51.100.77:9999 -> :80: 198.51.100.77 is not an address of this host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.gw.Forwards()
			got, err := e.gw.AddForward(tc.f)
			if err == nil {
				t.Fatalf("AddForward(%+v) = %+v, want %v", tc.f, got, tc.errno)
			}
			if e := ctl.ErrnoOf(err); e != tc.errno {
				t.Errorf("AddForward: errno %v (%v), want %v", e, err, tc.errno)
			}
			var ce *ctl.Error
			if errors.As(err, &ce) {
				if diff := cmp.Diff(tc.msg, ce.Msg); diff != "" {
					t.Errorf("message (-want +got):\n%s", diff)
				}
			}
			if diff := cmp.Diff(before, e.gw.Forwards(), inbCmp); diff != "" {
				t.Errorf("Forwards changed (-before +after):\n%s", diff)
			}
		})
	}

	t.Run("wildcard releases what it opened", func(t *testing.T) {
		// The IPv4 half of a wildcard forward opens, the IPv6 half finds
		// its port held: the IPv4 socket must be closed again.
		if !inbHasIPv6Loopback() {
			netnstest.Unavailable(t, "no IPv6 on this host")
		}
		held, err := net.Listen("tcp6", "[::]:0")
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		port := uint16(held.Addr().(*net.TCPAddr).Port)
		if _, err := e.gw.AddForward(ctl.Forward{Proto: "tcp", HostPort: port, GuestPort: 80}); ctl.ErrnoOf(err) != ctl.EADDRINUSE {
			t.Fatalf("AddForward on a port held on [::]: %v, want EADDRINUSE", err)
		}
		l, err := net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", port))
		if err != nil {
			t.Fatalf("the failed forward kept 0.0.0.0:%d: %v", port, err)
		}
		l.Close()
	})

	t.Run("remove unknown", func(t *testing.T) {
		before := e.gw.Forwards()
		err := e.gw.RemoveForward(4242)
		if ctl.ErrnoOf(err) != ctl.ENOENT {
			t.Errorf("RemoveForward(4242) = %v, want ENOENT", err)
		}
		if diff := cmp.Diff(before, e.gw.Forwards(), inbCmp); diff != "" {
			t.Errorf("Forwards changed (-before +after):\n%s", diff)
		}
	})

	t.Run("no family for the guest address", func(t *testing.T) {
		e4 := newInbEnv(t, func(c *Config) { c.V6 = Addrs{} })
		f := ctl.Forward{Proto: "tcp", HostPort: 9999, GuestAddr: DefaultGuestV6, GuestPort: 80}
		_, err := e4.gw.AddForward(f)
		if ctl.ErrnoOf(err) != ctl.EINVAL {
			t.Errorf("AddForward(%+v) = %v, want EINVAL", f, err)
		}
	})
}

func TestForwardIDsAndList(t *testing.T) {
	e := newInbEnv(t, nil)
	var want []ctl.Forward
	for _, spec := range []string{"127.0.0.1:%d:80", "127.0.0.1:%d:53/udp", "[::1]:%d:22"} {
		network := "tcp4"
		addr := "127.0.0.1"
		if strings.HasSuffix(spec, "/udp") {
			network = "udp4"
		}
		if strings.HasPrefix(spec, "[") {
			if !inbHasIPv6Loopback() {
				continue
			}
			network, addr = "tcp6", "::1"
		}
		f := mustParseForward(t, fmt.Sprintf(spec, inbFreePort(t, network, addr)))
		got, err := e.gw.AddForward(f)
		if err != nil {
			t.Fatal(err)
		}
		f.ID = len(want) + 1
		if diff := cmp.Diff(f, got, inbCmp); diff != "" {
			t.Errorf("AddForward (-want +got):\n%s", diff)
		}
		want = append(want, f)
	}
	if diff := cmp.Diff(want, e.gw.Forwards(), inbCmp); diff != "" {
		t.Errorf("Forwards (-want +got):\n%s", diff)
	}
	if err := e.gw.RemoveForward(1); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want[1:], e.gw.Forwards(), inbCmp); diff != "" {
		t.Errorf("Forwards after removing 1 (-want +got):\n%s", diff)
	}
	// IDs are not reused.
	f := mustParseForward(t, fmt.Sprintf("127.0.0.1:%d:80", inbFreePort(t, "tcp4", "127.0.0.1")))
	got, err := e.gw.AddForward(f)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != len(want)+1 {
		t.Errorf("ID after a removal = %d, want %d", got.ID, len(want)+1)
	}
}

// TestForwardTCPLoopbackClient forwards host loopback ports to the guest:
// a client on 127.0.0.1 or ::1 is masqueraded to the gateway address of
// the guest's family, and data flows both ways with half-close.
func TestForwardTCPLoopbackClient(t *testing.T) {
	e := newInbEnv(t, nil)
	seen := inbGuestTCPServer(t, e.guest, 8080)
	for _, tc := range []struct {
		name     string
		spec     string // %d is the host port
		network  string
		dial     string // host address to dial
		wantPeer netip.Addr
	}{
		{"IPv4", "127.0.0.1:%d:8080", "tcp4", "127.0.0.1", DefaultGatewayV4},
		{"IPv6", "[::1]:%d:8080", "tcp6", "::1", DefaultGatewayV6},
		{"wildcard via IPv4", "%d:8080", "tcp4", "127.0.0.1", DefaultGatewayV4},
		{"wildcard via IPv6", "%d:8080", "tcp6", "::1", DefaultGatewayV6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.network == "tcp6" && !inbHasIPv6Loopback() {
				netnstest.Unavailable(t, "no IPv6 loopback on this host")
			}
			port := inbFreePort(t, tc.network, tc.dial)
			f, err := e.gw.AddForward(mustParseForward(t, fmt.Sprintf(tc.spec, port)))
			if err != nil {
				t.Fatal(err)
			}
			defer e.gw.RemoveForward(f.ID)
			msg := strings.Repeat("hello through the forward\n", 4096) // > one window
			peer, echo := inbTalkTCP(t, net.JoinHostPort(tc.dial, fmt.Sprint(port)), msg)
			if peer.Addr() != tc.wantPeer {
				t.Errorf("the guest saw %s, want %s (masqueraded loopback client)", peer, tc.wantPeer)
			}
			if echo != msg {
				t.Errorf("echo of %d bytes: got %d bytes (equal: false)", len(msg), len(echo))
			}
			<-seen
		})
	}
}

// TestForwardTCPGuestAddrFamily forwards an IPv4 client to an explicit
// IPv6 guest address: the source is the IPv6 gateway address.
func TestForwardTCPGuestAddrFamily(t *testing.T) {
	e := newInbEnv(t, nil)
	inbGuestTCPServer(t, e.guest, 8080)
	port := inbFreePort(t, "tcp4", "127.0.0.1")
	_, err := e.gw.AddForward(ctl.Forward{Proto: "tcp", HostAddr: netip.MustParseAddr("127.0.0.1"), HostPort: port, GuestAddr: DefaultGuestV6, GuestPort: 8080})
	if err != nil {
		t.Fatal(err)
	}
	peer, echo := inbTalkTCP(t, fmt.Sprintf("127.0.0.1:%d", port), "x")
	if peer.Addr() != DefaultGatewayV6 || echo != "x" {
		t.Errorf("got peer %s echo %q, want %s and %q", peer, echo, DefaultGatewayV6, "x")
	}

	// A namespace without IPv6: an IPv6 client goes to the IPv4 guest.
	if !inbHasIPv6Loopback() {
		return
	}
	e4 := newInbEnv(t, func(c *Config) { c.V6 = Addrs{} })
	inbGuestTCPServer(t, e4.guest, 8080)
	port = inbFreePort(t, "tcp6", "::1")
	if _, err := e4.gw.AddForward(mustParseForward(t, fmt.Sprintf("[::1]:%d:8080", port))); err != nil {
		t.Fatal(err)
	}
	peer, _ = inbTalkTCP(t, fmt.Sprintf("[::1]:%d", port), "y")
	if peer.Addr() != DefaultGatewayV4 {
		t.Errorf("IPv6 client to an IPv4-only namespace: guest saw %s, want %s", peer, DefaultGatewayV4)
	}
}

// TestForwardTCPGuestRefuses: no server in the guest; the host client's
// connection is reset promptly, not left hanging.
func TestForwardTCPGuestRefuses(t *testing.T) {
	e := newInbEnv(t, nil)
	port := inbFreePort(t, "tcp4", "127.0.0.1")
	if _, err := e.gw.AddForward(mustParseForward(t, fmt.Sprintf("127.0.0.1:%d:9", port))); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	if errors.Is(err, syscall.ECONNRESET) {
		return // the reset came before connect(2) returned: fine too
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	if err == nil || errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		t.Fatalf("read from a forward to a closed guest port: %v, want EOF or reset", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestForwardRunTime adds and removes forwards while the gateway runs:
// removal closes the host port and the live connections.
func TestForwardRunTime(t *testing.T) {
	e := newInbEnv(t, nil)
	inbGuestTCPServer(t, e.guest, 8080)
	port := inbFreePort(t, "tcp4", "127.0.0.1")
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	spec := mustParseForward(t, addr+":8080")
	for round := range 2 { // the second round reuses the port
		f, err := e.gw.AddForward(spec)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if _, echo := inbTalkTCP(t, addr, "a"); echo != "a" {
			t.Fatalf("round %d: echo %q", round, echo)
		}
		live, err := net.Dial("tcp4", addr)
		if err != nil {
			t.Fatal(err)
		}
		live.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := bufio.NewReader(live).ReadString('\n'); err != nil {
			t.Fatalf("greeting on the live connection: %v", err)
		}
		if err := e.gw.RemoveForward(f.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := live.Read(make([]byte, 1)); err == nil || isTimeout(err) {
			t.Errorf("round %d: live connection after RemoveForward: read %v, want EOF or reset", round, err)
		}
		live.Close()
		if c, err := net.Dial("tcp4", addr); err == nil {
			c.Close()
			t.Errorf("round %d: %s still accepts after RemoveForward", round, addr)
		}
		if len(e.gw.Forwards()) != 0 {
			t.Errorf("round %d: Forwards() = %v after removal", round, e.gw.Forwards())
		}
		if err := e.gw.RemoveForward(f.ID); ctl.ErrnoOf(err) != ctl.ENOENT {
			t.Errorf("second RemoveForward(%d) = %v, want ENOENT", f.ID, err)
		}
	}
}

// TestForwardClose: Close ends the forwards and their connections;
// afterwards the forward calls are ENXIO.
func TestForwardClose(t *testing.T) {
	e := newInbEnv(t, nil)
	inbGuestTCPServer(t, e.guest, 8080)
	port := inbFreePort(t, "tcp4", "127.0.0.1")
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	f, err := e.gw.AddForward(mustParseForward(t, addr+":8080"))
	if err != nil {
		t.Fatal(err)
	}
	live, err := net.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	live.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := bufio.NewReader(live).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { e.gw.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return with a live forwarded connection")
	}
	if _, err := live.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("live connection after Close: read %v, want EOF or reset", err)
	}
	if _, err := e.gw.AddForward(mustParseForward(t, addr+":8080")); ctl.ErrnoOf(err) != ctl.ENXIO {
		t.Errorf("AddForward after Close = %v, want ENXIO", err)
	}
	if err := e.gw.RemoveForward(f.ID); ctl.ErrnoOf(err) != ctl.ENXIO {
		t.Errorf("RemoveForward after Close = %v, want ENXIO", err)
	}
	if got := e.gw.Forwards(); len(got) != 0 {
		t.Errorf("Forwards after Close = %v", got)
	}
}

// TestForwardUDP: datagrams both ways, a flow per client, masqueraded
// loopback clients, idle expiry, and a wildcard socket answering from the
// address the client used.
func TestForwardUDP(t *testing.T) {
	e := newInbEnv(t, func(c *Config) { c.UDPIdleTimeout = 300 * time.Millisecond })
	inbGuestUDPServer(t, e.guest, 5353)
	for _, tc := range []struct {
		name     string
		spec     string
		network  string
		dial     string
		wantPeer netip.Addr
	}{
		{"IPv4", "127.0.0.1:%d:5353/udp", "udp4", "127.0.0.1", DefaultGatewayV4},
		{"IPv6", "[::1]:%d:5353/udp", "udp6", "::1", DefaultGatewayV6},
		{"wildcard via 127.0.0.1", "%d:5353/udp", "udp4", "127.0.0.1", DefaultGatewayV4},
		{"wildcard via 127.0.0.2", "%d:5353/udp", "udp4", "127.0.0.2", DefaultGatewayV4},
		{"wildcard via ::1", "%d:5353/udp", "udp6", "::1", DefaultGatewayV6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.network == "udp6" && !inbHasIPv6Loopback() {
				netnstest.Unavailable(t, "no IPv6 loopback on this host")
			}
			port := inbFreePort(t, tc.network, tc.dial)
			f, err := e.gw.AddForward(mustParseForward(t, fmt.Sprintf(tc.spec, port)))
			if err != nil {
				t.Fatal(err)
			}
			defer e.gw.RemoveForward(f.ID)
			to := netip.AddrPortFrom(netip.MustParseAddr(tc.dial), port)
			// Two clients, two datagrams each: one flow per client. The
			// clients are connected sockets: a reply from any other
			// address than the one dialled would not reach them.
			var clients []*net.UDPConn
			for range 2 {
				c, err := net.DialUDP(tc.network, nil, net.UDPAddrFromAddrPort(to))
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				clients = append(clients, c)
			}
			ports := map[uint16]bool{}
			for i, c := range clients {
				for j := range 2 {
					msg := fmt.Sprintf("ping %d.%d", i, j)
					got := inbUDPExchange(t, c, msg)
					fields := strings.SplitN(got, " ", 3)
					if len(fields) != 3 || fields[0] != "from" {
						t.Fatalf("reply %q, want from ADDR:PORT %s", got, msg)
					}
					peer, err := netip.ParseAddrPort(fields[1])
					if err != nil {
						t.Fatalf("reply %q: %v", got, err)
					}
					if peer.Addr() != tc.wantPeer || fields[2] != msg {
						t.Errorf("reply %q, want from %s:* %s", got, tc.wantPeer, msg)
					}
					ports[peer.Port()] = true
				}
			}
			if len(ports) != 2 {
				t.Errorf("guest saw source ports %v, want two (one flow per client)", ports)
			}
			// Idle flows expire.
			fw := inbForwarder(t, e.gw, f.ID)
			deadline := time.Now().Add(5 * time.Second)
			for fw.flowCount() != 0 {
				if time.Now().After(deadline) {
					t.Fatalf("%d flows still open after the idle timeout", fw.flowCount())
				}
				time.Sleep(50 * time.Millisecond)
			}
			// A new datagram opens a new flow.
			inbUDPExchange(t, clients[0], "again")
		})
	}
}

// inbUDPExchange sends msg on c and returns the reply, retrying a few
// times (ARP/NDP may drop the first datagram).
func inbUDPExchange(t *testing.T, c *net.UDPConn, msg string) string {
	t.Helper()
	buf := make([]byte, 2048)
	for try := range 5 {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(time.Duration(try+1) * 500 * time.Millisecond))
		n, err := c.Read(buf)
		if err == nil {
			return string(buf[:n])
		}
		if !isTimeout(err) {
			t.Fatalf("read reply to %q: %v", msg, err)
		}
	}
	t.Fatalf("no reply to %q", msg)
	return ""
}

func inbForwarder(t *testing.T, g *Gateway, id int) *forwarder {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	fw, ok := g.forwards[id]
	if !ok {
		t.Fatalf("no forward %d", id)
	}
	return fw
}

func (fw *forwarder) flowCount() int {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return len(fw.flows)
}

// TestForwardPath checks where each kind of client comes from in the
// namespace.
func TestForwardPath(t *testing.T) {
	g := &Gateway{cfg: inbConfig()}
	ap := netip.MustParseAddrPort
	for _, tc := range []struct {
		name     string
		masq     bool // Config.MasqueradeForwards
		guest    netip.Addr
		client   netip.AddrPort
		src, dst netip.AddrPort
	}{
		{"real IPv4 client", false, netip.Addr{}, ap("198.51.100.7:40000"), ap("198.51.100.7:40000"), ap("10.0.2.100:80")},
		{"real IPv6 client", false, netip.Addr{}, ap("[2001:db8::7]:40000"), ap("[2001:db8::7]:40000"), ap("[fd00::100]:80")},
		{"masquerade on", true, netip.Addr{}, ap("198.51.100.7:40000"), ap("10.0.2.2:0"), ap("10.0.2.100:80")},
		{"loopback", false, netip.Addr{}, ap("127.0.0.1:40000"), ap("10.0.2.2:0"), ap("10.0.2.100:80")},
		{"loopback 127/8", false, netip.Addr{}, ap("127.3.4.5:40000"), ap("10.0.2.2:0"), ap("10.0.2.100:80")},
		{"IPv6 loopback", false, netip.Addr{}, ap("[::1]:40000"), ap("[fd00::2]:0"), ap("[fd00::100]:80")},
		{"link-local", false, netip.Addr{}, ap("[fe80::1]:40000"), ap("[fd00::2]:0"), ap("[fd00::100]:80")},
		{"inside the namespace subnet", false, netip.Addr{}, ap("10.0.2.50:40000"), ap("10.0.2.2:0"), ap("10.0.2.100:80")},
		{"IPv4 client to IPv6 guest", false, DefaultGuestV6, ap("198.51.100.7:40000"), ap("[fd00::2]:0"), ap("[fd00::100]:80")},
		{"explicit guest", false, netip.MustParseAddr("10.0.2.15"), ap("198.51.100.7:40000"), ap("198.51.100.7:40000"), ap("10.0.2.15:80")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g.cfg.MasqueradeForwards = tc.masq
			fw := &forwarder{g: g, spec: ctl.Forward{Proto: "tcp", HostPort: 8080, GuestAddr: tc.guest, GuestPort: 80}}
			src, dst, masq := fw.path(tc.client)
			if diff := cmp.Diff([]netip.AddrPort{tc.src, tc.dst}, []netip.AddrPort{src, dst}, inbCmp); diff != "" {
				t.Errorf("path(%s) (-want +got):\n%s", tc.client, diff)
			}
			if want := tc.src != tc.client; masq != want {
				t.Errorf("path(%s): masqueraded %v, want %v", tc.client, masq, want)
			}
		})
	}
}
