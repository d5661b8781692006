package busypoll

import (
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// waitRounds waits until the poller has finished want rounds.
func waitRounds(t *testing.T, p *Poller, want uint64) (rounds, hits uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if rounds, hits = p.Stats(); rounds >= want {
			return rounds, hits
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%d rounds after 5s, want %d", rounds, want)
	return
}

func newPipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

// watchedPoller starts a poller with budget, closed at cleanup, watching
// the read end of fresh pipe; it returns the pipe's write end.
func watchedPoller(t *testing.T, budget time.Duration) (*Poller, *os.File, *os.File) {
	t.Helper()
	p, err := New(budget)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	r, w := newPipe(t)
	if err := p.Watch(int(r.Fd())); err != nil {
		t.Fatal(err)
	}
	return p, r, w
}

func TestNewRefusesNoBudget(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Microsecond} {
		if p, err := New(d); err == nil {
			p.Close()
			t.Errorf("New(%v) accepted", d)
		}
	}
}

// A round with nothing readable runs out of budget; one with a readable
// watched descriptor ends on it, however long the budget.
func TestRoundEndsOnReadableOrBudget(t *testing.T) {
	p, r, w := watchedPoller(t, 2*time.Millisecond)
	if err := p.Watch(int(r.Fd())); err != nil {
		t.Errorf("watching twice: %v", err)
	}

	start := time.Now()
	p.Kick()
	if rounds, hits := waitRounds(t, p, 1); rounds != 1 || hits != 0 {
		t.Fatalf("idle round: rounds %d hits %d, want 1, 0", rounds, hits)
	}
	if took := time.Since(start); took < 2*time.Millisecond {
		t.Errorf("idle round ended after %v, before its 2ms budget", took)
	}

	if _, err := w.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	long, err := New(time.Hour / 4) // only a readable descriptor ends its rounds in a test's time
	if err != nil {
		t.Fatal(err)
	}
	defer long.Close()
	rc, err := r.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	long.WatchConn(rc) // as the relays watch their host sockets
	long.Kick()
	if rounds, hits := waitRounds(t, long, 1); rounds != 1 || hits != 1 {
		t.Fatalf("readable round: rounds %d hits %d, want 1, 1", rounds, hits)
	}
}

// The descriptor that ends a round may become readable during it: the
// spinner notices without a wakeup of its own.
func TestRoundNoticesLateData(t *testing.T) {
	p, _, w := watchedPoller(t, time.Hour/4)
	p.Kick()
	time.Sleep(20 * time.Millisecond) // the round is spinning now
	if rounds, _ := p.Stats(); rounds != 0 {
		t.Fatalf("%d rounds finished before the write, want 0", rounds)
	}
	w.Write([]byte{1})
	deadline := time.Now().Add(5 * time.Second)
	for _, hits := p.Stats(); hits == 0; _, hits = p.Stats() {
		if time.Now().After(deadline) {
			t.Fatal("the round did not end on the write")
		}
		runtime.Gosched()
	}
}

// Unwatch takes a descriptor out of the set: it no longer ends rounds.
func TestUnwatch(t *testing.T) {
	p, err := New(time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	r, w := newPipe(t)
	w.Write([]byte{1})
	p.Watch(int(r.Fd()))
	p.Unwatch(int(r.Fd()))
	p.Kick()
	if rounds, hits := waitRounds(t, p, 1); hits != 0 {
		t.Errorf("rounds %d hits %d after Unwatch of a readable pipe, want no hits", rounds, hits)
	}
}

// Close stops the spinner and releases the epoll set; a nil poller does
// nothing.
func TestCloseAndNil(t *testing.T) {
	p, err := New(time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	epfd := p.epfd
	p.Kick()
	p.Close()
	p.Close()
	if _, err := unix.FcntlInt(uintptr(epfd), unix.F_GETFD, 0); err == nil {
		// The number may have been reused by now; only an epoll set
		// still answering to it is ours.
		if _, err := unix.EpollWait(epfd, make([]unix.EpollEvent, 1), 0); err == nil {
			t.Errorf("epoll descriptor %d still open after Close", epfd)
		}
	}
	p.Kick() // after Close: no panic, no round
	if err := p.Watch(0); err != ErrClosed {
		t.Errorf("Watch after Close: %v, want ErrClosed (the epoll number may be another file's by now)", err)
	}
	p.Unwatch(0)
	r, _ := newPipe(t)
	rc, err := r.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	p.WatchConn(rc) // after Close: nothing, no panic
	var none *Poller
	if none.Budget() != 0 {
		t.Error("a nil poller has a budget")
	}
	none.Kick()
	none.Unwatch(0)
	none.WatchConn(rc)
	if err := none.Watch(0); err != nil {
		t.Errorf("nil Watch: %v", err)
	}
	SetDefault(nil)
	Default().Kick()
}
