package tap_test

// End to end through tapstack's gVisor stack over a TAP, with the kernel
// in a test namespace as the peer: data integrity with offloads on and
// off, single and multi-queue, and the throughput benchmark.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tapstack/tapstack/internal/netnstest"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"

	"github.com/tapstack/tapstack/link"
	"github.com/tapstack/tapstack/link/tap"
	tstack "github.com/tapstack/tapstack/stack"
)

var (
	kernelV4 = netip.MustParseAddr("192.0.2.1")
	stackV4  = netip.MustParseAddr("192.0.2.2")
	kernelV6 = netip.MustParseAddr("2001:db8::1")
	stackV6  = netip.MustParseAddr("2001:db8::2")
)

// stackLink is a TAP link in a fresh namespace under tapstack's stack,
// addressed on both sides, the way the daemon would have it.
type stackLink struct {
	ns   string
	name string
	l    *link.Link
	dev  *tap.Device
	s    *tstack.Stack
}

func newStackLink(t testing.TB, cfg tap.Config) *stackLink {
	t.Helper()
	requireRoot(t)
	if _, err := exec.LookPath("socat"); err != nil {
		netnstest.Unavailable(t, "needs socat (make deps installs it)")
	}
	ns := newNetns(t)
	cfg.Name = "tap" + suffix()[:6]
	cfg.Netns = ns
	l := create(t, cfg)
	s := tstack.New()
	t.Cleanup(s.Close) // before the link closes
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.AddNIC(cfg.Name, l.Endpoint()))
	must(s.EnableNIC(cfg.Name))
	must(s.AddAddress(cfg.Name, netip.PrefixFrom(stackV4, 24)))
	must(s.AddAddress(cfg.Name, netip.PrefixFrom(stackV6, 64)))
	s.SetRoutes([]tstack.Route{
		{Dest: netip.MustParsePrefix("192.0.2.0/24"), NIC: cfg.Name},
		{Dest: netip.MustParsePrefix("2001:db8::/64"), NIC: cfg.Name},
	})
	run(t, "ip", "-n", ns, "addr", "add", "192.0.2.1/24", "dev", cfg.Name)
	run(t, "ip", "-n", ns, "addr", "add", "2001:db8::1/64", "dev", cfg.Name, "nodad")
	run(t, "ip", "-n", ns, "link", "set", cfg.Name, "up")
	eventually(t, "the stack to answer ping", func() bool {
		return exec.Command("ip", "netns", "exec", ns, "ping", "-c1", "-W1", stackV4.String()).Run() == nil
	})
	return &stackLink{ns: ns, name: cfg.Name, l: l, dev: l.Device().(*tap.Device), s: s}
}

func (sl *stackLink) fullAddr(a netip.Addr, port uint16) (tcpip.FullAddress, tcpip.NetworkProtocolNumber) {
	id, _ := sl.s.NICID(sl.name)
	proto := ipv4.ProtocolNumber
	if a.Is6() {
		proto = ipv6.ProtocolNumber
	}
	return tcpip.FullAddress{NIC: id, Addr: tcpip.AddrFromSlice(a.AsSlice()), Port: port}, proto
}

// socatAddr is socat's name for a TCP peer.
func socatAddr(a netip.Addr, port int) string {
	if a.Is6() {
		return fmt.Sprintf("TCP6:[%s]:%d", a, port)
	}
	return fmt.Sprintf("TCP4:%s:%d", a, port)
}

// cmd is a command to run in the namespace, killed at ctx's end.
func (sl *stackLink) cmd(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", sl.ns}, args...)...)
}

// kernelTX has the kernel send file to the stack over TCP and returns what
// the stack received.
func (sl *stackLink) kernelTX(t *testing.T, file string, v6 bool) []byte {
	t.Helper()
	local := stackV4
	if v6 {
		local = stackV6
	}
	fa, proto := sl.fullAddr(local, 5001)
	ln, err := gonet.ListenTCP(sl.s.GVisor(), fa, proto)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := sl.cmd(ctx, "socat", "-u", "OPEN:"+file, socatAddr(local, 5001))
	var out bytes.Buffer
	c.Stderr = &out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got, err := io.ReadAll(conn)
	if err != nil {
		t.Errorf("read: %v", err)
	}
	if err := c.Wait(); err != nil {
		t.Errorf("socat: %v\n%s", err, out.String())
	}
	return got
}

// stackTX has the stack send data to the kernel over TCP and returns what
// the kernel received.
func (sl *stackLink) stackTX(t *testing.T, data []byte, v6 bool) []byte {
	t.Helper()
	remote := kernelV4
	listen := "TCP4-LISTEN:5002,reuseaddr"
	if v6 {
		remote, listen = kernelV6, "TCP6-LISTEN:5002,reuseaddr"
	}
	outFile := filepath.Join(t.TempDir(), "out")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := sl.cmd(ctx, "socat", "-u", listen, "CREATE:"+outFile)
	var errOut bytes.Buffer
	c.Stderr = &errOut
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	fa, proto := sl.fullAddr(remote, 5002)
	var conn *gonet.TCPConn
	eventually(t, "socat to listen", func() bool {
		var err error
		conn, err = gonet.DialContextTCP(ctx, sl.s.GVisor(), fa, proto)
		return err == nil
	})
	if _, err := conn.Write(data); err != nil {
		t.Errorf("write: %v", err)
	}
	conn.Close()
	if err := c.Wait(); err != nil {
		t.Errorf("socat: %v\n%s", err, errOut.String())
	}
	got, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestStackTCP moves 8 MiB each way through the stack over a TAP and
// checks it arrives intact, with and without offloads, on one queue and
// several; with offloads, frames in both directions must be bigger than
// the MTU (the kernel's TSO frames and the stack's 64 KiB segments).
func TestStackTCP(t *testing.T) {
	data := make([]byte, 8<<20)
	rand.Read(data)
	file := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	tests := []struct {
		name string
		cfg  tap.Config
		v6   bool
	}{
		{"mtu1500", tap.Config{MTU: 1500}, false},
		{"mtu1500-v6", tap.Config{MTU: 1500}, true},
		{"mtu65520", tap.Config{MTU: 65520}, false},
		{"mtu9000-3queues-v6", tap.Config{MTU: 9000, Queues: 3}, true},
		{"mtu1500-1queue", tap.Config{MTU: 1500, Queues: 1}, false},
		{"mtu1500-nooffload", tap.Config{MTU: 1500, NoOffload: true}, false},
		{"mtu65520-nooffload-v6", tap.Config{MTU: 65520, NoOffload: true}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sl := newStackLink(t, tc.cfg)
			offload := !tc.cfg.NoOffload
			if got := sl.dev.Offloads().TSO(); got != offload {
				t.Fatalf("offloads %v, want TSO %v", sl.dev.Offloads(), offload)
			}
			if got := sl.kernelTX(t, file, tc.v6); sha256.Sum256(got) != sum {
				t.Errorf("kernel → stack: got %d bytes, not the %d sent", len(got), len(data))
			}
			if got := sl.stackTX(t, data, tc.v6); sha256.Sum256(got) != sum {
				t.Errorf("stack → kernel: got %d bytes, not the %d sent", len(got), len(data))
			}
			st := sl.dev.Stats()
			t.Logf("offloads %v, %d queues: %+v", sl.dev.Offloads(), sl.dev.Queues(), st)
			mtuFrame := uint64(tc.cfg.MTU) + 14
			rxAvg, txAvg := st.RXBytes/max(st.RXFrames, 1), st.TXBytes/max(st.TXFrames, 1)
			if offload && tc.cfg.MTU < 16000 {
				// Averages over data and ACK frames: the largest frames
				// must be far over the MTU for the average to be.
				if rxAvg <= mtuFrame/2 || txAvg <= mtuFrame/2 {
					t.Errorf("average frame %d bytes in, %d out, MTU frame %d: no coalesced frames or 64 KiB segments", rxAvg, txAvg, mtuFrame)
				}
			}
			if !offload && (rxAvg > mtuFrame || txAvg > mtuFrame) {
				t.Errorf("average frame %d in, %d out is over the MTU without offloads", rxAvg, txAvg)
			}
			if st.RXDropped != 0 || st.RXErrors != 0 || st.TXErrors != 0 || st.Copies != 0 {
				t.Errorf("drops, errors or copies: %+v", st)
			}
		})
	}
}

// inNetns runs f on a thread switched into namespace ns. The thread
// stays locked (and is discarded) if it cannot be switched back.
func inNetns(t testing.TB, ns string, f func() error) {
	t.Helper()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	errc := make(chan error, 1)
	go func() {
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
		ferr := f()
		if err := netns.Set(orig); err != nil {
			errc <- err
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// kernelUDP opens a UDP socket in the namespace, bound to addr (port 0
// for any), and returns its descriptor.
func (sl *stackLink) kernelUDP(t *testing.T, addr netip.AddrPort) int {
	t.Helper()
	var fd int
	inNetns(t, sl.ns, func() error {
		// The socket's namespace is the creating thread's.
		family := unix.AF_INET
		if addr.Addr().Is6() {
			family = unix.AF_INET6
		}
		var err error
		fd, err = unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err == nil {
			err = unix.Bind(fd, sockaddr(addr.Addr(), int(addr.Port())))
		}
		return err
	})
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// TestFromFDOffloads: a TAP passed by descriptor gets offloads if its
// opener chose the virtio-net header, and plain frames otherwise.
func TestFromFDOffloads(t *testing.T) {
	requireRoot(t)
	ns := newNetns(t)
	for _, tc := range []struct {
		flags     uint16
		noOffload bool
		tso       bool
		want      tap.Offloads
	}{
		{unix.IFF_TAP | unix.IFF_NO_PI, false, false, 0},
		{unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR, false, true, 0},
		{unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR, true, false, tap.OffloadVnetHdr},
	} {
		name := "tap" + suffix()[:6]
		var fd int
		inNetns(t, ns, func() error {
			var err error
			if fd, err = unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0); err != nil {
				return err
			}
			ifr, err := unix.NewIfreq(name)
			if err != nil {
				return err
			}
			ifr.SetUint16(tc.flags)
			return unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
		})
		l, err := tap.FromFD(fd, tap.Config{Name: name, Netns: ns, NoOffload: tc.noOffload})
		if err != nil {
			t.Fatalf("FromFD(flags %#x): %v", tc.flags, err)
		}
		dev := l.Device().(*tap.Device)
		if dev.Offloads().TSO() != tc.tso || (!tc.tso && dev.Offloads() != tc.want) || dev.Queues() != 1 {
			t.Errorf("flags %#x no-offload %v: offloads %v, %d queues", tc.flags, tc.noOffload, dev.Offloads(), dev.Queues())
		}
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
}

// TestStackUDPSegmented: the kernel sends one UDP GSO super-datagram
// (UDP_SEGMENT); with USO negotiated it crosses the TAP whole and the
// link splits it into the datagrams the socket meant. Both ways, UDP
// datagrams arrive intact (the stack's carry partial checksums).
func TestStackUDPSegmented(t *testing.T) {
	sl := newStackLink(t, tap.Config{})
	uso := sl.dev.Offloads()&tap.OffloadUSO4 != 0
	for _, v6 := range []bool{false, true} {
		t.Run(fmt.Sprintf("v6=%v", v6), func(t *testing.T) {
			local, remote := stackV4, kernelV4
			if v6 {
				local, remote = stackV6, kernelV6
			}
			fa, proto := sl.fullAddr(local, 6000)
			conn, err := gonet.DialUDP(sl.s.GVisor(), &fa, nil, proto)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fd := sl.kernelUDP(t, netip.AddrPortFrom(remote, 6001))
			if err := unix.SetsockoptInt(fd, unix.SOL_UDP, unix.UDP_SEGMENT, 1000); err != nil {
				t.Fatalf("UDP_SEGMENT: %v", err)
			}
			payload := make([]byte, 2500)
			rand.Read(payload)
			to := sockaddr(local, 6000)
			before := sl.dev.Stats().RXSegments
			if err := unix.Sendto(fd, payload, 0, to); err != nil {
				t.Fatalf("sendto: %v", err)
			}
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			var got []byte
			for i, want := range []int{1000, 1000, 500} {
				b := make([]byte, 4000)
				n, err := conn.Read(b)
				if err != nil {
					t.Fatalf("datagram %d: %v", i, err)
				}
				if n != want {
					t.Errorf("datagram %d: %d bytes, want %d", i, n, want)
				}
				got = append(got, b[:n]...)
			}
			if !bytes.Equal(got, payload) {
				t.Errorf("datagrams do not add up to what was sent")
			}
			if segs := sl.dev.Stats().RXSegments - before; uso && segs != 3 {
				t.Errorf("%d datagrams split from USO frames, want 3 (offloads %v)", segs, sl.dev.Offloads())
			}

			// And back: the stack's datagrams, with partial checksums.
			unix.SetsockoptInt(fd, unix.SOL_UDP, unix.UDP_SEGMENT, 0)
			ra, _ := sl.fullAddr(remote, 6001)
			out, err := gonet.DialUDP(sl.s.GVisor(), nil, &ra, proto)
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			for _, n := range []int{1, 100, 1400, 2500} {
				if _, err := out.Write(payload[:n]); err != nil {
					t.Fatal(err)
				}
				unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 5})
				b := make([]byte, 4000)
				m, _, err := unix.Recvfrom(fd, b, 0)
				if err != nil || !bytes.Equal(b[:m], payload[:n]) {
					t.Errorf("kernel got %d bytes (%v), want the %d sent", m, err, n)
				}
			}
		})
	}
}

// kernelLink is what `ip -d -j link show` says of the kernel side.
type kernelLink struct {
	TxQLen   int `json:"txqlen"`
	LinkInfo struct {
		Data struct {
			VnetHdr    bool `json:"vnet_hdr"`
			MultiQueue bool `json:"multi_queue"`
			NumQueues  int  `json:"numqueues"`
		} `json:"info_data"`
	} `json:"linkinfo"`
}

// TestKernelSide: the device has the header, the queues and the
// txqueuelen asked for.
func TestKernelSide(t *testing.T) {
	requireRoot(t)
	ns := newNetns(t)
	tests := []struct {
		cfg                tap.Config
		vnetHdr, multi     bool
		queues             int
		offloadsWithoutUSO tap.Offloads
	}{
		{tap.Config{Queues: 1}, true, false, 1, tap.OffloadVnetHdr | tap.OffloadCsum | tap.OffloadTSO4 | tap.OffloadTSO6},
		{tap.Config{Queues: 3}, true, true, 3, tap.OffloadVnetHdr | tap.OffloadCsum | tap.OffloadTSO4 | tap.OffloadTSO6},
		{tap.Config{Queues: 2, NoOffload: true}, false, true, 2, 0},
	}
	for _, tc := range tests {
		name := "tap" + suffix()[:6]
		tc.cfg.Name, tc.cfg.Netns = name, ns
		l := create(t, tc.cfg)
		dev := l.Device().(*tap.Device)
		out := run(t, "ip", "-n", ns, "-d", "-j", "link", "show", "dev", name)
		var kl []kernelLink
		if err := json.Unmarshal([]byte(out), &kl); err != nil || len(kl) != 1 {
			t.Fatalf("ip -d -j link: %v\n%s", err, out)
		}
		d := kl[0].LinkInfo.Data
		if d.VnetHdr != tc.vnetHdr || d.MultiQueue != tc.multi || d.NumQueues != tc.queues*btoi(tc.multi) || kl[0].TxQLen != 4096 {
			t.Errorf("%+v: kernel side %+v txqlen %d", tc.cfg, d, kl[0].TxQLen)
		}
		if dev.Queues() != tc.queues || dev.Offloads()&^(tap.OffloadUSO4|tap.OffloadUSO6) != tc.offloadsWithoutUSO {
			t.Errorf("%+v: %d queues, offloads %v", tc.cfg, dev.Queues(), dev.Offloads())
		}
		if tc.cfg.NoOffload && dev.Capabilities() != (link.Capabilities{ZeroCopy: true}) {
			t.Errorf("without offloads: capabilities %+v", dev.Capabilities())
		}
	}
	for _, q := range []int{-1, tap.MaxQueues + 1} {
		_, err := tap.Create(tap.Config{Name: "tap" + suffix()[:6], Netns: ns, Queues: q})
		if want := fmt.Sprintf("tap queues %d out of range 1..256", q); err == nil || err.Error() != want {
			t.Errorf("Queues %d: %v, want %q", q, err, want)
		}
	}
}

func sockaddr(a netip.Addr, port int) unix.Sockaddr {
	if a.Is6() {
		return &unix.SockaddrInet6{Port: port, Addr: a.As16()}
	}
	return &unix.SockaddrInet4{Port: port, Addr: a.As4()}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// benchSeconds is how long each throughput run lasts
// (TAPSTACK_BENCH_SECONDS overrides the 5 s default).
func benchSeconds() time.Duration {
	if s, err := strconv.Atoi(os.Getenv("TAPSTACK_BENCH_SECONDS")); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return 5 * time.Second
}

// kernelDrops reads the kernel side's tx_dropped: frames the kernel
// could not queue for us.
func (sl *stackLink) kernelDrops(t testing.TB) uint64 {
	out := run(t, "ip", "netns", "exec", sl.ns, "cat", "/sys/class/net/"+sl.name+"/statistics/tx_dropped")
	n, _ := strconv.ParseUint(strings.TrimSpace(out), 10, 64)
	return n
}

// BenchmarkTAPThroughput measures TCP throughput between the kernel in a
// namespace (socat) and tapstack's stack over a TAP, each way, at MTU
// 1500 and 65520, with offloads on and off, on one queue and the default
// number. rx is kernel → stack (into a discard sink in the stack), tx is
// stack → kernel (into socat writing /dev/null). Each run lasts
// benchSeconds. Besides Gbit/s it reports payload copies per frame (0),
// frames the link dropped (drops), frames the kernel could not queue for
// us (kdrops) and the stack's TCP retransmissions. Needs root; run with
//
//	go test -run '^$' -bench TAPThroughput -benchtime 1x ./link/tap/
//
// TAPSTACK_BENCH_NOPIN=1 leaves the readers unpinned,
// TAPSTACK_BENCH_NSTAT=1 logs the kernel's and the stack's TCP counters,
// TAPSTACK_BENCH_PCAP=FILE captures the TCP headers on the kernel side.
// The numbers are only as steady as the machine is idle.
func BenchmarkTAPThroughput(b *testing.B) {
	for _, mtu := range []uint32{1500, 65520} {
		for _, offload := range []bool{true, false} {
			for _, queues := range []int{1, 0} {
				for _, dir := range []string{"rx", "tx"} {
					q := queues
					if q == 0 {
						q = min(runtime.NumCPU(), 4)
					}
					name := fmt.Sprintf("mtu=%d/offload=%v/queues=%d/dir=%s", mtu, offload, q, dir)
					b.Run(name, func(b *testing.B) {
						sl := newStackLink(b, tap.Config{MTU: mtu, Queues: queues, NoOffload: !offload})
						var bytes int64
						var elapsed time.Duration
						drops := sl.kernelDrops(b)
						if f := os.Getenv("TAPSTACK_BENCH_PCAP"); f != "" {
							dump := exec.Command("ip", "netns", "exec", sl.ns, "tcpdump", "-i", sl.name, "-s", "128", "-w", f, "tcp")
							dump.Start()
							time.Sleep(time.Second)
							defer func() { dump.Process.Signal(os.Interrupt); dump.Wait() }()
						}
						for b.Loop() {
							n, d := sl.throughput(b, dir, benchSeconds())
							bytes += n
							elapsed += d
						}
						st := sl.dev.Stats()
						b.ReportMetric(float64(bytes)*8/elapsed.Seconds()/1e9, "Gbit/s")
						b.ReportMetric(float64(st.Copies)/float64(max(st.RXFrames+st.TXFrames, 1)), "copies/frame")
						b.ReportMetric(float64(sl.kernelDrops(b)-drops), "kdrops")
						b.ReportMetric(float64(st.RXDropped), "drops")
						tcp := sl.s.GVisor().Stats().TCP
						b.ReportMetric(float64(tcp.Retransmits.Value()), "stack-retrans")
						if os.Getenv("TAPSTACK_BENCH_NSTAT") != "" {
							out, _ := exec.Command("ip", "netns", "exec", sl.ns, "nstat", "-a").CombinedOutput()
							b.Logf("kernel counters:\n%s\nstack: %+v", out, tcp)
						}
					})
				}
			}
		}
	}
}

// throughput runs one transfer of about d and returns its bytes and
// duration.
func (sl *stackLink) throughput(b *testing.B, dir string, d time.Duration) (int64, time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	if dir == "rx" {
		fa, proto := sl.fullAddr(stackV4, 5001)
		ln, err := gonet.ListenTCP(sl.s.GVisor(), fa, proto)
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		secs := strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
		c := sl.cmd(ctx, "timeout", "-s", "INT", secs, "socat", "-u", "-b", "262144", "OPEN:/dev/zero", socatAddr(stackV4, 5001))
		if err := c.Start(); err != nil {
			b.Fatal(err)
		}
		defer c.Wait()
		conn, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		start := time.Now()
		buf := make([]byte, 1<<20)
		var n int64
		for {
			m, err := conn.Read(buf)
			n += int64(m)
			if err != nil {
				break
			}
		}
		return n, time.Since(start)
	}
	c := sl.cmd(ctx, "socat", "-u", "-b", "262144", "TCP4-LISTEN:5002,reuseaddr", "OPEN:/dev/null")
	if err := c.Start(); err != nil {
		b.Fatal(err)
	}
	fa, proto := sl.fullAddr(kernelV4, 5002)
	var conn *gonet.TCPConn
	eventually(b, "socat to listen", func() bool {
		var err error
		conn, err = gonet.DialContextTCP(ctx, sl.s.GVisor(), fa, proto)
		return err == nil
	})
	buf := make([]byte, 1<<20)
	var n int64
	start := time.Now()
	for time.Since(start) < d {
		m, err := conn.Write(buf)
		n += int64(m)
		if err != nil {
			b.Fatal(err)
		}
	}
	conn.Close()
	c.Wait() // socat has read everything
	return n, time.Since(start)
}

// TestStackCloseUnderTraffic: the stack closes (removing the NIC, which
// detaches the endpoint with gVisor's stack lock held) while the kernel
// floods it with datagrams that each make the stack answer with an ICMP
// port unreachable. Detaching must not wait for a reader that is itself
// waiting for that lock.
func TestStackCloseUnderTraffic(t *testing.T) {
	for round := range 3 {
		sl := newStackLink(t, tap.Config{})
		ctx, cancel := context.WithCancel(context.Background())
		flood := sl.cmd(ctx, "socat", "-u", "/dev/zero", fmt.Sprintf("UDP4:%s:9", stackV4))
		if err := flood.Start(); err != nil {
			cancel()
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		done := make(chan struct{})
		go func() { sl.s.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cancel()
			t.Fatalf("round %d: stack.Close hung under inbound traffic", round)
		}
		cancel()
		flood.Wait()
	}
}
