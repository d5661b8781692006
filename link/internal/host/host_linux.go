// Package host holds what the links that reach host devices (link/tap,
// link/afpacket) share: opening and entering network namespaces, the
// stack's MAC address, and errors that carry an errno.
package host

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Errno is an error whose message stands alone and which matches its errno
// with errors.Is, so that callers can map it to a reply.
type Errno struct {
	msg   string
	errno syscall.Errno
}

// Errorf returns an *Errno with a formatted message.
func Errorf(errno syscall.Errno, format string, args ...any) error {
	return &Errno{msg: fmt.Sprintf(format, args...), errno: errno}
}

func (e *Errno) Error() string { return e.msg }

// Unwrap returns the errno.
func (e *Errno) Unwrap() error { return e.errno }

// StackMAC validates mac, or makes a random locally administered unicast
// one if it is nil. The result is the caller's.
func StackMAC(mac net.HardwareAddr) (net.HardwareAddr, error) {
	if mac == nil {
		mac = make(net.HardwareAddr, 6)
		rand.Read(mac)
		mac[0] = mac[0]&^0x01 | 0x02
		return mac, nil
	}
	switch {
	case len(mac) != 6:
		return nil, Errorf(unix.EINVAL, "MAC %v is not an Ethernet address", mac)
	case mac[0]&0x01 != 0:
		return nil, Errorf(unix.EINVAL, "MAC %v is multicast", mac)
	case string(mac) == "\x00\x00\x00\x00\x00\x00":
		return nil, Errorf(unix.EINVAL, "MAC %v is all zeros", mac)
	}
	return append(net.HardwareAddr(nil), mac...), nil
}

// OpenNetns opens the network namespace name: a name under /run/netns (as
// made by `ip netns add`), an absolute path, or "" for the calling
// thread's. The caller owns the handle.
func OpenNetns(name string) (netns.NsHandle, error) {
	var path string
	switch {
	case name == "":
		// Lock so that Get reads this thread, which matters if the caller
		// has locked it into a namespace of its own.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		ns, err := netns.Get()
		if err != nil {
			return -1, fmt.Errorf("current network namespace: %w", err)
		}
		return ns, nil
	case filepath.IsAbs(name):
		path = name
	case strings.Contains(name, "/") || name == "." || name == "..":
		return -1, Errorf(unix.EINVAL, "netns %s: not a name under /run/netns or an absolute path", name)
	default:
		path = filepath.Join("/run/netns", name)
	}
	ns, err := netns.GetFromPath(path)
	switch {
	case errors.Is(err, unix.ENOENT):
		return -1, Errorf(unix.ENOENT, "netns %s: no such network namespace", name)
	case err != nil:
		return -1, fmt.Errorf("netns %s: %w", name, err)
	}
	if t, err := unix.IoctlRetInt(int(ns), unix.NS_GET_NSTYPE); err != nil || t != unix.CLONE_NEWNET {
		ns.Close()
		return -1, Errorf(unix.EINVAL, "netns %s: not a network namespace", name)
	}
	return ns, nil
}

// DescribeNetns names a namespace for messages.
func DescribeNetns(name string) string {
	if name == "" {
		return "the current network namespace"
	}
	return name
}

// InNetns runs f on an OS thread switched into ns. It uses a goroutine of
// its own so that, if the thread cannot be switched back, the thread is
// left locked and Go discards it when the goroutine exits, instead of
// running other goroutines in the wrong namespace.
func InNetns(ns netns.NsHandle, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("current network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		ferr := f()
		if err := netns.Set(orig); err != nil {
			errc <- fmt.Errorf("setns back: %w", err) // thread stays locked
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
