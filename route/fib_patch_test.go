package route

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// fibTable returns a table whose tries keep a fib from the first prefix.
func fibTable() *Table {
	tb := New(nil)
	for _, tr := range tb.lpm {
		tr.fibMin = 1
	}
	return tb
}

// probesAround returns addresses at and around each prefix's ends, and a
// few inside it, where the fib's intervals begin and end.
func probesAround(rng *rand.Rand, prefixes []netip.Prefix) []netip.Addr {
	var out []netip.Addr
	for _, p := range prefixes {
		v6 := p.Addr().Is6()
		first, end := p.Addr(), last(p).addr(v6)
		out = append(out, first, end, first.Prev(), end.Next())
		if v6 && p.Bits() > 64 && last(p).hi != ^uint64(0) {
			// The same low half in the next /64: a lookup there must not
			// reach the list of the /64 that p splits.
			out = append(out, u128{last(p).hi + 1, u128Of(first).lo}.addr(true))
		}
		for range 4 {
			out = append(out, inside(rng, p))
		}
	}
	return slices.DeleteFunc(out, func(a netip.Addr) bool { return !a.IsValid() })
}

// checkFib fails t unless every unfiltered Lookup of probes (the fib's
// answer) equals the trie's, and the patched fibs equal fibs built anew.
func checkFib(t *testing.T, tb *Table, probes []netip.Addr) {
	t.Helper()
	checkLookups(t, tb, probes)
	for _, tr := range tb.lpm {
		if tr.fib == nil {
			continue
		}
		patched := tr.fib
		tr.buildFib()
		if got, want := dumpFib(patched), dumpFib(tr.fib); !slices.Equal(got, want) {
			t.Fatalf("patched fib differs from a rebuilt one:\n%v\nwant\n%v", got, want)
		}
		tr.fib = patched
	}
}

// checkLookups fails t unless every unfiltered Lookup of probes equals
// the trie's answer (Lookup with a filter walks the trie).
func checkLookups(t *testing.T, tb *Table, probes []netip.Addr) {
	t.Helper()
	for _, a := range probes {
		got, gotOK := tb.Lookup(a, nil)
		want, wantOK := tb.Lookup(a, func(*IRE) bool { return true })
		if gotOK != wantOK || got != want {
			t.Fatalf("Lookup %s: %+v %v, the trie finds %+v %v", a, got, gotOK, want, wantOK)
		}
	}
}

// linkCount returns how many links (lists for /64s split by longer
// prefixes) the IPv6 32-bit slot holding a has, or -1 if it has no slot.
func linkCount(tb *Table, a netip.Addr) int {
	f := tb.lpm[1].fib
	r, ok := f.levels[0].sparse.get(uint32(u128Of(a).hi >> 32))
	if !ok {
		return -1
	}
	if !r.packed() {
		return 0
	}
	n := 0
	for _, w := range f.mem[r.off()+r.n() : r.off()+2*r.n()] {
		if answer(w).bits() == linkBits {
			n++
		}
	}
	return n
}

// TestFibLinks adds and then removes, one by one, prefixes longer than /64
// inside one /32 (two in one /64, one in the slot's last /64, and /64s one
// past and right after a split one), so that its slot gains and loses
// links, and checks every step against the trie and a rebuilt fib.
func TestFibLinks(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	tb := fibTable()
	gw := netip.MustParseAddr("2001:db8::1")
	steps := []struct {
		prefix string
		links  int // of slot 2001:db8::/32 once the prefix is added
	}{
		{"2001:db8::/32", -1}, // no longer prefix: no 32-bit slot
		{"2001:db8:0:1::/48", 0},
		{"2001:db8:0:1::5/128", 1},
		{"2001:db8:0:1::7/128", 1},
		{"2001:db8:0:3::/64", 1}, // the /48 answers again from :2:: on
		{"2001:db8:0:2::/64", 1}, // now right after the split /64
		{"2001:db8:0:1:8000::/65", 1},
		{"2001:db8:ffff:ffff::9/128", 2},
		{"2001:db8:0:1::/64", 2}, // inside a split /64: no new link
	}
	slot := netip.MustParseAddr("2001:db8::")
	var added []netip.Prefix
	ire := func(p netip.Prefix) IRE { return IRE{Type: IRE_PREFIX, Dest: p, Gateway: gw, Ill: "net0"} }
	for _, s := range steps {
		p := netip.MustParsePrefix(s.prefix)
		if err := tb.Add(ire(p)); err != nil {
			t.Fatal(err)
		}
		added = append(added, p)
		if got := linkCount(tb, slot); got != s.links {
			t.Errorf("after adding %s: %d links, want %d", p, got, s.links)
		}
		checkFib(t, tb, probesAround(rng, added))
	}
	probes := probesAround(rng, added)
	for i := len(steps) - 1; i > 0; i-- {
		p := added[i]
		if err := tb.Delete(ire(p)); err != nil {
			t.Fatal(err)
		}
		if got, want := linkCount(tb, slot), steps[i-1].links; got != want {
			t.Errorf("after deleting %s: %d links, want %d", p, got, want)
		}
		checkFib(t, tb, probes)
	}
}

// TestFibCompaction patches many packed slots over and over (a default
// route that comes and goes rewrites every slot with an address no route
// covers), until the arena has been compacted, and checks the fib against
// the trie and a rebuilt one after each round.
func TestFibCompaction(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	tb := fibTable()
	gw := netip.MustParseAddr("192.0.2.1")
	var prefixes []netip.Prefix
	tb.Batch(func() {
		for i := range 6000 { // one /24 in each of 6000 /16s
			p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(1 + i/200), byte(i % 200), byte(rng.IntN(256)), 0}), 24)
			if err := tb.Add(IRE{Type: IRE_PREFIX, Dest: p, Gateway: gw}); err != nil {
				t.Fatal(err)
			}
			prefixes = append(prefixes, p)
		}
	})
	def := IRE{Type: IRE_DEFAULT, Dest: netip.MustParsePrefix("0.0.0.0/0"), Gateway: gw}
	probes := probesAround(rng, prefixes[:300])
	f := tb.lpm[0].fib
	for round := 0; f.compactions == 0 || round < 2; round++ {
		if round == 20 {
			t.Fatalf("no compaction after %d rounds: arena %d words, garbage %d", round, len(f.mem), f.garbage)
		}
		if err := tb.Add(def); err != nil {
			t.Fatal(err)
		}
		checkFib(t, tb, probes)
		if err := tb.Delete(def); err != nil {
			t.Fatal(err)
		}
		checkFib(t, tb, probes)
		if tb.lpm[0].fib != f {
			t.Fatal("the fib was rebuilt rather than patched")
		}
	}
}

// TestFibMax checks that a trie past fibMax drops its fib and answers
// from the trie, and builds one again once back under it.
func TestFibMax(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	tb := fibTable()
	tr := tb.lpm[0]
	tr.fibMax = 50
	gw := netip.MustParseAddr("192.0.2.1")
	var prefixes []netip.Prefix
	for i := range 60 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16+i%9)
		if err := tb.Add(IRE{Type: IRE_PREFIX, Dest: p, Gateway: gw}); err != nil {
			t.Fatal(err)
		}
		prefixes = append(prefixes, p)
		if want := len(prefixes) <= tr.fibMax; (tr.fib != nil) != want {
			t.Fatalf("%d prefixes, fibMax %d: has a fib %v, want %v", len(prefixes), tr.fibMax, tr.fib != nil, want)
		}
		checkLookups(t, tb, probesAround(rng, prefixes))
	}
	for len(prefixes) > 40 {
		p := prefixes[len(prefixes)-1]
		prefixes = prefixes[:len(prefixes)-1]
		if err := tb.Delete(IRE{Type: IRE_PREFIX, Dest: p, Gateway: gw}); err != nil {
			t.Fatal(err)
		}
		if want := len(prefixes) <= tr.fibMax; (tr.fib != nil) != want {
			t.Fatalf("%d prefixes, fibMax %d: has a fib %v, want %v", len(prefixes), tr.fibMax, tr.fib != nil, want)
		}
		checkLookups(t, tb, probesAround(rng, prefixes))
	}
}

// TestFibConcurrentLookups has readers look up routes that never change
// while a writer keeps adding and removing a default route and routes
// beside them, which rewrites their slots and compacts the arena under
// the readers: every answer must stay the stable route's.
func TestFibConcurrentLookups(t *testing.T) {
	tb := fibTable()
	gw := netip.MustParseAddr("192.0.2.1")
	type probe struct {
		addr netip.Addr
		want netip.Prefix
	}
	var stable []probe
	var churn []IRE
	tb.Batch(func() {
		for i := range 3000 { // /24s in 3000 /16s: packed slots
			a := netip.AddrFrom4([4]byte{byte(1 + i/100), byte(i % 100), byte(i), 0})
			p := netip.PrefixFrom(a, 24)
			if err := tb.Add(IRE{Type: IRE_PREFIX, Dest: p, Gateway: gw}); err != nil {
				t.Fatal(err)
			}
			stable = append(stable, probe{a.Next(), p})
			churn = append(churn, IRE{Type: IRE_PREFIX, Dest: netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(1 + i/100), byte(i % 100), byte(i + 1), 0}), 24), Gateway: gw})
		}
	})
	def := IRE{Type: IRE_DEFAULT, Dest: netip.MustParsePrefix("0.0.0.0/0"), Gateway: gw}
	done := make(chan struct{})
	errs := make(chan string, 2)
	for r := range 2 {
		go func() {
			for i := r; ; i += 7 {
				select {
				case <-done:
					errs <- ""
					return
				default:
				}
				p := stable[i%len(stable)]
				if got, ok := tb.Lookup(p.addr, nil); !ok || got.Dest != p.want {
					errs <- fmt.Sprintf("Lookup %s: %s %v, want %s", p.addr, got.Dest, ok, p.want)
					return
				}
			}
		}()
	}
	f := tb.lpm[0].fib
	for round := 0; round < 6 || f.compactions == 0 && round < 40; round++ {
		tb.Add(def)
		for _, e := range churn[round*50 : round*50+50] {
			tb.Add(e)
		}
		tb.Delete(def)
		for _, e := range churn[round*50 : round*50+50] {
			tb.Delete(e)
		}
	}
	close(done)
	for range 2 {
		if msg := <-errs; msg != "" {
			t.Fatal(msg)
		}
	}
	if f.compactions == 0 || tb.lpm[0].fib != f {
		t.Fatalf("the arena was not compacted under the readers (compactions %d, fib replaced %v)", f.compactions, tb.lpm[0].fib != f)
	}
}
