package slirp

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// CheckFD makes sure fd is an open descriptor and marks it close-on-exec,
// so that the helper and other children do not inherit it (a ready pipe
// held open by a child would never reach end of file).
func CheckFD(fd int, what string) error {
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
		return fmt.Errorf("%s %d: %w", what, fd, err)
	}
	unix.CloseOnExec(fd)
	return nil
}

// SignalReady writes "1" to fd and closes it, as slirp4netns does with
// --ready-fd once everything is up.
func SignalReady(fd int) error {
	defer unix.Close(fd)
	for {
		_, err := unix.Write(fd, []byte("1"))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("ready-fd %d: %w", fd, err)
		}
		return nil
	}
}

// HangupWatcher reports when a descriptor hangs up, as slirp4netns's
// --exit-fd: poll(2) with POLLHUP reports an event (the other end of the
// pipe closed, or the descriptor is in error).
type HangupWatcher struct {
	C <-chan struct{} // closed when fd hangs up

	wake [2]int // pipe that interrupts the poll on Stop
	done chan struct{}
	once sync.Once
}

// WatchHangup starts watching fd, which stays the caller's.
func WatchHangup(fd int) (*HangupWatcher, error) {
	w := &HangupWatcher{done: make(chan struct{})}
	if err := unix.Pipe2(w.wake[:], unix.O_CLOEXEC); err != nil {
		return nil, fmt.Errorf("pipe: %w", err)
	}
	c := make(chan struct{})
	w.C = c
	go func() {
		defer close(w.done)
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLHUP}, {Fd: int32(w.wake[0]), Events: unix.POLLIN}}
		for {
			_, err := unix.Poll(fds, -1)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err == nil && fds[1].Revents != 0 {
				return // Stop
			}
			if err != nil || fds[0].Revents != 0 {
				close(c)
				return
			}
		}
	}()
	return w, nil
}

// Stop stops watching and waits for the watcher to end.
func (w *HangupWatcher) Stop() {
	w.once.Do(func() {
		unix.Write(w.wake[1], []byte{0})
		<-w.done
		unix.Close(w.wake[0])
		unix.Close(w.wake[1])
	})
}
