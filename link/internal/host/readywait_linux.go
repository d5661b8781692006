package host

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrStopped is what ReadyWaiter.Wait returns once Stop was called.
var ErrStopped = errors.New("ready waiter stopped")

// ReadyWaiter runs a receive goroutine's reads on a descriptor through
// Go's network poller instead of poll(2): the goroutine parks in the poller
// when there is nothing to read.
//
// Why: a goroutine parked in the poller gives its thread and its P (its
// slot in Go's scheduler) to other goroutines at once, so with GOMAXPROCS=1
// what a frame woke (gVisor's TCP processor, a relay) runs next on the same
// thread, with no cross-thread hand-off. A thread blocked in poll(2) keeps
// its P until sysmon takes it back.
//
// The waiter polls a duplicate of the descriptor, so closing it never
// closes the caller's. The duplicate shares the open file: the TAP device
// or socket lives until both are closed.
//
// Locking: Wait belongs to one goroutine; Stop may be called from any, at
// any time, also concurrently with Wait; Rearm and Close only while no
// Wait runs.
type ReadyWaiter struct {
	f  *os.File
	rc syscall.RawConn
	// try is the current Wait's argument, called through call, a method
	// value made once so that waiting allocates nothing.
	try  func() bool
	call func(uintptr) bool
}

// NewReadyWaiter returns a waiter for fd, a non-blocking descriptor that
// supports epoll (a TAP queue, a socket).
func NewReadyWaiter(fd int) (*ReadyWaiter, error) {
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("dup", err)
	}
	// O_NONBLOCK is a flag of the open file, so the duplicate has it too,
	// which makes os.NewFile register it with the poller.
	f := os.NewFile(uintptr(dup), fmt.Sprintf("fd %d", fd))
	rc, err := f.SyscallConn()
	if err == nil {
		// Also the test that the poller took it: a deadline works only then.
		err = f.SetReadDeadline(time.Time{})
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("fd %d: not pollable: %w", fd, err)
	}
	w := &ReadyWaiter{f: f, rc: rc}
	w.call = w.callTry
	return w, nil
}

func (w *ReadyWaiter) callTry(uintptr) bool { return w.try() }

// Wait calls try until it returns true, parking in the poller each time it
// returns false (try found nothing to read: EAGAIN). try must make the read
// attempt itself: the poller forgets readiness when Wait starts, so data
// that arrived before try's first call is found by that call, and data
// that arrives after it wakes the park. Wait returns nil once try returned
// true, ErrStopped once Stop was called, or the poller's error.
func (w *ReadyWaiter) Wait(try func() bool) error {
	w.try = try
	err := w.rc.Read(w.call)
	w.try = nil
	switch {
	case err == nil:
		return nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		return ErrStopped
	default:
		return err
	}
}

// Stop makes the current and every later Wait return ErrStopped (a try
// under way finishes first).
func (w *ReadyWaiter) Stop() {
	w.f.SetReadDeadline(time.Unix(1, 0))
}

// Rearm undoes Stop, for a receive goroutine started again.
func (w *ReadyWaiter) Rearm() {
	w.f.SetReadDeadline(time.Time{})
}

// Close releases the duplicate descriptor.
func (w *ReadyWaiter) Close() error { return w.f.Close() }
