package gateway

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapstack/tapstack/internal/netnstest"
)

func TestDialTCP(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		t.Run(network, func(t *testing.T) {
			addr := map[string]string{"tcp4": "127.0.0.1:0", "tcp6": "[::1]:0"}[network]
			ln, err := net.Listen(network, addr)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			got := make(chan string, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					got <- err.Error()
					return
				}
				defer c.Close()
				c.Write([]byte("hello"))
				b, err := io.ReadAll(c) // until the half-close
				if err != nil {
					got <- err.Error()
					return
				}
				got <- string(b)
			}()
			raddr := netip.MustParseAddrPort(ln.Addr().String())
			c, err := dialTCP(context.Background(), netip.Addr{}, "", raddr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if c.RemoteAddr().String() != raddr.String() {
				t.Errorf("RemoteAddr %v, want %v", c.RemoteAddr(), raddr)
			}
			if la := c.LocalAddr().(*net.TCPAddr); la.Port == 0 || !la.IP.IsLoopback() {
				t.Errorf("LocalAddr %v", la)
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			b := make([]byte, 5)
			if _, err := io.ReadFull(c, b); err != nil || string(b) != "hello" {
				t.Fatalf("read %q, %v", b, err)
			}
			c.Write([]byte("bye"))
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if s := <-got; s != "bye" {
				t.Fatalf("server read %q after the half-close", s)
			}
			if _, err := c.Read(b); err != io.EOF {
				t.Fatalf("read after the server closed: %v, want EOF", err)
			}
		})
	}
}

func TestDialTCPRefused(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	raddr := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close() // nobody listens there now
	_, err = dialTCP(context.Background(), netip.Addr{}, "", raddr)
	if !errors.Is(err, syscall.ECONNREFUSED) || !refusedError(err) {
		t.Fatalf("dial to a closed port: %v, want ECONNREFUSED, classed as refused", err)
	}
}

// TestDialTCPTimeout: a connect the peer never answers (its accept queue
// is full, so the kernel drops the SYN) ends at the context's deadline,
// classed as lost rather than refused.
func TestDialTCPTimeout(t *testing.T) {
	// A listener with the smallest backlog, which net.Listen does not offer.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	raddr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*unix.SockaddrInet4).Port))
	// Fill the accept queue (never accepted) until a connect hangs.
	var fill []*hostConn
	defer func() {
		for _, c := range fill {
			c.Close()
		}
	}()
	for range 1024 {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		start := time.Now()
		c, err := dialTCP(ctx, netip.Addr{}, "", raddr)
		cancel()
		if err == nil {
			fill = append(fill, c)
			continue
		}
		if refusedError(err) {
			t.Fatalf("a connect that timed out is classed as refused: %v", err)
		}
		var ne net.Error
		if !errors.Is(err, context.DeadlineExceeded) && !(errors.As(err, &ne) && ne.Timeout()) {
			t.Fatalf("dial error %v, want a timeout", err)
		}
		if d := time.Since(start); d < 250*time.Millisecond || d > 3*time.Second {
			t.Fatalf("timed out after %v, want about 300ms", d)
		}
		return
	}
	t.Fatal("the accept queue never filled")
}

// TestHostConnLinger: SetLinger(0) then Close resets the connection.
func TestHostConnLinger(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	res := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			res <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1))
		res <- err
	}()
	c, err := dialTCP(context.Background(), netip.Addr{}, "", netip.MustParseAddrPort(ln.Addr().String()))
	if err != nil {
		t.Fatal(err)
	}
	abortHost(c)
	if err := <-res; !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("server read after the abort: %v, want ECONNRESET", err)
	}
}

// TestDialTCPFamilyMismatch: a source address of the other family is
// refused with an error, not a panic, and opens nothing.
func TestDialTCPFamilyMismatch(t *testing.T) {
	_, err := dialTCP(context.Background(), netip.MustParseAddr("::1"), "", netip.MustParseAddrPort("127.0.0.1:9"))
	if !errors.Is(err, syscall.EAFNOSUPPORT) {
		t.Fatalf("IPv6 source for an IPv4 destination: %v, want EAFNOSUPPORT", err)
	}
}

// A connection to a loopback address runs CUBIC, whatever the host's
// default (BBR paces over loopback for nothing).
func TestDialTCPLoopbackCongestion(t *testing.T) {
	avail, err := os.ReadFile("/proc/sys/net/ipv4/tcp_available_congestion_control")
	if err != nil || !slices.Contains(strings.Fields(string(avail)), loopbackCongestion) {
		netnstest.Unavailable(t, "kernel without %s congestion control (%q, %v)", loopbackCongestion, avail, err)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := dialTCP(context.Background(), netip.Addr{}, "", netip.MustParseAddrPort(ln.Addr().String()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var (
		cc     string
		optErr error
	)
	if err := c.rc.Control(func(fd uintptr) {
		cc, optErr = unix.GetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION)
	}); err != nil {
		t.Fatal(err)
	}
	if optErr != nil || cc != loopbackCongestion {
		t.Fatalf("TCP_CONGESTION %q, %v; want %q", cc, optErr, loopbackCongestion)
	}
}
