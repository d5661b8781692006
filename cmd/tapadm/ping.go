package main

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/tapstack/tapstack/ctl"
)

const pingUsage = `  tapadm ping HOST [-c COUNT] [-o json]
`

// ping sends ICMP echo requests from the stack itself and prints the
// replies like ping(8): `tapadm ping 10.0.0.2 -c 3`. It fails (exit 1) when
// no reply arrived, so scripts can test reachability from the stack.
func (a *app) ping(ctx context.Context, args []string) error {
	var req ctl.Ping
	var jsonOut bool
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "-c":
			if i+1 >= len(args) {
				return usagef("ping", "-c needs a count")
			}
			n, err := strconv.Atoi(args[i+1])
			if err != nil || n < 1 {
				return usagef("ping", "bad count %q", args[i+1])
			}
			req.Count = n
			i++
		case "-o":
			if i+1 >= len(args) || args[i+1] != "json" {
				return usagef("ping", "-o takes json")
			}
			jsonOut = true
			i++
		default:
			if req.Dst.IsValid() {
				return usagef("ping", "unexpected argument %q", args[i])
			}
			addr, err := netip.ParseAddr(args[i])
			if err != nil {
				return usagef("ping", "HOST must be an IP address, not %q", args[i])
			}
			req.Dst = addr
		}
	}
	if !req.Dst.IsValid() {
		return usagef("ping", "no HOST given")
	}
	r, err := a.conn()
	if err != nil {
		return err
	}
	var res ctl.PingResult
	if err := r.Do(ctx, "ping", ctl.FamilyOf(req.Dst), req, &res); err != nil {
		return err
	}
	if jsonOut {
		if err := writeJSON(a.stdout, res); err != nil {
			return err
		}
	} else {
		for _, rtt := range res.RTTMicros {
			fmt.Fprintf(a.stdout, "reply from %s: time=%.3f ms\n", req.Dst, float64(rtt)/1000)
		}
		fmt.Fprintf(a.stdout, "%d packets transmitted, %d packets received\n", res.Transmitted, res.Received)
	}
	if res.Received == 0 {
		return fmt.Errorf("ping: no answer from %s: %s", req.Dst, res.Error)
	}
	return nil
}
