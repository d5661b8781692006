// Command tapadm administers tapstackd in the illumos vocabulary: ifconfig,
// dladm, netstat, route and ipadm (cli.md), and any if_tcp(7P) request by
// name (tapadm request). It turns each command line into requests on
// the daemon's control socket and formats the answers as the illumos tools
// do; every show command also takes -o json.
//
// tapadm holds no policy: the daemon validates every request and its errno
// comes back as "tapadm: <request>: <ERRNO>: <what was wrong>".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/tapstack/tapstack/ctl"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		printError(os.Stderr, err)
		os.Exit(1)
	}
}

// requester sends one control request; *ctl.Client is the real one. A
// request the daemon refused comes back as a *ctl.Error carrying its errno.
type requester interface {
	Do(ctx context.Context, op string, family ctl.Family, args, result any) error
}

var _ requester = (*ctl.Client)(nil)

// run parses the global flags (--ctl PATH) and runs the command in args,
// writing its output to stdout. Failures are returned, not printed; stderr
// is for diagnostics that do not fail the command (snoop's packet count).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tapadm", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	ctlPath := fs.String("ctl", "", "control socket path")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			_, err := io.WriteString(stdout, usage)
			return err
		}
		return usagef("", "%v", err)
	}
	path := ctl.SocketPath(*ctlPath)
	a := &app{
		stdout: stdout,
		stderr: stderr,
		dial: func() (requester, error) {
			return ctl.Dial(path)
		},
	}
	defer a.close()
	return a.dispatch(ctx, fs.Args())
}

// app is one tapadm invocation. The connection is made on the first request,
// so usage errors and help never need a running daemon.
type app struct {
	stdout io.Writer
	stderr io.Writer // nil: discard
	dial   func() (requester, error)
	r      requester
}

// conn returns the connection to the daemon, dialling it on first use.
func (a *app) conn() (requester, error) {
	if a.r == nil {
		r, err := a.dial()
		if err != nil {
			return nil, err
		}
		a.r = r
	}
	return a.r, nil
}

func (a *app) close() {
	if c, ok := a.r.(io.Closer); ok {
		c.Close()
	}
}

// dispatch runs one verb.
func (a *app) dispatch(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usagef("", "no command given")
	}
	switch verb, rest := args[0], args[1:]; verb {
	case "ifconfig":
		return a.ifconfig(ctx, rest)
	case "dladm":
		return a.dladm(ctx, rest)
	case "netstat":
		return a.netstat(ctx, rest)
	case "ping":
		return a.ping(ctx, rest)
	case "snoop":
		return a.snoop(ctx, rest)
	case "gateway":
		return a.gateway(ctx, rest)
	case "route":
		return a.route(ctx, rest)
	case "ipadm":
		return a.ipadm(ctx, rest)
	case "request":
		return a.request(ctx, rest)
	case "zoneadm":
		return a.zoneadm(ctx, rest)
	case "arp":
		return a.arp(ctx, rest)
	case "ndp":
		return a.ndp(ctx, rest)
	case "help", "-h", "--help":
		_, err := io.WriteString(a.stdout, usage)
		return err
	default:
		return usagef("", "unknown command %q", verb)
	}
}

const usage = `usage: tapadm [--ctl PATH] COMMAND [ARGS]

Commands:
` + ifconfigUsage + dladmUsage + netstatUsage + pingUsage + snoopUsage + gatewayUsage + routeUsage + ipadmUsage + requestUsage + zoneadmUsage + arpUsage + ndpUsage + `  tapadm help

The control socket is --ctl PATH, else $TAPSTACK_CTL, else ` + ctl.DefaultSocket + `.
`

// usageError is a command line tapadm cannot make a request from. Nothing
// was sent to the daemon.
type usageError struct {
	cmd string // "ifconfig", "dladm", ...; "" for the top level
	msg string
}

func (e *usageError) Error() string {
	if e.cmd == "" {
		return e.msg
	}
	return e.cmd + ": " + e.msg
}

// synopsis returns the usage lines for the command the error is about.
func (e *usageError) synopsis() string {
	switch e.cmd {
	case "ifconfig":
		return ifconfigUsage
	case "dladm":
		return dladmUsage
	case "netstat":
		return netstatUsage
	case "ping":
		return pingUsage
	case "snoop":
		return snoopUsage
	case "gateway":
		return gatewayUsage
	case "route":
		return routeUsage
	case "ipadm":
		return ipadmUsage
	case "request":
		return requestUsage
	case "zoneadm":
		return zoneadmUsage
	case "arp":
		return arpUsage
	case "ndp":
		return ndpUsage
	default:
		return usage
	}
}

func usagef(cmd, format string, args ...any) error {
	return &usageError{cmd: cmd, msg: fmt.Sprintf(format, args...)}
}

// printError prints err as "tapadm: <err>"; a usage error is followed by the
// command's synopsis.
func printError(w io.Writer, err error) {
	fmt.Fprintf(w, "tapadm: %v\n", err)
	var ue *usageError
	if errors.As(err, &ue) {
		s := ue.synopsis()
		if !strings.HasPrefix(s, "usage:") {
			s = "usage:\n" + s
		}
		io.WriteString(w, s)
	}
}
