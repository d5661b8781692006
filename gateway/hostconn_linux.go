package gateway

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dialTCP opens a host TCP connection with system calls of its own rather
// than net.Dialer's, for the one reason that the connect(2) and the
// shutdown(2) of a loopback connection run the peer's side inline and
// take tens of µs: made with Syscall, sysmon hands the thread's P to
// another thread meanwhile, two context switches each, which under
// --sched loop (GOMAXPROCS=1) was a third of the daemon's switches per
// connection. connect and shutdown here use RawSyscall: the socket is
// non-blocking, so neither waits. The descriptor then goes to Go's poller
// through os.NewFile, which also waits for a connect still in progress.
func dialTCP(ctx context.Context, laddr netip.Addr, device string, raddr netip.AddrPort) (_ *hostConn, err error) {
	family := unix.AF_INET
	if raddr.Addr().Is6() {
		family = unix.AF_INET6
	}
	if laddr.IsValid() && laddr.Is6() != raddr.Addr().Is6() {
		return nil, fmt.Errorf("connect to %v from %v: %w", raddr, laddr, unix.EAFNOSUPPORT)
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	f := os.NewFile(uintptr(fd), "tcp "+raddr.String()) // owns fd from here on
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	// Keepalive with the kernel's timings; no Nagle, as net.Dial does.
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
		return nil, os.NewSyscallError("setsockopt TCP_NODELAY", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1); err != nil {
		return nil, os.NewSyscallError("setsockopt SO_KEEPALIVE", err)
	}
	if raddr.Addr().Unmap().IsLoopback() {
		// Best effort: a kernel without it keeps its default.
		unix.SetsockoptString(fd, unix.IPPROTO_TCP, unix.TCP_CONGESTION, loopbackCongestion)
	}
	if device != "" {
		if err := unix.BindToDevice(fd, device); err != nil {
			return nil, fmt.Errorf("SO_BINDTODEVICE %s: %w", device, err)
		}
	}
	if laddr.IsValid() {
		la, lalen := rawSockaddr(netip.AddrPortFrom(laddr, 0), family)
		if _, _, errno := unix.RawSyscall(unix.SYS_BIND, uintptr(fd), uintptr(unsafe.Pointer(&la)), uintptr(lalen)); errno != 0 {
			return nil, os.NewSyscallError("bind", errno)
		}
	}
	sa, salen := rawSockaddr(raddr, family)
	switch _, _, errno := unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa)), uintptr(salen)); errno {
	case 0:
	case unix.EINPROGRESS, unix.EINTR:
		if err := waitConnected(ctx, f); err != nil {
			return nil, err
		}
	default:
		return nil, os.NewSyscallError("connect", errno)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &hostConn{f: f, rc: rc, raddr: raddr}, nil
}

// loopbackCongestion is the congestion control of host connections to a
// loopback address. A host's default may be BBR, which paces every
// connection with timers; over loopback there is no queue to spare and
// pacing only costs the daemon CPU and throughput (measured on this
// project's bench machine, BBR the default: a namespace→host stream at
// MTU 65520 went from 12.1–12.4 to 13.6–16.8 Gbit/s with CUBIC, which
// paces nothing without an fq qdisc). Connections to other addresses keep
// the host's choice.
const loopbackCongestion = "cubic"

// waitConnected waits in the poller until the connect under way on f ends,
// or ctx does.
func waitConnected(ctx context.Context, f *os.File) error {
	if d, ok := ctx.Deadline(); ok {
		f.SetWriteDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { f.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var cerr error
	werr := rc.Write(func(fd uintptr) bool {
		soerr, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil {
			cerr = os.NewSyscallError("getsockopt", err)
			return true
		}
		switch e := syscall.Errno(soerr); e {
		case 0:
			// The poller may wake early: connected only with a peer.
			_, err := unix.Getpeername(int(fd))
			return err == nil
		case unix.EINPROGRESS, unix.EALREADY, unix.EINTR:
			return false
		default:
			cerr = os.NewSyscallError("connect", e)
			return true
		}
	})
	f.SetWriteDeadline(time.Time{})
	switch {
	case cerr != nil:
		return cerr
	case werr != nil && ctx.Err() != nil:
		return fmt.Errorf("connect: %w", ctx.Err())
	case werr != nil:
		return fmt.Errorf("connect: %w", werr)
	}
	return nil
}

// rawSockaddr encodes ap for bind(2) and connect(2).
func rawSockaddr(ap netip.AddrPort, family int) (sa unix.RawSockaddrAny, n int) {
	port := ap.Port()
	if family == unix.AF_INET6 {
		s := (*unix.RawSockaddrInet6)(unsafe.Pointer(&sa))
		s.Family = unix.AF_INET6
		s.Port = port>>8 | port<<8
		s.Addr = ap.Addr().As16()
		return sa, unix.SizeofSockaddrInet6
	}
	s := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa))
	s.Family = unix.AF_INET
	s.Port = port>>8 | port<<8
	s.Addr = ap.Addr().Unmap().As4()
	return sa, unix.SizeofSockaddrInet4
}

// hostConn is a connected host TCP socket: a net.Conn over an *os.File in
// Go's poller, with the descriptor's RawConn for the relay, a half-close
// and a reset. Safe for concurrent use as net.Conn is.
type hostConn struct {
	f     *os.File
	rc    syscall.RawConn
	raddr netip.AddrPort
}

var _ hostStream = (*hostConn)(nil)

func (c *hostConn) Read(p []byte) (int, error)  { return c.f.Read(p) }
func (c *hostConn) Write(p []byte) (int, error) { return c.f.Write(p) }
func (c *hostConn) Close() error                { return c.f.Close() }

// CloseWrite half-closes the connection (a FIN to the host peer), through
// RawSyscall for the reason dialTCP gives.
func (c *hostConn) CloseWrite() error {
	var errno syscall.Errno
	if err := c.rc.Control(func(fd uintptr) {
		_, _, errno = unix.RawSyscall(unix.SYS_SHUTDOWN, fd, unix.SHUT_WR, 0)
	}); err != nil {
		return err
	}
	if errno != 0 {
		return os.NewSyscallError("shutdown", errno)
	}
	return nil
}

// SetLinger sets SO_LINGER (0: Close resets the connection).
func (c *hostConn) SetLinger(sec int) error {
	var serr error
	if err := c.rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptLinger(int(fd), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: int32(sec)})
	}); err != nil {
		return err
	}
	return serr
}

func (c *hostConn) SyscallConn() (syscall.RawConn, error) { return c.rc, nil }

func (c *hostConn) LocalAddr() net.Addr {
	var a net.Addr = &net.TCPAddr{}
	c.rc.Control(func(fd uintptr) {
		sa, err := unix.Getsockname(int(fd))
		if err != nil {
			return
		}
		switch sa := sa.(type) {
		case *unix.SockaddrInet4:
			a = &net.TCPAddr{IP: net.IP(sa.Addr[:]).To16(), Port: sa.Port}
		case *unix.SockaddrInet6:
			a = &net.TCPAddr{IP: net.IP(sa.Addr[:]), Port: sa.Port}
		}
	})
	return a
}

func (c *hostConn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(c.raddr) }

func (c *hostConn) SetDeadline(t time.Time) error      { return c.f.SetDeadline(t) }
func (c *hostConn) SetReadDeadline(t time.Time) error  { return c.f.SetReadDeadline(t) }
func (c *hostConn) SetWriteDeadline(t time.Time) error { return c.f.SetWriteDeadline(t) }
