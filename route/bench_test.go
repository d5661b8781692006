package route

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// benchRoutes is the table size the lookup target (< 100 ns) is set for.
const benchRoutes = 100_000

// prefixLengths is a mix resembling a full Internet table: mostly /24s
// (IPv4) and /48s (IPv6), some aggregates and some host routes. Each entry
// is a length and its weight in percent.
var prefixLengths = map[bool][][2]int{
	false: {{8, 1}, {12, 1}, {14, 1}, {16, 5}, {18, 3}, {20, 6}, {21, 4}, {22, 10}, {23, 9}, {24, 55}, {32, 5}},
	true:  {{29, 2}, {32, 8}, {36, 3}, {40, 6}, {44, 8}, {48, 45}, {56, 10}, {64, 15}, {128, 3}},
}

// randomPrefix draws a prefix of a weighted length. IPv4 prefixes lie
// anywhere in unicast space (1/8-223/8), which a full table nearly fills;
// IPv6 prefixes lie inside one of v6Allocations, as real ones lie inside
// the blocks the registries hand out.
func randomPrefix(rng *rand.Rand, v6 bool) netip.Prefix {
	w, l := rng.IntN(100), 0
	for _, lw := range prefixLengths[v6] {
		if w -= lw[1]; w < 0 {
			l = lw[0]
			break
		}
	}
	a := randomAddr(rng, v6)
	if v6 && l > 29 {
		a = inside(rng, v6Allocations[rng.IntN(len(v6Allocations))])
	}
	p, _ := a.Prefix(l)
	return p
}

// v6Allocations are 20,000 /29 and /32 blocks under the registries' /12s.
var v6Allocations = func() []netip.Prefix {
	rng := rand.New(rand.NewPCG(6, 6))
	var out []netip.Prefix
	for range 20_000 {
		l := 32
		if rng.IntN(10) == 0 {
			l = 29
		}
		rir := [...]byte{0x20, 0x24, 0x26, 0x28, 0x2a, 0x2c}[rng.IntN(6)]
		var b [16]byte
		b[0], b[1], b[2], b[3] = rir, byte(rng.IntN(16)), byte(rng.Uint32()), byte(rng.Uint32())
		if rir == 0x20 {
			b[1] = 0x01
		}
		out = append(out, netip.PrefixFrom(netip.AddrFrom16(b), l).Masked())
	}
	return out
}()

func randomAddr(rng *rand.Rand, v6 bool) netip.Addr {
	if !v6 {
		v := rng.Uint32()
		return netip.AddrFrom4([4]byte{byte(1 + rng.IntN(223)), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	var b [16]byte
	hi, lo := rng.Uint64(), rng.Uint64()
	for i := range 8 {
		b[i], b[8+i] = byte(hi>>(56-8*i)), byte(lo>>(56-8*i))
	}
	b[0] = 0x20 | b[0]&0x1f
	return netip.AddrFrom16(b)
}

// inside returns a random address within p.
func inside(rng *rand.Rand, p netip.Prefix) netip.Addr {
	a := randomAddr(rng, p.Addr().Is6()).AsSlice()
	base := p.Addr().AsSlice()
	for i := range p.Bits() {
		bit := byte(0x80 >> (i % 8))
		a[i/8] = a[i/8]&^bit | base[i/8]&bit
	}
	got, _ := netip.AddrFromSlice(a)
	return got
}

// benchTable returns a table of benchRoutes gateway routes of one family,
// with addresses that hit and addresses that miss. Route types and
// gateways vary as in a real table; nothing is synced to a stack.
func benchTable(tb testing.TB, v6 bool) (t *Table, hits, misses []netip.Addr) {
	tb.Helper()
	rng := rand.New(rand.NewPCG(8, 24))
	t = New(nil)
	var added []netip.Prefix
	gw := map[bool]netip.Addr{false: netip.MustParseAddr("192.0.2.1"), true: netip.MustParseAddr("2001:db8::1")}[v6]
	t.Batch(func() {
		for len(added) < benchRoutes {
			p := randomPrefix(rng, v6)
			typ := IRE_PREFIX
			if p.Bits() == p.Addr().BitLen() {
				typ = IRE_HOST
			}
			if t.Add(IRE{Type: typ, Dest: p, Gateway: gw, Flags: RTF_GATEWAY}) == nil {
				added = append(added, p)
			}
		}
	})
	for len(hits) < 4096 {
		hits = append(hits, inside(rng, added[rng.IntN(len(added))]))
	}
	for len(misses) < 4096 {
		// Half anywhere, half inside allocated blocks (deeper misses).
		a := randomAddr(rng, v6)
		if v6 && len(misses)%2 == 0 {
			a = inside(rng, v6Allocations[rng.IntN(len(v6Allocations))])
		}
		if !covered(t, a) {
			misses = append(misses, a)
		}
	}
	return t, hits, misses
}

// covered reports whether any IRE covers a, the slow way, so the benchmark
// does not classify its inputs with the code it measures.
func covered(t *Table, a netip.Addr) bool {
	for l := a.BitLen(); l >= 0; l-- {
		p, _ := a.Prefix(l)
		if _, ok := t.lpm[famIdx(a)].get(p); ok {
			return true
		}
	}
	return false
}

// BenchmarkLookup measures Lookup in a table of 100,000 routes of mixed
// lengths, per family, for addresses that match and addresses that do not,
// without and with a filter, and from every core at once. Target: < 100 ns.
func BenchmarkLookup(b *testing.B) {
	for _, v6 := range []bool{false, true} {
		t, hits, misses := benchTable(b, v6)
		fam := map[bool]string{false: "v4", true: "v6"}[v6]
		onlyGateways := func(e *IRE) bool { return e.Flags&RTF_GATEWAY != 0 }
		for _, bc := range []struct {
			name   string
			addrs  []netip.Addr
			filter func(*IRE) bool
			want   bool
		}{
			{"hit", hits, nil, true},
			{"miss", misses, nil, false},
			{"hit-filtered", hits, onlyGateways, true},
		} {
			b.Run(fmt.Sprintf("%s/%s", fam, bc.name), func(b *testing.B) {
				b.ReportAllocs()
				n := 0
				for b.Loop() {
					a := bc.addrs[n&(len(bc.addrs)-1)]
					if _, ok := t.Lookup(a, bc.filter); ok != bc.want {
						b.Fatalf("Lookup %s: found %v, want %v", a, ok, bc.want)
					}
					n++
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/lookup")
			})
		}
		b.Run(fam+"/hit-parallel", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				n := rand.IntN(len(hits))
				for pb.Next() {
					if _, ok := t.Lookup(hits[n&(len(hits)-1)], nil); !ok {
						b.Error("a hit missed")
						return
					}
					n++
				}
			})
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/lookup")
		})
	}
}

// BenchmarkBuild measures adding 100,000 routes in one Batch.
func BenchmarkTableBuild(b *testing.B) {
	for _, v6 := range []bool{false, true} {
		b.Run(map[bool]string{false: "v4", true: "v6"}[v6], func(b *testing.B) {
			rng := rand.New(rand.NewPCG(8, 24))
			var prefixes []netip.Prefix
			for range benchRoutes {
				prefixes = append(prefixes, randomPrefix(rng, v6))
			}
			b.ReportAllocs()
			for b.Loop() {
				t := New(nil)
				t.Batch(func() {
					for _, p := range prefixes {
						t.Add(IRE{Type: IRE_PREFIX, Dest: p, Gateway: netip.IPv6Loopback(), Flags: RTF_GATEWAY})
					}
				})
			}
			b.ReportMetric(float64(benchRoutes)*float64(b.N)/b.Elapsed().Seconds(), "routes/s")
		})
	}
}

// BenchmarkLookupParts splits a hit's cost: the trie walk alone, the fib
// alone (which also reports the fib's memory), the fib plus reading the
// IRE, and the whole Table.Lookup (lock, fib, copy).
func BenchmarkLookupParts(b *testing.B) {
	for _, v6 := range []bool{false, true} {
		t, hits, _ := benchTable(b, v6)
		tr := t.lpm[famIdx(hits[0])]
		if tr.fib == nil {
			b.Fatal("no fib at 100,000 routes")
		}
		fam := map[bool]string{false: "v4", true: "v6"}[v6]
		var sink uint32
		for _, part := range []struct {
			name string
			f    func(netip.Addr) bool
		}{
			{"trie", func(a netip.Addr) bool { _, ok := tr.lookup(a, nil); return ok }},
			{"fib", func(a netip.Addr) bool { return tr.fib.lookup(a).ok() }},
			{"fib+ire", func(a netip.Addr) bool {
				ans := tr.fib.lookup(a)
				sink += uint32(tr.fib.ire(a, ans).Flags)
				return ans.ok()
			}},
			{"fib+ire+lock", func(a netip.Addr) bool {
				t.mu.RLock()
				ans := tr.fib.lookup(a)
				sink += uint32(tr.fib.ire(a, ans).Flags)
				t.mu.RUnlock()
				return ans.ok()
			}},
			{"table", func(a netip.Addr) bool { _, ok := t.Lookup(a, nil); return ok }},
		} {
			b.Run(fam+"/"+part.name, func(b *testing.B) {
				n := 0
				for b.Loop() {
					if !part.f(hits[n&(len(hits)-1)]) {
						b.Fatal("a hit missed")
					}
					n++
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/lookup")
				if part.name == "fib" {
					b.ReportMetric(float64(tr.fib.bytes()), "fib-bytes")
				}
			})
		}
	}
}
