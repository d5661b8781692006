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

// TestSlotPacking builds random interval lists of IPv4, narrow IPv6 and
// wide IPv6 starts, and checks that a packed slot unpacks to them and that
// find agrees with a linear scan at every start, just below it, and at
// random addresses.
func TestSlotPacking(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 1))
	for round := range 300 {
		v6, wide := round%3 != 0, round%3 == 2
		n := 1 + rng.IntN(40)
		starts := map[u128]bool{}
		var ivs []interval
		for len(ivs) < n {
			k := u128{lo: 0xffff<<32 | 0x0a0b<<16 | rng.Uint64()&0xffff}
			if v6 {
				k = u128{hi: 0x20010db8<<32 | rng.Uint64()&0xffffffff}
				if wide && rng.IntN(3) == 0 {
					k.lo = rng.Uint64()
				}
			}
			if len(ivs) == 0 { // the slot's start
				k = u128{lo: 0xffff<<32 | 0x0a0b<<16}
				if v6 {
					k = u128{hi: 0x20010db8 << 32}
				}
			}
			if !starts[k] {
				starts[k] = true
				ivs = append(ivs, interval{k, answer{attr: uint32(rng.IntN(1 << 20)), bits: uint8(rng.IntN(129)), ok: rng.IntN(4) != 0}})
			}
		}
		slices.SortFunc(ivs, func(a, b interval) int { return a.start.cmp(b.start) })
		s := packSlot(ivs, v6)
		if n > 1 && !slices.Equal(s.intervals(v6), ivs) {
			t.Fatalf("round %d: unpacked %v, packed %v", round, s.intervals(v6), ivs)
		}
		want := func(k u128) answer {
			w := ivs[0].val
			for _, iv := range ivs {
				if !k.less(iv.start) {
					w = iv.val
				}
			}
			return w
		}
		probes := []u128{}
		for _, iv := range ivs[1:] {
			below := iv.start
			if below.lo == 0 {
				below.hi--
			}
			below.lo--
			probes = append(probes, iv.start, below)
		}
		for range 20 {
			probes = append(probes, ivs[rng.IntN(n)].start.next())
		}
		for _, k := range probes {
			key := k.hi
			if !v6 {
				key = k.lo
			}
			if got := s.find(key, k); got != want(k) {
				t.Fatalf("round %d (v6 %v, wide %v): find %x = %+v, want %+v", round, v6, s.wide, k, got, want(k))
			}
		}
	}
}
