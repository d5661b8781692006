package daemon

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/link/memory"
)

// socketRequest is one request of the benchmark mix, with its arguments
// for the n-th round.
type socketRequest struct {
	op   string
	fam  ctl.Family
	args func(n int) any
}

// socketMix is what tapadm sends: gets of flags, address, mask and MTU, the
// interface list, and (the last two) changes of metric and MTU that
// alternate between two values, so every set really changes something.
var socketMix = []socketRequest{
	{"SIOCGLIFFLAGS", ctl.AF_INET, func(int) any { return ctl.Lifreq{Name: "tap0"} }},
	{"SIOCGLIFADDR", ctl.AF_INET, func(int) any { return ctl.Lifreq{Name: "tap0"} }},
	{"SIOCGLIFNETMASK", ctl.AF_INET, func(int) any { return ctl.Lifreq{Name: "tap0"} }},
	{"SIOCGLIFMTU", ctl.AF_INET6, func(int) any { return ctl.Lifreq{Name: "lo0"} }},
	{"SIOCGLIFCONF", ctl.AF_UNSPEC, func(int) any { return ctl.Lifconf{} }},
	{"SIOCGLIFINDEX", ctl.AF_INET, func(int) any { return ctl.Lifreq{Name: "tap0"} }},
	{"SIOCSLIFMETRIC", ctl.AF_INET, func(n int) any { return ctl.Lifreq{Name: "tap0", Metric: n & 1} }},
	{"SIOCSLIFMTU", ctl.AF_INET, func(n int) any { return ctl.Lifreq{Name: "tap0", MTU: 1400 + int64(n&1)*100} }},
}

// benchDaemon starts a daemon on a temporary socket with an in-memory link
// tap0 plumbed as 10.0.0.1/24 and up.
func benchDaemon(b *testing.B) string {
	d, sock := startTestDaemon(b)
	a, peer := memory.NewPair("tap0", "tap0-peer", 1500, net.HardwareAddr{2, 0, 0, 0, 0, 1}, nil)
	b.Cleanup(func() { peer.Close() })
	if err := d.AddLink(a); err != nil {
		b.Fatal(err)
	}
	c := dialBench(b, sock)
	for _, r := range []struct {
		op  string
		arg ctl.Lifreq
	}{
		{"SIOCSLIFNAME", ctl.Lifreq{Name: "tap0", Flags: ctl.IFF_IPV4}},
		{"SIOCSLIFNETMASK", ctl.Lifreq{Name: "tap0", Addr: netip.MustParseAddr("255.255.255.0")}},
		{"SIOCSLIFADDR", ctl.Lifreq{Name: "tap0", Addr: netip.MustParseAddr("10.0.0.1")}},
	} {
		if err := c.Do(context.Background(), r.op, ctl.AF_INET, r.arg, nil); err != nil {
			b.Fatalf("%s: %v", r.op, err)
		}
	}
	var fl ctl.Lifreq
	if err := c.Do(context.Background(), "SIOCGLIFFLAGS", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}, &fl); err != nil {
		b.Fatal(err)
	}
	fl.Flags |= ctl.IFF_UP
	if err := c.Do(context.Background(), "SIOCSLIFFLAGS", ctl.AF_INET, fl, nil); err != nil {
		b.Fatal(err)
	}
	return sock
}

func dialBench(b *testing.B, sock string) *ctl.Client {
	c, err := ctl.Dial(sock)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// BenchmarkSocketRequests measures requests per second through the real
// unix control socket (JSON lines, the daemon's dispatch, Manager.Do) with
// ctl.Client: one client waiting for each answer, and several clients at
// once. Target: >= 20,000 requests/s.
func BenchmarkSocketRequests(b *testing.B) {
	sock := benchDaemon(b)
	ctx := context.Background()
	b.Run("1-client", func(b *testing.B) {
		c := dialBench(b, sock)
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			r := socketMix[n%len(socketMix)]
			if err := c.Do(ctx, r.op, r.fam, r.args(n/len(socketMix)), nil); err != nil {
				b.Fatalf("%s: %v", r.op, err)
			}
			n++
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "req/s")
	})
	b.Run("8-clients", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(4) // 4 per GOMAXPROCS: 8 clients on 2 cores
		b.RunParallel(func(pb *testing.PB) {
			c, err := ctl.Dial(sock)
			if err != nil {
				b.Error(err)
				return
			}
			defer c.Close()
			n := 0
			for pb.Next() {
				r := socketMix[n%len(socketMix)]
				if err := c.Do(ctx, r.op, r.fam, r.args(n/len(socketMix)), nil); err != nil {
					b.Errorf("%s: %v", r.op, err)
					return
				}
				n++
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	})
}
