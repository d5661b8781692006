package route

import (
	"math/bits"
	"net/netip"
)

// trie is a longest-prefix-match table for one address family: a multibit
// trie that consumes one octet of the address per level (stride 8), in the
// manner of the ART and BART designs.
//
// A node at depth d holds the prefixes whose length lies in (8d, 8d+8]
// (the root also holds /0), numbered as a complete binary tree over its
// octet: index 1 is length 8d, 2..3 are 8d+1, ..., 256..511 are 8d+8 (a
// prefix of relative length r and octet bits o has index 1<<r | o>>(8-r)).
// A prefix that ends on an octet boundary so stays in the node above, and
// an IPv4 /32 needs at most four levels.
//
// Prefix slots and the 256 child links are popcount-compressed: a bitmap
// says which exist, and the number of set bits below a bit is its position
// in a dense slice, so a sparse node costs a few words. A child link whose
// subtree would hold a single prefix is a leaf holding that prefix instead
// (path compression): a table of scattered long prefixes, the usual IPv6
// case, then needs few nodes and a lookup few hops.
//
// A lookup walks down following the address's octets until it meets a
// leaf or a missing child, then back up: in each node the prefixes covering
// the address are the bits its prefix bitmap shares with the precomputed
// ancestor set of the octet, highest index (longest prefix) first.
//
// trie is not safe for concurrent use; Table guards it with its lock.
type trie struct {
	root node
	off  int // where the address starts in its 16-byte form: 12 for IPv4
	size int // number of prefixes stored

	// jump maps the first two octets of an address to the link a walk
	// finds for them in the node at depth 1, so that a lookup starts two
	// levels down: each level is a few dependent memory loads, and in a
	// large table most lookups end deeper. Made once the trie holds
	// jumpMin prefixes (it costs 1 MiB), then kept up to date.
	jump    []link
	jumpMin int

	// fib answers unfiltered lookups while the trie holds fibMin to
	// fibMax prefixes (fib.go); while fibHold, changes queue in fibPending
	// instead of patching it, and lookups use it only when nothing is
	// queued.
	fib        *fib
	fibMin     int
	fibMax     int
	fibHold    bool
	fibPending []netip.Prefix
}

// defaultJumpMin is where a jump table starts to pay for its memory.
const defaultJumpMin = 4096

type node struct {
	childBits  [4]uint64 // bit o set: children holds the link for octet o
	children   []link
	prefixBits [8]uint64 // bit i set: prefixes holds the value of index i
	prefixes   []*entry
}

// link is one child link: a deeper node, or a leaf standing for a subtree
// that holds one prefix: that prefix's first IRE, whose Dest is the
// prefix. Exactly one of the two is set.
type link struct {
	node *node
	leaf *entry
}

func newTrie(v6 bool) *trie {
	if v6 {
		return &trie{jumpMin: defaultJumpMin, fibMin: defaultFibMin, fibMax: defaultFibMax}
	}
	return &trie{off: 12, jumpMin: defaultJumpMin, fibMin: defaultFibMin, fibMax: defaultFibMax}
}

// ancestors[o] is the set of prefix indexes that cover octet o within a
// node: 256+o and each of its parents up to index 1.
var ancestors = func() (a [256][8]uint64) {
	for o := range 256 {
		for i := 256 + o; i >= 1; i >>= 1 {
			a[o][i>>6] |= 1 << (i & 63)
		}
	}
	return
}()

// octets returns a's bytes in network order: its 16-byte form from off.
func octets(a netip.Addr, off int) []byte {
	b := a.As16()
	return b[off:]
}

// position returns the depth of the node holding a prefix of length l and
// the prefix's index in that node.
func position(key []byte, l int) (depth, idx int) {
	if l == 0 {
		return 0, 1
	}
	depth = (l - 1) / 8
	r := l - 8*depth // 1..8
	return depth, 1<<r | int(key[depth])>>(8-r)
}

func hasBit(set []uint64, i int) bool { return set[i>>6]&(1<<(i&63)) != 0 }

// bitRank is the number of bits of set below i: the dense-slice position
// of i.
func bitRank(set []uint64, i int) int {
	n := 0
	for w := range i >> 6 {
		n += bits.OnesCount64(set[w])
	}
	return n + bits.OnesCount64(set[i>>6]&(1<<(i&63)-1))
}

// linkAt returns the child link for octet o, or nil. The pointer is valid
// until n's children change.
func (n *node) linkAt(o int) *link {
	w, bit := o>>6, uint64(1)<<(o&63)
	word := n.childBits[w]
	if word&bit == 0 {
		return nil
	}
	i := bits.OnesCount64(word & (bit - 1))
	for _, below := range n.childBits[:w] {
		i += bits.OnesCount64(below)
	}
	return &n.children[i]
}

func (n *node) addLink(o int, l link) {
	n.children = insertAt(n.children, bitRank(n.childBits[:], o), l)
	n.childBits[o>>6] |= 1 << (o & 63)
}

func (n *node) removeLink(o int) {
	n.children = deleteAt(n.children, bitRank(n.childBits[:], o))
	n.childBits[o>>6] &^= 1 << (o & 63)
}

// setPrefix stores v at idx and reports whether the slot was empty.
func (n *node) setPrefix(idx int, v *entry) bool {
	r := bitRank(n.prefixBits[:], idx)
	if hasBit(n.prefixBits[:], idx) {
		n.prefixes[r] = v
		return false
	}
	n.prefixes = insertAt(n.prefixes, r, v)
	n.prefixBits[idx>>6] |= 1 << (idx & 63)
	return true
}

// place stores a leaf in n, a fresh node at depth: as a prefix slot if
// its prefix ends within n's octet, else as a leaf link one level down.
func (n *node) place(depth, off int, l *entry) {
	key := octets(l.Dest.Addr(), off)
	d, idx := position(key, l.Dest.Bits())
	if d == depth {
		n.setPrefix(idx, l)
		return
	}
	n.addLink(int(key[depth]), link{leaf: l})
}

// get returns the first IRE stored for p (masked, of the trie's family).
func (t *trie) get(p netip.Prefix) (*entry, bool) {
	key := octets(p.Addr(), t.off)
	depth, idx := position(key, p.Bits())
	n := &t.root
	for d := range depth {
		l := n.linkAt(int(key[d]))
		switch {
		case l == nil:
			return nil, false
		case l.leaf != nil:
			if l.leaf.Dest != p {
				return nil, false
			}
			return l.leaf, true
		}
		n = l.node
	}
	if !hasBit(n.prefixBits[:], idx) {
		return nil, false
	}
	return n.prefixes[bitRank(n.prefixBits[:], idx)], true
}

// set makes v the first IRE of its destination v.Dest (masked, of the
// trie's family), replacing any.
func (t *trie) set(v *entry) {
	before := t.firstLink(v.Dest)
	t.insert(v)
	t.updateJump(v.Dest, before)
	t.fibChanged(v.Dest)
}

// remove deletes p's value and reports whether p was present. Nodes left
// empty are pruned, and a node left with a single prefix becomes a leaf
// again, so the shape depends only on the contents.
func (t *trie) remove(p netip.Prefix) bool {
	before := t.firstLink(p)
	if !t.delete(p) {
		return false
	}
	t.updateJump(p, before)
	t.fibChanged(p)
	return true
}

// firstLink returns the root's link on p's path (zero if p ends in the
// root).
func (t *trie) firstLink(p netip.Prefix) link {
	if p.Bits() <= 8 {
		return link{}
	}
	if l := t.root.linkAt(int(octets(p.Addr(), t.off)[0])); l != nil {
		return *l
	}
	return link{}
}

// updateJump brings jump up to date after p was set or removed; before is
// what firstLink returned for p then.
func (t *trie) updateJump(p netip.Prefix, before link) {
	if t.jump == nil {
		if t.size >= t.jumpMin {
			t.jump = make([]link, 1<<16)
			for o0 := range 256 {
				t.refreshJump(o0, 0, 256)
			}
		}
		return
	}
	rootChanged := t.firstLink(p) != before
	if p.Bits() <= 16 && !rootChanged {
		return // only prefix slots of the root or a depth-1 node changed
	}
	key := octets(p.Addr(), t.off)
	if rootChanged {
		t.refreshJump(int(key[0]), 0, 256) // the depth-1 node came or went
	} else {
		t.refreshJump(int(key[0]), int(key[1]), int(key[1])+1)
	}
}

// refreshJump recomputes the jump entries of octets o0 and o1 in [from, to).
func (t *trie) refreshJump(o0, from, to int) {
	var d1 *node
	if l := t.root.linkAt(o0); l != nil {
		d1 = l.node
	}
	for o1 := from; o1 < to; o1++ {
		var j link
		if d1 != nil {
			if l := d1.linkAt(o1); l != nil {
				j = *l
			}
		}
		t.jump[o0<<8|o1] = j
	}
}

// insert is set without the jump table.
func (t *trie) insert(v *entry) {
	p := v.Dest
	key := octets(p.Addr(), t.off)
	depth, idx := position(key, p.Bits())
	n := &t.root
	for d := range depth {
		o := int(key[d])
		l := n.linkAt(o)
		if l == nil {
			n.addLink(o, link{leaf: v})
			t.size++
			return
		}
		if l.leaf != nil {
			if l.leaf.Dest == p {
				l.leaf = v
				return
			}
			// Two prefixes now share this subtree: it needs a node.
			c := &node{}
			c.place(d+1, t.off, l.leaf)
			*l = link{node: c}
		}
		n = l.node
	}
	if n.setPrefix(idx, v) {
		t.size++
	}
}

// delete is remove without the jump table.
func (t *trie) delete(p netip.Prefix) bool {
	key := octets(p.Addr(), t.off)
	depth, idx := position(key, p.Bits())
	var path [16]*node
	n := &t.root
	for d := range depth {
		path[d] = n
		o := int(key[d])
		l := n.linkAt(o)
		if l == nil {
			return false
		}
		if l.leaf != nil {
			if l.leaf.Dest != p {
				return false
			}
			n.removeLink(o)
			t.size--
			t.compact(&path, key, d)
			return true
		}
		n = l.node
	}
	if !hasBit(n.prefixBits[:], idx) {
		return false
	}
	n.prefixes = deleteAt(n.prefixes, bitRank(n.prefixBits[:], idx))
	n.prefixBits[idx>>6] &^= 1 << (idx & 63)
	t.size--
	path[depth] = n
	t.compact(&path, key, depth)
	return true
}

// compact restores the canonical shape on the path from path[depth] up
// after a removal below it.
func (t *trie) compact(path *[16]*node, key []byte, depth int) {
	for d := depth; d > 0; d-- {
		n, parent, o := path[d], path[d-1], int(key[d-1])
		var only *entry
		switch {
		case len(n.prefixes) == 0 && len(n.children) == 0:
			parent.removeLink(o)
			continue
		case len(n.prefixes) == 1 && len(n.children) == 0:
			only = n.prefixes[0]
		case len(n.prefixes) == 0 && len(n.children) == 1 && n.children[0].leaf != nil:
			only = n.children[0].leaf
		default:
			return
		}
		*parent.linkAt(o) = link{leaf: only}
	}
}

// lookup visits the values of the prefixes covering a, longest first, and
// returns the first that accept takes (nil accepts any). accept must not
// change the trie.
func (t *trie) lookup(a netip.Addr, accept func(*entry) bool) (*entry, bool) {
	key := octets(a, t.off)
	// path holds the nodes walked through, by depth. Starting from the
	// jump table leaves path[0] and path[1] nil until backtracking needs
	// them.
	var path [16]*node
	var l *link
	depth := 0
	if t.jump != nil {
		if j := &t.jump[int(key[0])<<8|int(key[1])]; j.node != nil || j.leaf != nil {
			l, depth = j, 1
		}
	}
	if l == nil {
		path[0] = &t.root
		l = t.root.linkAt(int(key[0]))
	}
	for l != nil {
		if l.leaf != nil {
			// Longer than anything on the path above.
			if l.leaf.Dest.Contains(a) && (accept == nil || accept(l.leaf)) {
				return l.leaf, true
			}
			break
		}
		depth++
		path[depth] = l.node
		l = l.node.linkAt(int(key[depth]))
	}
	for d := depth; d >= 0; d-- {
		n := path[d]
		if n == nil { // skipped by the jump: then both are nodes
			path[0] = &t.root
			path[1] = t.root.linkAt(int(key[0])).node
			n = path[d]
		}
		if len(n.prefixes) == 0 {
			continue
		}
		o := int(key[d])
		anc := &ancestors[o]
		// The ancestors of octet o lie in four words only: one per
		// relative length 8, 7 and 6, and word 0 for lengths 0-5.
		for _, w := range [4]int{4 + o>>6, 2 + o>>7, 1, 0} {
			m := n.prefixBits[w] & anc[w]
			for m != 0 {
				hi := 63 - bits.LeadingZeros64(m)
				m &^= 1 << hi
				val := n.prefixes[bitRank(n.prefixBits[:], w<<6|hi)]
				if accept == nil || accept(val) {
					return val, true
				}
			}
		}
	}
	return nil, false
}

func insertAt[T any](s []T, i int, v T) []T {
	var zero T
	s = append(s, zero)
	copy(s[i+1:], s[i:])
	s[i] = v
	return s
}

func deleteAt[T any](s []T, i int) []T {
	var zero T
	copy(s[i:], s[i+1:])
	s[len(s)-1] = zero // drop the reference for the collector
	return s[:len(s)-1]
}
