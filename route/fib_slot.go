package route

// slotRef is a slot in one word, as directories and hash cells hold it:
// either the answer for every address in the slot (packedRef clear), or
// where the slot's intervals lie packed in the fib's arena: the word
// offset in the low 32 bits and the number of keys n above them.
//
// A packed slot is n keys, then n answers, one 32-bit word each, so a slot
// of up to 8 intervals fills at most one cache line and the keys of up to
// 16 fill one (the arena places chunks so, see alloc). A key is 32 bits of
// an interval's start: the IPv4 address; for the IPv6 16-bit level the
// high 32 bits (its prefixes end by /32); for the IPv6 32-bit level the
// next 32, down to /64. A lookup's branchless binary search reads only
// keys, then one answer.
//
// Prefixes longer than /64 split a /64 that one key cannot tell apart. Its
// answer in the packed slot is then a link (length byte linkBits, the
// attribute field its index j), and the /64 has a list of its own, keyed
// by the low 64 bits, that answers for it: after the answers come the
// links' offsets (one word each, relative to the slot), then the lists,
// each its length m, m keys of two words (high half first), and m
// answers. Addresses outside such a /64 cost nothing more.
//
// A chunk is never changed in place: a patch packs a new one and releases
// the old (fib_arena.go).
type slotRef uint64

const packedRef slotRef = 1 << 63

func oneRef(a answer) slotRef { return slotRef(a) }

func (r slotRef) packed() bool { return r&packedRef != 0 }
func (r slotRef) one() answer  { return answer(r) }
func (r slotRef) off() int     { return int(uint32(r)) }
func (r slotRef) n() int       { return int(uint32(r>>32) &^ (1 << 31)) }

func packedSlot(off, n int) slotRef { return packedRef | slotRef(n)<<32 | slotRef(uint32(off)) }

func linkAnswer(j int) answer { return makeAnswer(uint32(j), linkBits) }

// search returns the answer in slot r for the address whose key in r's
// level is key and whose low half is lo.
func (f *fib) search(r slotRef, key uint32, lo uint64) answer {
	if !r.packed() {
		return r.one()
	}
	off, n := r.off(), r.n()
	s := f.mem[off : off+2*n]
	keys, vals := s[:n], s[n:]
	// The last key at or below key; the first is the slot's start, so
	// there is one. The halving loop's only branch is its exit, which
	// depends on n alone: the compare becomes a conditional move.
	base := 0
	for m := n; m > 1; {
		half := m >> 1
		if keys[base+half] <= key {
			base += half
		}
		m -= half
	}
	a := answer(vals[base])
	if a.bits() == linkBits {
		return f.searchList(off+int(f.mem[off+2*n+int(a.attr())]), lo)
	}
	return a
}

// searchList returns the answer for low half lo in the list at p.
func (f *fib) searchList(p int, lo uint64) answer {
	m := int(f.mem[p])
	s := f.mem[p+1 : p+1+3*m]
	keys, vals := s[:2*m], s[2*m:]
	base := 0
	for w := m; w > 1; {
		half := w >> 1
		i := 2 * (base + half)
		if uint64(keys[i])<<32|uint64(keys[i+1]) <= lo {
			base += half
		}
		w -= half
	}
	return answer(vals[base])
}

// key returns the 32 bits of k that a packed slot of lv compares.
func (f *fib) key(lv *level, k u128) uint32 {
	switch {
	case !f.v6:
		return uint32(k.lo)
	case lv.bits == 16:
		return uint32(k.hi >> 32)
	}
	return uint32(k.hi)
}

// startOf is the inverse of key for the slot starting at base.
func (f *fib) startOf(lv *level, base u128, key uint32) u128 {
	switch {
	case !f.v6:
		return u128{lo: base.lo&^0xffffffff | uint64(key)}
	case lv.bits == 16:
		return u128{hi: uint64(key) << 32}
	}
	return u128{hi: base.hi&^0xffffffff | uint64(key)}
}

// packSlot stores ivs (sorted, starting at the slot's start, neighbours
// differing) as a slot of lv.
func (f *fib) packSlot(lv *level, ivs []interval) slotRef {
	if len(ivs) == 1 {
		return oneRef(ivs[0].val)
	}
	var keys []uint32
	var vals []answer
	var lists [][]interval
	if lv.maxLen <= 64 {
		keys, vals = make([]uint32, len(ivs)), make([]answer, len(ivs))
		for i, iv := range ivs {
			keys[i], vals[i] = f.key(lv, iv.start), iv.val
		}
	}
	for i := 0; i < len(ivs) && lv.maxLen > 64; {
		h := ivs[i].start.hi
		j := i + 1
		for j < len(ivs) && ivs[j].start.hi == h {
			j++
		}
		keys = append(keys, f.key(lv, ivs[i].start))
		if j == i+1 && ivs[i].start.lo == 0 {
			vals = append(vals, ivs[i].val)
			i = j
			continue
		}
		// The answer changes inside /64 h: link to a list for it, which
		// starts with the answer at h (the previous interval's unless one
		// starts there; the slot's first interval always does).
		list := ivs[i:j:j]
		if ivs[i].start.lo != 0 {
			list = append([]interval{{u128{h, 0}, ivs[i-1].val}}, list...)
		}
		vals = append(vals, linkAnswer(len(lists)))
		lists = append(lists, list)
		// Past h the /64's last answer goes on up to the next start.
		if uint32(h) != ^uint32(0) && (j == len(ivs) || ivs[j].start.hi != h+1) {
			keys, vals = append(keys, uint32(h+1)), append(vals, ivs[j-1].val)
		}
		i = j
	}
	n, words := len(keys), 2*len(keys)+len(lists)
	for _, l := range lists {
		words += 1 + 3*len(l)
	}
	off := f.alloc(words)
	c := f.mem[off : off+words]
	for i := range n {
		c[i], c[n+i] = keys[i], uint32(vals[i])
	}
	p := 2*n + len(lists)
	for j, l := range lists {
		c[2*n+j] = uint32(p)
		c[p] = uint32(len(l))
		for i, iv := range l {
			c[p+1+2*i], c[p+2+2*i], c[p+1+2*len(l)+i] = uint32(iv.start.lo>>32), uint32(iv.start.lo), uint32(iv.val)
		}
		p += 1 + 3*len(l)
	}
	return packedSlot(off, n)
}

// chunkWords returns the words slot r (packed) takes in mem.
func chunkWords(mem []uint32, r slotRef) int {
	off, n := r.off(), r.n()
	words := 2 * n
	for _, w := range mem[off+n : off+2*n] {
		if answer(w).bits() == linkBits {
			words += 2 + 3*int(mem[off+int(mem[off+2*n+int(answer(w).attr())])])
		}
	}
	return words
}

// intervals unpacks slot r of lv, which starts at base.
func (f *fib) intervals(lv *level, base u128, r slotRef) []interval {
	if !r.packed() {
		return []interval{{base, r.one()}}
	}
	var out []interval
	add := func(k u128, a answer) {
		if len(out) == 0 || out[len(out)-1].val != a {
			out = append(out, interval{k, a})
		}
	}
	off, n := r.off(), r.n()
	for i := range n {
		start, a := f.startOf(lv, base, f.mem[off+i]), answer(f.mem[off+n+i])
		if a.bits() != linkBits {
			add(start, a)
			continue
		}
		p := off + int(f.mem[off+2*n+int(a.attr())])
		m := int(f.mem[p])
		for j := range m {
			lo := uint64(f.mem[p+1+2*j])<<32 | uint64(f.mem[p+2+2*j])
			add(u128{start.hi, lo}, answer(f.mem[p+1+2*m+j]))
		}
	}
	return out
}

// anyCovered reports whether covered reports any answer of packed slot r.
func (f *fib) anyCovered(r slotRef, covered func(answer) bool) bool {
	off, n := r.off(), r.n()
	for _, w := range f.mem[off+n : off+2*n] {
		a := answer(w)
		if a.bits() != linkBits {
			if covered(a) {
				return true
			}
			continue
		}
		p := off + int(f.mem[off+2*n+int(a.attr())])
		m := int(f.mem[p])
		for _, v := range f.mem[p+1+2*m : p+1+3*m] {
			if covered(answer(v)) {
				return true
			}
		}
	}
	return false
}
