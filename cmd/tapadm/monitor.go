package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/tapstack/tapstack/ctl"
)

// routeMonitor prints the interface layer's events as they happen, like
// illumos `route monitor` prints the routing socket: `tapadm route monitor
// [-c N] [-o json]`. It runs until N events were printed, or SIGINT or
// SIGTERM.
func (a *app) routeMonitor(ctx context.Context, args []string) error {
	var req ctl.Events
	jsonOut := false
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "-c":
			if i+1 >= len(args) {
				return usagef("route", "monitor: -c needs a count")
			}
			n, err := strconv.Atoi(args[i+1])
			if err != nil || n < 1 {
				return usagef("route", "monitor: bad count %q", args[i+1])
			}
			req.Count = n
			i++
		case "-o":
			if i+1 >= len(args) || args[i+1] != "json" {
				return usagef("route", "monitor: -o takes json")
			}
			jsonOut = true
			i++
		default:
			return usagef("route", "monitor: unexpected argument %q", args[i])
		}
	}
	r, err := a.conn()
	if err != nil {
		return err
	}
	s, ok := r.(streamer)
	if !ok {
		return errors.New("route monitor: this connection cannot stream")
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = s.Stream(ctx, "events", "", req, func(raw json.RawMessage) error {
		var e ctl.Event
		if err := json.Unmarshal(raw, &e); err != nil {
			return fmt.Errorf("route monitor: decode event: %w", err)
		}
		if jsonOut {
			_, err := fmt.Fprintf(a.stdout, "%s\n", raw)
			return err
		}
		return writeEvent(a, e)
	})
	if ctx.Err() != nil {
		return nil // stopped by a signal: not a failure
	}
	return err
}

// writeEvent prints one event in a route-monitor style line.
func writeEvent(a *app, e ctl.Event) error {
	line := fmt.Sprintf("%s: %s index %d flags=%s", e.Kind, e.Name, e.Index, e.Flags)
	if e.Addr.IsValid() {
		line += " addr " + e.Addr.String()
	}
	if e.Dropped > 0 {
		line += fmt.Sprintf(" (%d events dropped before this one)", e.Dropped)
	}
	_, err := fmt.Fprintln(a.stdout, line)
	return err
}
