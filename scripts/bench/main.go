// Command bench runs tapstack side by side with slirp4netns, pasta and a
// kernel veth pair: iperf3 both ways at two MTUs with 1 and 4 streams,
// TCP request/response latency, connections per second, and the daemon's
// CPU and RSS. It prints a Markdown table with each figure as a ratio to
// slirp4netns and to veth, and writes bench.json and bench.png.
//
//	make bench                      # or: go run ./scripts/bench [-o DIR]
//	BENCH_TIME=3 make bench         # seconds per iperf3 run (default 5)
//
// It needs root, iperf3, slirp4netns and pasta, and bin/tapstackd and
// bin/tapadm (make build). Every configuration gets a fresh namespace
// tsb-CFG-PID, torn down afterwards, also on failure and Ctrl-C; a
// configuration that fails is reported as "fail" and the run goes on.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	out := flag.String("o", "bench-out", "output directory")
	bin := flag.String("bin", "bin", "directory holding tapstackd and tapadm")
	flag.Parse()
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces)")
	}
	secs, err := envCount("BENCH_TIME", 5, "whole seconds")
	if err != nil {
		return err
	}
	repeat, err := envCount("BENCH_REPEAT", 1, "a count of rounds")
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "tsb-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	b := &bench{
		ctx:    ctx,
		secs:   secs,
		tmp:    tmp,
		daemon: abs(filepath.Join(*bin, "tapstackd")),
		adm:    abs(filepath.Join(*bin, "tapadm")),
		rr:     filepath.Join(tmp, "rr"),
		pid:    os.Getpid(),
		queues: min(runtime.NumCPU(), 4),
	}
	for _, f := range []string{b.daemon, b.adm} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("%v (run make build)", err)
		}
	}
	fmt.Println("building the request/response tool")
	if o, err := command(ctx, "go", "build", "-o", b.rr, "./scripts/bench/rr"); err != nil {
		return fmt.Errorf("go build rr: %v: %s", err, o)
	}

	rep := report{Machine: machine(), Seconds: secs, Rounds: repeat}
	cfgs := b.configs()
	b.total = repeat * len(cfgs) * (len(throughputCols) + 2) // + request/response and connections
	// Rounds go over every configuration in turn, so that a machine whose
	// speed drifts over minutes (a shared host) treats them alike; each
	// figure is then the median of its rounds.
	rounds := make([][]result, len(cfgs))
	for range repeat {
		for i, c := range cfgs {
			if ctx.Err() != nil {
				break
			}
			rounds[i] = append(rounds[i], b.measure(c))
		}
	}
	for _, rs := range rounds {
		if len(rs) > 0 {
			rep.Results = append(rep.Results, medianResult(rs))
		}
	}
	if ctx.Err() != nil {
		fmt.Println("interrupted; reporting what was measured")
	}
	table := rep.markdown()
	fmt.Println()
	fmt.Println(rep.Machine.line())
	fmt.Println()
	fmt.Print(table)
	if err := rep.write(*out, table); err != nil {
		return err
	}
	fmt.Printf("\nwrote bench.json, bench.md and bench.png in %s\n", *out)
	return nil
}

// envCount reads a positive whole number from the environment variable
// name, def when it is unset.
func envCount(name string, def int, want string) (int, error) {
	s := os.Getenv(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%s=%q: want %s, at least 1", name, s, want)
	}
	return n, nil
}

// command runs a command and returns its combined output.
func command(ctx context.Context, name string, args ...string) (string, error) {
	out, err := execCommand(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// progress prints one numbered progress line.
func (b *bench) progress(format string, args ...any) {
	b.step++
	fmt.Printf("[%d/%d] %s\n", b.step, b.total, fmt.Sprintf(format, args...))
}
