package gateway

import (
	"context"
	"net"
	"net/netip"
)

// HostDialer opens the host sockets the outbound paths re-originate
// traffic from. DefaultDialer opens them in the daemon's own network
// namespace; a test (or a daemon that lives in one namespace and reaches
// the world from another) supplies its own through Config.Dialer.
//
// Both methods may be called from any goroutine, concurrently, and from
// the goroutine that relays a flow: they may block (a TCP connect), but
// not for longer than ctx allows.
type HostDialer interface {
	// Dial connects a socket of network "tcp4", "tcp6", "udp4" or "udp6"
	// to raddr. A valid laddr is its source address (any port); a non-empty
	// device binds it to that host interface (SO_BINDTODEVICE). A TCP
	// connection must be a kernel socket (syscall.Conn with CloseWrite, as
	// *net.TCPConn is): the relay moves bytes with its system calls.
	Dial(ctx context.Context, network string, laddr netip.Addr, device string, raddr netip.AddrPort) (net.Conn, error)

	// ListenICMP opens an unconnected ICMP echo socket for network "ip4"
	// (ICMP) or "ip6" (ICMPv6), with the same laddr and device binding as
	// Dial.
	ListenICMP(network string, laddr netip.Addr, device string) (ICMPConn, error)
}

// ICMPConn is a host ICMP socket that sends echo requests and receives
// echo replies. It is one of two kinds (Datagram says which):
//
//   - a datagram socket, socket(AF_INET[6], SOCK_DGRAM, IPPROTO_ICMP[V6]),
//     which needs no privilege when the process's group is within
//     net.ipv4.ping_group_range. The kernel owns the echo identifier: it
//     overwrites the one sent with the socket's own and delivers only the
//     replies that carry it;
//   - a raw socket, socket(AF_INET[6], SOCK_RAW, IPPROTO_ICMP[V6]), which
//     needs CAP_NET_RAW and sees every echo reply the host receives: the
//     caller picks an identifier and filters on it.
//
// Messages are ICMP messages, header first, with no IP header either way.
type ICMPConn interface {
	// ReadFrom reads one ICMP message into b and returns its length and
	// the address it came from. It blocks until a message arrives or the
	// socket is closed (then net.ErrClosed).
	ReadFrom(b []byte) (int, netip.Addr, error)
	// WriteTo sends one ICMP message to dst. An ICMPv4 message must carry
	// its checksum (a raw socket sends it as is); the kernel computes the
	// ICMPv6 checksum.
	WriteTo(b []byte, dst netip.Addr) error
	// Datagram reports whether this is a datagram socket (see above).
	Datagram() bool
	// Close closes the socket and wakes a blocked ReadFrom.
	Close() error
}

// DefaultDialer opens host sockets in the network namespace of the thread
// that calls it (the daemon's, since nothing in tapstack changes the
// namespace of an unlocked thread).
var DefaultDialer HostDialer = hostDialer{}

// hostDialer is DefaultDialer (hostsock_linux.go).
type hostDialer struct{}

// dialer returns the configured HostDialer.
func (g *Gateway) dialer() HostDialer {
	if g.cfg.Dialer != nil {
		return g.cfg.Dialer
	}
	return DefaultDialer
}
