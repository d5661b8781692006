package route

import (
	"encoding/binary"
	"net/netip"
)

// fib is a leaf-pushed copy of one family's trie that answers unfiltered
// lookups in a few dependent loads: a directory slot, its sorted interval
// list, and the winner's attributes. The trie stays the source of truth (filtered
// lookups, get, updates); the fib is derived from it and patched after
// each change (see trie.fibChanged), so its contents depend only on the
// trie's.
//
// A slot covers all addresses sharing their first bits (16 or 32) and
// holds, for every address in it, the IRE an unfiltered lookup returns:
// the best IRE (see best) of the longest covering prefix. Within a slot the
// answer changes only where a prefix longer than the slot starts or ends,
// so a slot is a list of intervals, each a start address and its answer;
// a slot no longer prefix splits is one answer.
//
// An answer does not point at the IRE: reading 100,000 IREs scattered over
// the heap costs a cache and TLB miss per lookup. It holds the winning
// prefix's length, from which the destination follows from the address
// looked up, and an index into attrs, the IREs' other fields interned: a
// table has few distinct next hops, so attrs stays in the cache.
//
// IPv4 has one level: 65,536 slots of 16 bits. IPv6 addresses share their
// first 16 bits far too much for that (a few registry blocks hold every
// route), so IPv6 has a sparse level of 32-bit slots (the size of an
// allocation) present only where a prefix longer than /32 exists, and a
// 16-bit level for the prefixes up to /32 that answers the rest.
//
// fib is guarded like its trie: Table.mu.
type fib struct {
	v6     bool
	levels []level // searched in order; the first holding a slot answers

	// attrs only grows (trie.patchFib rebuilds the fib when it holds
	// many more than the trie's prefixes).
	attrs   []ireAttrs
	attrIdx map[ireAttrs]uint32
}

// ireAttrs is an IRE without its destination.
type ireAttrs struct {
	Type    Type
	Gateway netip.Addr
	Ill     string
	Zone    string
	Flags   Flags
}

// answer is a lookup's result: the winner's prefix length and attributes.
type answer struct {
	attr uint32 // index into fib.attrs
	bits uint8
	ok   bool // false: no route
}

// answerOf returns the answer for e (nil: no route), interning its
// attributes.
func (f *fib) answerOf(e *entry) answer {
	if e == nil {
		return answer{}
	}
	at := ireAttrs{e.Type, e.Gateway, e.Ill, e.Zone, e.Flags}
	i, ok := f.attrIdx[at]
	if !ok {
		i = uint32(len(f.attrs))
		f.attrs = append(f.attrs, at)
		f.attrIdx[at] = i
	}
	return answer{attr: i, bits: uint8(e.Dest.Bits()), ok: true}
}

// ire returns the IRE of an answer found for a.
func (f *fib) ire(a netip.Addr, ans answer) IRE {
	at := &f.attrs[ans.attr]
	dest, _ := a.Prefix(int(ans.bits))
	return IRE{Type: at.Type, Dest: dest, Gateway: at.Gateway, Ill: at.Ill, Zone: at.Zone, Flags: at.Flags}
}

type level struct {
	bits   int // slot width: 16 (dir) or 32 (sparse); a multiple of 8
	maxLen int // the level ignores prefixes longer than this
	dir    []slot
	sparse *slotTable // only slots split by a prefix longer than bits
}

// interval is an answer from start up to the next interval's start.
// Neighbours never share an answer. Slots store intervals packed (see
// slot); builds and patches work on this form.
type interval struct {
	start u128
	val   answer
}

// u128 is an address as a number: IPv4 in its IPv4-mapped IPv6 form.
type u128 struct{ hi, lo uint64 }

func u128Of(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func (k u128) less(o u128) bool { return k.hi < o.hi || k.hi == o.hi && k.lo < o.lo }

func (k u128) cmp(o u128) int {
	switch {
	case k.less(o):
		return -1
	case o.less(k):
		return 1
	}
	return 0
}

// last returns the highest address of p.
func last(p netip.Prefix) u128 {
	k := u128Of(p.Addr())
	host := p.Addr().BitLen() - p.Bits() // bits below the prefix
	switch {
	case host >= 64:
		k.lo = ^uint64(0)
		k.hi |= 1<<(host-64) - 1
	default:
		k.lo |= 1<<host - 1
	}
	return k
}

// next returns k+1; k must not be the highest address.
func (k u128) next() u128 {
	k.lo++
	if k.lo == 0 {
		k.hi++
	}
	return k
}

func (k u128) addr(v6 bool) netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], k.hi)
	binary.BigEndian.PutUint64(b[8:], k.lo)
	a := netip.AddrFrom16(b)
	if !v6 {
		return a.Unmap()
	}
	return a
}

func newFib(v6 bool) *fib {
	if !v6 {
		return &fib{
			levels:  []level{{bits: 16, maxLen: 32, dir: make([]slot, 1<<16)}},
			attrIdx: make(map[ireAttrs]uint32),
		}
	}
	return &fib{v6: true, levels: []level{
		{bits: 32, maxLen: 128, sparse: newSlotTable()},
		{bits: 16, maxLen: 32, dir: make([]slot, 1<<16)},
	}, attrIdx: make(map[ireAttrs]uint32)}
}

// lookup returns the answer for a, of the fib's family.
func (f *fib) lookup(a netip.Addr) answer { return f.find(u128Of(a)) }

// find returns the answer for address k.
func (f *fib) find(k u128) answer {
	if !f.v6 {
		return f.levels[0].dir[uint32(k.lo)>>16].find(k.lo, k)
	}
	if s := f.levels[0].sparse.get(uint32(k.hi >> 32)); s != nil {
		return s.find(k.hi, k)
	}
	return f.levels[1].dir[k.hi>>48].find(k.hi, k)
}

// slotNum returns the number of a's slot in lv.
func (f *fib) slotNum(lv *level, a netip.Addr) uint32 {
	k := u128Of(a)
	if !f.v6 {
		return uint32(k.lo) >> (32 - lv.bits)
	}
	return uint32(k.hi >> (64 - lv.bits))
}

// slotPrefix is the prefix slot n of lv covers.
func (f *fib) slotPrefix(lv *level, n uint32) netip.Prefix {
	if !f.v6 {
		v := n << (32 - lv.bits)
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), lv.bits)
	}
	return netip.PrefixFrom(u128{hi: uint64(n) << (64 - lv.bits)}.addr(true), lv.bits)
}
