package afpacket

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/tapstack/tapstack/link"

	"github.com/tapstack/tapstack/link/internal/host"
)

// maxGSO is the largest GSO frame the link hands the kernel (the legacy
// 64 KiB limit; see the package doc on BIG TCP).
const maxGSO = 1 << 16

// Device is the AF_PACKET sockets under a link.
//
// Locking: the fields are set by Create and not changed afterwards,
// except sdu (atomic) and what the endpoint guards.
type Device struct {
	name     string
	over     string
	where    string         // the namespace, for messages
	ns       netns.NsHandle // owned by the watcher, which closes it on exit
	ifindex  int            // of over, in ns
	fixedMTU bool           // Config.MTU was given: do not follow the device
	ep       *endpoint
	link     *link.Link
	sdu      atomic.Uint32
	done     chan struct{} // closed by Close: stops the watcher

	closeOnce sync.Once
	closeErr  error
}

var _ link.Device = (*Device)(nil)

// Create opens cfg.Rings AF_PACKET sockets on cfg.Over in cfg.Netns and
// returns them as a link of class "afpacket", over cfg.Over. The device is
// put in promiscuous mode for as long as the link exists. Equivalent to
// `dladm create-afpacket NAME --over DEV --netns NS --rings N`.
//
// The link's carrier follows the device's operational state (up and
// running): raising NoteLinkUp and NoteLinkDown; deleting the device
// raises NoteLinkDown. Without Config.MTU the link's SDU follows the
// device's MTU (NoteSDUSize).
//
// Errors say what was wrong and wrap an errno (EINVAL, ENOENT, ENODEV,
// EPERM, …) for errors.Is.
func Create(cfg Config) (_ *link.Link, err error) {
	if err := validName(cfg.Name); err != nil {
		return nil, err
	}
	if err := validDevice(cfg.Over); err != nil {
		return nil, err
	}
	rings := cfg.Rings
	switch {
	case rings == 0:
		rings = min(runtime.NumCPU(), 4)
	case rings < 0 || rings > MaxRings:
		return nil, host.Errorf(unix.EINVAL, "afpacket %s: %d rings (want 1 to %d)", cfg.Name, rings, MaxRings)
	}
	mode := cfg.RX
	switch mode {
	case "":
		mode = RXRecvmmsg
	case RXRing, RXRecvmmsg:
	default:
		return nil, host.Errorf(unix.EINVAL, "afpacket %s: unknown receive mode %q (want %q or %q)", cfg.Name, mode, RXRing, RXRecvmmsg)
	}
	mac, err := host.StackMAC(cfg.MAC)
	if err != nil {
		return nil, err
	}
	ns, err := host.OpenNetns(cfg.Netns)
	if err != nil {
		return nil, err
	}
	d := &Device{name: cfg.Name, over: cfg.Over, where: host.DescribeNetns(cfg.Netns), ns: ns, done: make(chan struct{})}
	defer func() {
		if err != nil {
			if d.ep != nil {
				d.ep.release(d.ifindex)
			}
			close(d.done)
			ns.Close()
		}
	}()

	kl, err := d.lookup()
	if err != nil {
		return nil, err
	}
	attrs := kl.Attrs()
	d.ifindex = attrs.Index
	mtu := cfg.MTU
	switch {
	case mtu == 0:
		mtu = uint32(attrs.MTU)
	case mtu > uint32(attrs.MTU):
		return nil, host.Errorf(unix.EINVAL, "afpacket %s: MTU %d exceeds %s's %d", cfg.Name, mtu, d.over, attrs.MTU)
	default:
		d.fixedMTU = true
	}
	d.sdu.Store(mtu)
	gso := uint32(maxGSO)
	if attrs.GSOMaxSize != 0 {
		gso = min(gso, attrs.GSOMaxSize)
	}

	d.ep, err = newEndpoint(mtu, gso, tcpip.LinkAddress(mac), allowedCPUs())
	if err != nil {
		return nil, err
	}
	if err := d.openRings(mode, rings); err != nil {
		return nil, err
	}

	// A change since kl was read is not lost: the subscription starts
	// with a dump of the current state (ListExisting), and Link drops
	// what repeats the state it has.
	ch, err := host.SubscribeLinks(d.ns, d.done)
	if err != nil {
		return nil, fmt.Errorf("watch %s in %s: %w", d.over, d.where, err)
	}
	l := link.New(cfg.Name, "afpacket", cfg.Over, d)
	d.link = l
	if !carrier(attrs.RawFlags) {
		l.Notify(link.Notification{Kind: link.NoteLinkDown})
	}
	go d.watch(ch)
	return l, nil
}

// lookup finds the device in its namespace and checks that it is Ethernet.
func (d *Device) lookup() (netlink.Link, error) {
	nl, err := netlink.NewHandleAt(d.ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", d.where, err)
	}
	defer nl.Close()
	kl, err := nl.LinkByName(d.over)
	switch {
	case errors.As(err, new(netlink.LinkNotFoundError)):
		return nil, host.Errorf(unix.ENODEV, "afpacket %s: no device %s in %s", d.name, d.over, d.where)
	case err != nil:
		return nil, fmt.Errorf("look up %s in %s: %w", d.over, d.where, err)
	}
	if kl.Attrs().EncapType != "ether" || len(kl.Attrs().HardwareAddr) != 6 {
		return nil, host.Errorf(unix.EINVAL, "afpacket %s: %s in %s is not an Ethernet device (%s)", d.name, d.over, d.where, kl.Attrs().EncapType)
	}
	return kl, nil
}

// openRings creates the rings in the device's namespace, in one fanout
// group, and turns promiscuity on (on ring 0's socket).
func (d *Device) openRings(mode RXMode, n int) error {
	err := host.InNetns(d.ns, func() error {
		var fanoutID uint16
		for i := range n {
			r, err := openRing(d.ep, mode, i, d.ifindex, n > 1, &fanoutID)
			if err != nil {
				return fmt.Errorf("ring %d: %w", i, err)
			}
			d.ep.rings = append(d.ep.rings, r)
		}
		return nil
	})
	if err == nil {
		err = d.ep.rings[0].setPromisc(d.ifindex, true)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EPERM):
		return host.Errorf(unix.EPERM, "afpacket %s over %s in %s: permission denied (needs CAP_NET_RAW): %v", d.name, d.over, d.where, err)
	case errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENXIO):
		return host.Errorf(unix.ENODEV, "afpacket %s: %s in %s went away: %v", d.name, d.over, d.where, err)
	}
	return fmt.Errorf("afpacket %s over %s in %s: %w", d.name, d.over, d.where, err)
}

// carrier says whether frames flow: the device is up and running.
func carrier(flags uint32) bool {
	return flags&unix.IFF_UP != 0 && flags&unix.IFF_RUNNING != 0
}

// allowedCPUs lists the CPUs the calling thread may run on (the process's
// cpuset, usually), in order; nil if unknown.
func allowedCPUs() []int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil
	}
	var cpus []int
	for i := range len(set) * 64 {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	return cpus
}

// watch turns the device's state into notifications until Close,
// re-subscribing if the kernel drops the subscription. It owns d.ns and
// closes it on exit.
func (d *Device) watch(ch <-chan netlink.LinkUpdate) {
	defer d.ns.Close()
	host.WatchLink(d.ns, d.ifindex, d.done, ch, func(u netlink.LinkUpdate) {
		if u.Header.Type == unix.RTM_DELLINK {
			d.link.Notify(link.Notification{Kind: link.NoteLinkDown})
			return
		}
		if !d.fixedMTU && u.Attrs() != nil && u.Attrs().MTU > 0 {
			if mtu := uint32(u.Attrs().MTU); mtu != d.sdu.Load() {
				d.ep.SetMTU(mtu)
				d.sdu.Store(mtu)
				d.link.Notify(link.Notification{Kind: link.NoteSDUSize, SDU: mtu})
			}
		}
		kind := link.NoteLinkDown
		if carrier(u.Flags) {
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

// Capabilities implements link.Device: partial checksums (the virtio-net
// header's NEEDS_CSUM) and LSO up to the GSO size.
func (d *Device) Capabilities() link.Capabilities {
	return link.Capabilities{
		HCksum: link.HCKSUM_INET_PARTIAL,
		LSO:    true,
		LSOMax: d.ep.gsoMax,
	}
}

// Rings returns the number of rings.
func (d *Device) Rings() int { return len(d.ep.rings) }

// Stats returns the counters of every ring.
func (d *Device) Stats() []RingStats { return d.ep.stats() }

// Close implements link.Device: it stops the receive goroutines, turns
// promiscuity off, leaves the fanout group, unmaps the rings and closes
// the sockets, and stops watching the device. The endpoint stays safe to
// use until its NIC is removed: frames written to it are refused.
func (d *Device) Close() error {
	d.closeOnce.Do(func() {
		close(d.done)
		if err := d.ep.release(d.ifindex); err != nil {
			d.closeErr = fmt.Errorf("close afpacket %s over %s in %s: %w", d.name, d.over, d.where, err)
		}
	})
	return d.closeErr
}

// validName checks a link name (MAXLINKNAMELEN is 32 with the NUL).
func validName(name string) error {
	switch {
	case name == "":
		return host.Errorf(unix.EINVAL, "afpacket link name is empty")
	case len(name) > 31:
		return host.Errorf(unix.EINVAL, "afpacket link name %q too long (max 31)", name)
	case strings.ContainsAny(name, "/:") || strings.IndexFunc(name, unicode.IsSpace) >= 0:
		return host.Errorf(unix.EINVAL, "afpacket link name %q contains '/', ':' or white space", name)
	}
	return nil
}

// validDevice applies the kernel's rules for interface names.
func validDevice(name string) error {
	switch {
	case name == "":
		return host.Errorf(unix.EINVAL, "afpacket needs a device to be over (--over)")
	case len(name) >= unix.IFNAMSIZ:
		return host.Errorf(unix.EINVAL, "device name %q too long (max %d)", name, unix.IFNAMSIZ-1)
	case name == "." || name == ".." || strings.ContainsAny(name, "/:") || strings.IndexFunc(name, unicode.IsSpace) >= 0:
		return host.Errorf(unix.EINVAL, "bad device name %q", name)
	}
	return nil
}
