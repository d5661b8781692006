package main

import (
	"log/slog"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/tapstack/tapstack/internal/widen"
	"github.com/tapstack/tapstack/link/busypoll"
	"github.com/tapstack/tapstack/link/tap"
)

func TestParseSched(t *testing.T) {
	for _, s := range []string{"auto", "loop", "pinned"} {
		if got, err := parseSched(s); err != nil || got != s {
			t.Errorf("parseSched(%q) = %q, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "Loop", "poll", "pinned,loop"} {
		if _, err := parseSched(s); err == nil {
			t.Errorf("parseSched(%q) accepted", s)
		}
	}
}

func TestApplySched(t *testing.T) {
	if os.Getenv("GOMAXPROCS") != "" {
		t.Fatal("run without GOMAXPROCS in the environment: applySched leaves it alone then")
	}
	procs := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(procs); applySched(schedPinned, false, 0, slog.New(slog.DiscardHandler)) })
	small := runtime.NumCPU() <= loopMaxCPUs
	for _, tc := range []struct {
		mode    string
		gateway bool
		want    string
	}{
		{schedPinned, true, schedPinned},
		{schedLoop, false, schedLoop},
		{schedAuto, false, schedPinned},
		{schedAuto, true, map[bool]string{true: schedLoop, false: schedPinned}[small]},
	} {
		runtime.GOMAXPROCS(procs)
		if got := applySched(tc.mode, tc.gateway, defaultBusyPoll, slog.New(slog.DiscardHandler)); got != tc.want {
			t.Errorf("applySched(%q, gateway %v) = %q, want %q", tc.mode, tc.gateway, got, tc.want)
		}
		wantProcs := procs
		if tc.want == schedLoop {
			wantProcs = 1
		}
		wantReaders := map[bool]tap.ReaderMode{true: tap.ReadersPolled, false: tap.ReadersPinned}[tc.want == schedLoop]
		if got := tap.DefaultReaders(); got != wantReaders {
			t.Errorf("applySched(%q, gateway %v): TAP readers %v, want %v", tc.mode, tc.gateway, got, wantReaders)
		}
		if got := runtime.GOMAXPROCS(0); got != wantProcs {
			t.Errorf("applySched(%q, gateway %v): GOMAXPROCS %d, want %d", tc.mode, tc.gateway, got, wantProcs)
		}
		// The loop busy-polls; pinned readers have nothing to spin for.
		if bp := busypoll.Default(); (bp != nil) != (tc.want == schedLoop) || (bp != nil && bp.Budget() != defaultBusyPoll) {
			t.Errorf("applySched(%q, gateway %v): busy-poller %v", tc.mode, tc.gateway, bp)
		}
		// The loop widens on a machine with CPUs to widen to.
		if w := widen.Default(); (w != nil) != (tc.want == schedLoop && runtime.NumCPU() > 1) {
			t.Errorf("applySched(%q, gateway %v): widener %v", tc.mode, tc.gateway, w)
		}
	}
	runtime.GOMAXPROCS(procs)
	if applySched(schedLoop, true, 0, slog.New(slog.DiscardHandler)); busypoll.Default() != nil {
		t.Error("--busy-poll 0: the loop still has a busy-poller")
	}
}

func TestParseBusyPoll(t *testing.T) {
	for s, want := range map[string]time.Duration{"0": 0, "50us": 50 * time.Microsecond, "1ms": time.Millisecond, "200µs": 200 * time.Microsecond} {
		if got, err := parseBusyPoll(s); err != nil || got != want {
			t.Errorf("parseBusyPoll(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "50", "-1us", "2ms", "fast"} {
		if _, err := parseBusyPoll(s); err == nil {
			t.Errorf("parseBusyPoll(%q) accepted", s)
		}
	}
}
