package tap

import (
	"fmt"
	"sync/atomic"
)

// ReaderMode is how a TAP's queue readers wait for frames and where they
// run. Either way a reader delivers each frame to the stack inline, with
// no copy and no hand-off.
type ReaderMode int

const (
	// ReadersDefault is the process default (SetDefaultReaders), which is
	// ReadersPinned unless changed.
	ReadersDefault ReaderMode = iota
	// ReadersPinned: one goroutine per queue, locked to its OS thread and
	// pinned to a CPU, blocking in ppoll(2). Frames are read in parallel on
	// as many CPUs as queues; every goroutine a frame wakes (gVisor's TCP
	// processor, a relay) runs on another thread, a hand-off each.
	ReadersPinned
	// ReadersPolled: one ordinary goroutine per queue that parks in Go's
	// poller. With GOMAXPROCS=1 the daemon then runs like an event loop:
	// a frame, gVisor's processing of it and the relay it wakes run on one
	// thread, one after the other. On a 2-CPU machine that doubled
	// single-stream throughput and raised connections/s by a third
	// (README, Benchmarks).
	ReadersPolled
)

func (m ReaderMode) String() string {
	switch m {
	case ReadersDefault:
		return "default"
	case ReadersPinned:
		return "pinned"
	case ReadersPolled:
		return "polled"
	}
	return fmt.Sprintf("ReaderMode(%d)", int(m))
}

var defaultReaders atomic.Int32

// SetDefaultReaders sets the mode of TAPs created from now on with
// ReadersDefault. It is process-wide because it goes with GOMAXPROCS:
// polled readers pay off when the process has one scheduler slot.
func SetDefaultReaders(m ReaderMode) {
	if m == ReadersDefault {
		m = ReadersPinned
	}
	defaultReaders.Store(int32(m))
}

// resolve returns m with ReadersDefault replaced by the process default.
func (m ReaderMode) resolve() ReaderMode {
	if m != ReadersDefault {
		return m
	}
	if d := ReaderMode(defaultReaders.Load()); d != ReadersDefault {
		return d
	}
	return ReadersPinned
}

// DefaultReaders returns the process default (never ReadersDefault).
func DefaultReaders() ReaderMode { return ReadersDefault.resolve() }
