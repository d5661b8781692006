// Command tapstackd is the tapstack daemon: a userspace TCP/IP stack
// serving TAP links, managed through a control socket by tapadm.
//
//	tapstackd [--ctl PATH] [--services echo,discard]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/internal/daemon"
	"github.com/tapstack/tapstack/link"
	"github.com/tapstack/tapstack/link/tap"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "tapstackd:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("tapstackd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ctlPath := fs.String("ctl", "", "control socket (default $TAPSTACK_CTL or "+ctl.DefaultSocket+")")
	svcs := fs.String("services", "", "in-stack services to run: echo,discard")
	verbose := fs.Bool("v", false, "log debug messages")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	var names []string
	if *svcs != "" {
		names = strings.Split(*svcs, ",")
	}
	d, err := daemon.New(daemon.Config{
		CtlPath:   ctl.SocketPath(*ctlPath),
		Services:  names,
		CreateTap: createTap,
		Log:       log,
	})
	if err != nil {
		return err
	}
	defer d.Close()
	log.Info("tapstackd listening", "ctl", ctl.SocketPath(*ctlPath), "services", names)
	err = d.Serve(ctx)
	log.Info("tapstackd shutting down")
	return err
}

// createTap creates a TAP link for dladm create-tap.
func createTap(a ctl.CreateTap) (*link.Link, error) {
	var mac net.HardwareAddr
	if a.MAC != "" {
		m, err := net.ParseMAC(a.MAC)
		if err != nil {
			return nil, ctl.Errorf(ctl.EINVAL, "bad MAC address %q: %v", a.MAC, err)
		}
		mac = m
	}
	l, err := tap.Create(tap.Config{Name: a.Name, Netns: a.Netns, MTU: a.MTU, MAC: mac})
	if err != nil {
		e := ctl.ErrnoOf(err)
		if e == 0 {
			e = ctl.EINVAL
		}
		return nil, ctl.Errorf(e, "%v", err)
	}
	return l, nil
}
