package ifmgr

import (
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/link"
	"github.com/tapstack/tapstack/link/memory"
	"github.com/tapstack/tapstack/stack"
)

// benchEnv is a Manager over a gVisor stack with n in-memory links
// tap0..tap<n-1> (their peers are closed with everything else). DAD is
// off, as in the unit tests: addresses are ready at once, so the figures
// are the interface layer's own work, not ARP timers.
type benchEnv struct {
	m     *Manager
	st    *stack.Stack
	links *link.Registry
	peers []*link.Link
}

func newBenchEnv(tb testing.TB, n int) *benchEnv {
	tb.Helper()
	e := &benchEnv{st: stack.New(), links: &link.Registry{}}
	for i := range n {
		name := fmt.Sprintf("tap%d", i)
		mac := net.HardwareAddr{2, 0, 0, byte(i >> 16), byte(i >> 8), byte(i)}
		a, b := memory.NewPair(name, name+"-peer", 1500, mac, nil)
		if err := e.links.Add(a); err != nil {
			tb.Fatal(err)
		}
		e.peers = append(e.peers, b)
	}
	m, err := New(Config{Stack: e.st, Links: e.links})
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	e.m = m
	return e
}

func (e *benchEnv) close() {
	e.links.CloseAll()
	for _, p := range e.peers {
		p.Close()
	}
	e.st.Close()
}

func (e *benchEnv) do(tb testing.TB, op string, fam ctl.Family, arg any) {
	if err := e.m.Do(root, op, fam, arg); err != nil {
		tb.Fatalf("%s %+v: %v", op, arg, err)
	}
}

// benchAddr is the j-th address (j < 16,000) of link i (i < 1,024): each
// link has its own /18 in 10/8.
func benchAddr(i, j int) netip.Addr {
	v := 10<<24 | uint32(i)<<14 | uint32(j+1)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

var mask18 = netip.AddrFrom4([4]byte{255, 255, 192, 0})

// configure plumbs IPv4 on tap<i> and gives it units 0..units-1, each with
// its address and netmask, brought up when up is set: what `ifconfig tapI
// plumb A/18 up` and `ifconfig tapI addif B/18 up` do.
func (e *benchEnv) configure(tb testing.TB, i, units int, up bool) {
	name := fmt.Sprintf("tap%d", i)
	e.do(tb, "SIOCSLIFNAME", ctl.AF_INET, &ctl.Lifreq{Name: name, Flags: ctl.IFF_IPV4})
	for j := range units {
		unit := name
		if j > 0 {
			r := ctl.Lifreq{Name: name}
			e.do(tb, "SIOCLIFADDIF", ctl.AF_INET, &r)
			unit = r.Name
		}
		e.do(tb, "SIOCSLIFNETMASK", ctl.AF_INET, &ctl.Lifreq{Name: unit, Addr: mask18})
		e.do(tb, "SIOCSLIFADDR", ctl.AF_INET, &ctl.Lifreq{Name: unit, Addr: benchAddr(i, j)})
		if up {
			r := ctl.Lifreq{Name: unit}
			e.do(tb, "SIOCGLIFFLAGS", ctl.AF_INET, &r)
			r.Flags |= ctl.IFF_UP
			e.do(tb, "SIOCSLIFFLAGS", ctl.AF_INET, &r)
		}
	}
}

// benchRequest is one request of a mix: a fresh argument per call, as a
// client sends it.
type benchRequest struct {
	op  string
	arg func(n int) any
}

// requestMix is what configuration tools send most: lookups of flags,
// addresses, masks, MTUs and indexes, the interface list, address tests,
// and (the last three) changes of metric, MTU and an ill flag, alternating
// between two values so every set really changes something.
var requestMix = []benchRequest{
	{"SIOCGLIFFLAGS", func(int) any { return &ctl.Lifreq{Name: "tap1"} }},
	{"SIOCGLIFADDR", func(int) any { return &ctl.Lifreq{Name: "tap2:1"} }},
	{"SIOCGLIFNETMASK", func(int) any { return &ctl.Lifreq{Name: "tap3:2"} }},
	{"SIOCGLIFMTU", func(int) any { return &ctl.Lifreq{Name: "tap0"} }},
	{"SIOCGLIFINDEX", func(int) any { return &ctl.Lifreq{Name: "tap2"} }},
	{"SIOCGLIFBRDADDR", func(int) any { return &ctl.Lifreq{Name: "tap1:3"} }},
	{"SIOCGLIFNUM", func(int) any { return &ctl.Lifnum{Family: ctl.AF_UNSPEC} }},
	{"SIOCTMYADDR", func(int) any { return &ctl.AddrReq{Addr: benchAddr(2, 3)} }},
	{"SIOCSLIFMETRIC", func(n int) any { return &ctl.Lifreq{Name: "tap0:1", Metric: n & 1} }},
	{"SIOCSLIFMTU", func(n int) any { return &ctl.Lifreq{Name: "tap3", MTU: 1400 + int64(n&1)*100} }},
	{"SIOCSLIFFLAGS", func(n int) any {
		f := ctl.IFF_UP | ctl.IFF_BROADCAST | ctl.IFF_MULTICAST | ctl.IFF_IPV4 | ctl.IFF_RUNNING
		if n&1 == 0 {
			f |= ctl.IFF_NOTRAILERS
		}
		return &ctl.Lifreq{Name: "tap2", Flags: f}
	}},
}

// BenchmarkRequests measures requests per second through Manager.Do on four
// configured interfaces: the whole mix, the get-requests alone, and the
// get-requests from every core at once (they share the lock).
// Target: >= 100,000 requests/s.
func BenchmarkRequests(b *testing.B) {
	e := newBenchEnv(b, 4)
	defer e.close()
	for i := range 4 {
		e.configure(b, i, 4, true)
	}
	gets := requestMix[:8]
	for _, bc := range []struct {
		name string
		mix  []benchRequest
	}{{"mix", requestMix}, {"get", gets}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				r := bc.mix[n%len(bc.mix)]
				if err := e.m.Do(root, r.op, ctl.AF_INET, r.arg(n/len(bc.mix))); err != nil {
					b.Fatalf("%s: %v", r.op, err)
				}
				n++
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "req/s")
		})
	}
	b.Run("get-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			n := 0
			for pb.Next() {
				r := gets[n%len(gets)]
				if err := e.m.Do(root, r.op, ctl.AF_INET, r.arg(n)); err != nil {
					b.Errorf("%s: %v", r.op, err)
					return
				}
				n++
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	})
}

// BenchmarkGLIFCONF measures SIOCGLIFCONF listing 10,000 logical
// interfaces (10 ills of 1,000 units, _addrs_per_if raised to allow them).
// Target: < 5 ms.
func BenchmarkGLIFCONF(b *testing.B) {
	const ills, units = 10, 1000
	e := newBenchEnv(b, ills)
	defer e.close()
	e.do(b, "SIOCSETPROP", ctl.AF_INET, &ctl.Prop{Proto: "ip", Name: "_addrs_per_if", Flags: ctl.MOD_PROP_ACTIVE, Val: fmt.Sprint(units)})
	for i := range ills {
		e.configure(b, i, units, false)
	}
	b.ReportAllocs()
	for b.Loop() {
		lc := ctl.Lifconf{Family: ctl.AF_INET}
		e.do(b, "SIOCGLIFCONF", ctl.AF_INET, &lc)
		if len(lc.Req) != ills*units+1 { // and lo0
			b.Fatalf("SIOCGLIFCONF listed %d units, want %d", len(lc.Req), ills*units+1)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N), "ms/op")
}

// BenchmarkPlumbUp measures plumbing 1,000 interfaces and bringing up 8
// addresses on each (unit 0 and seven addif units, each with its own
// netmask, address and UP: 33,000 requests), on a fresh stack each time.
func BenchmarkPlumbUp(b *testing.B) {
	const ills, units = 1000, 8
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		e := newBenchEnv(b, ills)
		b.StartTimer()
		for i := range ills {
			e.configure(b, i, units, true)
		}
		b.StopTimer()
		lc := ctl.Lifnum{Family: ctl.AF_INET}
		e.do(b, "SIOCGLIFNUM", ctl.AF_INET, &lc)
		if lc.Count != ills*units+1 {
			b.Fatalf("%d units after plumbing, want %d", lc.Count, ills*units+1)
		}
		e.close()
		b.StartTimer()
	}
	b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N), "ms/op")
}
