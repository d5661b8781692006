// Package widen lets the loop scheduling mode use more CPUs while several
// flows move bulk data, and only then.
//
// Why: the loop (GOMAXPROCS=1) runs a frame, gVisor's processing of it
// and the relay it wakes on one thread with no cross-thread wakeup, which
// is best for a single stream and for request/response. But that thread
// then does every copy, so four bulk streams share one CPU while the
// others sit partly idle. Measured on 2 CPUs (docs/status.md, session 5): four
// iperf3 streams ran 14–36 % faster with GOMAXPROCS=2, one stream 10–25 %
// slower (its path is sequential: a second P only adds hand-offs). So a
// Widener watches the flows' byte counts and raises GOMAXPROCS while at
// least two of them are busy, and lowers it once they have been quiet
// for a few ticks.
package widen

import (
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of a Widener.
const (
	// Tick is how often the monitor looks at the flows while at least
	// two exist (and while wide).
	Tick = 100 * time.Millisecond
	// BusyBytes is what a flow moves within a tick to count as busy
	// (about 84 Mbit/s): interactive and short flows never reach it.
	BusyBytes = 1 << 20
	// QuietTicks is how many ticks in a row with fewer than two busy
	// flows narrow the process again: a stream's brief stall (a lost
	// segment, a full window) does not flap GOMAXPROCS, each change of
	// which stops the world.
	QuietTicks = 3
)

// Widener switches the process between narrow and wide Ps.
//
// Locking: every method may be called from any goroutine; mu guards the
// flow set and the monitor's state. Flow.Count is a lone atomic add: it
// is on the data path.
type Widener struct {
	narrow, wide int
	setProcs     func(int) int // runtime.GOMAXPROCS outside tests
	tick         time.Duration

	mu      sync.Mutex
	flows   map[*Flow]struct{}
	running bool // a monitor goroutine exists
	isWide  bool
	quiet   int  // ticks in a row with fewer than two busy flows
	closed  bool // no monitor may start
	done    chan struct{}
	exited  sync.WaitGroup
}

// New returns a Widener that runs the process on narrow Ps and on wide
// while two or more flows are busy, setting them with setProcs
// (runtime.GOMAXPROCS). It starts nothing until two flows exist.
func New(narrow, wide int, setProcs func(int) int) *Widener {
	return &Widener{
		narrow:   narrow,
		wide:     wide,
		setProcs: setProcs,
		tick:     Tick,
		flows:    make(map[*Flow]struct{}),
		done:     make(chan struct{}),
	}
}

// Flow is one relayed connection's byte count.
type Flow struct {
	w     *Widener
	bytes atomic.Uint64
	seen  uint64 // bytes at the monitor's last tick; guarded by w.mu
}

// Add registers a new flow; Done must end it. A nil Widener returns a nil
// Flow, whose methods do nothing.
func (w *Widener) Add() *Flow {
	if w == nil {
		return nil
	}
	f := &Flow{w: w}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.flows[f] = struct{}{}
	if len(w.flows) >= 2 && !w.running && !w.closed {
		w.running = true
		w.exited.Add(1)
		go w.monitor()
	}
	return f
}

// Count adds n bytes moved by the flow.
func (f *Flow) Count(n int) {
	if f != nil && n > 0 {
		f.bytes.Add(uint64(n))
	}
}

// Done unregisters the flow.
func (f *Flow) Done() {
	if f == nil {
		return
	}
	f.w.mu.Lock()
	delete(f.w.flows, f)
	f.w.mu.Unlock()
}

// Wide reports whether the process runs on the wide Ps now.
func (w *Widener) Wide() bool {
	if w == nil {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.isWide
}

// Close stops the monitor and leaves the process narrow. Flows may still
// count and end; nothing widens again.
func (w *Widener) Close() {
	if w == nil {
		return
	}
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.done)
	}
	w.mu.Unlock()
	w.exited.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.isWide {
		w.isWide = false
		w.setProcs(w.narrow)
	}
}

func (w *Widener) monitor() {
	defer w.exited.Done()
	t := time.NewTicker(w.tick)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-w.done:
			return
		}
		if !w.step() {
			return
		}
	}
}

// step is one tick: it counts the busy flows, widens or narrows, and
// reports whether the monitor is still needed (false: it has marked
// itself gone, and the next Add of a second flow starts another).
func (w *Widener) step() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	busy := 0
	for f := range w.flows {
		b := f.bytes.Load()
		if b-f.seen >= BusyBytes {
			busy++
		}
		f.seen = b
	}
	switch {
	case busy >= 2:
		w.quiet = 0
		if !w.isWide {
			w.isWide = true
			w.setProcs(w.wide)
		}
	case w.isWide:
		if w.quiet++; w.quiet >= QuietTicks {
			w.quiet = 0
			w.isWide = false
			w.setProcs(w.narrow)
		}
	}
	if !w.isWide && len(w.flows) < 2 {
		w.running = false
		return false
	}
	return true
}

var defaultWidener atomic.Pointer[Widener]

// SetDefault makes w (nil: none) the process's Widener, which Default
// returns: GOMAXPROCS is process-wide, and so is what sets it.
func SetDefault(w *Widener) { defaultWidener.Store(w) }

// Default returns the process's Widener, nil if there is none (Add on nil
// returns flows that do nothing).
func Default() *Widener { return defaultWidener.Load() }
