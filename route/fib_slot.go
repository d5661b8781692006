package route

// slot is the answer for every address in one directory or sparse slot:
// either one answer, or intervals packed into one array searched without
// branches.
//
// The array holds the interval starts' search keys, then the answers, one
// word each: a lookup's binary search reads only keys, 8 to a cache line
// (three times as many as whole intervals), and then one answer. A key is
// the half of the start that varies within the slot: the low 64 bits for
// IPv4 (in its IPv4-mapped form the high half is constant), the high 64 bits
// for IPv6 when no prefix in the slot is longer than /64 (every start then
// has a zero low half). An IPv6 slot split by a longer prefix is wide: its
// array holds the high halves, then the low halves, then the answers.
//
// The array is replaced, never changed in place, so a slot copied out of a
// table stays valid; it is guarded like its fib.
type slot struct {
	packed []uint64 // nil: one answers
	one    answer   // the whole slot's answer when packed is nil
	wide   bool     // packed holds 128-bit starts
}

// packSlot returns the slot for ivs, which are sorted and start at the
// slot's start; v6 tells which half of a start varies.
func packSlot(ivs []interval, v6 bool) slot {
	if len(ivs) == 1 {
		return slot{one: ivs[0].val}
	}
	wide := false
	for _, iv := range ivs {
		if v6 && iv.start.lo != 0 {
			wide = true
		}
	}
	n := len(ivs)
	words := 2
	if wide {
		words = 3
	}
	p := make([]uint64, words*n)
	for i, iv := range ivs {
		switch {
		case !v6:
			p[i] = iv.start.lo
		case wide:
			p[i], p[n+i] = iv.start.hi, iv.start.lo
		default:
			p[i] = iv.start.hi
		}
		p[(words-1)*n+i] = iv.val.pack()
	}
	return slot{packed: p, wide: wide}
}

// intervals unpacks s; v6 as for packSlot. A slot of one answer is one
// interval with a zero start.
func (s *slot) intervals(v6 bool) []interval {
	if s.packed == nil {
		return []interval{{val: s.one}}
	}
	n, words := s.len(), 2
	if s.wide {
		words = 3
	}
	out := make([]interval, n)
	for i := range out {
		switch {
		case !v6:
			out[i].start.lo = s.packed[i]
		case s.wide:
			out[i].start = u128{s.packed[i], s.packed[n+i]}
		default:
			out[i].start.hi = s.packed[i]
		}
		out[i].val = unpackAnswer(s.packed[(words-1)*n+i])
	}
	return out
}

// anyCovered reports whether covered reports any of a packed slot's
// answers.
func (s *slot) anyCovered(covered func(answer) bool) bool {
	n := s.len()
	for _, w := range s.packed[len(s.packed)-n:] {
		if covered(unpackAnswer(w)) {
			return true
		}
	}
	return false
}

// len returns the number of intervals of a packed slot.
func (s *slot) len() int {
	if s.wide {
		return len(s.packed) / 3
	}
	return len(s.packed) / 2
}

// find returns the answer for address k, whose search key (the half that
// varies, see slot) is key.
func (s *slot) find(key uint64, k u128) answer {
	if s.packed == nil {
		return s.one
	}
	if s.wide {
		return s.findWide(k)
	}
	// The last start at or below key; the first is the slot's start, so
	// there is one. The halving loop's only branch is its exit, which
	// depends on n alone: the compare becomes a conditional move.
	n := len(s.packed) / 2
	keys, vals := s.packed[:n], s.packed[n:]
	base := 0
	for m := n; m > 1; {
		half := m >> 1
		if keys[base+half] <= key {
			base += half
		}
		m -= half
	}
	return unpackAnswer(vals[base])
}

func (s *slot) findWide(k u128) answer {
	n := len(s.packed) / 3
	his, los, vals := s.packed[:n], s.packed[n:2*n], s.packed[2*n:]
	base := 0
	for m := n; m > 1; {
		half := m >> 1
		if h := his[base+half]; h < k.hi || h == k.hi && los[base+half] <= k.lo {
			base += half
		}
		m -= half
	}
	return unpackAnswer(vals[base])
}

// pack stores a in one word: attr in the high half, then bits, then ok.
func (a answer) pack() uint64 {
	w := uint64(a.attr)<<32 | uint64(a.bits)<<8
	if a.ok {
		w |= 1
	}
	return w
}

func unpackAnswer(w uint64) answer {
	return answer{attr: uint32(w >> 32), bits: uint8(w >> 8), ok: w&1 != 0}
}
