package route

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// refLPM is the obvious longest-prefix match the trie must agree with: a
// map of prefixes, probed at every length from the longest down.
type refLPM map[netip.Prefix]int

// covering returns the values of the prefixes covering a, longest first.
func (r refLPM) covering(a netip.Addr) []int {
	var out []int
	for l := a.BitLen(); l >= 0; l-- {
		p, _ := a.Prefix(l)
		if v, ok := r[p]; ok {
			out = append(out, v)
		}
	}
	return out
}

// lpmChecker applies the same operations to a trie and the reference and
// fails the test at the first disagreement.
// Each stored entry carries a serial number in refs, to tell apart the
// entries set for one prefix over time.
type lpmChecker struct {
	t     *testing.T
	tries [2]*trie
	ref   refLPM
	next  int
}

func newLPMChecker(t *testing.T, jumpMin, fibMin int) *lpmChecker {
	c := &lpmChecker{t: t, tries: [2]*trie{newTrie(false), newTrie(true)}, ref: refLPM{}}
	for _, tr := range c.tries {
		tr.jumpMin, tr.fibMin = jumpMin, fibMin
	}
	return c
}

// serialFlags gives the entry of serial n attributes that only some
// other entries share, so that the fib's interning is exercised.
func serialFlags(n int) Flags { return Flags(n % 3) }

func (c *lpmChecker) set(p netip.Prefix) {
	c.next++
	c.tries[famIdx(p.Addr())].set(&entry{IRE: IRE{Dest: p, Flags: serialFlags(c.next)}, refs: c.next})
	c.ref[p] = c.next
}

func (c *lpmChecker) remove(p netip.Prefix) {
	_, want := c.ref[p]
	if got := c.tries[famIdx(p.Addr())].remove(p); got != want {
		c.t.Fatalf("remove %s: present %v, want %v", p, got, want)
	}
	delete(c.ref, p)
}

func (c *lpmChecker) lookup(a netip.Addr) {
	tr := c.tries[famIdx(a)]
	want := c.ref.covering(a)
	// Refusing every candidate makes lookup show its whole visiting order.
	var visited []int
	if _, ok := tr.lookup(a, func(e *entry) bool { visited = append(visited, e.refs); return false }); ok {
		c.t.Fatalf("lookup %s: matched although every candidate was refused", a)
	}
	if !slices.Equal(visited, want) {
		c.t.Fatalf("lookup %s visited %v, want %v (longest first)", a, visited, want)
	}
	got, ok := tr.lookup(a, nil)
	if ok != (len(want) > 0) || ok && got.refs != want[0] {
		c.t.Fatalf("lookup %s: %+v %v, want %v", a, got, ok, want)
	}
	if tr.fibUsable() {
		ans := tr.fib.lookup(a)
		if ans.ok() != ok {
			c.t.Fatalf("fib lookup %s: found %v, the trie %v", a, ans.ok(), ok)
		}
		if ire := tr.fib.ire(a, ans); ok && (ire.Dest != got.Dest || ire.Flags != got.Flags) {
			c.t.Fatalf("fib lookup %s: %s flags %d, the trie %s flags %d", a, ire.Dest, ire.Flags, got.Dest, got.Flags)
		}
	}
}

// check compares the whole contents, that removals left the canonical
// shape (no empty node, no node a single leaf could stand for), and that
// the jump table, if any, agrees with a walk.
func (c *lpmChecker) check() {
	n := 0
	for _, tr := range c.tries {
		n += tr.size
		if tr.jump != nil {
			want := make([]link, len(tr.jump))
			for o0 := range 256 {
				if l := tr.root.linkAt(o0); l != nil && l.node != nil {
					for o1 := range 256 {
						if l1 := l.node.linkAt(o1); l1 != nil {
							want[o0<<8|o1] = *l1
						}
					}
				}
			}
			for i := range want {
				if want[i] != tr.jump[i] {
					c.t.Fatalf("jump[%d.%d] is %+v, a walk finds %+v", i>>8, i&255, tr.jump[i], want[i])
				}
			}
		}
		if tr.fib != nil {
			// Patched change by change, the fib must equal one built anew.
			patched := tr.fib
			tr.buildFib()
			if got, want := dumpFib(patched), dumpFib(tr.fib); !slices.Equal(got, want) {
				c.t.Fatalf("patched fib differs from a rebuilt one:\n%v\nwant\n%v", got, want)
			}
			tr.fib = patched
		}
		for _, l := range tr.root.children {
			if bad := nonCanonical(l); bad != nil {
				c.t.Fatalf("node that should have been pruned or made a leaf: %+v", bad)
			}
		}
	}
	if n != len(c.ref) {
		c.t.Fatalf("trie holds %d prefixes, reference %d", n, len(c.ref))
	}
	for p, want := range c.ref {
		if got, ok := c.tries[famIdx(p.Addr())].get(p); !ok || got.refs != want || got.Dest != p {
			c.t.Fatalf("get %s: %+v %v, want serial %d", p, got, ok, want)
		}
	}
}

// fibLine is one interval (or whole slot) of a fib with its answer
// resolved, so that fibs that interned in another order compare equal.
type fibLine struct {
	level, slot uint32
	start       u128
	attrs       ireAttrs
	bits        uint8
	ok          bool
}

func dumpFib(f *fib) []fibLine {
	var out []fibLine
	add := func(lv int, n uint32, r slotRef) {
		base := u128Of(f.slotPrefix(&f.levels[lv], n).Addr())
		for _, iv := range f.intervals(&f.levels[lv], base, r) {
			l := fibLine{level: uint32(lv), slot: n, start: iv.start, bits: uint8(iv.val.bits()), ok: iv.val.ok()}
			if iv.val.ok() {
				l.attrs = f.attrs[iv.val.attr()]
			}
			out = append(out, l)
		}
	}
	for i, lv := range f.levels {
		for n, r := range lv.dir {
			add(i, uint32(n), r)
		}
		if lv.sparse != nil {
			var keys []uint32
			lv.sparse.each(func(n uint32, _ *slotRef) { keys = append(keys, n) })
			slices.Sort(keys)
			for _, n := range keys {
				r, _ := lv.sparse.get(n)
				add(i, n, r)
			}
		}
	}
	return out
}

func nonCanonical(l link) *node {
	n := l.node
	if n == nil {
		return nil
	}
	if len(n.children) == 0 && len(n.prefixes) <= 1 ||
		len(n.prefixes) == 0 && len(n.children) == 1 && n.children[0].leaf != nil {
		return n
	}
	for _, ch := range n.children {
		if bad := nonCanonical(ch); bad != nil {
			return bad
		}
	}
	return nil
}

// opReader turns fuzz bytes into operations. Addresses are often derived
// from the previous one with one octet changed, so that prefixes share
// paths and nest, which random addresses would rarely do.
type opReader struct {
	data []byte
	prev [2]netip.Addr
}

func (r *opReader) byte() (byte, bool) {
	if len(r.data) == 0 {
		return 0, false
	}
	b := r.data[0]
	r.data = r.data[1:]
	return b, true
}

func (r *opReader) addr(v6, derive bool) (netip.Addr, bool) {
	fi, n := 0, 4
	if v6 {
		fi, n = 1, 16
	}
	var raw [16]byte
	if derive && r.prev[fi].IsValid() {
		copy(raw[:], octets(r.prev[fi], 16-n))
		pos, ok1 := r.byte()
		val, ok2 := r.byte()
		if !ok1 || !ok2 {
			return netip.Addr{}, false
		}
		raw[int(pos)%n] = val
	} else {
		if len(r.data) < n {
			return netip.Addr{}, false
		}
		copy(raw[:], r.data[:n])
		r.data = r.data[n:]
	}
	a := netip.AddrFrom16(raw)
	if !v6 {
		a = netip.AddrFrom4([4]byte(raw[:4]))
	}
	r.prev[fi] = a
	return a, true
}

// runOps interprets data: each operation is a control byte (bits 0-1 the
// operation, bit 2 IPv6, bit 3 derive the address from the previous one),
// an address, and for set/remove a length byte. It runs them on tries
// without and with a jump table and a fib.
func runOps(t *testing.T, data []byte) {
	runOpsWith(t, data, defaultJumpMin, defaultFibMin)
	runOpsWith(t, data, 1, 1)
}

func runOpsWith(t *testing.T, data []byte, jumpMin, fibMin int) {
	c := newLPMChecker(t, jumpMin, fibMin)
	r := &opReader{data: data}
	for {
		ctl, ok := r.byte()
		if !ok {
			break
		}
		a, ok := r.addr(ctl&4 != 0, ctl&8 != 0)
		if !ok {
			break
		}
		if op := ctl & 3; op >= 2 {
			c.lookup(a)
			continue
		}
		lb, ok := r.byte()
		if !ok {
			break
		}
		p, _ := a.Prefix(int(lb) % (a.BitLen() + 1))
		if ctl&3 == 0 {
			c.set(p)
		} else {
			c.remove(p)
		}
	}
	c.check()
}

func FuzzTrieMatchesReference(f *testing.F) {
	f.Add([]byte{})
	// 10.0.0.0/8, 10.1.0.0/16, lookup 10.1.2.3, remove /16, lookup again.
	f.Add([]byte{0, 10, 0, 0, 0, 8, 8, 1, 1, 16, 10, 2, 2, 10, 3, 3, 9, 3, 3, 16, 10, 0, 0})
	f.Add([]byte{4, 0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 64, 12, 15, 7, 128, 14, 15, 9, 6, 0, 0, 0, 0})
	f.Add([]byte{0, 1, 2, 3, 4, 0, 0, 9, 9, 32, 10, 0, 200, 8, 1, 9, 9, 32, 2, 1, 2, 3, 4})
	f.Fuzz(runOps)
}

// TestTrieRandomOps drives the differential check with many random
// operations on clustered addresses (a fixed seed, so a failure repeats).
func TestTrieRandomOps(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		var data []byte
		for range 3000 {
			ctl := byte(rng.IntN(4)) | byte(rng.IntN(2))<<2
			if rng.IntN(4) != 0 {
				ctl |= 8
			}
			data = append(data, ctl)
			if ctl&8 != 0 {
				val := byte(rng.IntN(4)) // few values: shared paths
				if rng.IntN(2) == 0 {
					val = byte(rng.Uint32())
				}
				data = append(data, byte(rng.IntN(16)), val)
			} else {
				var raw [16]byte
				binary.BigEndian.PutUint64(raw[:], rng.Uint64()&0xff0f00ff_00ff00ff)
				data = append(data, raw[:4+int(ctl&4)*3]...)
			}
			if ctl&3 < 2 {
				data = append(data, byte(rng.IntN(256)))
			}
		}
		t.Run(string(rune('a'+round)), func(t *testing.T) { runOps(t, data) })
	}
}
