package route

import (
	"encoding/binary"
	"net/netip"
)

// fib is a leaf-pushed copy of one family's trie that answers unfiltered
// lookups in two or three dependent loads: a directory entry (or a hash
// cell), one cache line of a packed slot, and the winner's attributes.
// The trie stays the source of truth (filtered lookups, get, updates); the
// fib is derived from it and patched after each change (see
// trie.fibChanged), so its contents depend only on the trie's.
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
// Directory entries and hash cells are slotRefs of one word, so the 65,536
// entries of a directory take 512 KiB; packed slots live in mem, one
// arena per fib (fib_arena.go), laid out so that a small slot lies in one
// cache line (fib_slot.go).
//
// fib is guarded like its trie: Table.mu.
type fib struct {
	v6     bool
	levels []level // searched in order; the first holding a slot answers

	// mem holds the packed slots; garbage counts the words of slots
	// replaced since it was last compacted.
	mem         []uint32
	garbage     int
	compactions int // how often mem was compacted (for tests)

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

// answer is a lookup's result in one word: zero for no route, else the
// winner's prefix length in the low byte and its index into fib.attrs,
// plus one, above it. Packed slots also hold links (see slotRef), whose
// length byte is linkBits.
type answer uint32

const (
	noRoute  answer = 0
	linkBits        = 0xff
	// maxAttrs bounds fib.attrs so an index fits an answer;
	// defaultFibMax keeps a fib's tables well below it.
	maxAttrs = 1<<24 - 1
)

func makeAnswer(attr uint32, bits int) answer { return answer((attr+1)<<8 | uint32(bits)) }

func (a answer) ok() bool     { return a != noRoute }
func (a answer) bits() int    { return int(a & 0xff) }
func (a answer) attr() uint32 { return uint32(a>>8) - 1 }

// answerOf returns the answer for e (nil: no route), interning its
// attributes.
func (f *fib) answerOf(e *entry) answer {
	if e == nil {
		return noRoute
	}
	at := ireAttrs{e.Type, e.Gateway, e.Ill, e.Zone, e.Flags}
	i, ok := f.attrIdx[at]
	if !ok {
		i = uint32(len(f.attrs))
		if i >= maxAttrs {
			// defaultFibMax makes this unreachable: a fib is rebuilt before
			// its attributes reach twice the prefixes.
			panic("route: fib attribute table overflow")
		}
		f.attrs = append(f.attrs, at)
		f.attrIdx[at] = i
	}
	return makeAnswer(i, e.Dest.Bits())
}

// fill stores in out the IRE of answer ans (which must be ok) found for
// a, of the fib's family, whose number is k.
func (f *fib) fill(out *IRE, a netip.Addr, k u128, ans answer) {
	at := &f.attrs[ans.attr()]
	out.Type, out.Gateway, out.Ill, out.Zone, out.Flags = at.Type, at.Gateway, at.Ill, at.Zone, at.Flags
	out.Dest = prefixOf(a, k, ans.bits(), f.v6)
}

// ire returns the IRE of an answer found for a (zero if ans is no route).
func (f *fib) ire(a netip.Addr, ans answer) IRE {
	var out IRE
	if ans.ok() {
		f.fill(&out, a, u128Of(a), ans)
	}
	return out
}

type level struct {
	bits   int // slot width: 16 (dir) or 32 (sparse); a multiple of 8
	maxLen int // the level ignores prefixes longer than this
	dir    []slotRef
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
	if !v6 {
		v := uint32(k.lo)
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], k.hi)
	binary.BigEndian.PutUint64(b[8:], k.lo)
	return netip.AddrFrom16(b)
}

func newFib(v6 bool) *fib {
	f := &fib{v6: v6, mem: newArena(0), attrIdx: make(map[ireAttrs]uint32)}
	if !v6 {
		f.levels = []level{{bits: 16, maxLen: 32, dir: make([]slotRef, 1<<16)}}
		return f
	}
	f.levels = []level{
		{bits: 32, maxLen: 128, sparse: newSlotTable()},
		{bits: 16, maxLen: 32, dir: make([]slotRef, 1<<16)},
	}
	return f
}

// lookup returns the answer for a, of the fib's family.
func (f *fib) lookup(a netip.Addr) answer { return f.find(u128Of(a)) }

// find returns the answer for address k.
func (f *fib) find(k u128) answer {
	if !f.v6 {
		return f.search(f.levels[0].dir[uint32(k.lo)>>16], uint32(k.lo), k.lo)
	}
	// The directory entry is read before the probe so that both loads are
	// under way at once: it answers when the probe finds no slot.
	short := f.levels[1].dir[k.hi>>48]
	if r, ok := f.levels[0].sparse.get(uint32(k.hi >> 32)); ok {
		return f.search(r, uint32(k.hi), k.lo)
	}
	return f.search(short, uint32(k.hi>>32), k.hi)
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
