package tap_test

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/tapstack/tapstack/link/tap"
)

// openInNetns opens TAP (or, with tun, TUN) name in namespace ns the way
// another process would before passing the descriptor over, and returns
// the descriptor.
func openInNetns(t *testing.T, ns, name string, flags uint16) int {
	t.Helper()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	fd := -1
	errc := make(chan error, 1)
	go func() {
		// The thread is left locked (and so discarded) if it cannot be
		// switched back.
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(h); err != nil {
			errc <- err
			return
		}
		fd, err = unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err == nil {
			var ifr *unix.Ifreq
			if ifr, err = unix.NewIfreq(name); err == nil {
				ifr.SetUint16(flags)
				err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
			}
		}
		if serr := netns.Set(orig); serr != nil {
			errc <- serr
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatalf("open %s in %s: %v", name, ns, err)
	}
	return fd
}

func isOpen(fd int) bool {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return err == nil
}

// TestFromFD: a link over a TAP descriptor opened elsewhere carries
// frames, reports its namespace, refuses SetMTU, and deletes the device
// on Close.
func TestFromFD(t *testing.T) {
	requireRoot(t)
	ns := newNetns(t)
	name := "tap" + suffix()[:6]
	fd := openInNetns(t, ns, name, unix.IFF_TAP|unix.IFF_NO_PI)
	run(t, "ip", "-n", ns, "link", "set", name, "mtu", "1400")
	mac := net.HardwareAddr{0x02, 0x54, 0x53, 0, 0, 0x07}
	l, err := tap.FromFD(fd, tap.Config{Name: name, Netns: "/run/netns/" + ns, MTU: 1400, MAC: mac})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if l.Name() != name || l.Class() != "tap" || l.Over() != "/run/netns/"+ns || l.SDU() != 1400 || !l.Up() {
		t.Errorf("link %s class %s over %s sdu %d up %v", l.Name(), l.Class(), l.Over(), l.SDU(), l.Up())
	}
	if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("descriptor flags %#x, %v: want close-on-exec", flags, err)
	}

	// Kernel → link: the kernel ARPs for a neighbour through the TAP.
	rec := &recorder{frames: make(chan frame, 16)}
	l.Endpoint().Attach(rec)
	run(t, "ip", "-n", ns, "addr", "add", "10.77.0.2/24", "dev", name)
	run(t, "ip", "-n", ns, "link", "set", name, "up")
	go exec.Command("ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1", "10.77.0.1").Run()
	if f := rec.waitARP(t); f.eth.Type() != header.ARPProtocolNumber {
		t.Errorf("frame type %v", f.eth.Type())
	}

	err = l.Device().(*tap.Device).SetMTU(1300)
	if !errors.Is(err, unix.ENOTSUP) {
		t.Errorf("SetMTU: %v, want ENOTSUP", err)
	}

	l.Endpoint().Attach(nil)
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	eventually(t, name+" to be deleted", func() bool { _, ok := showLink(t, ns, name); return !ok })
}

// TestFromFDErrors: FromFD refuses what is not a TAP of the given name,
// and closes the descriptor it was given.
func TestFromFDErrors(t *testing.T) {
	requireRoot(t)
	ns := newNetns(t)
	pipe := func() int {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		w.Close()
		fd, err := unix.Dup(int(r.Fd()))
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		return fd
	}
	tests := []struct {
		name  string
		fd    func() int
		cfg   tap.Config
		errno unix.Errno
		msg   string
	}{
		{"not a tun", pipe, tap.Config{Name: "tapx"}, unix.EINVAL, "is not a TUN/TAP device"},
		{"a tun", func() int { return openInNetns(t, ns, "tunx"+suffix()[:4], unix.IFF_TUN|unix.IFF_NO_PI) },
			tap.Config{}, unix.EINVAL, "is not a TAP opened with IFF_NO_PI"},
		// Not tested: a TAP without IFF_NO_PI. Some kernels report
		// IFF_NO_PI from TUNGETIFF whether it was asked for or not.
		{"another name", func() int { return openInNetns(t, ns, "tapy"+suffix()[:4], unix.IFF_TAP|unix.IFF_NO_PI) },
			tap.Config{Name: "tapz"}, unix.EINVAL, ", not tapz"},
		{"bad MAC", func() int { return openInNetns(t, ns, "tapm"+suffix()[:4], unix.IFF_TAP|unix.IFF_NO_PI) },
			tap.Config{MAC: net.HardwareAddr{1, 0, 0, 0, 0, 1}}, unix.EINVAL, "is multicast"},
		{"negative", func() int { return -1 }, tap.Config{Name: "tapx"}, unix.EBADF, "not valid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fd := tt.fd()
			l, err := tap.FromFD(fd, tt.cfg)
			if err == nil {
				l.Close()
				t.Fatal("FromFD succeeded")
			}
			if !errors.Is(err, tt.errno) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q, want %v saying %q", err, tt.errno, tt.msg)
			}
			if fd >= 0 && isOpen(fd) {
				unix.Close(fd)
				t.Error("FromFD left the descriptor open")
			}
		})
	}
}
