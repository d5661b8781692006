package widen

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// procsLog stands in for runtime.GOMAXPROCS: the test's process keeps its
// own.
type procsLog struct {
	mu  sync.Mutex
	set []int
}

func (p *procsLog) setProcs(n int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.set = append(p.set, n)
	return 0
}

func (p *procsLog) calls() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int(nil), p.set...)
}

// newStepped returns a Widener whose monitor never ticks on its own: the
// test calls step.
func newStepped(t *testing.T) (*Widener, *procsLog) {
	var log procsLog
	w := New(1, 4, log.setProcs)
	w.tick = time.Hour
	t.Cleanup(w.Close)
	return w, &log
}

func TestWidensWhileTwoFlowsAreBusy(t *testing.T) {
	w, log := newStepped(t)
	a, b, c := w.Add(), w.Add(), w.Add()

	// One busy flow and two trickles: a single stream stays narrow.
	a.Count(BusyBytes)
	b.Count(BusyBytes - 1)
	c.Count(100)
	w.step()
	if w.Wide() || len(log.calls()) != 0 {
		t.Fatalf("one busy flow widened: %v", log.calls())
	}

	// Two busy in the same tick: wide, once.
	a.Count(BusyBytes)
	b.Count(BusyBytes)
	w.step()
	a.Count(2 * BusyBytes)
	c.Count(BusyBytes)
	w.step()
	if !w.Wide() || !slices.Equal(log.calls(), []int{4}) {
		t.Fatalf("two busy flows: wide %v, GOMAXPROCS set %v (want [4]: widened once)", w.Wide(), log.calls())
	}

	// Quiet: narrow only after QuietTicks ticks in a row; a busy tick
	// between restarts the count.
	for i := 0; i < QuietTicks-1; i++ {
		w.step()
	}
	a.Count(BusyBytes)
	b.Count(BusyBytes)
	w.step()
	for i := 0; i < QuietTicks-1; i++ {
		w.step()
	}
	if !w.Wide() {
		t.Fatal("narrowed before QuietTicks quiet ticks in a row")
	}
	w.step()
	if w.Wide() || !slices.Equal(log.calls(), []int{4, 1}) {
		t.Fatalf("after %d quiet ticks: wide %v, GOMAXPROCS set %v", QuietTicks, w.Wide(), log.calls())
	}
}

func TestCloseLeavesNarrow(t *testing.T) {
	w, log := newStepped(t)
	a, b := w.Add(), w.Add()
	a.Count(BusyBytes)
	b.Count(BusyBytes)
	w.step()
	w.Close()
	if w.Wide() || !slices.Equal(log.calls(), []int{4, 1}) {
		t.Fatalf("Close while wide: wide %v, GOMAXPROCS set %v", w.Wide(), log.calls())
	}
	// Flows outlive the Widener harmlessly, and nothing widens again.
	w.Add().Count(BusyBytes)
	a.Count(BusyBytes)
	a.Done()
	b.Done()
	w.Close()
	if got := log.calls(); !slices.Equal(got, []int{4, 1}) {
		t.Fatalf("after Close: GOMAXPROCS set %v", got)
	}
}

// The monitor runs only while two flows exist or the process is wide, so
// an idle daemon has no ticker waking it.
func TestMonitorRunsOnlyWhenNeeded(t *testing.T) {
	var log procsLog
	w := New(1, 2, log.setProcs)
	w.tick = time.Millisecond
	t.Cleanup(w.Close)
	running := func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return w.running
	}
	eventually := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("timed out waiting until " + what)
			}
		}
	}

	a := w.Add()
	if running() {
		t.Fatal("a monitor for a single flow")
	}
	b := w.Add()
	if !running() {
		t.Fatal("no monitor with two flows")
	}
	// Busy until the monitor has widened.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			a.Count(BusyBytes)
			b.Count(BusyBytes)
			time.Sleep(100 * time.Microsecond)
		}
	}()
	eventually("wide", w.Wide)
	close(stop)
	<-done
	// One flow ends while wide: the monitor stays until it has narrowed,
	// then leaves.
	b.Done()
	eventually("narrow and no monitor", func() bool { return !w.Wide() && !running() })
	if got := log.calls(); !slices.Equal(got, []int{2, 1}) {
		t.Fatalf("GOMAXPROCS set %v, want [2 1]", got)
	}
	a.Done()
}

func TestNilIsInert(t *testing.T) {
	var w *Widener
	f := w.Add()
	f.Count(BusyBytes)
	f.Done()
	w.Close()
	if w.Wide() {
		t.Fatal("a nil Widener reports activity")
	}
}

// Flows come and go from many goroutines while the monitor ticks (run
// with -race); in the end the process is narrow and the monitor gone.
func TestConcurrentFlows(t *testing.T) {
	var log procsLog
	w := New(1, 2, log.setProcs)
	w.tick = 100 * time.Microsecond
	t.Cleanup(w.Close)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Go(func() {
			for i := 0; i < 200; i++ {
				f := w.Add()
				f.Count(BusyBytes)
				time.Sleep(10 * time.Microsecond)
				f.Count(BusyBytes)
				f.Done()
			}
		})
	}
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for {
		w.mu.Lock()
		settled := !w.isWide && !w.running && len(w.flows) == 0
		w.mu.Unlock()
		if settled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("still wide or monitoring 5 s after every flow ended")
		}
		time.Sleep(time.Millisecond)
	}
	// Every widening was followed by a narrowing, alternately.
	calls := log.calls()
	for i, n := range calls {
		if want := []int{2, 1}[i%2]; n != want {
			t.Fatalf("GOMAXPROCS set %v: not alternating wide, narrow", calls)
		}
	}
	if len(calls)%2 != 0 {
		t.Fatalf("GOMAXPROCS set %v: ends wide", calls)
	}
}
