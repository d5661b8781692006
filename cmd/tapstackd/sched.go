package main

import (
	"fmt"
	"os"
	"runtime"

	"github.com/tapstack/tapstack/link/tap"
)

// Scheduling modes of the data path (--sched).
const (
	schedAuto   = "auto"   // loop for a namespace gateway on at most loopMaxCPUs CPUs, else pinned
	schedLoop   = "loop"   // GOMAXPROCS=1, TAP readers parked in Go's poller
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
// GOMAXPROCS in the environment is left alone. It returns the mode applied.
func applySched(mode string, gateway bool) string {
	if mode == schedAuto || mode == "" {
		mode = schedPinned
		if gateway && runtime.NumCPU() <= loopMaxCPUs {
			mode = schedLoop
		}
	}
	if mode == schedLoop {
		if os.Getenv("GOMAXPROCS") == "" {
			runtime.GOMAXPROCS(1)
		}
		tap.SetDefaultReaders(tap.ReadersPolled)
	} else {
		tap.SetDefaultReaders(tap.ReadersPinned)
	}
	return mode
}
