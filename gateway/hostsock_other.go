//go:build !linux

package gateway

import (
	"context"
	"errors"
	"net"
	"net/netip"
)

var errNotLinux = errors.New("host sockets with a device binding or ICMP need Linux")

// Dial implements HostDialer. Binding to a device needs Linux.
func (hostDialer) Dial(ctx context.Context, network string, laddr netip.Addr, device string, raddr netip.AddrPort) (net.Conn, error) {
	if device != "" {
		return nil, errNotLinux
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
	return d.DialContext(ctx, network, raddr.String())
}

// ListenICMP implements HostDialer: not supported outside Linux.
func (hostDialer) ListenICMP(string, netip.Addr, string) (ICMPConn, error) {
	return nil, errNotLinux
}
