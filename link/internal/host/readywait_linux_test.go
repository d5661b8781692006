package host

import (
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func socketpair(t *testing.T) (a, b int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return fds[0], fds[1]
}

// reader is a try function that reads one message from fd into got.
type reader struct {
	fd    int
	got   chan string
	tries int
}

func (r *reader) try() bool {
	r.tries++
	var buf [64]byte
	n, err := unix.Read(r.fd, buf[:])
	if err == unix.EAGAIN {
		return false
	}
	if err != nil {
		r.got <- "error: " + err.Error()
		return true
	}
	r.got <- string(buf[:n])
	return true
}

// waitAsync runs w.Wait(try) on a goroutine and returns its result channel.
func waitAsync(w *ReadyWaiter, try func() bool) <-chan error {
	c := make(chan error, 1)
	go func() { c <- w.Wait(try) }()
	return c
}

func expectBlocked(t *testing.T, c <-chan error) {
	t.Helper()
	select {
	case err := <-c:
		t.Fatalf("Wait returned %v with nothing to read", err)
	case <-time.After(50 * time.Millisecond):
	}
}

func expectResult(t *testing.T, c <-chan error, want error) {
	t.Helper()
	select {
	case err := <-c:
		if !errors.Is(err, want) && err != want {
			t.Fatalf("Wait: %v, want %v", err, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return")
	}
}

func newWaiter(t *testing.T, fd int) *ReadyWaiter {
	t.Helper()
	w, err := NewReadyWaiter(fd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func TestReadyWaiterWakesOnData(t *testing.T) {
	a, b := socketpair(t)
	w := newWaiter(t, a)
	r := &reader{fd: a, got: make(chan string, 1)}
	for i := range 3 {
		c := waitAsync(w, r.try)
		expectBlocked(t, c)
		if _, err := unix.Write(b, []byte("frame")); err != nil {
			t.Fatal(err)
		}
		expectResult(t, c, nil)
		if got := <-r.got; got != "frame" {
			t.Fatalf("round %d: read %q", i, got)
		}
	}
}

// TestReadyWaiterDataAlreadyThere: data that arrived before Wait (after
// the caller's last EAGAIN) is found at once, not left for the next edge.
func TestReadyWaiterDataAlreadyThere(t *testing.T) {
	a, b := socketpair(t)
	w := newWaiter(t, a)
	r := &reader{fd: a, got: make(chan string, 1)}
	c := waitAsync(w, r.try)
	expectBlocked(t, c)
	unix.Write(b, []byte("one"))
	expectResult(t, c, nil)
	<-r.got
	// The poller saw the edge for "two" while nobody waited.
	unix.Write(b, []byte("two"))
	time.Sleep(10 * time.Millisecond)
	r.tries = 0
	expectResult(t, waitAsync(w, r.try), nil)
	if got := <-r.got; got != "two" || r.tries != 1 {
		t.Fatalf("read %q after %d tries, want \"two\" at the first", got, r.tries)
	}
}

func TestReadyWaiterStopAndRearm(t *testing.T) {
	a, b := socketpair(t)
	w := newWaiter(t, a)
	r := &reader{fd: a, got: make(chan string, 1)}
	c := waitAsync(w, r.try)
	expectBlocked(t, c)
	w.Stop()
	expectResult(t, c, ErrStopped)
	// Stopped stays stopped, even with data waiting.
	unix.Write(b, []byte("x"))
	expectResult(t, waitAsync(w, r.try), ErrStopped)

	w.Rearm()
	expectResult(t, waitAsync(w, r.try), nil) // the byte is still there
	if got := <-r.got; got != "x" {
		t.Fatalf("read %q after Rearm", got)
	}

	// Closing the waiter leaves the caller's descriptor open.
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Write(b, []byte("y")); err != nil {
		t.Fatal(err)
	}
	var buf [4]byte
	if n, err := unix.Read(a, buf[:]); err != nil || string(buf[:n]) != "y" {
		t.Fatalf("read on the caller's descriptor after Close: %q, %v", buf[:n], err)
	}
}

func TestReadyWaiterRefusesUnpollable(t *testing.T) {
	f, err := unix.Open(t.TempDir(), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(f)
	if w, err := NewReadyWaiter(f); err == nil {
		w.Close()
		t.Fatal("a directory descriptor was accepted")
	}
}
