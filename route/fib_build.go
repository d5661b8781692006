package route

import (
	"net/netip"
	"slices"
)

// defaultFibMin is the trie size from which a fib is kept: below it the
// trie's nodes stay in the cache and the fib's 65,536-slot directories
// (512 KiB each, and the arena) would cost more than they save.
const defaultFibMin = 4096

// fibPendingMax is how many changes a held fib queues for patching at
// release; more, and rebuilding it whole is cheaper.
const fibPendingMax = 256

// defaultFibMax is the largest trie that keeps a fib (twice a full
// Internet IPv4 table): it bounds the attributes a fib interns (at most
// about twice the prefixes, see patchFib, plus one patch's) below
// maxAttrs. Larger tries answer from the trie.
const defaultFibMax = 1 << 21

// fibUsable reports whether t.fib answers for the trie as it is now.
func (t *trie) fibUsable() bool { return t.fib != nil && len(t.fibPending) == 0 }

// fibWanted reports whether the trie's size calls for a fib.
func (t *trie) fibWanted() bool { return t.size >= t.fibMin && t.size <= t.fibMax }

// fibChanged brings the fib up to date after p's first IRE or its list
// changed (set, removed, or another IRE of p added or removed).
func (t *trie) fibChanged(p netip.Prefix) {
	switch {
	case t.fib == nil:
		if !t.fibHold && t.fibWanted() {
			t.buildFib()
		}
	case t.fibHold:
		if len(t.fibPending) < fibPendingMax {
			t.fibPending = append(t.fibPending, p)
		} else {
			t.fib, t.fibPending = nil, nil // rebuilt at release
		}
	default:
		t.patchFib(p)
	}
}

// holdFib defers fib updates until releaseFib, for a batch of changes:
// until then lookups use the trie once anything changed.
func (t *trie) holdFib() { t.fibHold = true }

func (t *trie) releaseFib() {
	t.fibHold = false
	pending := t.fibPending
	t.fibPending = nil
	if t.fib == nil {
		if t.fibWanted() {
			t.buildFib()
		}
		return
	}
	for _, p := range pending {
		if t.patchFib(p); t.fib == nil {
			return
		}
	}
}

// buildFib makes the fib from the whole trie; its build runs one trie
// lookup per slot and per prefix end.
func (t *trie) buildFib() {
	f := newFib(t.off == 0)
	var all []*entry
	t.root.visit(func(e *entry) { all = append(all, e) })
	for i := range f.levels {
		lv := &f.levels[i]
		inside := map[uint32][]*entry{}
		for _, e := range all {
			if l := e.Dest.Bits(); l > lv.bits && l <= lv.maxLen {
				n := f.slotNum(lv, e.Dest.Addr())
				inside[n] = append(inside[n], e)
			}
		}
		if lv.dir != nil {
			for n := range lv.dir {
				lv.dir[n] = f.packSlot(lv, t.slotIntervals(f, f.slotPrefix(lv, uint32(n)), lv.maxLen, inside[uint32(n)]))
			}
			continue
		}
		for n, in := range inside {
			lv.sparse.set(n, f.packSlot(lv, t.slotIntervals(f, f.slotPrefix(lv, n), lv.maxLen, in)))
		}
	}
	t.fib = f
}

// patchFib updates the slots a change of p affects.
func (t *trie) patchFib(p netip.Prefix) {
	f := t.fib
	switch {
	case t.size > t.fibMax:
		t.fib = nil
		return
	case len(f.attrs) > 2*t.size+1024:
		t.buildFib() // drop attributes no IRE has any more
		return
	}
	for i := range f.levels {
		lv := &f.levels[i]
		switch {
		case p.Bits() > lv.maxLen:
		case p.Bits() > lv.bits:
			t.rebuildSlot(f, lv, f.slotNum(lv, p.Addr()))
		default:
			t.inheritSlots(f, lv, p)
		}
	}
	f.maybeCompact()
}

// rebuildSlot recomputes slot n of lv from the trie, after a prefix
// inside it changed.
func (t *trie) rebuildSlot(f *fib, lv *level, n uint32) {
	sp := f.slotPrefix(lv, n)
	var inside []*entry
	t.visitInside(sp, func(e *entry) {
		if e.Dest.Bits() <= lv.maxLen {
			inside = append(inside, e)
		}
	})
	if lv.dir != nil {
		f.release(lv.dir[n])
		lv.dir[n] = f.packSlot(lv, t.slotIntervals(f, sp, lv.maxLen, inside))
		return
	}
	if old, ok := lv.sparse.get(n); ok {
		f.release(old)
	}
	if len(inside) == 0 {
		lv.sparse.del(n)
		return
	}
	lv.sparse.set(n, f.packSlot(lv, t.slotIntervals(f, sp, lv.maxLen, inside)))
}

// inheritSlots updates the slots of lv that p (no longer than the slots)
// covers. Within p, an address's answer changes only if it came from p or
// a shorter prefix: those all cover p, so the best of them is one answer,
// the winner at p's address among prefixes no longer than p.
func (t *trie) inheritSlots(f *fib, lv *level, p netip.Prefix) {
	nv := f.answerOf(t.winner(p.Addr(), p.Bits()))
	covered := func(v answer) bool { return !v.ok() || v.bits() <= p.Bits() }
	first, count := f.slotNum(lv, p.Addr()), uint64(1)<<(lv.bits-p.Bits())
	if lv.dir != nil {
		for n := range count {
			f.inherit(lv, first+uint32(n), &lv.dir[first+uint32(n)], covered, nv)
		}
		return
	}
	if count <= uint64(lv.sparse.len()) {
		for i := range count {
			if r := lv.sparse.at(first + uint32(i)); r != nil {
				f.inherit(lv, first+uint32(i), r, covered, nv)
			}
		}
		return
	}
	lv.sparse.each(func(n uint32, r *slotRef) {
		if p.Contains(f.slotPrefix(lv, n).Addr()) {
			f.inherit(lv, n, r, covered, nv)
		}
	})
}

// inherit replaces the answers covered reports in slot n of lv, held at
// r, with nv, merging neighbours that come to share one.
func (f *fib) inherit(lv *level, n uint32, r *slotRef, covered func(answer) bool, nv answer) {
	if !r.packed() {
		if covered(r.one()) {
			*r = oneRef(nv)
		}
		return
	}
	if !f.anyCovered(*r, covered) {
		return // most slots under a short prefix: no copy
	}
	ivs := f.intervals(lv, u128Of(f.slotPrefix(lv, n).Addr()), *r)
	out := ivs[:0]
	for _, iv := range ivs {
		if covered(iv.val) {
			iv.val = nv
		}
		if len(out) > 0 && out[len(out)-1].val == iv.val {
			continue
		}
		out = append(out, iv)
	}
	f.release(*r)
	*r = f.packSlot(lv, out)
}

// slotIntervals computes the intervals of the slot covering sp, given the
// prefixes strictly inside it that the level keeps (longer than sp, up to
// maxLen): the answer can change only where one of them starts or just
// after one ends.
func (t *trie) slotIntervals(f *fib, sp netip.Prefix, maxLen int, inside []*entry) []interval {
	end := last(sp)
	points := []u128{u128Of(sp.Addr())}
	for _, e := range inside {
		points = append(points, u128Of(e.Dest.Addr()))
		if l := last(e.Dest); l.less(end) {
			points = append(points, l.next())
		}
	}
	slices.SortFunc(points, u128.cmp)
	points = slices.Compact(points)
	var ivs []interval
	for _, k := range points {
		v := f.answerOf(t.winner(k.addr(f.v6), maxLen))
		if len(ivs) > 0 && ivs[len(ivs)-1].val == v {
			continue
		}
		ivs = append(ivs, interval{k, v})
	}
	return ivs
}

// winner returns the answer for a among prefixes up to maxLen long: the
// best IRE of the longest such prefix covering a, or nil.
func (t *trie) winner(a netip.Addr, maxLen int) *entry {
	first, ok := t.lookup(a, func(e *entry) bool { return e.Dest.Bits() <= maxLen })
	if !ok {
		return nil
	}
	return best(first, nil)
}

// visit calls f with the first IRE of every prefix in n's subtree.
func (n *node) visit(f func(*entry)) {
	for _, e := range n.prefixes {
		f(e)
	}
	for _, l := range n.children {
		if l.leaf != nil {
			f(l.leaf)
		} else {
			l.node.visit(f)
		}
	}
}

// visitInside calls f with the first IRE of every prefix strictly inside
// p, whose length must be a multiple of 8.
func (t *trie) visitInside(p netip.Prefix, f func(*entry)) {
	key := octets(p.Addr(), t.off)
	n := &t.root
	for d := range p.Bits() / 8 {
		l := n.linkAt(int(key[d]))
		switch {
		case l == nil:
			return
		case l.leaf != nil:
			if l.leaf.Dest.Bits() > p.Bits() && p.Contains(l.leaf.Dest.Addr()) {
				f(l.leaf)
			}
			return
		}
		n = l.node
	}
	// A node at depth d holds lengths 8d+1 to 8d+8: all longer than p.
	n.visit(f)
}
