package slirp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// HelperCommand is the hidden tapstackd subcommand that runs the helper's
// side: `tapstackd __tap-open SPEC` with the socket on descriptor 3.
const HelperCommand = "__tap-open"

// helperTimeout bounds the helper's whole run.
const helperTimeout = 30 * time.Second

// helperSockFD is the descriptor the helper finds its socket on
// (ExtraFiles[0]).
const helperSockFD = 3

// TapTarget names the namespaces the helper joins.
type TapTarget struct {
	// PID is the target process: its user and network namespaces unless
	// the paths below say otherwise. 0 if the target is a path.
	PID int
	// NetnsPath is the network namespace file (--netns-type=path).
	NetnsPath string
	// UsernsPath is the user namespace file (--userns-path).
	UsernsPath string
}

// NetConfig is the namespace side's configuration (--configure), which
// the helper applies from inside the namespace, as slirp4netns's child
// does. It matches what the daemon's own Configure does.
type NetConfig struct {
	MAC      string       `json:"mac,omitempty"` // the TAP's MAC; "" keeps the kernel's
	Addr4    netip.Prefix `json:"addr4"`         // 10.0.2.100/24
	Gateway4 netip.Addr   `json:"gateway4"`      // 10.0.2.2: the default route
	Addr6    netip.Prefix `json:"addr6,omitzero"`
	Gateway6 netip.Addr   `json:"gateway6,omitzero"`
}

// TapSpec is what the helper does in the namespace: create the TAP, set
// its MTU, configure it if asked.
type TapSpec struct {
	Name string `json:"name"`
	MTU  uint32 `json:"mtu"`
	// VnetHdr opens the TAP with the virtio-net header (IFF_VNET_HDR),
	// which tap.FromFD needs to turn on checksum and segmentation
	// offloads.
	VnetHdr   bool       `json:"vnet_hdr,omitempty"`
	Configure *NetConfig `json:"configure,omitempty"`
}

// NeedsHelper decides whether the TAP must be opened by the helper, and
// where: when --userns-path names another user namespace than ours, or
// when tapstack runs unprivileged and the target process is in another
// user namespace (the rootless case: `unshare -r -n`). Root opens the TAP
// itself: it may enter any network namespace. (Joining one's own user
// namespace fails, so --userns-path naming ours is as if not given, as
// slirp4netns ignores that failure.)
func (o *Options) NeedsHelper() (TapTarget, bool) {
	const self = "/proc/self/ns/user"
	t := TapTarget{PID: o.PID, NetnsPath: o.NetnsPath, UsernsPath: o.UsernsPath}
	switch {
	case o.UsernsPath != "" && !sameNamespace(self, o.UsernsPath):
		return t, true
	case os.Geteuid() == 0 || o.PID == 0:
		return t, false
	}
	return t, !sameNamespace(self, fmt.Sprintf("/proc/%d/ns/user", o.PID))
}

// sameNamespace reports whether two namespace files are one namespace;
// false if either cannot be read.
func sameNamespace(a, b string) bool {
	var sa, sb unix.Stat_t
	if unix.Stat(a, &sa) != nil || unix.Stat(b, &sb) != nil {
		return false
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// nsenterArgs are the nsenter(1) options that join t's namespaces.
// --preserve-credentials keeps our uid: the helper is root in the
// namespace only if our uid maps to root there (as with unshare -r,
// rootlesskit and podman).
func (t TapTarget) nsenterArgs() []string {
	var args []string
	if t.PID > 0 {
		args = append(args, "--target", strconv.Itoa(t.PID))
	}
	if t.UsernsPath != "" {
		args = append(args, "--user="+t.UsernsPath)
	} else if t.PID > 0 {
		args = append(args, "--user")
	}
	if t.NetnsPath != "" {
		args = append(args, "--net="+t.NetnsPath)
	} else {
		args = append(args, "--net")
	}
	return append(args, "--preserve-credentials")
}

func (t TapTarget) String() string {
	if t.NetnsPath != "" {
		return t.NetnsPath
	}
	return fmt.Sprintf("the namespace of process %d", t.PID)
}

// findNsenter finds nsenter in PATH or where util-linux installs it.
func findNsenter() (string, error) {
	if p, err := exec.LookPath("nsenter"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/bin/nsenter", "/bin/nsenter", "/usr/sbin/nsenter", "/sbin/nsenter"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", errors.New("nsenter (util-linux) not found: it is needed to enter the user namespace")
}

// OpenTap runs the helper in t's namespaces and returns the TAP
// descriptor it creates there, which the caller owns. Equivalent to
//
//	nsenter --target PID --user --net --preserve-credentials \
//	    tapstackd __tap-open '{"name":"tap0","mtu":1500}'
//
// with a socket on descriptor 3 over which the helper sends the TAP
// (SCM_RIGHTS), as slirp4netns's forked child does. A multi-threaded Go
// process cannot join a user namespace itself (setns(2) refuses), which
// is why the helper is a process of its own. exe is the tapstackd binary.
func OpenTap(ctx context.Context, exe string, t TapTarget, spec TapSpec) (int, error) {
	nsenter, err := findNsenter()
	if err != nil {
		return -1, err
	}
	js, err := json.Marshal(spec)
	if err != nil {
		return -1, err
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socketpair: %w", err)
	}
	mine := os.NewFile(uintptr(pair[0]), "tap-open")
	defer mine.Close()
	theirs := os.NewFile(uintptr(pair[1]), "tap-open-helper")

	ctx, cancel := context.WithTimeout(ctx, helperTimeout)
	defer cancel()
	args := append(t.nsenterArgs(), "--", exe, HelperCommand, string(js))
	cmd := exec.CommandContext(ctx, nsenter, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.WaitDelay = time.Second
	err = cmd.Start()
	theirs.Close()
	if err != nil {
		return -1, fmt.Errorf("start %s: %w", nsenter, err)
	}
	fd, recvErr := recvFD(ctx, mine)
	waitErr := cmd.Wait()
	if waitErr != nil || recvErr != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		msg := strings.TrimSpace(out.String())
		if msg == "" && waitErr != nil {
			msg = waitErr.Error()
		} else if msg == "" {
			msg = recvErr.Error()
		}
		return -1, fmt.Errorf("open %s in %v: %s", spec.Name, t, msg)
	}
	return fd, nil
}

// recvFD receives one descriptor from f; end of file (the helper exited
// without sending) is an error.
func recvFD(ctx context.Context, f *os.File) (int, error) {
	c, err := net.FileConn(f)
	if err != nil {
		return -1, err
	}
	defer c.Close()
	uc := c.(*net.UnixConn)
	if dl, ok := ctx.Deadline(); ok {
		uc.SetReadDeadline(dl)
	}
	buf := make([]byte, 16)
	oob := make([]byte, unix.CmsgSpace(4*4))
	_, oobn, _, _, err := uc.ReadMsgUnix(buf, oob)
	if err != nil {
		return -1, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return -1, err
	}
	fd := -1
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		for _, x := range fds {
			if fd < 0 {
				fd = x
			} else {
				unix.Close(x)
			}
		}
	}
	if fd < 0 {
		return -1, errors.New("the helper sent no descriptor")
	}
	return fd, nil
}

// HelperMain is the helper's side, run in the target namespaces by
// nsenter: it creates the TAP, sets its MTU, configures it if the spec
// asks, sends the descriptor on descriptor 3 and returns the exit status.
// Errors go to stderr, which OpenTap reports.
func HelperMain(args []string, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "%s\n", err)
		return 1
	}
	if len(args) != 1 {
		return fail(fmt.Errorf("usage: tapstackd %s SPEC (internal: run by the slirp4netns drop-in)", HelperCommand))
	}
	var spec TapSpec
	if err := json.Unmarshal([]byte(args[0]), &spec); err != nil {
		return fail(fmt.Errorf("bad spec: %w", err))
	}
	fd, err := createTap(spec.Name, spec.VnetHdr)
	if err != nil {
		return fail(err)
	}
	defer unix.Close(fd) // the device goes with the last descriptor: ours, if sending fails
	if err := setupTap(spec); err != nil {
		return fail(err)
	}
	if err := unix.Sendmsg(helperSockFD, []byte{0}, unix.UnixRights(fd), nil, 0); err != nil {
		return fail(fmt.Errorf("send the TAP descriptor: %w", err))
	}
	return 0
}

// createTap creates TAP name in the current network namespace, with the
// virtio-net header if vnetHdr. Equivalent to `ip tuntap add dev NAME
// mode tap [vnet_hdr]`, not persistent.
func createTap(name string, vnetHdr bool) (int, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	flags := uint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if vnetHdr {
		flags |= unix.IFF_VNET_HDR
	}
	ifr, err := unix.NewIfreq(name)
	if err == nil {
		ifr.SetUint16(flags)
		err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
	}
	switch {
	case err == nil:
		return fd, nil
	case errors.Is(err, unix.EPERM):
		err = fmt.Errorf("create TAP %s: %w (needs CAP_NET_ADMIN in the namespace: does your user map to root in its user namespace?)", name, err)
	case errors.Is(err, unix.EBUSY):
		err = fmt.Errorf("create TAP %s: a device of that name already exists", name)
	default:
		err = fmt.Errorf("create TAP %s: TUNSETIFF: %w", name, err)
	}
	unix.Close(fd)
	return -1, err
}

// setupTap sets the MTU and, if asked, configures the namespace side:
// lo up; on the TAP the MAC (if given), addresses (IPv6 without DAD),
// up; default routes via the gateway. Equivalent to
//
//	ip link set lo up
//	ip link set tap0 mtu MTU address MAC
//	ip addr add 10.0.2.100/24 dev tap0; ip link set tap0 up
//	ip route add default via 10.0.2.2
//	(and fd00::100/64 nodad, default via fd00::2)
func setupTap(spec TapSpec) error {
	l, err := netlink.LinkByName(spec.Name)
	if err != nil {
		return fmt.Errorf("look up %s: %w", spec.Name, err)
	}
	if spec.MTU != 0 && l.Attrs().MTU != int(spec.MTU) {
		if err := netlink.LinkSetMTU(l, int(spec.MTU)); err != nil {
			return fmt.Errorf("set mtu %d on %s: %w", spec.MTU, spec.Name, err)
		}
	}
	c := spec.Configure
	if c == nil {
		return nil
	}
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("look up lo: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	if c.MAC != "" {
		mac, err := net.ParseMAC(c.MAC)
		if err != nil {
			return fmt.Errorf("MAC %q: %w", c.MAC, err)
		}
		if err := netlink.LinkSetHardwareAddr(l, mac); err != nil {
			return fmt.Errorf("set MAC %v on %s: %w", mac, spec.Name, err)
		}
	}
	type route struct {
		addr netip.Prefix
		gw   netip.Addr
	}
	fams := []route{{c.Addr4, c.Gateway4}}
	if c.Addr6.IsValid() {
		fams = append(fams, route{c.Addr6, c.Gateway6})
	}
	for _, f := range fams {
		a := &netlink.Addr{IPNet: ipNet(f.addr)}
		if f.addr.Addr().Is6() {
			a.Flags = unix.IFA_F_NODAD
		}
		if err := netlink.AddrAdd(l, a); err != nil {
			return fmt.Errorf("add address %v to %s: %w", f.addr, spec.Name, err)
		}
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up: %w", spec.Name, err)
	}
	for _, f := range fams {
		if !f.gw.IsValid() {
			continue
		}
		bits := f.gw.BitLen()
		dst := &net.IPNet{IP: make(net.IP, bits/8), Mask: net.CIDRMask(0, bits)}
		r := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: dst, Gw: f.gw.AsSlice()}
		if err := netlink.RouteAdd(r); err != nil {
			return fmt.Errorf("add default route via %v: %w", f.gw, err)
		}
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
