package route

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// TestTableLookupWithFib drives a Table whose tries keep a fib from the
// first prefix through random adds and deletes of IREs of several types
// per destination, some inside batches, and checks that every unfiltered
// Lookup (the fib, once nothing is pending) returns what the filtered
// path (the trie and best) returns.
func TestTableLookupWithFib(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	tb := New(nil)
	for _, tr := range tb.lpm {
		tr.fibMin = 1
	}
	types := []Type{IRE_PREFIX, IRE_IF_RESOLVER, IRE_LOCAL, IRE_BROADCAST}
	var live []IRE
	randomIRE := func() IRE {
		v6 := rng.IntN(2) == 1
		a := randomAddr(rng, v6)
		if !v6 { // few /8s, so that prefixes nest
			a = netip.AddrFrom4([4]byte{10 + byte(rng.IntN(2)), byte(rng.IntN(3)), byte(rng.IntN(256)), byte(rng.IntN(256))})
		} else if rng.IntN(2) == 0 {
			a = inside(rng, v6Allocations[rng.IntN(4)])
		}
		p, _ := a.Prefix(rng.IntN(a.BitLen() + 1))
		gw := netip.MustParseAddr("192.0.2.1")
		if v6 {
			gw = netip.MustParseAddr("2001:db8::1")
		}
		return IRE{Type: types[rng.IntN(len(types))], Dest: p, Gateway: gw, Ill: []string{"a0", "b0"}[rng.IntN(2)]}
	}
	step := func() {
		if len(live) > 0 && rng.IntN(3) == 0 {
			i := rng.IntN(len(live))
			if err := tb.Delete(live[i]); err != nil {
				t.Fatalf("delete %+v: %v", live[i], err)
			}
			live = append(live[:i], live[i+1:]...)
			return
		}
		e := randomIRE()
		if tb.Has(e) {
			return
		}
		if err := tb.Add(e); err != nil {
			t.Fatalf("add %+v: %v", e, err)
		}
		live = append(live, e)
	}
	check := func() {
		for range 50 {
			a := randomAddr(rng, rng.IntN(2) == 1)
			if len(live) > 0 && rng.IntN(2) == 0 {
				a = inside(rng, live[rng.IntN(len(live))].Dest)
			}
			got, gotOK := tb.Lookup(a, nil)
			want, wantOK := tb.Lookup(a, func(*IRE) bool { return true })
			if gotOK != wantOK || got != want {
				t.Fatalf("Lookup %s: %+v %v, the trie finds %+v %v", a, got, gotOK, want, wantOK)
			}
		}
	}
	for round := range 300 {
		if round%5 == 0 {
			tb.Batch(func() {
				for range 1 + rng.IntN(300) { // past fibPendingMax sometimes
					step()
				}
				check()
			})
		} else {
			step()
		}
		check()
	}
	for i, tr := range tb.lpm {
		if tr.fib == nil || !tr.fibUsable() {
			t.Fatalf("family %d: no usable fib after the batches", i)
		}
	}
}

// randomSlot returns random intervals for the slot of lv starting at base
// (sorted, the first at base, neighbours differing). Starts cluster, so
// that IPv6 intervals share /64s, start just past one, and reach the
// slot's last /64, as the 32-bit level's links must handle.
func randomSlot(rng *rand.Rand, f *fib, lv *level, base u128) []interval {
	n := 1 + rng.IntN(40)
	starts := map[u128]bool{base: true}
	for len(starts) < n {
		k := base
		switch {
		case !f.v6:
			k.lo |= rng.Uint64() & 0xffff
		case lv.bits == 16:
			k.hi |= rng.Uint64() & 0xffff << 32
		default:
			k.hi |= uint64(rng.IntN(12))
			if rng.IntN(4) == 0 {
				k.hi |= 0xffffffff - uint64(rng.IntN(3))
			}
			if rng.IntN(2) == 0 {
				k.lo = []uint64{1, 2, 1 << 32, 1 << 63, ^uint64(0), rng.Uint64()}[rng.IntN(6)]
			}
		}
		starts[k] = true
	}
	var ivs []interval
	for k := range starts {
		ivs = append(ivs, interval{start: k})
	}
	slices.SortFunc(ivs, func(a, b interval) int { return a.start.cmp(b.start) })
	for i := range ivs {
		for {
			v := makeAnswer(uint32(rng.IntN(1<<20)), rng.IntN(129))
			if rng.IntN(4) == 0 {
				v = noRoute
			}
			if i == 0 || v != ivs[i-1].val {
				ivs[i].val = v
				break
			}
		}
	}
	return ivs
}

// TestSlotPacking packs random interval lists into slots of every level
// (IPv4, the IPv6 16-bit and 32-bit levels, with links for prefixes longer
// than /64), and checks that each unpacks to its intervals, that search
// agrees with a linear scan at every start, just below and above it, and
// at random addresses, that chunkWords measures what was allocated, and
// that all of it still holds after the arena is compacted.
func TestSlotPacking(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 1))
	type packed struct {
		lv   *level
		base u128
		ivs  []interval
		r    *slotRef
	}
	check := func(f *fib, p packed) {
		t.Helper()
		if got := f.intervals(p.lv, p.base, *p.r); !slices.Equal(got, p.ivs) {
			t.Fatalf("v6 %v level /%d: unpacked %v, packed %v", f.v6, p.lv.bits, got, p.ivs)
		}
		want := func(k u128) answer {
			w := p.ivs[0].val
			for _, iv := range p.ivs {
				if !k.less(iv.start) {
					w = iv.val
				}
			}
			return w
		}
		end := last(f.slotPrefix(p.lv, f.slotNum(p.lv, p.base.addr(f.v6))))
		probes := []u128{end}
		for _, iv := range p.ivs {
			probes = append(probes, iv.start)
			if iv.start != end {
				probes = append(probes, iv.start.next())
			}
			if iv.start != p.base {
				below := iv.start
				if below.lo == 0 {
					below.hi--
				}
				below.lo--
				probes = append(probes, below)
			}
		}
		for range 20 {
			k := p.ivs[rng.IntN(len(p.ivs))].start
			k.lo |= rng.Uint64() & 0xff
			if k.less(end) {
				probes = append(probes, k)
			}
		}
		for _, k := range probes {
			if got := f.search(*p.r, f.key(p.lv, k), k.lo); got != want(k) {
				t.Fatalf("v6 %v level /%d: search %x = %#x, want %#x (slot %v)", f.v6, p.lv.bits, k, got, want(k), p.ivs)
			}
		}
	}
	for _, v6 := range []bool{false, true} {
		f := newFib(v6)
		var all []packed
		for round := range 600 {
			lv := &f.levels[round%len(f.levels)]
			n := uint32(rng.IntN(1 << lv.bits))
			base := u128Of(f.slotPrefix(lv, n).Addr())
			ivs := randomSlot(rng, f, lv, base)
			before := len(f.mem)
			r := f.packSlot(lv, ivs)
			if r.packed() {
				if got := chunkWords(f.mem, r); len(f.mem)-before < got || len(f.mem)-before >= got+lineWords {
					t.Fatalf("chunkWords %d, alloc took %d", got, len(f.mem)-before)
				}
				if r.off()%lineWords+chunkWords(f.mem, r) > lineWords && r.off()%lineWords != 0 {
					t.Fatalf("chunk of %d words at %d crosses a cache line", chunkWords(f.mem, r), r.off())
				}
			}
			p := packed{lv, base, ivs, new(slotRef)}
			*p.r = r
			check(f, p)
			all = append(all, p)
			if rng.IntN(3) == 0 { // replaced: its chunk is garbage
				f.release(r)
				all = all[:len(all)-1]
			}
		}
		// compact moves the chunks the directories and hash cells
		// reference: hand the test's slots to them (a later slot of the
		// same number replaces an earlier one).
		type place struct {
			lv *level
			n  uint32
		}
		final := map[place]packed{}
		for _, p := range all {
			n := f.slotNum(p.lv, p.base.addr(v6))
			if p.lv.dir != nil {
				p.lv.dir[n] = *p.r
			} else {
				p.lv.sparse.set(n, *p.r)
			}
			final[place{p.lv, n}] = p
		}
		f.compact()
		if f.garbage != 0 {
			t.Fatalf("garbage %d after compact", f.garbage)
		}
		for pl, p := range final {
			if pl.lv.dir != nil {
				*p.r = pl.lv.dir[pl.n]
			} else {
				*p.r, _ = pl.lv.sparse.get(pl.n)
			}
			check(f, p)
		}
	}
}
