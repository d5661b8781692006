package daemon

// Namespace sessions: a TAP in a network namespace, plumbed and addressed
// through ifmgr like any other interface, with the gateway (outbound NAT,
// port forwards, DNS) serving it. This is what `tapstackd --netns NS
// --configure` and `tapstackd run -- CMD` do, and what the slirp4netns
// drop-in builds on.

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/gateway"
	"github.com/tapstack/tapstack/ifmgr"
	"github.com/tapstack/tapstack/link"
	"github.com/tapstack/tapstack/link/tap"
)

// Namespace defaults.
const (
	DefaultTapName = "tap0"
	DefaultMTU     = 1500
	// MaxMTU is the largest MTU a namespace link may have: slirp4netns's
	// limit, so that the drop-in accepts what slirp4netns does.
	MaxMTU = 65521
	// minMTU4 and minMTU6 are the smallest MTUs IPv4 and IPv6 allow.
	minMTU4 = 68
	minMTU6 = 1280
)

// Addresses of the namespace's IPv6 subnet, as slirp4netns uses them. The
// stack's unit 0 holds the link-local gatewayLL (an IPv6 ill's unit 0 is
// its link-local address).
var (
	gatewayLL = netip.MustParseAddr("fe80::2")
)

// pollInterval paces the checks that the namespace still exists (its
// name under /run/netns, its process).
const pollInterval = 200 * time.Millisecond

// NamespaceConfig describes a namespace to connect.
type NamespaceConfig struct {
	// Netns is the namespace: a name under /run/netns, an absolute path to
	// a namespace file, or a process id (digits: /proc/PID/ns/net, and the
	// session ends when the process exits).
	Netns string
	// TapName is the device in the namespace and the link and interface
	// name in tapstack; "" means DefaultTapName.
	TapName string
	// Configure configures the namespace side: lo up; the TAP's MTU, MAC
	// (if given), address (.100), up; default routes via the gateway.
	Configure bool
	// MTU of the link, both sides; 0 means DefaultMTU; at most MaxMTU.
	MTU uint32
	// Queues is the TAP's queue count; 0 means tap.Config's default.
	Queues int
	// CIDR is the namespace's IPv4 subnet; the zero Prefix means
	// gateway.DefaultCIDR (10.0.2.0/24). The gateway is .2, the DNS
	// forwarder .3, the namespace .100, so the prefix is /25 or shorter.
	CIDR netip.Prefix
	// IPv6 also serves fd00::/64: gateway fd00::2, DNS fd00::3, namespace
	// fd00::100.
	IPv6 bool
	// MAC is the namespace side's MAC address (slirp4netns --macaddress);
	// nil keeps the kernel's. It needs Configure.
	MAC net.HardwareAddr
	// Gateway holds the gateway's policy fields (AllowHostLoopback,
	// Outbound*, DisableDNS, Resolvers, ResolvConf, MasqueradeForwards,
	// UDPIdleTimeout, Log). NIC, Link, V4 and V6 are filled in by
	// ConnectNamespace.
	Gateway gateway.Config
	// Forwards are added once the gateway is up; any failure fails the
	// whole connection.
	Forwards []ctl.Forward
	// OpenTap creates the link; nil means tap.Create. The slirp4netns
	// drop-in overrides it for namespaces it cannot enter (rootless).
	OpenTap func(tap.Config) (*link.Link, error)
}

// Namespace is one connected namespace: its link, plumbed in ifmgr, and
// the gateway serving it.
//
// Locking: closeMu serialises Close. The other fields are set by
// ConnectNamespace and not changed afterwards.
type Namespace struct {
	d      *Daemon
	name   string // the tap (link and interface) name
	target nsTarget
	link   *link.Link
	gw     *gateway.Gateway
	log    *slog.Logger

	ns    netns.NsHandle // the namespace; closed by Close
	pidfd int            // the namespace's process, or -1

	stop     chan struct{} // closed by Close: stops the watchers
	wg       sync.WaitGroup
	done     chan struct{}
	doneOnce sync.Once

	closeMu sync.Mutex
	closed  bool
}

// nsTarget is a NamespaceConfig.Netns resolved.
type nsTarget struct {
	arg  string // as given, for messages
	path string // the namespace file
	pid  int    // > 0: the namespace of this process
}

// procNetns matches the namespace file of a process.
var procNetns = regexp.MustCompile(`^/proc/([0-9]+)/ns/net$`)

// resolveNetns turns NamespaceConfig.Netns into the file to open.
func resolveNetns(s string) (nsTarget, error) {
	t := nsTarget{arg: s}
	switch {
	case s == "":
		return t, nsErrorf(ctl.EINVAL, "no network namespace given")
	case strings.Trim(s, "0123456789") == "":
		pid, err := strconv.Atoi(s)
		if err != nil || pid <= 0 {
			return t, nsErrorf(ctl.EINVAL, "netns %s: not a process id", s)
		}
		t.pid, t.path = pid, "/proc/"+s+"/ns/net"
	case filepath.IsAbs(s):
		t.path = filepath.Clean(s)
		if m := procNetns.FindStringSubmatch(t.path); m != nil {
			t.pid, _ = strconv.Atoi(m[1])
		}
	case strings.Contains(s, "/") || s == "." || s == "..":
		return t, nsErrorf(ctl.EINVAL, "netns %s: not a name under /run/netns, an absolute path or a process id", s)
	default:
		t.path = filepath.Join("/run/netns", s)
	}
	return t, nil
}

// open opens the namespace (and, for a process, a pidfd on it first, so
// that the namespace cannot belong to a recycled pid). The caller closes
// both; pidfd is -1 when the target is not a process.
func (t nsTarget) open() (ns netns.NsHandle, pidfd int, err error) {
	pidfd = -1
	if t.pid > 0 {
		pidfd, err = unix.PidfdOpen(t.pid, 0)
		switch {
		case errors.Is(err, unix.ESRCH):
			return -1, -1, nsErrorf(ctl.ENOENT, "netns %s: no such process", t.arg)
		case err != nil:
			return -1, -1, nsErrorf(errnoOr(err, ctl.EINVAL), "netns %s: pidfd_open %d: %v", t.arg, t.pid, err)
		}
	}
	defer func() {
		if err != nil && pidfd >= 0 {
			unix.Close(pidfd)
		}
	}()
	ns, err = netns.GetFromPath(t.path)
	switch {
	case errors.Is(err, unix.ENOENT):
		if t.pid > 0 {
			return -1, -1, nsErrorf(ctl.ENOENT, "netns %s: no such process", t.arg)
		}
		return -1, -1, nsErrorf(ctl.ENOENT, "netns %s: no such network namespace", t.arg)
	case errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM):
		return -1, -1, nsErrorf(ctl.EPERM, "netns %s: permission denied", t.arg)
	case err != nil:
		return -1, -1, nsErrorf(errnoOr(err, ctl.EINVAL), "netns %s: %v", t.arg, err)
	}
	if typ, err := unix.IoctlRetInt(int(ns), unix.NS_GET_NSTYPE); err != nil || typ != unix.CLONE_NEWNET {
		ns.Close()
		return -1, -1, nsErrorf(ctl.EINVAL, "netns %s: %s is not a network namespace", t.arg, t.path)
	}
	if pidfd >= 0 && exited(pidfd) {
		ns.Close()
		return -1, -1, nsErrorf(ctl.ENOENT, "netns %s: the process has exited", t.arg)
	}
	return ns, pidfd, nil
}

// nsError is an error of ConnectNamespace: its message stands alone (no
// errno prefix, for command lines to print as they are) and it matches
// its errno with errors.Is and ctl.ErrnoOf.
type nsError struct {
	errno ctl.Errno
	msg   string
}

func nsErrorf(e ctl.Errno, format string, args ...any) error {
	return &nsError{errno: e, msg: fmt.Sprintf(format, args...)}
}

func (e *nsError) Error() string { return e.msg }
func (e *nsError) Unwrap() error { return e.errno }

// errnoOr returns the ctl errno err wraps, else def.
func errnoOr(err error, def ctl.Errno) ctl.Errno {
	if e := ctl.ErrnoOf(err); e != 0 {
		return e
	}
	return def
}

// exited reports whether the process behind pidfd has exited.
func exited(pidfd int) bool {
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n > 0
}

// sameFile reports whether path still names the file fd has open (the
// namespace is still mounted there).
func sameFile(fd int, path string) bool {
	var a, b unix.Stat_t
	if unix.Fstat(fd, &a) != nil || unix.Stat(path, &b) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

// nsAddrs are the addresses of both families derived from the config.
type nsAddrs struct {
	v4, v6 gateway.Addrs
}

// addrsOf derives the gateway (.2), DNS (.3) and guest (.100) addresses
// from cidr, and fd00::2, ::3, ::100 if ipv6.
func addrsOf(cidr netip.Prefix, ipv6 bool) (nsAddrs, error) {
	var a nsAddrs
	if !cidr.IsValid() {
		cidr = gateway.DefaultCIDR
	}
	if !cidr.Addr().Is4() {
		return a, nsErrorf(ctl.EINVAL, "CIDR %v is not an IPv4 prefix", cidr)
	}
	p := cidr.Masked()
	if p.Bits() == 0 || p.Bits() > 25 {
		return a, nsErrorf(ctl.EINVAL, "CIDR %v: the prefix must be between /1 and /25 (the namespace is .100)", cidr)
	}
	base := p.Addr().As4()
	at := func(n byte) netip.Addr {
		b := base
		b[3] += n
		return netip.AddrFrom4(b)
	}
	a.v4 = gateway.Addrs{Gateway: at(2), DNS: at(3), Guest: at(100), Prefix: p.Bits()}
	if ipv6 {
		a.v6 = gateway.Addrs{
			Gateway: gateway.DefaultGatewayV6, DNS: gateway.DefaultDNSV6,
			Guest: gateway.DefaultGuestV6, Prefix: gateway.DefaultCIDR6.Bits(),
		}
	}
	return a, nil
}

// ConnectNamespace connects the namespace cfg names: it creates the TAP
// there (a link in the daemon's registry, so `tapadm dladm show-link`
// shows it), plumbs and addresses it through ifmgr (so `tapadm ifconfig
// -a` and `netstat -rn` show it), configures the namespace side if asked,
// starts the gateway and adds the forwards. Equivalent to:
//
//	tapadm dladm create-tap tap0 --netns NS --mtu MTU
//	tapadm ifconfig tap0 plumb 10.0.2.2/24 up
//	tapadm ifconfig tap0 addif 10.0.2.3/24 up
//	tapadm ifconfig tap0 inet6 plumb fe80::2/64 up
//	tapadm ifconfig tap0 inet6 addif fd00::2/64 up
//	tapadm ifconfig tap0 inet6 addif fd00::3/64 up
//	ip -n NS link set lo up
//	ip -n NS addr add 10.0.2.100/24 dev tap0; ip -n NS link set tap0 up
//	ip -n NS route add default via 10.0.2.2
//	(and fd00::100/64 nodad, default via fd00::2)
//
// plus the gateway. On failure nothing is left behind and the error says
// what was wrong, with an errno (ENOENT: no such namespace; EEXIST: the
// link exists; EINVAL: bad configuration; the forward's errno).
func (d *Daemon) ConnectNamespace(cfg NamespaceConfig) (_ *Namespace, err error) {
	if cfg.TapName == "" {
		cfg.TapName = DefaultTapName
	}
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	minMTU := uint32(minMTU4)
	if cfg.IPv6 {
		minMTU = minMTU6
	}
	if cfg.MTU < minMTU || cfg.MTU > MaxMTU {
		return nil, nsErrorf(ctl.EINVAL, "MTU %d is not between %d and %d", cfg.MTU, minMTU, MaxMTU)
	}
	if cfg.MAC != nil && !cfg.Configure {
		return nil, nsErrorf(ctl.EINVAL, "a MAC address for the namespace side needs Configure")
	}
	addrs, err := addrsOf(cfg.CIDR, cfg.IPv6)
	if err != nil {
		return nil, err
	}
	target, err := resolveNetns(cfg.Netns)
	if err != nil {
		return nil, err
	}
	if _, ok := d.links.Get(cfg.TapName); ok {
		return nil, nsErrorf(ctl.EEXIST, "link %s already exists", cfg.TapName)
	}
	ns, pidfd, err := target.open()
	if err != nil {
		return nil, err
	}
	n := &Namespace{
		d: d, name: cfg.TapName, target: target, ns: ns, pidfd: pidfd,
		log:  d.log.With("link", cfg.TapName, "netns", cfg.Netns),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	// undo runs on failure, newest first.
	var undo []func()
	defer func() {
		if err == nil {
			return
		}
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		n.closeHandles()
	}()

	open := cfg.OpenTap
	if open == nil {
		open = tap.Create
	}
	l, err := open(tap.Config{Name: cfg.TapName, Netns: target.path, MTU: cfg.MTU, Queues: cfg.Queues})
	if err != nil {
		return nil, nsErrorf(errnoOr(err, ctl.EINVAL), "%v", errMsg(err))
	}
	if err := d.links.Add(l); err != nil {
		l.Close()
		return nil, nsErrorf(ctl.EEXIST, "%v", err)
	}
	n.link = l
	undo = append(undo, func() {
		d.links.Remove(cfg.TapName)
		l.Close()
	})

	undo = append(undo, func() { n.unplumb() })
	if err := n.plumb(addrs); err != nil {
		return nil, nsErrorf(errnoOr(err, ctl.EINVAL), "plumb %s: %v", cfg.TapName, err)
	}
	if cfg.Configure {
		if err := configureNamespace(ns, cfg.TapName, cfg.MTU, cfg.MAC, addrs); err != nil {
			return nil, nsErrorf(errnoOr(err, ctl.EINVAL), "configure %s in netns %s: %v", cfg.TapName, cfg.Netns, err)
		}
	}

	gcfg := cfg.Gateway
	gcfg.NIC, gcfg.Link, gcfg.V4, gcfg.V6 = cfg.TapName, l, addrs.v4, addrs.v6
	if gcfg.Log == nil {
		gcfg.Log = n.log
	}
	gw, err := gateway.New(d.stack, gcfg)
	if err != nil {
		return nil, nsErrorf(errnoOr(err, ctl.EINVAL), "%v", errMsg(err))
	}
	n.gw = gw
	undo = append(undo, gw.Close)
	for _, f := range cfg.Forwards {
		if _, err := gw.AddForward(f); err != nil {
			msg := errMsg(err)
			if !strings.Contains(msg, "port forward") {
				msg = "port forward " + forwardString(f) + ": " + msg
			}
			return nil, nsErrorf(errnoOr(err, ctl.EINVAL), "%s", msg)
		}
	}

	if err := d.addSession(n); err != nil {
		return nil, err
	}
	n.startWatch()
	n.log.Info("connected namespace", "gateway", addrs.v4.Gateway, "guest", addrs.v4.Guest,
		"ipv6", cfg.IPv6, "mtu", cfg.MTU, "configured", cfg.Configure, "forwards", len(cfg.Forwards))
	return n, nil
}

// errMsg is err's message without the request and errno a *ctl.Error
// prints (they are said again by whoever wraps it).
func errMsg(err error) string {
	var ce *ctl.Error
	if errors.As(err, &ce) {
		return ce.Msg
	}
	return err.Error()
}

// forwardString formats f in spec syntax, [HOSTADDR:]HOSTPORT:GUESTPORT/PROTO.
func forwardString(f ctl.Forward) string {
	var b strings.Builder
	if f.HostAddr.IsValid() {
		if f.HostAddr.Is6() {
			b.WriteString("[" + f.HostAddr.String() + "]:")
		} else {
			b.WriteString(f.HostAddr.String() + ":")
		}
	}
	fmt.Fprintf(&b, "%d:%d", f.HostPort, f.GuestPort)
	if f.Proto != "" {
		b.WriteString("/" + f.Proto)
	}
	return b.String()
}

// asDaemon is the caller the daemon's own requests run as.
var asDaemon = ifmgr.Caller{Privileged: true}

// plumb plumbs the link in ifmgr: IPv4 unit 0 the gateway, unit 1 the DNS
// address; IPv6 unit 0 fe80::2, then the gateway and DNS addresses.
func (n *Namespace) plumb(a nsAddrs) error {
	if err := n.plumbFamily(ctl.AF_INET, []netip.Prefix{
		netip.PrefixFrom(a.v4.Gateway, a.v4.Prefix),
		netip.PrefixFrom(a.v4.DNS, a.v4.Prefix),
	}); err != nil {
		return err
	}
	if !a.v6.Gateway.IsValid() {
		return nil
	}
	return n.plumbFamily(ctl.AF_INET6, []netip.Prefix{
		netip.PrefixFrom(gatewayLL, 64),
		netip.PrefixFrom(a.v6.Gateway, a.v6.Prefix),
		netip.PrefixFrom(a.v6.DNS, a.v6.Prefix),
	})
}

// plumbFamily plumbs one family: unit 0 gets the first address, addif
// units the others, all up. Equivalent to
// `tapadm ifconfig NAME [inet6] plumb A up addif B up ...`.
func (n *Namespace) plumbFamily(fam ctl.Family, addrs []netip.Prefix) error {
	m := n.d.ifm
	flags := ctl.IFF_IPV4
	if fam == ctl.AF_INET6 {
		flags = ctl.IFF_IPV6
	}
	if err := m.Do(asDaemon, "SIOCSLIFNAME", fam, &ctl.Lifreq{Name: n.name, Flags: flags}); err != nil {
		return err
	}
	var names []string
	for i, p := range addrs {
		name := n.name
		if i > 0 {
			r := ctl.Lifreq{Name: n.name}
			if err := m.Do(asDaemon, "SIOCLIFADDIF", fam, &r); err != nil {
				return err
			}
			name = r.Name
		}
		for _, r := range []struct {
			op  string
			req ctl.Lifreq
		}{
			{"SIOCSLIFNETMASK", ctl.Lifreq{Name: name, Addr: maskAddr(p)}},
			{"SIOCSLIFADDR", ctl.Lifreq{Name: name, Addr: p.Addr()}},
		} {
			if err := m.Do(asDaemon, r.op, fam, &r.req); err != nil {
				return err
			}
		}
		cur := ctl.Lifreq{Name: name}
		if err := m.Do(asDaemon, "SIOCGLIFFLAGS", fam, &cur); err != nil {
			return err
		}
		if err := m.Do(asDaemon, "SIOCSLIFFLAGS", fam, &ctl.Lifreq{Name: name, Flags: cur.Flags | ctl.IFF_UP}); err != nil {
			return err
		}
		names = append(names, name)
	}
	// The namespace is ready when its gateway answers: after DAD, when
	// the daemon runs it.
	for _, name := range names {
		if err := n.d.waitDAD(fam, ctl.WaitDAD{Name: name}); err != nil {
			return err
		}
	}
	return nil
}

// maskAddr returns the netmask of p as an address of p's family.
func maskAddr(p netip.Prefix) netip.Addr {
	b := make([]byte, p.Addr().BitLen()/8)
	for i := range p.Bits() {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// unplumb unplumbs the link in both families, if plumbed.
func (n *Namespace) unplumb() {
	for _, fam := range []ctl.Family{ctl.AF_INET6, ctl.AF_INET} {
		err := n.d.ifm.Do(asDaemon, "unplumb", fam, &ctl.Lifreq{Name: n.name})
		if err != nil && ctl.ErrnoOf(err) != ctl.ENXIO {
			n.log.Warn("unplumb", "family", fam, "err", err)
		}
	}
}

// configureNamespace configures the namespace side through rtnetlink in
// ns: lo up; on the TAP the MAC (if given), MTU, addresses (IPv6 without
// DAD: nothing else is on the link), up; default routes via the gateway.
func configureNamespace(ns netns.NsHandle, name string, mtu uint32, mac net.HardwareAddr, a nsAddrs) error {
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("look up lo: %w", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("look up %s: %w", name, err)
	}
	if mac != nil {
		if err := h.LinkSetHardwareAddr(l, mac); err != nil {
			return fmt.Errorf("set MAC %v: %w", mac, err)
		}
	}
	if l.Attrs().MTU != int(mtu) {
		if err := h.LinkSetMTU(l, int(mtu)); err != nil {
			return fmt.Errorf("set mtu %d: %w", mtu, err)
		}
	}
	addrs := []*netlink.Addr{{IPNet: ipNet(a.v4.Guest, a.v4.Prefix)}}
	if a.v6.Gateway.IsValid() {
		addrs = append(addrs, &netlink.Addr{IPNet: ipNet(a.v6.Guest, a.v6.Prefix), Flags: unix.IFA_F_NODAD})
	}
	for _, ad := range addrs {
		if err := h.AddrAdd(l, ad); err != nil {
			return fmt.Errorf("add address %v: %w", ad.IPNet, err)
		}
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	gws := []netip.Addr{a.v4.Gateway}
	if a.v6.Gateway.IsValid() {
		gws = append(gws, a.v6.Gateway)
	}
	for _, gw := range gws {
		dst := &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
		if gw.Is6() {
			dst = &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
		}
		r := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: dst, Gw: gw.AsSlice()}
		if err := h.RouteAdd(r); err != nil {
			return fmt.Errorf("add default route via %v: %w", gw, err)
		}
	}
	return nil
}

func ipNet(a netip.Addr, bits int) *net.IPNet {
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(bits, a.BitLen())}
}

// startWatch starts the goroutines that close Done when the namespace
// goes away: its name is removed (ip netns delete), its process exits, or
// its TAP is deleted.
func (n *Namespace) startWatch() {
	n.wg.Add(1)
	go n.poll()
	// The TAP is watched through rtnetlink in the namespace. A namespace
	// the daemon cannot enter (rootless, OpenTap overridden), or a link
	// that is no device there, is watched by polling only.
	h, err := netlink.NewHandleAt(n.ns, unix.NETLINK_ROUTE)
	if err != nil {
		n.log.Debug("not watching the namespace's links", "err", err)
		return
	}
	defer h.Close()
	kl, err := h.LinkByName(n.name)
	if err != nil {
		n.log.Debug("not watching the TAP", "err", err)
		return
	}
	index := kl.Attrs().Index
	ch := make(chan netlink.LinkUpdate, 16)
	// The subscription ends (closes ch) when n.stop closes.
	err = netlink.LinkSubscribeWithOptions(ch, n.stop, netlink.LinkSubscribeOptions{
		Namespace:     &n.ns,
		ErrorCallback: func(err error) { n.log.Debug("link subscription", "err", err) },
	})
	if err != nil {
		n.log.Debug("not watching the TAP", "err", err)
		return
	}
	n.wg.Add(1)
	go n.watchLinks(ch, index)
	// The device may have gone before the subscription began.
	if _, err := h.LinkByIndex(index); errors.As(err, new(netlink.LinkNotFoundError)) {
		n.gone("the TAP device was deleted")
	}
}

// watchLinks closes Done when the TAP (ifindex index) is deleted in the
// namespace. It reads ch to its end: the subscription's goroutine blocks
// otherwise.
func (n *Namespace) watchLinks(ch <-chan netlink.LinkUpdate, index int) {
	defer n.wg.Done()
	for u := range ch {
		if u.Header.Type == unix.RTM_DELLINK && int(u.Index) == index {
			n.gone("the TAP device was deleted")
		}
	}
}

// poll closes Done when the namespace's name is gone or its process has
// exited.
func (n *Namespace) poll() {
	defer n.wg.Done()
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-n.done:
			return
		case <-t.C:
		}
		switch {
		case n.pidfd >= 0:
			if exited(n.pidfd) {
				n.gone("its process exited")
			}
		case !sameFile(int(n.ns), n.target.path):
			n.gone(n.target.path + " is gone")
		}
	}
}

// gone closes Done, once.
func (n *Namespace) gone(why string) {
	n.doneOnce.Do(func() {
		n.log.Info("namespace gone", "why", why)
		close(n.done)
	})
}

// Gateway returns the gateway serving the namespace.
func (n *Namespace) Gateway() *gateway.Gateway { return n.gw }

// Name returns the link (and interface) name.
func (n *Namespace) Name() string { return n.name }

// Done is closed when the namespace goes away (its name is deleted, its
// process exits, or its TAP is deleted) and when Close is called. The
// session stays until Close.
func (n *Namespace) Done() <-chan struct{} { return n.done }

// Close stops the gateway, unplumbs the interface and deletes the link
// (and so the TAP). It is safe to call more than once.
func (n *Namespace) Close() {
	n.closeMu.Lock()
	defer n.closeMu.Unlock()
	if n.closed {
		return
	}
	n.closed = true
	n.d.removeSession(n)
	close(n.stop)
	n.wg.Wait()
	n.gw.Close()
	n.unplumb()
	if l, err := n.d.links.Remove(n.name); err == nil {
		if err := l.Close(); err != nil {
			n.log.Warn("delete link", "err", err)
		}
	}
	n.closeHandles()
	n.doneOnce.Do(func() { close(n.done) })
	n.log.Info("disconnected namespace")
}

func (n *Namespace) closeHandles() {
	n.ns.Close()
	if n.pidfd >= 0 {
		unix.Close(n.pidfd)
		n.pidfd = -1
	}
}

// addSession registers n; its link name is unique, as the registry
// already checked.
func (d *Daemon) addSession(n *Namespace) error {
	d.nsMu.Lock()
	defer d.nsMu.Unlock()
	if d.nsClosed {
		return nsErrorf(ctl.ENXIO, "the daemon is shutting down")
	}
	if d.sessions == nil {
		d.sessions = map[string]*Namespace{}
	}
	d.sessions[n.name] = n
	return nil
}

func (d *Daemon) removeSession(n *Namespace) {
	d.nsMu.Lock()
	defer d.nsMu.Unlock()
	if d.sessions[n.name] == n {
		delete(d.sessions, n.name)
	}
}

// Namespaces returns the connected namespaces, by link name.
func (d *Daemon) Namespaces() []*Namespace {
	d.nsMu.Lock()
	defer d.nsMu.Unlock()
	out := make([]*Namespace, 0, len(d.sessions))
	for _, n := range d.sessions {
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b *Namespace) int { return strings.Compare(a.name, b.name) })
	return out
}

// closeNamespaces closes every session and refuses new ones (shutdown).
func (d *Daemon) closeNamespaces() {
	d.nsMu.Lock()
	d.nsClosed = true
	d.nsMu.Unlock()
	for _, n := range d.Namespaces() {
		n.Close()
	}
}

// isSessionLink reports whether link name serves a namespace session.
func (d *Daemon) isSessionLink(name string) bool {
	d.nsMu.Lock()
	defer d.nsMu.Unlock()
	_, ok := d.sessions[name]
	return ok
}
