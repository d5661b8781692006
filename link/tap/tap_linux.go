package tap

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/tapstack/tapstack/link"
	"github.com/tapstack/tapstack/link/internal/host"
	"github.com/tapstack/tapstack/link/vnet"
)

// Device is a TAP device under a link.
//
// Locking: mu guards nl; the other fields are set by Create (or FromFD)
// and not changed afterwards, except sdu (atomic).
type Device struct {
	name    string
	where   string         // the namespace, for messages
	ns      netns.NsHandle // owned by the watcher, which closes it on exit; -1 if byFD
	ifindex int            // in ns
	byFD    bool           // made by FromFD: no ns, no nl, no watcher
	ep      *endpoint
	link    *link.Link
	sdu     atomic.Uint32
	done    chan struct{} // closed by Close: stops the watcher

	closeOnce sync.Once
	closeErr  error

	mu sync.Mutex
	// +checklocks:mu
	nl *netlink.Handle // rtnetlink in ns; nil once closed
}

var _ link.Device = (*Device)(nil)

// Create creates the TAP device cfg describes and returns it as a link of
// class "tap", over cfg.Netns. Equivalent to
// `ip -n NETNS tuntap add dev NAME mode tap vnet_hdr [multi_queue]` and
// `ip -n NETNS link set NAME mtu MTU txqueuelen 4096`, plus the offloads
// QEMU would ask for (TUNSETOFFLOAD), except that the device is not
// persistent: it lives as long as the link, and Close deletes it.
//
// The kernel side starts administratively down, so the link starts with
// carrier down. Bringing the device up or down in the namespace
// (`ip link set NAME up`) raises NoteLinkUp or NoteLinkDown; deleting it
// there raises NoteLinkDown.
//
// Errors say what was wrong and wrap an errno (EINVAL, ENOENT, EEXIST,
// EPERM, …) for errors.Is.
func Create(cfg Config) (_ *link.Link, err error) {
	if err := validName(cfg.Name); err != nil {
		return nil, err
	}
	queues, err := queueCount(cfg.Queues)
	if err != nil {
		return nil, err
	}
	mtu := cfg.MTU
	if mtu == 0 {
		mtu = 1500
	}
	mac, err := host.StackMAC(cfg.MAC)
	if err != nil {
		return nil, err
	}
	ns, err := host.OpenNetns(cfg.Netns)
	if err != nil {
		return nil, err
	}
	d := &Device{name: cfg.Name, where: host.DescribeNetns(cfg.Netns), ns: ns, done: make(chan struct{})}
	var fds []int
	defer func() {
		if err == nil {
			return
		}
		if d.ep != nil {
			d.ep.release() // the endpoint owns fds
		} else {
			for _, fd := range fds {
				unix.Close(fd)
			}
		}
		if d.nl != nil {
			d.nl.Close()
		}
		close(d.done)
		ns.Close()
	}()

	if d.nl, err = netlink.NewHandleAt(ns, unix.NETLINK_ROUTE); err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", d.where, err)
	}
	if _, err := d.nl.LinkByName(cfg.Name); err == nil {
		return nil, d.exists()
	} else if !errors.As(err, new(netlink.LinkNotFoundError)) {
		return nil, fmt.Errorf("look up %s in %s: %w", cfg.Name, d.where, err)
	}
	if fds, err = d.open(queues, !cfg.NoOffload); err != nil {
		return nil, err
	}
	kl, err := d.nl.LinkByName(cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("look up new device %s in %s: %w", cfg.Name, d.where, err)
	}
	d.ifindex = kl.Attrs().Index
	if err := d.nl.LinkSetMTU(kl, int(mtu)); err != nil {
		return nil, fmt.Errorf("set mtu %d on %s in %s: %w", mtu, cfg.Name, d.where, err)
	}
	d.sdu.Store(mtu)
	if err := d.nl.LinkSetTxQLen(kl, txQueueLen); err != nil {
		return nil, fmt.Errorf("set txqueuelen %d on %s in %s: %w", txQueueLen, cfg.Name, d.where, err)
	}
	off, err := setUpQueues(fds, !cfg.NoOffload, !cfg.NoOffload)
	if err != nil {
		return nil, fmt.Errorf("set up %s in %s: %w", cfg.Name, d.where, err)
	}
	if d.ep, err = newEndpoint(endpointOptions{fds: fds, mtu: mtu, mac: mac, off: off, readers: cfg.Readers.resolve(), cpus: ringCPUs()}); err != nil {
		return nil, fmt.Errorf("endpoint for %s: %w", cfg.Name, err)
	}

	// A change since kl was read is not lost: the subscription starts
	// with a dump of the current state (ListExisting), and Link drops
	// what repeats the state it has.
	ch, err := host.SubscribeLinks(d.ns, d.done)
	if err != nil {
		return nil, fmt.Errorf("watch %s in %s: %w", cfg.Name, d.where, err)
	}
	l := link.New(cfg.Name, "tap", cfg.Netns, d)
	d.link = l
	if kl.Attrs().RawFlags&unix.IFF_UP == 0 {
		l.Notify(link.Notification{Kind: link.NoteLinkDown})
	}
	go d.watch(ch)
	return l, nil
}

// FromFD returns a link of class "tap" over a TAP device that another
// process opened and passed over, as slirp4netns's child does: a helper
// that joined the namespace's user namespace, which a multi-threaded Go
// process cannot do. The link owns fd from the call on, and closes it if
// FromFD fails.
//
// cfg.Name must be the device's name (checked with TUNGETIFF; "" takes it
// from the device), cfg.MTU the MTU its kernel side already has, cfg.MAC
// the stack's address as in Create; cfg.Netns is only reported (as the
// link's Over). The device must be a TAP opened with IFF_NO_PI. If it was
// opened with IFF_VNET_HDR, offloads are negotiated as Create does
// (unless cfg.NoOffload); without, frames are plain. It has one queue:
// cfg.Queues is ignored.
//
// Unlike Create, FromFD opens nothing in the namespace: the kernel side is
// not watched, so the link's carrier is up from the start and stays up,
// SetMTU fails with ENOTSUP, and the txqueuelen stays the kernel's. Closing
// the link still deletes the device (a non-persistent TAP goes with its
// last descriptor).
func FromFD(fd int, cfg Config) (_ *link.Link, err error) {
	defer func() {
		if err != nil && fd >= 0 {
			unix.Close(fd)
		}
	}()
	if fd < 0 {
		return nil, host.Errorf(unix.EBADF, "tap descriptor %d is not valid", fd)
	}
	unix.CloseOnExec(fd)
	ifr, err := unix.NewIfreq("")
	if err != nil {
		return nil, err
	}
	if err := unix.IoctlIfreq(fd, unix.TUNGETIFF, ifr); err != nil {
		return nil, host.Errorf(unix.EINVAL, "descriptor %d is not a TUN/TAP device: TUNGETIFF: %v", fd, err)
	}
	flags := ifr.Uint16()
	if flags&(unix.IFF_TUN|unix.IFF_TAP) != unix.IFF_TAP || flags&unix.IFF_NO_PI == 0 {
		return nil, host.Errorf(unix.EINVAL, "device %s (descriptor %d) is not a TAP opened with IFF_NO_PI (flags %#x)", ifr.Name(), fd, flags)
	}
	if cfg.Name == "" {
		cfg.Name = ifr.Name()
	}
	if err := validName(cfg.Name); err != nil {
		return nil, err
	}
	if ifr.Name() != cfg.Name {
		return nil, host.Errorf(unix.EINVAL, "descriptor %d is TAP %s, not %s", fd, ifr.Name(), cfg.Name)
	}
	mtu := cfg.MTU
	if mtu == 0 {
		mtu = 1500
	}
	mac, err := host.StackMAC(cfg.MAC)
	if err != nil {
		return nil, err
	}
	d := &Device{name: cfg.Name, where: host.DescribeNetns(cfg.Netns), ns: -1, done: make(chan struct{}), byFD: true}
	// The opener chose the header: offloads need IFF_VNET_HDR.
	vnetHdr := flags&unix.IFF_VNET_HDR != 0
	off, err := setUpQueues([]int{fd}, vnetHdr, vnetHdr && !cfg.NoOffload)
	if err != nil {
		return nil, fmt.Errorf("set up %s (descriptor %d): %w", cfg.Name, fd, err)
	}
	if d.ep, err = newEndpoint(endpointOptions{fds: []int{fd}, mtu: mtu, mac: mac, off: off, readers: cfg.Readers.resolve(), cpus: ringCPUs()}); err != nil {
		return nil, fmt.Errorf("endpoint for %s: %w", cfg.Name, err)
	}
	d.sdu.Store(mtu)
	l := link.New(cfg.Name, "tap", cfg.Netns, d)
	d.link = l
	return l, nil
}

// validName applies the kernel's rules for interface names
// (dev_valid_name), and refuses '%', which TUNSETIFF would take as a
// template ("tap%d") rather than a name.
func validName(name string) error {
	switch {
	case name == "":
		return host.Errorf(unix.EINVAL, "tap name is empty")
	case len(name) >= unix.IFNAMSIZ:
		return host.Errorf(unix.EINVAL, "tap name %q too long (max %d)", name, unix.IFNAMSIZ-1)
	case name == "." || name == "..":
		return host.Errorf(unix.EINVAL, "tap name %q is reserved", name)
	case strings.ContainsAny(name, "/:%"):
		return host.Errorf(unix.EINVAL, "tap name %q contains '/', ':' or '%%'", name)
	case strings.IndexFunc(name, unicode.IsSpace) >= 0:
		return host.Errorf(unix.EINVAL, "tap name %q contains white space", name)
	}
	return nil
}

func (d *Device) exists() error {
	return host.Errorf(unix.EEXIST, "device %s already exists in %s", d.name, d.where)
}

// open creates the TAP device in d.ns with the given number of queues,
// with the virtio-net header if vnetHdr, and returns one descriptor per
// queue, which the caller owns. The device goes away when the last is
// closed.
func (d *Device) open(queues int, vnetHdr bool) ([]int, error) {
	flags := uint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if vnetHdr {
		flags |= unix.IFF_VNET_HDR
	}
	if queues > 1 {
		flags |= unix.IFF_MULTI_QUEUE
	}
	var fds []int
	err := host.InNetns(d.ns, func() error {
		// The namespace of the device is that of the thread that opens
		// /dev/net/tun, so the opens must happen in d.ns too. Each
		// TUNSETIFF with IFF_MULTI_QUEUE on the same name adds a queue.
		for range queues {
			fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			ifr, err := unix.NewIfreq(d.name)
			if err == nil {
				ifr.SetUint16(flags)
				err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
			}
			if err != nil {
				unix.Close(fd)
				return &os.SyscallError{Syscall: "TUNSETIFF", Err: err}
			}
			fds = append(fds, fd)
		}
		return nil
	})
	if err != nil {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
	switch {
	case errors.Is(err, unix.EBUSY):
		// Another process created the name since we looked.
		return nil, d.exists()
	case errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV):
		return nil, host.Errorf(unix.ENODEV, "create %s in %s: /dev/net/tun is missing (is the tun module loaded?)", d.name, d.where)
	case errors.Is(err, unix.EPERM):
		return nil, host.Errorf(unix.EPERM, "create %s in %s: permission denied (needs CAP_NET_ADMIN)", d.name, d.where)
	case err != nil:
		return nil, fmt.Errorf("create %s in %s: %w", d.name, d.where, err)
	}
	return fds, nil
}

// watch turns the kernel side's administrative state into carrier
// notifications until Close, re-subscribing if the kernel drops the
// subscription. It owns d.ns and closes it on exit.
func (d *Device) watch(ch <-chan netlink.LinkUpdate) {
	defer d.ns.Close()
	host.WatchLink(d.ns, d.ifindex, d.done, ch, func(u netlink.LinkUpdate) {
		kind := link.NoteLinkDown
		if u.Header.Type != unix.RTM_DELLINK && u.Flags&unix.IFF_UP != 0 {
			kind = link.NoteLinkUp
		}
		d.link.Notify(link.Notification{Kind: kind})
	})
}

// Endpoint implements link.Device.
func (d *Device) Endpoint() stack.LinkEndpoint { return d.ep }

// MacType implements link.Device.
func (d *Device) MacType() link.MacType { return link.DL_ETHER }

// MaxSDU implements link.Device.
func (d *Device) MaxSDU() uint32 { return d.sdu.Load() }

// Broadcast implements link.Device.
func (d *Device) Broadcast() net.HardwareAddr {
	return net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
}

// Capabilities implements link.Device: what the kernel accepted
// (TUNSETOFFLOAD). Checksum offload is HCKSUM_INET_PARTIAL (the kernel
// and the stack complete each other's partial checksums), TSO for both IP
// versions is LSO up to vnet.GSOMaxSize, USO is noted as such; transmit
// never copies the payload (ZeroCopy).
func (d *Device) Capabilities() link.Capabilities {
	off := d.ep.off
	c := link.Capabilities{ZeroCopy: true}
	if off&OffloadCsum != 0 {
		c.HCksum = link.HCKSUM_INET_PARTIAL
	}
	if off.TSO() {
		c.LSO = true
		c.LSOMax = vnet.GSOMaxSize
	}
	c.USO = off&(OffloadUSO4|OffloadUSO6) == OffloadUSO4|OffloadUSO6
	return c
}

// Offloads returns what the TAP negotiated with the kernel.
func (d *Device) Offloads() Offloads { return d.ep.off }

// Queues returns the number of TAP queues.
func (d *Device) Queues() int { return len(d.ep.rings) }

// Stats returns the link's frame counters.
func (d *Device) Stats() Stats { return d.ep.stats() }

// SetMTU sets the MTU of both sides, the kernel device and the endpoint,
// and raises NoteSDUSize. Equivalent to `ip -n NETNS link set NAME mtu MTU`
// plus the same on tapstack's side.
func (d *Device) SetMTU(mtu uint32) error {
	if d.byFD {
		return host.Errorf(unix.ENOTSUP, "set mtu on %s: the device was passed by descriptor; set the MTU in %s", d.name, d.where)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.nl == nil {
		return host.Errorf(unix.ENXIO, "set mtu on %s: device deleted", d.name)
	}
	kl := &netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: d.ifindex}}
	if err := d.nl.LinkSetMTU(kl, int(mtu)); err != nil {
		return fmt.Errorf("set mtu %d on %s in %s: %w", mtu, d.name, d.where, err)
	}
	d.ep.SetMTU(mtu)
	d.sdu.Store(mtu)
	d.link.Notify(link.Notification{Kind: link.NoteSDUSize, SDU: mtu})
	return nil
}

// Close implements link.Device: it deletes the TAP device (by releasing
// its descriptor) and stops watching it. The endpoint stays safe to use
// until its NIC is removed: frames written to it are discarded.
func (d *Device) Close() error {
	d.closeOnce.Do(func() {
		close(d.done)
		if err := d.ep.release(); err != nil {
			d.closeErr = fmt.Errorf("delete %s in %s: %w", d.name, d.where, err)
		}
		d.mu.Lock()
		if d.nl != nil {
			d.nl.Close()
			d.nl = nil
		}
		d.mu.Unlock()
	})
	return d.closeErr
}
