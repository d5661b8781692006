// Package busypoll keeps the daemon's scheduler thread awake for a short
// while after it has done work, so that the next frame or reply it serves
// is picked up without a wakeup.
//
// Why: on a virtual machine without guest halt-polling an idle CPU sleeps
// in HLT, and waking a thread there costs tens of microseconds — more
// than the stack's own work on a request/response. The kernel's remedies
// (cpuidle-haltpoll, SO_BUSY_POLL) do not reach a process reading a TAP
// and loopback sockets, so the daemon polls itself, the way halt-polling
// does: after activity a spinner goroutine checks an epoll set of the
// watched descriptors without blocking until one is readable or the
// budget has passed, then parks so that Go's poller delivers the event.
// With no activity nothing spins.
//
// It is meant for the loop scheduling mode (GOMAXPROCS=1): the spinner
// holds the only P while it spins and parks the moment anything watched
// is readable, so the scheduler reaches its poller at once.
package busypoll

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Poller spins on a set of descriptors after each Kick.
//
// Locking: every method may be called from any goroutine. The set is the
// kernel's (epoll_ctl may run during epoll_wait); mu keeps Watch and
// Unwatch off the epoll descriptor once Close has released it (its number
// may by then name another file). The counters are atomic.
type Poller struct {
	epfd    int
	budget  time.Duration
	kick    chan struct{} // one pending round at most
	done    chan struct{} // closed by Close
	closing sync.Once
	exited  chan struct{} // closed when the spinner has returned

	mu     sync.RWMutex
	closed bool // epfd released; guarded by mu

	rounds atomic.Uint64 // spin rounds finished
	hits   atomic.Uint64 // rounds ended by a readable descriptor
}

// New starts a poller that spins for up to budget after each Kick.
func New(budget time.Duration) (*Poller, error) {
	if budget <= 0 {
		return nil, errors.New("busypoll: budget must be positive")
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	p := &Poller{
		epfd:   epfd,
		budget: budget,
		kick:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	go p.spinner()
	return p, nil
}

// Budget is how long a round spins at most (0 for a nil Poller: none).
func (p *Poller) Budget() time.Duration {
	if p == nil {
		return 0
	}
	return p.budget
}

// Watch adds fd to the set a round ends on (readable, level-triggered).
// A descriptor leaves the set by Unwatch or by itself when its last
// reference is closed. Watching a watched descriptor is not an error.
// A nil Poller watches nothing.
func (p *Poller) Watch(fd int) error {
	if p == nil {
		return nil
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil && err != unix.EEXIST {
		return err
	}
	return nil
}

// WatchConn watches c's descriptor, as Watch. A descriptor it cannot
// watch (no epoll watches left) is served all the same, only not polled
// for, so the error is not reported.
func (p *Poller) WatchConn(c syscall.RawConn) {
	if p == nil {
		return
	}
	c.Control(func(fd uintptr) { p.Watch(int(fd)) })
}

// Unwatch removes fd from the set (before it is closed while another
// reference keeps its file open).
func (p *Poller) Unwatch(fd int) {
	if p == nil {
		return
	}
	p.mu.RLock()
	defer p.mu.RUnlock()
	if !p.closed {
		unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	}
}

// Kick asks for a spin round once the goroutines that are ready now have
// run. It never blocks; kicks during a round do not queue more than one.
func (p *Poller) Kick() {
	if p == nil {
		return
	}
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Stats reports the rounds finished and how many of them a readable
// descriptor ended (the rest ran out of budget).
func (p *Poller) Stats() (rounds, hits uint64) {
	return p.rounds.Load(), p.hits.Load()
}

// ErrClosed is Watch's error after Close.
var ErrClosed = errors.New("busypoll: poller closed")

// Close stops the spinner and releases the set; a round under way ends
// first. Later calls do nothing.
func (p *Poller) Close() {
	p.closing.Do(func() {
		close(p.done)
		<-p.exited
		p.mu.Lock()
		p.closed = true
		unix.Close(p.epfd)
		p.mu.Unlock()
	})
}

func (p *Poller) spinner() {
	defer close(p.exited)
	for {
		select {
		case <-p.kick:
		case <-p.done:
			return
		}
		// Behind the goroutines the activity readied (the relay the frame
		// woke, the processor with its segment): Gosched puts the spinner
		// on the global run queue, which the only P reaches after its own.
		runtime.Gosched()
		p.spin()
	}
}

// spin polls the set until something is readable or the budget is used.
func (p *Poller) spin() {
	defer p.rounds.Add(1)
	var events [4]unix.EpollEvent
	deadline := time.Now().Add(p.budget)
	for i := 0; ; i++ {
		// RawSyscall: a non-blocking call must not make the scheduler hand
		// the P to another thread.
		n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(p.epfd),
			uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
		switch {
		case errno == 0 && n > 0:
			p.hits.Add(1) // before the deferred round: Stats never shows more hits than rounds
			return
		case errno != 0 && errno != unix.EINTR:
			return
		}
		// The clock every few polls: a poll costs about as much as reading
		// it, and the budget is not that exact.
		if i%8 == 7 && time.Now().After(deadline) {
			return
		}
	}
}

var defaultPoller atomic.Pointer[Poller]

// SetDefault makes p the process's poller, the one TAP readers and
// gateway relays watch their descriptors with and kick (nil: none). It is
// process-wide like the loop it serves; set it before links are attached.
func SetDefault(p *Poller) { defaultPoller.Store(p) }

// Default returns the process's poller, or nil: a nil *Poller's methods
// do nothing, so callers need not check.
func Default() *Poller { return defaultPoller.Load() }
