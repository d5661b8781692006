package main

// The gateway verb: inbound port forwards of the namespace gateway
// (tapstackd --netns or tapstackd run), added, listed and removed while
// it runs.

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strconv"

	"github.com/tapstack/tapstack/ctl"
)

const gatewayUsage = `  tapadm gateway add-forward [-o json] [HOSTADDR:]HOSTPORT:NSPORT[/tcp|/udp]
  tapadm gateway list-forwards [-o json]
  tapadm gateway remove-forward ID
`

func gatewayUsagef(format string, args ...any) error {
	return usagef("gateway", format, args...)
}

// gateway runs the gateway verb. The daemon parses and checks forward
// specs; tapadm sends them as given.
func (a *app) gateway(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return gatewayUsagef("missing subcommand")
	}
	sub, rest := args[0], args[1:]
	rest, jsonOut, err := stripJSON("gateway", rest)
	if err != nil {
		return err
	}
	switch sub {
	case "add-forward":
		if len(rest) != 1 || rest[0] == "" {
			return gatewayUsagef("add-forward takes exactly one forward: [HOSTADDR:]HOSTPORT:NSPORT[/tcp|/udp]")
		}
		r, err := a.conn()
		if err != nil {
			return err
		}
		var f ctl.Forward
		if err := r.Do(ctx, "gateway.add-forward", "", map[string]string{"spec": rest[0]}, &f); err != nil {
			return err
		}
		if jsonOut {
			return writeJSON(a.stdout, f)
		}
		_, err = fmt.Fprintf(a.stdout, "Created forward %d: %s %s -> %s\n", f.ID, f.Proto,
			forwardEnd(f.HostAddr, f.HostPort), forwardEnd(f.GuestAddr, f.GuestPort))
		return err
	case "list-forwards":
		if len(rest) != 0 {
			return gatewayUsagef("list-forwards takes no arguments but -o json")
		}
		r, err := a.conn()
		if err != nil {
			return err
		}
		var fs []ctl.Forward
		if err := r.Do(ctx, "gateway.list-forwards", "", nil, &fs); err != nil {
			return err
		}
		if fs == nil {
			fs = []ctl.Forward{}
		}
		if jsonOut {
			return writeJSON(a.stdout, fs)
		}
		return writeForwards(a.stdout, fs)
	case "remove-forward":
		if jsonOut {
			return gatewayUsagef("remove-forward has no output to format")
		}
		if len(rest) != 1 {
			return gatewayUsagef("remove-forward takes exactly one forward ID")
		}
		id, err := strconv.Atoi(rest[0])
		if err != nil || id <= 0 {
			return gatewayUsagef("bad forward ID %q (tapadm gateway list-forwards shows them)", rest[0])
		}
		r, err := a.conn()
		if err != nil {
			return err
		}
		return r.Do(ctx, "gateway.remove-forward", "", ctl.ForwardID{ID: id}, nil)
	default:
		return gatewayUsagef("unknown subcommand %q", sub)
	}
}

// forwardColumns are list-forwards' fields.
var forwardColumns = []column{{"ID", 5}, {"PROTO", 6}, {"HOST", 26}, {"GUEST", 26}}

func writeForwards(w io.Writer, fs []ctl.Forward) error {
	rows := make([][]string, 0, len(fs))
	for _, f := range fs {
		rows = append(rows, []string{strconv.Itoa(f.ID), f.Proto, forwardEnd(f.HostAddr, f.HostPort), forwardEnd(f.GuestAddr, f.GuestPort)})
	}
	return writeTable(w, forwardColumns, rows)
}

// forwardEnd formats one end of a forward: "10.0.0.1:8080", "[::1]:8080",
// or "*:8080" when the address is left to the gateway (every host
// address; the namespace's address of the client's family).
func forwardEnd(a netip.Addr, port uint16) string {
	p := strconv.Itoa(int(port))
	switch {
	case !a.IsValid():
		return "*:" + p
	case a.Is6() && !a.Is4In6():
		return "[" + a.String() + "]:" + p
	}
	return a.Unmap().String() + ":" + p
}
