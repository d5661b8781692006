package services

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapstack/tapstack/internal/loopstack"

	"gvisor.dev/gvisor/pkg/refs"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

func TestMain(m *testing.M) {
	refs.SetLeakMode(refs.LeaksPanic)
	code := m.Run()
	refs.DoLeakCheck()
	os.Exit(code)
}

const nicID = loopstack.NICID

var (
	v4Loopback = loopstack.V4
	v6Loopback = loopstack.V6
)

// family is one address family the tests run over.
type family struct {
	name  string
	proto tcpip.NetworkProtocolNumber
	addr  tcpip.Address
}

var families = []family{
	{"IPv4", ipv4.ProtocolNumber, v4Loopback},
	{"IPv6", ipv6.ProtocolNumber, v6Loopback},
}

// newStack returns a gVisor stack with one loopback NIC holding 127.0.0.1/8
// and ::1/128, closed when the test ends.
func newStack(t *testing.T) *gstack.Stack {
	return loopstack.New(t)
}

func start(t *testing.T, s *gstack.Stack, names []string, opts Options) *Services {
	t.Helper()
	sv, err := StartWithOptions(s, names, opts)
	if err != nil {
		t.Fatalf("StartWithOptions(%q): %v", names, err)
	}
	t.Cleanup(sv.Close)
	return sv
}

func dialTCP(t *testing.T, s *gstack.Stack, f family, port uint16) *gonet.TCPConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := gonet.DialContextTCP(ctx, s, tcpip.FullAddress{NIC: nicID, Addr: f.addr, Port: port}, f.proto)
	if err != nil {
		t.Fatalf("dial tcp %s port %d: %v", f.addr, port, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func dialUDP(t *testing.T, s *gstack.Stack, f family, port uint16) *gonet.UDPConn {
	t.Helper()
	c, err := gonet.DialUDP(s, nil, &tcpip.FullAddress{NIC: nicID, Addr: f.addr, Port: port}, f.proto)
	if err != nil {
		t.Fatalf("dial udp %s port %d: %v", f.addr, port, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readAll reads c to EOF within the deadline.
func readAll(t *testing.T, c net.Conn) []byte {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read until EOF: %v (got %q so far)", err, got)
	}
	return got
}

func TestStartUnknownService(t *testing.T) {
	s := newStack(t)
	sv, err := Start(s, []string{"echo", "chargen"})
	if err == nil {
		sv.Close()
		t.Fatal("Start with chargen succeeded, want error")
	}
	for _, want := range []string{`"chargen"`, "echo", "discard"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	// Nothing may have been started: echo's port is still free.
	sv2 := start(t, s, []string{"echo"}, Options{})
	sv2.Close()
}

func TestStartPortInUse(t *testing.T) {
	s := newStack(t)
	start(t, s, []string{"echo"}, Options{})
	_, err := Start(s, []string{"discard", "echo"})
	if err == nil {
		t.Fatal("second Start of echo succeeded, want port-in-use error")
	}
	if !strings.Contains(err.Error(), "echo") || !strings.Contains(err.Error(), ":7") {
		t.Errorf("error %q does not name the service and port", err)
	}
	t.Logf("error: %v", err)
	// The partial start was undone: discard's port is free again.
	start(t, s, []string{"discard"}, Options{})
}

func TestNames(t *testing.T) {
	got := strings.Join(Names(), ",")
	if want := "discard,echo,iperf3"; got != want {
		t.Errorf("Names() = %s, want %s", got, want)
	}
}

// TestIperf3Service: "iperf3" starts the iperf3 server on port 5201 for
// both families (its protocol is tested in package iperf); Close stops it
// and frees the port.
func TestIperf3Service(t *testing.T) {
	s := newStack(t)
	sv := start(t, s, []string{"echo", "iperf3", "iperf3"}, Options{})
	for _, f := range families {
		c := dialTCP(t, s, f, 5201)
		if _, err := c.Write(make([]byte, 37)); err != nil {
			t.Fatalf("%s: send cookie: %v", f.name, err)
		}
		// PARAM_EXCHANGE (9), or ACCESS_DENIED (-1) if the server has
		// not yet seen the previous family's connection close: either
		// is iperf3 answering.
		var b [1]byte
		if _, err := io.ReadFull(c, b[:]); err != nil || (b[0] != 9 && b[0] != 0xff) {
			t.Errorf("%s: first state %d, %v; want PARAM_EXCHANGE (9) or ACCESS_DENIED (-1)", f.name, int8(b[0]), err)
		}
		c.Close()
	}
	sv.Close()
	// Closed means the port is free for another start.
	start(t, s, []string{"iperf3"}, Options{})
}

func TestTCPEcho(t *testing.T) {
	s := newStack(t)
	start(t, s, []string{"echo", "echo"}, Options{}) // a repeated name is served once
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			c := dialTCP(t, s, f, EchoPort)
			msg := []byte("hello tapstack\n")
			if _, err := c.Write(msg); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(msg))
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatalf("read echo: %v", err)
			}
			if !bytes.Equal(got, msg) {
				t.Errorf("echo = %q, want %q", got, msg)
			}

			// A larger payload, then half-close: the server echoes it
			// all, then closes.
			big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10/16)
			go func() {
				c.Write(big)
				c.CloseWrite()
			}()
			if got := readAll(t, c); !bytes.Equal(got, big) {
				t.Errorf("echo of %d bytes returned %d bytes (equal: false)", len(big), len(got))
			}
		})
	}
}

func TestTCPDiscard(t *testing.T) {
	s := newStack(t)
	start(t, s, []string{"discard"}, Options{})
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			c := dialTCP(t, s, f, DiscardPort)
			if _, err := c.Write(bytes.Repeat([]byte("x"), 100<<10)); err != nil {
				t.Fatal(err)
			}
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, c); len(got) != 0 {
				t.Errorf("discard returned %q, want nothing", got)
			}
		})
	}
}

func TestOnlyNamedServicesListen(t *testing.T) {
	s := newStack(t)
	start(t, s, []string{"discard"}, Options{})
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			_, err := gonet.DialTCP(s, tcpip.FullAddress{NIC: nicID, Addr: f.addr, Port: EchoPort}, f.proto)
			if err == nil {
				t.Fatal("dial echo succeeded with only discard started")
			}
		})
	}
}

func TestUDPEcho(t *testing.T) {
	s := newStack(t)
	start(t, s, []string{"echo", "discard"}, Options{})
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			c := dialUDP(t, s, f, EchoPort)
			for _, msg := range []string{"hello tapstack", strings.Repeat("u", 8000)} {
				if _, err := c.Write([]byte(msg)); err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 10000)
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, err := c.Read(buf)
				if err != nil {
					t.Fatalf("read echo: %v", err)
				}
				if got := string(buf[:n]); got != msg {
					t.Errorf("echo of %d bytes = %d bytes %.20q", len(msg), n, got)
				}
			}
		})
	}
}

// TestUDPEchoSource checks that a reply leaves from the address the
// request was sent to, also when that is not the NIC's first address (a
// secondary ipif): a client whose socket is connected to that address
// drops a reply from any other.
func TestUDPEchoSource(t *testing.T) {
	s := newStack(t)
	addrs := []struct {
		proto       tcpip.NetworkProtocolNumber
		first, addr tcpip.Address
		prefix      int
	}{
		{ipv4.ProtocolNumber, tcpip.AddrFrom4([4]byte{10, 0, 0, 1}), tcpip.AddrFrom4([4]byte{10, 0, 0, 3}), 24},
		{ipv6.ProtocolNumber, tcpip.AddrFrom16Slice(net.ParseIP("2001:db8::1")), tcpip.AddrFrom16Slice(net.ParseIP("2001:db8::3")), 64},
	}
	for _, a := range addrs {
		for _, addr := range []tcpip.Address{a.first, a.addr} {
			pa := tcpip.ProtocolAddress{Protocol: a.proto, AddressWithPrefix: tcpip.AddressWithPrefix{Address: addr, PrefixLen: a.prefix}}
			if err := s.AddProtocolAddress(nicID, pa, gstack.AddressProperties{}); err != nil {
				t.Fatalf("AddProtocolAddress(%s): %s", pa.AddressWithPrefix, err)
			}
		}
	}
	start(t, s, []string{"echo"}, Options{})

	// Broadcast and multicast destinations are never a reply's source.
	v4 := &udpSocket{s: s, proto: ipv4.ProtocolNumber}
	v6 := &udpSocket{s: s, proto: ipv6.ProtocolNumber}
	for _, tc := range []struct {
		u    *udpSocket
		dst  string
		want string
	}{
		{v4, "10.0.0.3", "10.0.0.3"},
		{v4, "10.0.0.255", ""},
		{v4, "255.255.255.255", ""},
		{v4, "224.0.0.1", ""},
		{v6, "2001:db8::3", "2001:db8::3"},
		{v6, "ff02::1", ""},
	} {
		ip := net.ParseIP(tc.dst)
		if ip4 := ip.To4(); ip4 != nil {
			ip = ip4
		}
		got := tc.u.sourceFor(nicID, tcpip.AddrFromSlice(ip))
		if want := tc.want; (want == "" && got.BitLen() != 0) || (want != "" && got.String() != want) {
			t.Errorf("sourceFor(%s) = %q, want %q", tc.dst, got, want)
		}
	}

	for _, a := range addrs {
		for _, dst := range []tcpip.Address{a.first, a.addr} {
			t.Run(dst.String(), func(t *testing.T) {
				// Unconnected, so that a reply from the wrong
				// address arrives and can be named.
				c, err := gonet.DialUDP(s, &tcpip.FullAddress{NIC: nicID, Addr: a.first}, nil, a.proto)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				to := &net.UDPAddr{IP: net.IP(dst.AsSlice()), Port: EchoPort}
				if _, err := c.WriteTo([]byte("from where?"), to); err != nil {
					t.Fatal(err)
				}
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 100)
				n, from, err := c.ReadFrom(buf)
				if err != nil {
					t.Fatalf("read echo: %v", err)
				}
				if got := string(buf[:n]); got != "from where?" {
					t.Errorf("echo = %q", got)
				}
				if ua := from.(*net.UDPAddr); !ua.IP.Equal(to.IP) || ua.Port != EchoPort {
					t.Errorf("reply to a request for %s came from %s", to, from)
				}
			})
		}
	}
}

func TestUDPDiscard(t *testing.T) {
	s := newStack(t)
	start(t, s, []string{"echo", "discard"}, Options{})
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			c := dialUDP(t, s, f, DiscardPort)
			if _, err := c.Write([]byte("into the void")); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			n, err := c.Read(make([]byte, 100))
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("read from discard = %d bytes, %v; want a timeout", n, err)
			}
		})
	}
}

func TestIdleTimeout(t *testing.T) {
	s := newStack(t)
	start(t, s, []string{"echo", "discard"}, Options{IdleTimeout: 200 * time.Millisecond})
	for _, port := range []uint16{EchoPort, DiscardPort} {
		c := dialTCP(t, s, families[0], port)
		began := time.Now()
		if got := readAll(t, c); len(got) != 0 {
			t.Errorf("port %d: idle connection returned %q", port, got)
		}
		if d := time.Since(began); d > 3*time.Second {
			t.Errorf("port %d: idle connection closed after %v, want about 200ms", port, d)
		}
	}
}

func TestMaxConns(t *testing.T) {
	s := newStack(t)
	start(t, s, []string{"echo"}, Options{MaxConns: 1})
	first := dialTCP(t, s, families[0], EchoPort)
	// Make sure the first connection is being served before the second.
	first.Write([]byte("a"))
	first.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(first, make([]byte, 1)); err != nil {
		t.Fatalf("first connection: %v", err)
	}

	second := dialTCP(t, s, families[0], EchoPort)
	second.Write([]byte("b"))
	second.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := second.Read(make([]byte, 1)); err == nil {
		t.Errorf("connection beyond MaxConns read %d bytes, want it closed", n)
	}

	// The first is unaffected, and once it ends a new one is served.
	first.Write([]byte("c"))
	if _, err := io.ReadFull(first, make([]byte, 1)); err != nil {
		t.Fatalf("first connection after the refused one: %v", err)
	}
	first.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		third := dialTCP(t, s, families[0], EchoPort)
		third.Write([]byte("d"))
		third.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(third, make([]byte, 1)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no connection served after the first one closed")
		}
		time.Sleep(20 * time.Millisecond) // the first one's goroutine may not have ended yet
	}
}

func TestClose(t *testing.T) {
	s := newStack(t)
	sv, err := Start(s, []string{"echo", "discard"})
	if err != nil {
		t.Fatal(err)
	}

	// Connections in every state: idle, mid-echo with a writer that never
	// reads (so the server blocks in Write), and discarding.
	var conns []*gonet.TCPConn
	for _, f := range families {
		conns = append(conns, dialTCP(t, s, f, EchoPort), dialTCP(t, s, f, DiscardPort))
		stuck := dialTCP(t, s, f, EchoPort)
		conns = append(conns, stuck)
		go func() {
			buf := make([]byte, 64<<10)
			for {
				stuck.SetWriteDeadline(time.Now().Add(10 * time.Second))
				if _, err := stuck.Write(buf); err != nil {
					return
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond) // let the server block on the stuck ones

	closed := make(chan struct{})
	go func() {
		var wg sync.WaitGroup
		for range 3 { // concurrent calls all wait
			wg.Go(sv.Close)
		}
		wg.Wait()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return within 10s")
	}
	sv.Close() // again, after the fact

	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			_, err := c.Read(make([]byte, 64<<10))
			if err == nil {
				continue // echoed data still in flight
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Errorf("conn %d still open after Close", i)
			}
			break
		}
	}
	for _, f := range families {
		for _, port := range []uint16{EchoPort, DiscardPort} {
			c, err := gonet.DialTCP(s, tcpip.FullAddress{NIC: nicID, Addr: f.addr, Port: port}, f.proto)
			if err == nil {
				c.Close()
				t.Errorf("%s port %d still accepts after Close", f.name, port)
			}
		}
	}
	// The ports are free again.
	start(t, s, []string{"echo", "discard"}, Options{})
}
