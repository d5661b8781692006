package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/ifmgr"
	"github.com/tapstack/tapstack/link"
	"github.com/tapstack/tapstack/link/memory"
	"github.com/tapstack/tapstack/stack"
)

// logBuf collects the daemon's log, which says when a capture's tap is
// installed ("snoop started") and removed ("snoop ended").
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), "msg="+strconv.Quote(msg))
}

// waitLog waits until msg has been logged n times.
func (l *logBuf) waitLog(t *testing.T, msg string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for l.count(msg) < n {
		if time.Now().After(deadline) {
			l.mu.Lock()
			defer l.mu.Unlock()
			t.Fatalf("%q not logged %d times within 5s; log:\n%s", msg, n, l.b.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// snoopFixture is a daemon with an in-memory link "mem0" whose far end is
// the test's.
type snoopFixture struct {
	t    *testing.T
	d    *Daemon
	sock string
	log  *logBuf
	peer *link.Link // the far end of mem0
}

func newSnoopFixture(t *testing.T) *snoopFixture {
	t.Helper()
	dir, err := os.MkdirTemp("", "snoop") // short: sun_path is 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &snoopFixture{t: t, sock: filepath.Join(dir, "ctl.sock"), log: &logBuf{}}
	d, err := New(Config{CtlPath: f.sock, Log: slog.New(slog.NewTextHandler(f.log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	f.d = d
	serveInTest(t, d)
	mine, peer := memory.NewPair("mem0", "peer0", 1500, net.HardwareAddr{2, 0, 0, 0, 0, 1}, nil)
	t.Cleanup(func() { peer.Close() })
	if err := d.AddLink(mine); err != nil {
		mine.Close()
		t.Fatal(err)
	}
	if err := d.AddLink(mine); ctl.ErrnoOf(err) != ctl.EEXIST {
		t.Fatalf("adding mem0 twice: %v, want EEXIST", err)
	}
	f.peer = peer
	return f
}

func (f *snoopFixture) dial() *ctl.Client {
	f.t.Helper()
	c, err := ctl.Dial(f.sock)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { c.Close() })
	return c
}

func do(t *testing.T, c *ctl.Client, op string, args, result any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Do(ctx, op, ctl.AF_INET, args, result); err != nil {
		t.Fatalf("%s: %v", op, err)
	}
}

// plumb does `ifconfig mem0 plumb 10.9.0.1/24 up` and puts a gVisor stack
// at 10.9.0.2/24 on the far end.
func (f *snoopFixture) plumb(c *ctl.Client) {
	t := f.t
	t.Helper()
	do(t, c, "SIOCSLIFNAME", ctl.Lifreq{Name: "mem0", Flags: ctl.IFF_IPV4}, nil)
	do(t, c, "SIOCSLIFNETMASK", ctl.Lifreq{Name: "mem0", Addr: netip.MustParseAddr("255.255.255.0")}, nil)
	do(t, c, "SIOCSLIFADDR", ctl.Lifreq{Name: "mem0", Addr: netip.MustParseAddr("10.9.0.1")}, nil)
	var r ctl.Lifreq
	do(t, c, "SIOCGLIFFLAGS", ctl.Lifreq{Name: "mem0"}, &r)
	r.Flags |= ctl.IFF_UP
	do(t, c, "SIOCSLIFFLAGS", r, nil)
	do(t, c, "wait-dad", ctl.WaitDAD{Name: "mem0"}, nil) // as ifconfig does

	ps := stack.New()
	t.Cleanup(ps.Close)
	if err := ps.AddNIC("peer", f.peer.Endpoint()); err != nil {
		t.Fatal(err)
	}
	if err := ps.EnableNIC("peer"); err != nil {
		t.Fatal(err)
	}
	p := netip.MustParsePrefix("10.9.0.2/24")
	if err := ps.AddAddress("peer", p); err != nil {
		t.Fatal(err)
	}
	ps.SetRoutes([]stack.Route{{Dest: p.Masked(), NIC: "peer"}})
}

// snoop runs a "snoop" stream in the background; it returns the frames
// and Stream's error when the stream ends.
func snoop(ctx context.Context, c *ctl.Client, a ctl.Snoop) <-chan snoopResult {
	out := make(chan snoopResult, 1)
	go func() {
		var r snoopResult
		r.err = c.Stream(ctx, "snoop", "", a, func(raw json.RawMessage) error {
			var f ctl.Frame
			if err := json.Unmarshal(raw, &f); err != nil {
				return err
			}
			r.frames = append(r.frames, f)
			return nil
		})
		out <- r
	}()
	return out
}

type snoopResult struct {
	frames []ctl.Frame
	err    error
}

func wait(t *testing.T, ch <-chan snoopResult) snoopResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("snoop stream did not end within 10s")
		return snoopResult{}
	}
}

// describe summarises a frame as "dir ARP request", "dir ICMPv4 EchoReply".
func describe(f ctl.Frame) string {
	p := gopacket.NewPacket(f.Data, layers.LayerTypeEthernet, gopacket.Default)
	if p.ErrorLayer() != nil {
		return f.Dir + " undecodable: " + p.ErrorLayer().Error().Error()
	}
	if a, ok := p.Layer(layers.LayerTypeARP).(*layers.ARP); ok {
		if a.Operation == layers.ARPRequest {
			return f.Dir + " ARP request"
		}
		return f.Dir + " ARP reply"
	}
	if _, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4); ok {
		if ic, ok := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4); ok {
			return f.Dir + " ICMPv4 " + ic.TypeCode.String()
		}
		return f.Dir + " IPv4"
	}
	return f.Dir + " " + p.String()
}

// TestSnoopCapturesPing: a ping from the daemon's stack to a peer stack,
// captured with count 4 through the real client, is the ARP exchange and
// the echo exchange, whole Ethernet frames, in order.
func TestSnoopCapturesPing(t *testing.T) {
	f := newSnoopFixture(t)
	c := f.dial()
	f.plumb(c)

	sc := f.dial()
	start := time.Now()
	res := snoop(context.Background(), sc, ctl.Snoop{Link: "mem0", Count: 4})
	f.log.waitLog(t, "snoop started", 1)
	var pr ctl.PingResult
	do(t, c, "ping", ctl.Ping{Dst: netip.MustParseAddr("10.9.0.2")}, &pr)
	if pr.Received != 1 {
		t.Fatalf("ping: %+v", pr)
	}
	r := wait(t, res)
	if r.err != nil {
		t.Fatalf("snoop: %v", r.err)
	}
	var got []string
	for _, fr := range r.frames {
		got = append(got, describe(fr))
		if fr.Time.Before(start) || fr.Time.After(time.Now()) {
			t.Errorf("frame time %v is outside the capture", fr.Time)
		}
		if fr.Drops != 0 {
			t.Errorf("frame reports %d drops", fr.Drops)
		}
	}
	want := []string{"out ARP request", "in ARP reply", "out ICMPv4 EchoRequest", "in ICMPv4 EchoReply"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("captured frames (-want +got):\n%s", d)
	}
	// The tap is gone, and the connection carries further requests.
	f.log.waitLog(t, "snoop ended", 1)
	var links []ctl.LinkInfo
	do(t, sc, "dladm.show-link", nil, &links)
	if len(links) != 1 {
		t.Errorf("show-link after a stream: %+v", links)
	}
}

// TestSnoopClientHangup: a client that goes away (Ctrl-C in tapadm) ends
// the capture at once, although no frame crosses the idle link, and the
// tap is removed.
func TestSnoopClientHangup(t *testing.T) {
	f := newSnoopFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	res := snoop(ctx, f.dial(), ctl.Snoop{Link: "mem0"})
	f.log.waitLog(t, "snoop started", 1)
	cancel()
	r := wait(t, res)
	if !errors.Is(r.err, context.Canceled) {
		t.Errorf("Stream after cancel: %v, want context.Canceled", r.err)
	}
	f.log.waitLog(t, "snoop ended", 1)
	// The daemon is still serving.
	var links []ctl.LinkInfo
	do(t, f.dial(), "dladm.show-link", nil, &links)
}

// TestSnoopLinkDeleted: deleting the link ends the stream with ENXIO.
func TestSnoopLinkDeleted(t *testing.T) {
	f := newSnoopFixture(t)
	res := snoop(context.Background(), f.dial(), ctl.Snoop{Link: "mem0"})
	f.log.waitLog(t, "snoop started", 1)
	do(t, f.dial(), "dladm.delete-link", ctl.LinkName{Name: "mem0"}, nil)
	if r := wait(t, res); ctl.ErrnoOf(r.err) != ctl.ENXIO {
		t.Errorf("snoop of a deleted link: %v, want ENXIO", r.err)
	}
	f.log.waitLog(t, "snoop ended", 1)
}

// TestSnoopRefused: a refused snoop is one error line and taps nothing;
// the connection stays usable.
func TestSnoopRefused(t *testing.T) {
	f := newSnoopFixture(t)
	c := f.dial()
	for _, tc := range []struct {
		name string
		args ctl.Snoop
		want ctl.Errno
	}{
		{"unknown link", ctl.Snoop{Link: "nosuch0"}, ctl.ENXIO},
		{"negative count", ctl.Snoop{Link: "mem0", Count: -1}, ctl.EINVAL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := c.Stream(ctx, "snoop", "", tc.args, func(json.RawMessage) error {
				return errors.New("unexpected item")
			})
			if ctl.ErrnoOf(err) != tc.want {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
	line := []byte(`{"id":1,"op":"snoop","args":{"link":"mem0"}}`)
	resp, st := f.d.handle(ifmgr.Caller{Privileged: false}, line)
	if resp.Errno != "EPERM" || st != nil {
		t.Errorf("unprivileged snoop: %+v (stream %v), want EPERM", resp, st != nil)
	}
	if _, st := f.d.handle(ifmgr.Caller{Privileged: true}, line); st == nil {
		t.Errorf("privileged snoop of mem0 got no stream")
	}
	if n := f.log.count("snoop started"); n != 0 {
		t.Errorf("refused or unrun snoops installed %d taps", n)
	}
	var links []ctl.LinkInfo
	do(t, c, "dladm.show-link", nil, &links)
}

// countingDispatcher stands in for the stack on mem0 and counts frames.
type countingDispatcher struct{ n atomic.Int64 }

func (d *countingDispatcher) DeliverNetworkPacket(tcpip.NetworkProtocolNumber, *gstack.PacketBuffer) {
	d.n.Add(1)
}
func (d *countingDispatcher) DeliverLinkPacket(tcpip.NetworkProtocolNumber, *gstack.PacketBuffer) {}

// TestSnoopSlowClientDrops: a client that stops reading never stalls the
// link; the capture drops frames, and says so in the frames it sends
// later.
func TestSnoopSlowClientDrops(t *testing.T) {
	f := newSnoopFixture(t)
	mine, _ := f.d.links.Get("mem0")
	var stackSide countingDispatcher
	mine.Endpoint().Attach(&stackSide)
	defer mine.Endpoint().Attach(nil)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	unblock := make(chan struct{})
	var lastDrops atomic.Uint64
	done := make(chan error, 1)
	go func() {
		done <- f.dial().Stream(ctx, "snoop", "", ctl.Snoop{Link: "mem0"}, func(raw json.RawMessage) error {
			<-unblock // a client that stopped reading
			var fr ctl.Frame
			if err := json.Unmarshal(raw, &fr); err != nil {
				return err
			}
			lastDrops.Store(fr.Drops)
			return nil
		})
	}()
	f.log.waitLog(t, "snoop started", 1)

	// Far more frames than the capture queue and the socket buffer hold.
	frame := make([]byte, 200)
	copy(frame, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 2, 0x88, 0xb5})
	const total = 20000
	for sent := 0; sent < total; {
		for range 200 {
			pkt := gstack.NewPacketBuffer(gstack.PacketBufferOptions{Payload: buffer.MakeWithData(frame)})
			var l gstack.PacketBufferList
			l.PushBack(pkt)
			f.peer.Endpoint().WritePackets(l)
			pkt.DecRef()
			sent++
		}
		// Let delivery keep up with the memory link's own queue; with a
		// blocking tap it would stop here.
		deadline := time.Now().Add(5 * time.Second)
		for stackSide.n.Load()+int64(mine.Device().(*memory.Device).Drops()) < int64(sent) {
			if time.Now().After(deadline) {
				t.Fatalf("link stalled: %d of %d frames delivered while the client was not reading", stackSide.n.Load(), sent)
			}
			time.Sleep(time.Millisecond)
		}
	}
	close(unblock)
	deadline := time.Now().Add(5 * time.Second)
	for lastDrops.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no frame reported drops")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Stream: %v", err)
	}
	f.log.waitLog(t, "snoop ended", 1)
}
