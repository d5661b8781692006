package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Dial implements HostDialer: TCP with dialTCP, UDP with net.Dialer (the
// device binding is made in Control, before connect).
func (hostDialer) Dial(ctx context.Context, network string, laddr netip.Addr, device string, raddr netip.AddrPort) (net.Conn, error) {
	if network == "tcp4" || network == "tcp6" {
		c, err := dialTCP(ctx, laddr, device, raddr)
		if err != nil {
			return nil, err // not a nil *hostConn in a non-nil interface
		}
		return c, nil
	}
	var d net.Dialer
	if laddr.IsValid() {
		switch network {
		case "tcp4", "tcp6":
			d.LocalAddr = &net.TCPAddr{IP: laddr.AsSlice()}
		case "udp4", "udp6":
			d.LocalAddr = &net.UDPAddr{IP: laddr.AsSlice()}
		}
	}
	if device != "" {
		d.Control = func(_, _ string, c syscall.RawConn) error {
			return bindToDevice(c, device)
		}
	}
	return d.DialContext(ctx, network, raddr.String())
}

func bindToDevice(c syscall.RawConn, device string) error {
	var serr error
	if err := c.Control(func(fd uintptr) { serr = unix.BindToDevice(int(fd), device) }); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("SO_BINDTODEVICE %s: %w", device, serr)
	}
	return nil
}

// ListenICMP implements HostDialer: a datagram ICMP socket if
// net.ipv4.ping_group_range admits our group, else a raw one (which needs
// CAP_NET_RAW). A raw socket is given a kernel filter that passes echo
// replies only.
func (hostDialer) ListenICMP(network string, laddr netip.Addr, device string) (ICMPConn, error) {
	family, proto := unix.AF_INET, unix.IPPROTO_ICMP
	if network == "ip6" {
		family, proto = unix.AF_INET6, unix.IPPROTO_ICMPV6
	} else if network != "ip4" {
		return nil, fmt.Errorf("ICMP socket: unknown network %q", network)
	}
	const flags = unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC
	datagram := true
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|flags, proto)
	if err != nil {
		// EACCES: our group is outside ping_group_range; EPROTONOSUPPORT:
		// a kernel without ping sockets.
		var rerr error
		fd, rerr = unix.Socket(family, unix.SOCK_RAW|flags, proto)
		if rerr != nil {
			return nil, fmt.Errorf("ICMP socket (%s): datagram: %v; raw: %w", network, err, rerr)
		}
		datagram = false
	}
	c := &icmpSocket{v6: family == unix.AF_INET6, datagram: datagram}
	if err := c.setup(fd, laddr, device); err != nil {
		unix.Close(fd)
		return nil, err
	}
	// A non-blocking descriptor becomes pollable: reads park on the
	// runtime's poller, and Close wakes them.
	c.f = os.NewFile(uintptr(fd), "icmp")
	rc, err := c.f.SyscallConn()
	if err != nil {
		c.f.Close()
		return nil, err
	}
	c.rc = rc
	return c, nil
}

// icmpSocket is an ICMPConn over a socket descriptor.
type icmpSocket struct {
	v6, datagram bool
	f            *os.File
	rc           syscall.RawConn
}

func (c *icmpSocket) setup(fd int, laddr netip.Addr, device string) error {
	if !c.datagram {
		if c.v6 {
			var f unix.ICMPv6Filter
			for i := range f.Data {
				f.Data[i] = ^uint32(0) // a set bit blocks its type
			}
			f.Data[icmpv6EchoReplyType>>5] &^= 1 << (icmpv6EchoReplyType & 31)
			if err := unix.SetsockoptICMPv6Filter(fd, unix.IPPROTO_ICMPV6, unix.ICMPV6_FILTER, &f); err != nil {
				return fmt.Errorf("ICMPV6_FILTER: %w", err)
			}
		} else {
			// ICMP_FILTER: a set bit blocks its type; pass echo reply (0).
			if err := unix.SetsockoptInt(fd, unix.SOL_RAW, unix.ICMP_FILTER, ^1); err != nil {
				return fmt.Errorf("ICMP_FILTER: %w", err)
			}
		}
	}
	if device != "" {
		if err := unix.BindToDevice(fd, device); err != nil {
			return fmt.Errorf("SO_BINDTODEVICE %s: %w", device, err)
		}
	}
	if laddr.IsValid() {
		var sa unix.Sockaddr
		if c.v6 {
			sa = &unix.SockaddrInet6{Addr: laddr.As16()}
		} else {
			sa = &unix.SockaddrInet4{Addr: laddr.As4()}
		}
		if err := unix.Bind(fd, sa); err != nil {
			return fmt.Errorf("bind ICMP socket to %s: %w", laddr, err)
		}
	}
	return nil
}

// icmpv6EchoReplyType is ICMPv6 type 129 (kept here so that this file
// needs no gVisor import).
const icmpv6EchoReplyType = 129

// Datagram implements ICMPConn.
func (c *icmpSocket) Datagram() bool { return c.datagram }

// Close implements ICMPConn.
func (c *icmpSocket) Close() error { return c.f.Close() }

// ReadFrom implements ICMPConn. A raw IPv4 socket receives the IP header
// too; it is stripped here.
func (c *icmpSocket) ReadFrom(b []byte) (int, netip.Addr, error) {
	var (
		n    int
		from unix.Sockaddr
		rerr error
	)
	for {
		err := c.rc.Read(func(fd uintptr) bool {
			n, from, rerr = unix.Recvfrom(int(fd), b, 0)
			return rerr != unix.EAGAIN && rerr != unix.EINTR
		})
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				err = net.ErrClosed
			}
			return 0, netip.Addr{}, err
		}
		if rerr != nil {
			// An ICMP socket reports no per-destination errors unless
			// IP_RECVERR is on; anything else is transient (ENOMEM).
			continue
		}
		var addr netip.Addr
		switch sa := from.(type) {
		case *unix.SockaddrInet4:
			addr = netip.AddrFrom4(sa.Addr)
		case *unix.SockaddrInet6:
			addr = netip.AddrFrom16(sa.Addr)
		}
		if !c.v6 && !c.datagram {
			if n < 20 || b[0]>>4 != 4 {
				continue
			}
			ihl := int(b[0]&0x0f) * 4
			if ihl < 20 || ihl > n {
				continue
			}
			n = copy(b, b[ihl:n])
		}
		return n, addr, nil
	}
}

// WriteTo implements ICMPConn.
func (c *icmpSocket) WriteTo(b []byte, dst netip.Addr) error {
	var sa unix.Sockaddr
	if c.v6 {
		sa = &unix.SockaddrInet6{Addr: dst.As16()}
	} else {
		sa = &unix.SockaddrInet4{Addr: dst.As4()}
	}
	var serr error
	err := c.rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), b, 0, sa)
		return serr != unix.EAGAIN && serr != unix.EINTR
	})
	if err != nil {
		if errors.Is(err, os.ErrClosed) {
			err = net.ErrClosed
		}
		return err
	}
	return serr
}
