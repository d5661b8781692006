package main

import (
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"time"

	"github.com/tapstack/tapstack/internal/widen"
	"github.com/tapstack/tapstack/link/busypoll"
	"github.com/tapstack/tapstack/link/tap"
)

// Scheduling modes of the data path (--sched).
const (
	schedAuto   = "auto"   // loop for a namespace gateway on at most loopMaxCPUs CPUs, else pinned
	schedLoop   = "loop"   // GOMAXPROCS=1 (all CPUs while two flows are busy), TAP readers parked in Go's poller
	schedPinned = "pinned" // a reader thread per TAP queue pinned to a CPU, GOMAXPROCS = CPUs
)

// loopMaxCPUs is the most CPUs auto picks the loop for. Measured on 2 CPUs
// (README, Benchmarks): the loop doubled single-stream gateway throughput,
// halved CPU per GB and raised connections/s by a third, because a frame,
// gVisor's processing of it and the relay it wakes run on one thread with
// no cross-thread wakeup; pinned readers spread four streams over the CPUs
// better. Larger machines keep pinned readers until measured, and so does
// the daemon without --netns: its AF_PACKET links have pinned readers only,
// which block in poll(2) holding the loop's one P (measured: AF_PACKET
// throughput halved under the loop).
const loopMaxCPUs = 2

// defaultBusyPoll is the loop's spin after activity. Measured on this
// 2-CPU VM (README, Benchmarks): request/response p50 halved and
// connections/s up a fifth, because a reply or the next request arriving
// within it needs no wakeup of the daemon's thread (tens of µs here).
// Longer budgets gained nothing and cost more CPU between requests.
const defaultBusyPoll = 50 * time.Microsecond

// maxBusyPoll bounds --busy-poll: past it the spin is a busy CPU, not a
// bridge over a wakeup.
const maxBusyPoll = time.Millisecond

func parseBusyPoll(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q: want a duration such as 50us, or 0", s)
	}
	if d < 0 || d > maxBusyPoll {
		return 0, fmt.Errorf("%v: want 0 (off) up to %v", d, maxBusyPoll)
	}
	return d, nil
}

func parseSched(s string) (string, error) {
	switch s {
	case schedAuto, schedLoop, schedPinned:
		return s, nil
	}
	return "", fmt.Errorf("%q: want %s, %s or %s", s, schedAuto, schedLoop, schedPinned)
}

// applySched puts the process in mode (auto resolved; gateway: the
// process serves a namespace over one TAP) before any stack or TAP exists:
// gVisor sizes its TCP processors by GOMAXPROCS when the stack is made. A
// GOMAXPROCS in the environment is left alone. The loop busy-polls for
// busyPoll after activity (0: not at all), and widens to every CPU while
// several flows are busy (widen), logging each change to log at debug
// level. It returns the mode applied.
func applySched(mode string, gateway bool, busyPoll time.Duration, log *slog.Logger) string {
	if mode == schedAuto || mode == "" {
		mode = schedPinned
		if gateway && runtime.NumCPU() <= loopMaxCPUs {
			mode = schedLoop
		}
	}
	var widener *widen.Widener
	if mode == schedLoop {
		if os.Getenv("GOMAXPROCS") == "" {
			runtime.GOMAXPROCS(1)
			if n := runtime.NumCPU(); n > 1 {
				widener = widen.New(1, n, func(procs int) int {
					why := "busy flows ended"
					if procs > 1 {
						why = "two or more busy flows"
					}
					log.Debug("data path scheduling", "gomaxprocs", procs, "why", why)
					return runtime.GOMAXPROCS(procs)
				})
			}
		}
		tap.SetDefaultReaders(tap.ReadersPolled)
	} else {
		tap.SetDefaultReaders(tap.ReadersPinned)
	}
	// Pinned readers block in ppoll on their own threads: a spinner would
	// only take a CPU from them.
	var poller *busypoll.Poller
	if mode == schedLoop && busyPoll > 0 {
		p, err := busypoll.New(busyPoll)
		if err != nil {
			fmt.Fprintf(os.Stderr, "tapstackd: busy-poll off: %v\n", err)
		}
		poller = p
	}
	if old := busypoll.Default(); old != nil {
		old.Close()
	}
	busypoll.SetDefault(poller)
	if old := widen.Default(); old != nil {
		old.Close()
	}
	widen.SetDefault(widener)
	return mode
}
