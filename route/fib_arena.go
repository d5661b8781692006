package route

import (
	"slices"
	"unsafe"
)

// The fib's packed slots live in one arena, f.mem, rather than a slice
// each: a slotRef is then one word (a slice header is three), and the
// arena decides where a chunk lies relative to cache lines.
//
// Chunks are appended; a patched slot gets a new chunk and its old one
// becomes garbage, reclaimed by compact once it is half the arena. Like
// the rest of the fib, the arena is guarded by Table.mu: lookups read it
// under the read lock, patches run under the write lock.

// lineWords is the number of arena words in a 64-byte cache line.
const lineWords = 16

// minArena is an arena's smallest capacity: large enough (64 KiB) that
// Go places it on its own pages, so that word offsets that are multiples
// of lineWords are cache-line aligned.
const minArena = 1 << 14

func newArena(words int) []uint32 { return make([]uint32, 0, max(words, minArena)) }

// alloc reserves words words at the end of the arena and returns their
// offset. A chunk that fits a cache line is placed within one; a larger
// one starts a line, so its first 16 keys share it.
func (f *fib) alloc(words int) int {
	off := len(f.mem)
	if in := off % lineWords; in != 0 && in+words > lineWords {
		off += lineWords - in
	}
	f.mem = slices.Grow(f.mem, off+words-len(f.mem))[:off+words]
	return off
}

// release marks the chunk of r (if packed) as garbage.
func (f *fib) release(r slotRef) {
	if r.packed() {
		f.garbage += chunkWords(f.mem, r)
	}
}

// maybeCompact compacts the arena when garbage is half of it.
func (f *fib) maybeCompact() {
	if len(f.mem) > minArena && 2*f.garbage > len(f.mem) {
		f.compact()
	}
}

// compact copies every live chunk into a fresh arena, in slot order.
func (f *fib) compact() {
	old := f.mem
	f.mem, f.garbage = newArena(len(old)-f.garbage+len(old)/8), 0
	f.compactions++
	move := func(r *slotRef) {
		if !r.packed() {
			return
		}
		w := chunkWords(old, *r)
		off := f.alloc(w)
		copy(f.mem[off:off+w], old[r.off():r.off()+w])
		*r = packedSlot(off, r.n())
	}
	for i := range f.levels {
		lv := &f.levels[i]
		for n := range lv.dir {
			move(&lv.dir[n])
		}
		if lv.sparse != nil {
			lv.sparse.each(func(_ uint32, r *slotRef) { move(r) })
		}
	}
}

// bytes returns the memory the fib holds, roughly: directories, hash
// cells, the arena and the attribute table.
func (f *fib) bytes() int {
	// Each attribute is held twice: in attrs and as attrIdx's key.
	n := 4*cap(f.mem) + 2*len(f.attrs)*int(unsafe.Sizeof(ireAttrs{}))
	for _, lv := range f.levels {
		n += 8 * len(lv.dir)
		if lv.sparse != nil {
			n += 16 * len(lv.sparse.cells)
		}
	}
	return n
}
