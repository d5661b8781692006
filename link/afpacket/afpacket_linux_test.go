package afpacket_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"

	"github.com/tapstack/tapstack/internal/netnstest"
	"github.com/tapstack/tapstack/link"
	"github.com/tapstack/tapstack/link/afpacket"
)

// The addresses of every test network: the kernel (on vB) and the stack
// (on the link over vA). Each test has a namespace of its own.
var (
	kernelIP = netip4(10, 77, 0, 2)
	stackIP  = netip4(10, 77, 0, 1)
)

func netip4(a, b, c, d byte) tcpip.Address { return tcpip.AddrFrom4([4]byte{a, b, c, d}) }

// requireSocat is netnstest.Require plus socat, which the TCP tests use as
// the kernel's peer.
func requireSocat(t testing.TB) {
	t.Helper()
	netnstest.Require(t)
	if _, err := netnstest.LookCmd("socat"); err != nil {
		netnstest.Unavailable(t, "%v; to enable, install socat (make deps)", err)
	}
}

// testNet is a namespace with a veth pair: vA carries the afpacket link,
// vB is the kernel's, with kernelIP/24.
type testNet struct {
	ns, vA, vB string
}

func newTestNet(t testing.TB) *testNet {
	t.Helper()
	n := &testNet{ns: netnstest.NewNetns(t), vA: netnstest.UniqueName("afa"), vB: netnstest.UniqueName("afb")}
	for _, args := range [][]string{
		{"ip", "link", "add", n.vA, "type", "veth", "peer", "name", n.vB},
		{"ip", "addr", "add", "10.77.0.2/24", "dev", n.vB},
		{"ip", "link", "set", n.vA, "up"},
		{"ip", "link", "set", n.vB, "up"},
	} {
		if out, err := netnstest.Exec(t, n.ns, args...); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	}
	return n
}

// create makes an afpacket link over vA, closed when the test ends (before
// the namespace is deleted: cleanups run last first).
func (n *testNet) create(t testing.TB, rings int, mode afpacket.RXMode) *link.Link {
	t.Helper()
	l, err := afpacket.Create(afpacket.Config{Name: "pkt0", Over: n.vA, Netns: n.ns, Rings: rings, RX: mode})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return l
}

// newStack runs a gVisor stack on l with stackIP/24.
func newStack(t testing.TB, l *link.Link) *stack.Stack {
	t.Helper()
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4},
	})
	t.Cleanup(func() {
		s.Close()
		s.Wait()
	})
	sack := tcpip.TCPSACKEnabled(true)
	s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack)
	moderate := tcpip.TCPModerateReceiveBufferOption(true)
	s.SetTransportProtocolOption(tcp.ProtocolNumber, &moderate)
	if err := s.CreateNICWithOptions(1, l.Endpoint(), stack.NICOptions{Name: l.Name()}); err != nil {
		t.Fatalf("CreateNIC: %v", err)
	}
	if err := s.AddProtocolAddress(1, tcpip.ProtocolAddress{
		Protocol:          ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddressWithPrefix{Address: stackIP, PrefixLen: 24},
	}, stack.AddressProperties{}); err != nil {
		t.Fatalf("AddProtocolAddress: %v", err)
	}
	subnet, _ := tcpip.NewSubnet(netip4(10, 77, 0, 0), tcpip.MaskFromBytes([]byte{255, 255, 255, 0}))
	s.SetRouteTable([]tcpip.Route{{Destination: subnet, NIC: 1}})
	return s
}

// modes are the receive modes every data-path test runs in.
var modes = []afpacket.RXMode{afpacket.RXRing, afpacket.RXRecvmmsg}

// forModes runs f as one subtest per receive mode.
func forModes(t *testing.T, f func(t *testing.T, mode afpacket.RXMode)) {
	for _, m := range modes {
		t.Run(string(m), func(t *testing.T) { f(t, m) })
	}
}

func device(t testing.TB, l *link.Link) *afpacket.Device {
	t.Helper()
	d, ok := l.Device().(*afpacket.Device)
	if !ok {
		t.Fatalf("link device is %T", l.Device())
	}
	return d
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// nsCommand starts `ip netns exec NS args...`, killed at the end of the
// test if still running.
func nsCommand(t testing.TB, ns string, args ...string) *exec.Cmd {
	t.Helper()
	ip, err := netnstest.LookCmd("ip")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	cmd := exec.CommandContext(ctx, ip, append([]string{"netns", "exec", ns}, args...)...)
	cmd.WaitDelay = 2 * time.Second
	t.Cleanup(func() {
		cancel()
		if cmd.Process != nil {
			cmd.Wait()
		}
	})
	return cmd
}

func TestCreateErrors(t *testing.T) {
	netnstest.Require(t)
	n := newTestNet(t)
	lo := n.ns
	tests := []struct {
		name string
		cfg  afpacket.Config
		want error
	}{
		{"no name", afpacket.Config{Over: n.vA, Netns: lo}, unix.EINVAL},
		{"no device", afpacket.Config{Name: "p", Netns: lo}, unix.EINVAL},
		{"missing device", afpacket.Config{Name: "p", Over: "nosuchdev0", Netns: lo}, unix.ENODEV},
		{"loopback", afpacket.Config{Name: "p", Over: "lo", Netns: lo}, unix.EINVAL},
		{"missing netns", afpacket.Config{Name: "p", Over: n.vA, Netns: "tst-none-" + n.vA}, unix.ENOENT},
		{"too many rings", afpacket.Config{Name: "p", Over: n.vA, Netns: lo, Rings: 1000}, unix.EINVAL},
		{"MTU above the device's", afpacket.Config{Name: "p", Over: n.vA, Netns: lo, MTU: 9000}, unix.EINVAL},
		{"multicast MAC", afpacket.Config{Name: "p", Over: n.vA, Netns: lo, MAC: net.HardwareAddr{1, 0, 0, 0, 0, 1}}, unix.EINVAL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := afpacket.Create(tt.cfg)
			if err == nil {
				l.Close()
				t.Fatalf("Create(%+v) succeeded", tt.cfg)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("Create(%+v) = %v, want %v", tt.cfg, err, tt.want)
			}
		})
	}
}

// TestLinkInfo checks what the link reports: class, over, SDU from the
// device, carrier from the device, capabilities, rings.
func TestLinkInfo(t *testing.T) {
	netnstest.Require(t)
	n := newTestNet(t)
	l := n.create(t, 2, "")
	d := device(t, l)
	if l.Class() != "afpacket" || l.Over() != n.vA || l.SDU() != 1500 || len(l.Addr()) != 6 || l.Addr()[0]&3 != 2 {
		t.Errorf("link: class %q over %q sdu %d addr %v", l.Class(), l.Over(), l.SDU(), l.Addr())
	}
	if d.Rings() != 2 {
		t.Errorf("rings = %d, want 2", d.Rings())
	}
	caps := d.Capabilities()
	if caps.HCksum != link.HCKSUM_INET_PARTIAL || !caps.LSO || caps.LSOMax != 65536 {
		t.Errorf("capabilities = %+v", caps)
	}
	if !l.Up() {
		t.Errorf("link is down while %s is up", n.vA)
	}
	if !promiscuous(t, n.ns, n.vA) {
		t.Errorf("%s is not promiscuous", n.vA)
	}
	if out, err := netnstest.Exec(t, n.ns, "ip", "link", "set", n.vB, "down"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	eventually(t, "carrier down", func() bool { return !l.Up() })
	if out, err := netnstest.Exec(t, n.ns, "ip", "link", "set", n.vB, "up"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	eventually(t, "carrier up", l.Up)
	if out, err := netnstest.Exec(t, n.ns, "ip", "link", "set", n.vA, "mtu", "1400"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	eventually(t, "SDU 1400", func() bool { return l.SDU() == 1400 && l.Endpoint().MTU() == 1400 })
}

// promiscuous reports the device's promiscuity count > 0.
func promiscuous(t testing.TB, ns, dev string) bool {
	t.Helper()
	out, err := netnstest.Exec(t, ns, "ip", "-d", "-j", "link", "show", "dev", dev)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var ls []struct {
		Promiscuity int `json:"promiscuity"`
	}
	if err := json.Unmarshal([]byte(out), &ls); err != nil || len(ls) != 1 {
		t.Fatalf("ip -d -j link show: %v: %s", err, out)
	}
	return ls[0].Promiscuity > 0
}

// TestPing pings the stack from the namespace: ARP from the kernel to the
// stack and back, ICMP echo both ways through the rings.
func TestPing(t *testing.T) {
	netnstest.Require(t)
	forModes(t, func(t *testing.T, mode afpacket.RXMode) {
		n := newTestNet(t)
		l := n.create(t, 0, mode)
		newStack(t, l)
		out, err := netnstest.Exec(t, n.ns, "ping", "-c", "5", "-i", "0.2", "-W", "2", "10.77.0.1")
		if err != nil {
			t.Fatalf("ping: %v\n%s", err, out)
		}
		if i := strings.Index(out, "rtt "); i >= 0 {
			t.Logf("ping the stack: %s", strings.TrimSpace(out[i:]))
		}
		// The kernel learnt the stack's MAC by ARP.
		neigh, err := netnstest.Exec(t, n.ns, "ip", "neigh", "show", "10.77.0.1", "dev", n.vB)
		if err != nil || !strings.Contains(neigh, l.Addr().String()) {
			t.Errorf("kernel neighbour entry for the stack: %q (%v), want MAC %v", neigh, err, l.Addr())
		}
	})
}

// TestTCPBothWays runs one TCP connection each way: the kernel connects
// to a gVisor listener, and gVisor connects to a socat in the namespace
// (ARP from the stack to the kernel).
func TestTCPBothWays(t *testing.T) {
	requireSocat(t)
	forModes(t, func(t *testing.T, mode afpacket.RXMode) {
		n := newTestNet(t)
		l := n.create(t, 0, mode)
		s := newStack(t, l)

		t.Run("kernel to stack", func(t *testing.T) {
			ln, err := gonet.ListenTCP(s, tcpip.FullAddress{NIC: 1, Addr: stackIP, Port: 7001}, ipv4.ProtocolNumber)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			got := make(chan string, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					got <- err.Error()
					return
				}
				defer c.Close()
				b, _ := io.ReadAll(c)
				got <- string(b)
			}()
			cmd := nsCommand(t, n.ns, "socat", "-u", "-", "TCP:10.77.0.1:7001")
			cmd.Stdin = strings.NewReader("hello from the kernel\n")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("socat: %v\n%s", err, out)
			}
			if g := <-got; g != "hello from the kernel\n" {
				t.Errorf("stack received %q", g)
			}
		})

		t.Run("stack to kernel", func(t *testing.T) {
			cmd := nsCommand(t, n.ns, "socat", "-u", "TCP-LISTEN:7002,reuseaddr", "-")
			var out bytes.Buffer
			cmd.Stdout = &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			c := dialRetry(t, s, 7002)
			if _, err := c.Write([]byte("hello from the stack\n")); err != nil {
				t.Fatal(err)
			}
			c.Close()
			if err := cmd.Wait(); err != nil {
				t.Fatalf("socat: %v", err)
			}
			if out.String() != "hello from the stack\n" {
				t.Errorf("kernel received %q", out.String())
			}
		})
	})
}

// dialRetry connects from the stack to the kernel's port, retrying while
// the listener is starting.
func dialRetry(t testing.TB, s *stack.Stack, port uint16) *gonet.TCPConn {
	t.Helper()
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var c *gonet.TCPConn
		if c, err = gonet.DialTCP(s, tcpip.FullAddress{NIC: 1, Addr: kernelIP, Port: port}, ipv4.ProtocolNumber); err == nil {
			return c
		}
	}
	t.Fatalf("dial %v:%d: %v", kernelIP, port, err)
	return nil
}

// patterned is n bytes of a seeded pseudo-random stream.
type patterned struct {
	rng  *rand.ChaCha8
	left int64
}

func newPatterned(seed byte, n int64) *patterned {
	return &patterned{rng: rand.NewChaCha8([32]byte{seed}), left: n}
}

func (p *patterned) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.left)]
	p.rng.Read(b)
	p.left -= int64(len(b))
	return len(b), nil
}

func sum(r io.Reader) ([32]byte, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out, n, err
}

// TestLargeTransfer moves 50 MB each way and checks every byte; the
// segments cross vA as GSO super-frames both ways.
func TestLargeTransfer(t *testing.T) {
	requireSocat(t)
	forModes(t, func(t *testing.T, mode afpacket.RXMode) {
		n := newTestNet(t)
		l := n.create(t, 0, mode)
		s := newStack(t, l)
		d := device(t, l)
		const size = 50 << 20
		want, _, _ := sum(newPatterned(1, size))

		t.Run("kernel to stack", func(t *testing.T) {
			ln, err := gonet.ListenTCP(s, tcpip.FullAddress{NIC: 1, Addr: stackIP, Port: 7003}, ipv4.ProtocolNumber)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			type result struct {
				sum [32]byte
				n   int64
				err error
			}
			got := make(chan result, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					got <- result{err: err}
					return
				}
				defer c.Close()
				s, n, err := sum(c)
				got <- result{s, n, err}
			}()
			cmd := nsCommand(t, n.ns, "socat", "-u", "-", "TCP:10.77.0.1:7003")
			cmd.Stdin = newPatterned(1, size)
			start := time.Now()
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("socat: %v\n%s", err, out)
			}
			r := <-got
			if r.err != nil || r.n != size || r.sum != want {
				t.Fatalf("stack received %d bytes (err %v), checksum match %v", r.n, r.err, r.sum == want)
			}
			t.Logf("kernel to stack: %d bytes in %v", r.n, time.Since(start))
		})

		t.Run("stack to kernel", func(t *testing.T) {
			cmd := nsCommand(t, n.ns, "socat", "-u", "TCP-LISTEN:7004,reuseaddr", "-")
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			type result struct {
				sum [32]byte
				n   int64
				err error
			}
			got := make(chan result, 1)
			go func() {
				s, n, err := sum(stdout)
				got <- result{s, n, err}
			}()
			c := dialRetry(t, s, 7004)
			start := time.Now()
			if _, err := io.Copy(c, newPatterned(1, size)); err != nil {
				t.Fatalf("write: %v", err)
			}
			c.Close()
			r := <-got
			if err := cmd.Wait(); err != nil {
				t.Errorf("socat: %v", err)
			}
			if r.err != nil || r.n != size || r.sum != want {
				t.Fatalf("kernel received %d bytes (err %v), checksum match %v", r.n, r.err, r.sum == want)
			}
			t.Logf("stack to kernel: %d bytes in %v", r.n, time.Since(start))
		})

		var tot afpacket.RingStats
		for _, st := range d.Stats() {
			tot.RxGSO += st.RxGSO
			tot.TxGSO += st.TxGSO
			tot.RxPackets += st.RxPackets
			tot.TxPackets += st.TxPackets
			tot.RxBadCsum += st.RxBadCsum
			tot.KernelDrops += st.KernelDrops
		}
		t.Logf("totals: %+v", tot)
		if tot.RxGSO == 0 || tot.TxGSO == 0 {
			t.Errorf("GSO frames: %d received, %d sent; want some each way", tot.RxGSO, tot.TxGSO)
		}
		if tot.RxBadCsum != 0 {
			t.Errorf("%d frames with bad checksums", tot.RxBadCsum)
		}
	})
}

// TestFanout runs parallel flows from the kernel and checks that the
// kernel's flow hash spread them over more than one ring. Four flows over
// two rings all land on one ring one time in eight, so more flows are
// added, four at a time, until two rings have seen traffic (or 32 flows).
func TestFanout(t *testing.T) {
	requireSocat(t)
	forModes(t, func(t *testing.T, mode afpacket.RXMode) {
		n := newTestNet(t)
		l := n.create(t, 2, mode)
		s := newStack(t, l)
		d := device(t, l)
		if out, err := netnstest.Exec(t, n.ns, "ping", "-c", "1", "-W", "2", "10.77.0.1"); err != nil {
			t.Fatalf("ping: %v\n%s", err, out)
		}
		discardListener(t, s, 1, 7005)
		before := d.Stats()
		busy := func() int {
			k := 0
			for i, st := range d.Stats() {
				if st.RxPackets-before[i].RxPackets >= 100 {
					k++
				}
			}
			return k
		}
		flows := 0
		for flows < 32 && busy() < 2 {
			var wg sync.WaitGroup
			for range 4 {
				flows++
				cmd := nsCommand(t, n.ns, "socat", "-u", "-", "TCP:10.77.0.1:7005")
				cmd.Stdin = io.LimitReader(zeros{}, 4<<20)
				wg.Go(func() {
					if out, err := cmd.CombinedOutput(); err != nil {
						t.Errorf("socat: %v\n%s", err, out)
					}
				})
			}
			wg.Wait()
		}
		after := d.Stats()
		for i := range after {
			t.Logf("ring %d (cpu %d): %d frames, %d blocks", i, after[i].CPU, after[i].RxPackets-before[i].RxPackets, after[i].RxBatches-before[i].RxBatches)
		}
		if busy() < 2 {
			t.Errorf("%d flows all landed on one ring", flows)
		}
	})
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

// TestClose checks that Close leaves nothing behind: no descriptors, no
// packet sockets in the namespace, the device no longer promiscuous, and
// an endpoint that refuses frames.
func TestClose(t *testing.T) {
	netnstest.Require(t)
	forModes(t, func(t *testing.T, mode afpacket.RXMode) {
		n := newTestNet(t)
		fds := openFDs(t)
		l, err := afpacket.Create(afpacket.Config{Name: "pkt0", Over: n.vA, Netns: n.ns, Rings: 3, RX: mode})
		if err != nil {
			t.Fatal(err)
		}
		s := stack.New(stack.Options{NetworkProtocols: []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol}})
		if err := s.CreateNIC(1, l.Endpoint()); err != nil {
			t.Fatalf("CreateNIC: %v", err)
		}
		if got := packetSockets(t, n.ns); got != 3 {
			t.Errorf("%d packet sockets in the namespace, want 3", got)
		}
		if err := l.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if got := packetSockets(t, n.ns); got != 0 {
			t.Errorf("%d packet sockets in the namespace after Close", got)
		}
		if promiscuous(t, n.ns, n.vA) {
			t.Errorf("%s still promiscuous after Close", n.vA)
		}
		// The endpoint outlives the device until the NIC goes.
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{
			ReserveHeaderBytes: header.EthernetMinimumSize,
			Payload:            buffer.MakeWithData(make([]byte, 100)),
		})
		defer pkt.DecRef()
		var pkts stack.PacketBufferList
		pkts.PushBack(pkt)
		if _, err := l.Endpoint().WritePackets(pkts); err == nil {
			t.Errorf("WritePackets after Close succeeded")
		}
		s.RemoveNIC(1)
		s.Close()
		s.Wait()
		eventually(t, "descriptors closed", func() bool { return openFDs(t) <= fds })
	})
}

func openFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// packetSockets counts the packet sockets open in ns (/proc/net/packet).
func packetSockets(t testing.TB, ns string) int {
	t.Helper()
	out, err := netnstest.Exec(t, ns, "cat", "/proc/net/packet")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return len(lines) - 1 // the header
}

// TestDetachUnderLoad removes the NIC while the kernel floods the stack,
// then attaches the link to a new NIC: gVisor detaches a link with its
// stack lock held, while receive goroutines may be waiting for that lock
// to deliver a packet; this used to deadlock.
func TestDetachUnderLoad(t *testing.T) {
	requireSocat(t)
	forModes(t, func(t *testing.T, mode afpacket.RXMode) {
		n := newTestNet(t)
		l := n.create(t, 2, mode)
		s := newStack(t, l)
		d := device(t, l)
		discardListener(t, s, 1, 7010)
		for range 4 {
			cmd := nsCommand(t, n.ns, "socat", "-u", "/dev/zero", "TCP:10.77.0.1:7010")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill() })
		}
		rx := func() uint64 {
			var sum uint64
			for _, st := range d.Stats() {
				sum += st.RxPackets
			}
			return sum
		}
		eventually(t, "traffic", func() bool { return rx() > 2000 })

		done := make(chan tcpip.Error, 1)
		go func() { done <- s.RemoveNIC(1) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("RemoveNIC: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("RemoveNIC under load did not return: deadlock between the stack lock and a receive goroutine")
		}
		if l.Endpoint().IsAttached() {
			t.Errorf("endpoint attached after RemoveNIC")
		}

		// The same link on a new NIC carries traffic again.
		if err := s.CreateNICWithOptions(2, l.Endpoint(), stack.NICOptions{Name: l.Name()}); err != nil {
			t.Fatalf("CreateNIC again: %v", err)
		}
		if err := s.AddProtocolAddress(2, tcpip.ProtocolAddress{
			Protocol:          ipv4.ProtocolNumber,
			AddressWithPrefix: tcpip.AddressWithPrefix{Address: stackIP, PrefixLen: 24},
		}, stack.AddressProperties{}); err != nil {
			t.Fatalf("AddProtocolAddress: %v", err)
		}
		subnet, _ := tcpip.NewSubnet(netip4(10, 77, 0, 0), tcpip.MaskFromBytes([]byte{255, 255, 255, 0}))
		s.SetRouteTable([]tcpip.Route{{Destination: subnet, NIC: 2}})
		if out, err := netnstest.Exec(t, n.ns, "ping", "-c", "2", "-W", "2", "10.77.0.1"); err != nil {
			t.Fatalf("ping after re-attach: %v\n%s", err, out)
		}

		// Close under a flood returns: busy receive goroutines see the
		// stop between batches.
		discardListener(t, s, 2, 7011)
		cmd := nsCommand(t, n.ns, "socat", "-u", "/dev/zero", "TCP:10.77.0.1:7011")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill() })
		mark := rx()
		eventually(t, "traffic again", func() bool { return rx() > mark+2000 })
		closed := make(chan error, 1)
		go func() { closed <- l.Close() }()
		select {
		case err := <-closed:
			if err != nil {
				t.Fatalf("Close: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Close under load did not return")
		}
	})
}

// discardListener accepts TCP connections to stackIP:port on NIC nic of s
// and reads them to the end, until the test ends.
func discardListener(t *testing.T, s *stack.Stack, nic tcpip.NICID, port uint16) {
	t.Helper()
	ln, err := gonet.ListenTCP(s, tcpip.FullAddress{NIC: nic, Addr: stackIP, Port: port}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(io.Discard, c)
				c.Close()
			}()
		}
	}()
}
