package tap_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapstack/tapstack/internal/netnstest"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/tapstack/tapstack/link"
	"github.com/tapstack/tapstack/link/tap"
)

// requireRoot skips the test unless it can create namespaces and TAP
// devices; under CI=true a missing prerequisite fails it instead.
func requireRoot(t testing.TB) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		missing = append(missing, "/dev/net/tun")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		missing = append(missing, "ip (iproute2)")
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("needs %s; to run: sudo env PATH=$PATH go test ./link/tap/ (as root, with the tun module and iproute2)", strings.Join(missing, ", "))
	netnstest.Unavailable(t, "%s", msg)
}

func suffix() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newNetns creates a uniquely named namespace, deleted at the end of the
// test even if it fails.
func newNetns(t testing.TB) string {
	t.Helper()
	ns := "tst-" + suffix()
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", ns, err, out)
		}
	})
	return ns
}

// create makes a TAP link closed at the end of the test (before its
// namespace is deleted: cleanups run last first).
func create(t testing.TB, cfg tap.Config) *link.Link {
	t.Helper()
	l, err := tap.Create(cfg)
	if err != nil {
		t.Fatalf("Create(%+v): %v", cfg, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

type ipLink struct {
	Name     string   `json:"ifname"`
	MTU      uint32   `json:"mtu"`
	Address  string   `json:"address"`
	LinkType string   `json:"link_type"`
	Flags    []string `json:"flags"`
}

// showLink is `ip -n NS link show NAME`; ok is false if there is no such
// device.
func showLink(t testing.TB, ns, name string) (ipLink, bool) {
	t.Helper()
	out, err := exec.Command("ip", "-n", ns, "-j", "link", "show", "dev", name).Output()
	if err != nil {
		return ipLink{}, false
	}
	var ls []ipLink
	if err := json.Unmarshal(out, &ls); err != nil || len(ls) != 1 {
		t.Fatalf("ip -j link show %s: %v: %s", name, err, out)
	}
	return ls[0], true
}

func rxPackets(t *testing.T, ns, name string) uint64 {
	t.Helper()
	out := run(t, "ip", "netns", "exec", ns, "cat", "/sys/class/net/"+name+"/statistics/rx_packets")
	n, err := strconv.ParseUint(strings.TrimSpace(out), 10, 64)
	if err != nil {
		t.Fatalf("rx_packets: %v", err)
	}
	return n
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// frame is one received frame: the protocol and a copy of the bytes.
type frame struct {
	proto tcpip.NetworkProtocolNumber
	eth   header.Ethernet
	body  []byte
}

// recorder is a stack.NetworkDispatcher that hands frames to a channel.
// Packets are borrowed: it copies what it keeps.
type recorder struct{ frames chan frame }

func (r *recorder) DeliverNetworkPacket(proto tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	f := frame{
		proto: proto,
		eth:   header.Ethernet(bytes.Clone(pkt.LinkHeader().Slice())),
		body:  pkt.Data().AsRange().ToSlice(),
	}
	select {
	case r.frames <- f:
	default:
	}
}

func (r *recorder) DeliverLinkPacket(tcpip.NetworkProtocolNumber, *stack.PacketBuffer) {}

// waitARP returns the first ARP frame the recorder sees.
func (r *recorder) waitARP(t *testing.T) frame {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case f := <-r.frames:
			if f.proto == header.ARPProtocolNumber {
				return f
			}
		case <-timeout:
			t.Fatalf("no ARP frame from the kernel")
		}
	}
}

// writeFrame writes an Ethernet frame from src to dst through ep.
func writeFrame(t *testing.T, ep stack.LinkEndpoint, src, dst tcpip.LinkAddress, proto tcpip.NetworkProtocolNumber, body []byte) tcpip.Error {
	t.Helper()
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{
		ReserveHeaderBytes: int(ep.MaxHeaderLength()),
		Payload:            buffer.MakeWithData(body),
	})
	defer pkt.DecRef()
	pkt.NetworkProtocolNumber = proto
	pkt.EgressRoute.LocalLinkAddress = src
	pkt.EgressRoute.RemoteLinkAddress = dst
	ep.AddHeader(pkt)
	var pkts stack.PacketBufferList
	pkts.PushBack(pkt)
	_, err := ep.WritePackets(pkts)
	return err
}

// notes collects a link's notifications.
type notes struct {
	mu  sync.Mutex
	got []link.NoteKind
}

func (n *notes) add(x link.Notification) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.got = append(n.got, x.Kind)
}

func (n *notes) last() link.NoteKind {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.got) == 0 {
		return 0
	}
	return n.got[len(n.got)-1]
}

// TestTAPInNetns walks a TAP link through its life with the kernel as the
// peer: creation, a frame each way, carrier from the namespace side, MTU,
// deletion.
func TestTAPInNetns(t *testing.T) {
	for _, readers := range []tap.ReaderMode{tap.ReadersPinned, tap.ReadersPolled} {
		t.Run(readers.String(), func(t *testing.T) { testTAPInNetns(t, readers) })
	}
}

func testTAPInNetns(t *testing.T, readers tap.ReaderMode) {
	requireRoot(t)
	ns := newNetns(t)
	name := "tap" + suffix()[:6]
	mac := net.HardwareAddr{0x02, 0x54, 0x53, 0, 0, 0x02}
	l := create(t, tap.Config{Name: name, Netns: ns, MTU: 1400, MAC: mac, Readers: readers})
	ep := l.Endpoint()

	// The device exists in the namespace, not here, with our MTU; the
	// stack's MAC is ours and the kernel's is its own.
	kl, ok := showLink(t, ns, name)
	if !ok {
		t.Fatalf("%s not found in %s", name, ns)
	}
	if kl.MTU != 1400 || kl.LinkType != "ether" {
		t.Errorf("kernel side: mtu %d type %q, want 1400 ether", kl.MTU, kl.LinkType)
	}
	if kl.Address == mac.String() {
		t.Errorf("kernel side has the stack's MAC %s", mac)
	}
	if _, err := net.InterfaceByName(name); err == nil {
		t.Errorf("%s also exists in the test's own namespace", name)
	}
	if l.Name() != name || l.Class() != "tap" || l.Over() != ns || l.SDU() != 1400 || l.Addr().String() != mac.String() {
		t.Errorf("link: name %q class %q over %q sdu %d addr %v", l.Name(), l.Class(), l.Over(), l.SDU(), l.Addr())
	}
	if l.Up() {
		t.Errorf("link is up while the kernel side is down")
	}
	kernelMAC, err := net.ParseMAC(kl.Address)
	if err != nil {
		t.Fatal(err)
	}

	var got notes
	s, err := l.Open()
	if err != nil {
		t.Fatal(err)
	}
	s.EnableNotifications(link.NoteAll, got.add)

	rec := &recorder{frames: make(chan frame, 64)}
	ep.Attach(rec)

	run(t, "ip", "-n", ns, "addr", "add", "192.0.2.1/24", "dev", name)
	run(t, "ip", "-n", ns, "link", "set", name, "up")
	eventually(t, "NoteLinkUp", func() bool { return got.last() == link.NoteLinkUp })
	if !l.Up() {
		t.Errorf("link down after NoteLinkUp")
	}

	// Kernel → stack: pinging a neighbour makes the kernel ARP for it.
	ping := exec.Command("ip", "netns", "exec", ns, "ping", "-c1", "-W1", "192.0.2.2")
	if err := ping.Start(); err != nil {
		t.Fatal(err)
	}
	defer ping.Wait()
	f := rec.waitARP(t)
	req := header.ARP(f.body)
	switch {
	case !req.IsValid() || req.Op() != header.ARPRequest:
		t.Fatalf("ARP frame is not a request: % x", f.body)
	case f.eth.DestinationAddress() != header.EthernetBroadcastAddress:
		t.Errorf("ARP request to %v, want broadcast", f.eth.DestinationAddress())
	case string(f.eth.SourceAddress()) != string(kernelMAC):
		t.Errorf("ARP request from %v, want the kernel's %v", f.eth.SourceAddress(), kernelMAC)
	case net.IP(req.ProtocolAddressTarget()).String() != "192.0.2.2":
		t.Errorf("ARP request for %v, want 192.0.2.2", net.IP(req.ProtocolAddressTarget()))
	}

	// Stack → kernel: answer it; the kernel counts the frame and learns
	// our MAC.
	before := rxPackets(t, ns, name)
	reply := make([]byte, header.ARPSize)
	a := header.ARP(reply)
	a.SetIPv4OverEthernet()
	a.SetOp(header.ARPReply)
	copy(a.HardwareAddressSender(), mac)
	copy(a.ProtocolAddressSender(), net.IPv4(192, 0, 2, 2).To4())
	copy(a.HardwareAddressTarget(), kernelMAC)
	copy(a.ProtocolAddressTarget(), net.IPv4(192, 0, 2, 1).To4())
	if err := writeFrame(t, ep, tcpip.LinkAddress(mac), tcpip.LinkAddress(kernelMAC), header.ARPProtocolNumber, reply); err != nil {
		t.Fatalf("write ARP reply: %v", err)
	}
	eventually(t, "rx_packets to grow", func() bool { return rxPackets(t, ns, name) > before })
	eventually(t, "the kernel to learn our MAC", func() bool {
		return strings.Contains(run(t, "ip", "-n", ns, "neigh", "show", "192.0.2.2"), mac.String())
	})

	// MTU from our side reaches both sides.
	if err := l.Device().(*tap.Device).SetMTU(1300); err != nil {
		t.Fatalf("SetMTU: %v", err)
	}
	if kl, _ := showLink(t, ns, name); kl.MTU != 1300 || ep.MTU() != 1300 || l.SDU() != 1300 {
		t.Errorf("after SetMTU(1300): kernel %d endpoint %d link %d", kl.MTU, ep.MTU(), l.SDU())
	}
	if got.last() != link.NoteSDUSize {
		t.Errorf("SetMTU raised %v, want NoteSDUSize", got.last())
	}

	// Carrier follows the namespace side.
	run(t, "ip", "-n", ns, "link", "set", name, "down")
	eventually(t, "NoteLinkDown", func() bool { return got.last() == link.NoteLinkDown })
	if l.Up() {
		t.Errorf("link up after NoteLinkDown")
	}

	// Deleting the link deletes the device, even with the endpoint still
	// attached; writes afterwards go nowhere and fail nothing.
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	eventually(t, name+" to disappear", func() bool { _, ok := showLink(t, ns, name); return !ok })
	if err := writeFrame(t, ep, tcpip.LinkAddress(mac), header.EthernetBroadcastAddress, header.ARPProtocolNumber, reply); err != nil {
		t.Errorf("write after Close: %v", err)
	}
	ep.Attach(nil) // the stack removing the NIC: closes the placeholder
}

// TestDeletedInNetns: deleting the device from the namespace side reads
// as carrier loss.
func TestDeletedInNetns(t *testing.T) {
	requireRoot(t)
	ns := newNetns(t)
	name := "tap" + suffix()[:6]
	l := create(t, tap.Config{Name: name, Netns: ns})
	run(t, "ip", "-n", ns, "link", "set", name, "up")
	eventually(t, "carrier up", l.Up)
	run(t, "ip", "-n", ns, "link", "del", name)
	eventually(t, "carrier down", func() bool { return !l.Up() })
}

func TestDefaults(t *testing.T) {
	requireRoot(t)
	ns := newNetns(t)
	name := "tap" + suffix()[:6]
	l := create(t, tap.Config{Name: name, Netns: "/run/netns/" + ns})
	if kl, _ := showLink(t, ns, name); kl.MTU != 1500 {
		t.Errorf("kernel MTU %d, want 1500", kl.MTU)
	}
	if l.SDU() != 1500 || l.Endpoint().MTU() != 1500 {
		t.Errorf("link MTU %d, endpoint %d, want 1500", l.SDU(), l.Endpoint().MTU())
	}
	if mac := l.Addr(); len(mac) != 6 || mac[0]&0x03 != 0x02 {
		t.Errorf("MAC %v is not locally administered unicast", mac)
	}
	if l.Over() != "/run/netns/"+ns {
		t.Errorf("Over() = %q", l.Over())
	}
	info, err := l.Open()
	if err != nil {
		t.Fatal(err)
	}
	if i := info.Info(); i.MacType != link.DL_ETHER || i.Broadcast.String() != "ff:ff:ff:ff:ff:ff" {
		t.Errorf("Info: %+v", i)
	}
	// Offloads on by default: the kernel's answer to TUNSETOFFLOAD, with
	// USO only from Linux 6.2.
	dev := l.Device().(*tap.Device)
	c := dev.Capabilities()
	wantUSO := dev.Offloads()&(tap.OffloadUSO4|tap.OffloadUSO6) != 0
	want := link.Capabilities{HCksum: link.HCKSUM_INET_PARTIAL, LSO: true, LSOMax: 1 << 16, ZeroCopy: true, USO: wantUSO}
	if c != want {
		t.Errorf("Capabilities = %+v, want %+v", c, want)
	}
	if q := dev.Queues(); q != min(runtime.NumCPU(), 4) {
		t.Errorf("Queues = %d, want min(NumCPU, 4) = %d", q, min(runtime.NumCPU(), 4))
	}
}

// TestCurrentNetns creates a TAP with Netns "" from a thread locked into a
// fresh namespace: the device must appear there.
func TestCurrentNetns(t *testing.T) {
	requireRoot(t)
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := netns.New() // and switches this thread into it
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			t.Errorf("restore namespace: %v", err) // leave the thread locked: Go discards it
			return
		}
		runtime.UnlockOSThread()
		orig.Close()
		fresh.Close()
	}()

	name := "tap" + suffix()[:6]
	l, err := tap.Create(tap.Config{Name: name})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	defer l.Close()
	h, err := netlink.NewHandleAt(fresh)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := h.LinkByName(name); err != nil {
		t.Errorf("%s not in the calling thread's namespace: %v", name, err)
	}
	if l.Over() != "" {
		t.Errorf("Over() = %q, want \"\"", l.Over())
	}
}

func TestAlreadyExists(t *testing.T) {
	requireRoot(t)
	ns := newNetns(t)
	name := "tap" + suffix()[:6]
	create(t, tap.Config{Name: name, Netns: ns})
	_, err := tap.Create(tap.Config{Name: name, Netns: ns})
	if want := fmt.Sprintf("device %s already exists in %s", name, ns); err == nil || err.Error() != want {
		t.Fatalf("second Create: %v, want %q", err, want)
	}
	if !errors.Is(err, unix.EEXIST) {
		t.Errorf("%v does not match EEXIST", err)
	}
	// The failed attempt left the first device alone.
	if _, ok := showLink(t, ns, name); !ok {
		t.Errorf("%s vanished", name)
	}
	// A name taken by another kind of device is refused too.
	if _, err := tap.Create(tap.Config{Name: "lo", Netns: ns}); !errors.Is(err, unix.EEXIST) {
		t.Errorf("Create(lo): %v, want EEXIST", err)
	}
}

// TestConfigErrors needs no privilege: every case fails before touching
// the kernel, or at opening the namespace.
func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name  string
		cfg   tap.Config
		msg   string
		errno unix.Errno
	}{
		{"empty name", tap.Config{}, "tap name is empty", unix.EINVAL},
		{"long name", tap.Config{Name: "tap0123456789abc"}, `tap name "tap0123456789abc" too long (max 15)`, unix.EINVAL},
		{"slash", tap.Config{Name: "tap/0"}, `tap name "tap/0" contains '/', ':' or '%'`, unix.EINVAL},
		{"colon", tap.Config{Name: "tap0:1"}, `tap name "tap0:1" contains '/', ':' or '%'`, unix.EINVAL},
		{"template", tap.Config{Name: "tap%d"}, `tap name "tap%d" contains '/', ':' or '%'`, unix.EINVAL},
		{"space", tap.Config{Name: "tap 0"}, `tap name "tap 0" contains white space`, unix.EINVAL},
		{"dot", tap.Config{Name: ".."}, `tap name ".." is reserved`, unix.EINVAL},
		{"short MAC", tap.Config{Name: "tap0", MAC: net.HardwareAddr{2, 0, 0}}, "MAC 02:00:00 is not an Ethernet address", unix.EINVAL},
		{"multicast MAC", tap.Config{Name: "tap0", MAC: net.HardwareAddr{1, 0, 0x5e, 0, 0, 1}}, "MAC 01:00:5e:00:00:01 is multicast", unix.EINVAL},
		{"missing netns", tap.Config{Name: "tap0", Netns: "tst-missing-" + suffix()}, "no such network namespace", unix.ENOENT},
		{"relative netns", tap.Config{Name: "tap0", Netns: "a/b"}, "netns a/b: not a name under /run/netns or an absolute path", unix.EINVAL},
		{"not a netns", tap.Config{Name: "tap0", Netns: "/proc/self/ns/uts"}, "netns /proc/self/ns/uts: not a network namespace", unix.EINVAL},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := tap.Create(tc.cfg)
			if err == nil {
				l.Close()
				t.Fatalf("Create(%+v) succeeded", tc.cfg)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
			if !errors.Is(err, tc.errno) {
				t.Errorf("error %q does not match %v", err, tc.errno)
			}
		})
	}
}

// openFDs counts this process's descriptors, eventfds apart: gVisor's
// fdbased endpoint never closes the eventfd it stops its reader with (one
// per endpoint, pkg/tcpip/link/stopfd), and that is not ours to fix here.
func openFDs(t *testing.T) (fds, eventfds int) {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if target, _ := os.Readlink("/proc/self/fd/" + e.Name()); target == "anon_inode:[eventfd]" {
			eventfds++
		} else {
			fds++
		}
	}
	return fds, eventfds
}

// TestCloseReleasesEverything: closing a link deletes its device and, once
// the stack has let go of the endpoint, leaves no descriptor (TAP,
// placeholder, namespace, netlink sockets) and no goroutine behind.
func TestCloseReleasesEverything(t *testing.T) {
	requireRoot(t)
	ns := newNetns(t)
	for _, tc := range []struct {
		attached bool
		readers  tap.ReaderMode
	}{{false, tap.ReadersPinned}, {true, tap.ReadersPinned}, {false, tap.ReadersPolled}, {true, tap.ReadersPolled}} {
		attached := tc.attached
		t.Run(fmt.Sprintf("attached=%v/%v", attached, tc.readers), func(t *testing.T) {
			fds, efds := openFDs(t)
			goroutines := runtime.NumGoroutine()
			name := "tap" + suffix()[:6]
			l, err := tap.Create(tap.Config{Name: name, Netns: ns, Readers: tc.readers})
			if err != nil {
				t.Fatal(err)
			}
			if attached {
				l.Endpoint().Attach(&recorder{frames: make(chan frame, 1)})
			}
			if err := l.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if err := l.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if _, ok := showLink(t, ns, name); ok {
				t.Errorf("%s still exists after Close", name)
			}
			if attached {
				l.Endpoint().Attach(nil)
			}
			eventually(t, "descriptors and goroutines to be released", func() bool {
				n, e := openFDs(t)
				return n == fds && e <= efds+1 && runtime.NumGoroutine() <= goroutines
			})
		})
	}
}

// TestBadMTU: the kernel refuses the MTU after the device exists; Create
// must say so and leave no device behind.
func TestBadMTU(t *testing.T) {
	requireRoot(t)
	ns := newNetns(t)
	name := "tap" + suffix()[:6]
	_, err := tap.Create(tap.Config{Name: name, Netns: ns, MTU: 70000})
	if want := fmt.Sprintf("set mtu 70000 on %s in %s", name, ns); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Create: %v, want an error saying %q", err, want)
	}
	if !errors.Is(err, unix.EINVAL) {
		t.Errorf("%v does not match EINVAL", err)
	}
	eventually(t, name+" to be gone", func() bool { _, ok := showLink(t, ns, name); return !ok })
}
