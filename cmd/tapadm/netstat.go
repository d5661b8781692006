package main

// The netstat verb: the routing table (IRE table) as `netstat -rn`.

import (
	"context"
	"strings"

	"github.com/tapstack/tapstack/ctl"
)

const netstatUsage = `  tapadm netstat -rn [-a] [-f inet|inet6] [-o json]
`

func netstatUsagef(format string, args ...any) error {
	return usagef("netstat", format, args...)
}

// netstatCmd is a parsed netstat command line.
type netstatCmd struct {
	all    bool       // -a: also local and broadcast entries
	family ctl.Family // -f; AF_UNSPEC for both
	json   bool
}

// parseNetstat parses netstat's options. Only the routing table (-r) is
// supported; -n is accepted and implied (tapadm never looks names up).
func parseNetstat(args []string) (netstatCmd, error) {
	cmd := netstatCmd{family: ctl.AF_UNSPEC}
	args, json, err := stripJSON("netstat", args)
	if err != nil {
		return cmd, err
	}
	cmd.json = json
	var route bool
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if len(arg) < 2 || arg[0] != '-' {
			return cmd, netstatUsagef("unexpected argument %q", arg)
		}
	letters:
		for j := 1; j < len(arg); j++ {
			switch c := arg[j]; c {
			case 'r':
				route = true
			case 'n':
			case 'a':
				cmd.all = true
			case 'f':
				val := arg[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						return cmd, netstatUsagef("-f needs an address family (inet or inet6)")
					}
					i++
					val = args[i]
				}
				switch strings.TrimPrefix(val, "af:") {
				case "inet":
					cmd.family = ctl.AF_INET
				case "inet6":
					cmd.family = ctl.AF_INET6
				default:
					return cmd, netstatUsagef("bad address family %q (inet or inet6)", val)
				}
				break letters
			default:
				return cmd, netstatUsagef("unsupported option -%c", c)
			}
		}
	}
	if !route {
		return cmd, netstatUsagef("only the routing table (-r) is supported")
	}
	return cmd, nil
}

// netstat runs the netstat verb.
func (a *app) netstat(ctx context.Context, args []string) error {
	cmd, err := parseNetstat(args)
	if err != nil {
		return err
	}
	r, err := a.conn()
	if err != nil {
		return err
	}
	var routes []ctl.RouteEntry
	if err := r.Do(ctx, "netstat.routes", cmd.family, nil, &routes); err != nil {
		return err
	}
	v4, v6 := splitRoutes(routes, cmd.all)
	switch cmd.family {
	case ctl.AF_INET:
		v6 = nil
	case ctl.AF_INET6:
		v4 = nil
	}
	if cmd.json {
		return writeRoutesJSON(a.stdout, v4, v6)
	}
	return writeRoutes(a.stdout, v4, v6)
}
