package route

// slotTable holds a fib level's sparse slots by number: an open-addressing
// hash with linear probing, at most half full, so that a lookup usually
// reads one cell of 16 bytes, which holds the slot's ref. (A Go map costs
// a lookup several more dependent loads.) Guarded like the fib.
type slotTable struct {
	cells []slotCell
	n     int
	shift uint // 64 - log2(len(cells))
}

type slotCell struct {
	key  uint32
	used bool
	ref  slotRef
}

func newSlotTable() *slotTable { return &slotTable{cells: make([]slotCell, 64), shift: 64 - 6} }

// home is k's first cell (Fibonacci hashing).
func (h *slotTable) home(k uint32) int { return int((uint64(k) * 0x9E3779B97F4A7C15) >> h.shift) }

func (h *slotTable) len() int { return h.n }

// get returns slot k, if present.
func (h *slotTable) get(k uint32) (slotRef, bool) {
	mask := len(h.cells) - 1
	for i := h.home(k); ; i = (i + 1) & mask {
		c := &h.cells[i]
		if !c.used {
			return 0, false
		}
		if c.key == k {
			return c.ref, true
		}
	}
}

// at returns where slot k is held, or nil. The pointer is valid until the
// next set or del.
func (h *slotTable) at(k uint32) *slotRef {
	mask := len(h.cells) - 1
	for i := h.home(k); ; i = (i + 1) & mask {
		c := &h.cells[i]
		if !c.used {
			return nil
		}
		if c.key == k {
			return &c.ref
		}
	}
}

func (h *slotTable) set(k uint32, r slotRef) {
	if p := h.at(k); p != nil {
		*p = r
		return
	}
	if 2*(h.n+1) > len(h.cells) {
		old := h.cells
		h.cells, h.n, h.shift = make([]slotCell, 2*len(old)), 0, h.shift-1
		for _, c := range old {
			if c.used {
				h.set(c.key, c.ref)
			}
		}
	}
	mask := len(h.cells) - 1
	i := h.home(k)
	for h.cells[i].used {
		i = (i + 1) & mask
	}
	h.cells[i] = slotCell{key: k, used: true, ref: r}
	h.n++
}

// del removes slot k, moving later cells of its probe run back so that
// no lookup meets a hole before its key.
func (h *slotTable) del(k uint32) {
	mask := len(h.cells) - 1
	i := h.home(k)
	for ; h.cells[i].key != k || !h.cells[i].used; i = (i + 1) & mask {
		if !h.cells[i].used {
			return
		}
	}
	h.n--
	for j := i; ; {
		h.cells[i] = slotCell{}
		for {
			j = (j + 1) & mask
			if !h.cells[j].used {
				return
			}
			// The cell at j may fill the hole at i if i lies on its probe
			// path, from its home to j.
			if (j-h.home(h.cells[j].key))&mask >= (j-i)&mask {
				h.cells[i] = h.cells[j]
				i = j
				break
			}
		}
	}
}

// each calls f for every slot; f may change the slot's ref but not add or
// delete a slot.
func (h *slotTable) each(f func(k uint32, r *slotRef)) {
	for i := range h.cells {
		if c := &h.cells[i]; c.used {
			f(c.key, &c.ref)
		}
	}
}
