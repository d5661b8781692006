// Command tapstackd is the tapstack daemon: a userspace TCP/IP stack
// serving TAP links, managed through a control socket by tapadm.
//
//	tapstackd [--ctl PATH] [--services echo,discard]
//	tapstackd --netns NAME|PATH|PID [--configure] [--mtu N] [--cidr A/P] [-p SPEC]... [gateway flags]
//	tapstackd run [flags] -- CMD [ARGS...]
//
// With --netns, the daemon creates tap0 in that namespace, plumbs it (the
// gateway 10.0.2.2 and DNS 10.0.2.3, fd00::2 and fd00::3), with
// --configure also configures the namespace side (10.0.2.100/24, default
// route, MTU, lo up), and serves it through the gateway until the
// namespace goes away. `run` does the same for a fresh namespace in which
// it runs CMD, and exits with CMD's status.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/internal/daemon"
	"github.com/tapstack/tapstack/internal/slirp"
	"github.com/tapstack/tapstack/link"
	"github.com/tapstack/tapstack/link/busypoll"
	"github.com/tapstack/tapstack/link/tap"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stderr)
	stop()
	var code exitCode
	switch {
	case errors.As(err, &code):
		os.Exit(int(code))
	case err != nil:
		fmt.Fprintln(os.Stderr, "tapstackd:", err)
		os.Exit(1)
	}
}

// exitCode is an error that only sets the exit status (the command run by
// `tapstackd run` exited with it); nothing is printed.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit status %d", int(c)) }

// run runs the command line args.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "run":
			return runCommand(ctx, args[1:], stderr)
		case childVerb:
			return runChild(args[1:], stderr)
		case slirp4netnsVerb:
			return slirp4netns(ctx, args[1:], os.Stdout, stderr)
		case slirp.HelperCommand:
			return tapOpenHelper(args[1:], stderr)
		}
	}
	return serve(ctx, args, stderr)
}

const serveUsage = `usage: tapstackd [--ctl PATH] [--state PATH] [--dad=false] [--services echo,discard] [--group NAME]... [--zone-map UID=ZONE]...
       tapstackd --netns NAME|PATH|PID [--configure] [-p [HOSTADDR:]HOSTPORT:NSPORT[/tcp|/udp]]... [flags]
       tapstackd run [flags] -- CMD [ARGS...]

Flags:
`

// serve is the daemon: tapadm's control socket and, with --netns, the
// namespace gateway until the namespace goes away.
func serve(ctx context.Context, args []string, stderr io.Writer) error {
	var o options
	fs := newFlagSet("tapstackd", &o, false)
	if help, err := parseFlags(fs, args, serveUsage, stderr); help || err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (tapstackd run -- CMD runs a command)", fs.Arg(0))
	}
	if err := o.check(visited(fs), false); err != nil {
		return err
	}
	log := newLogger(stderr, o.verbose)
	sched := applySched(o.sched, o.netns != "", o.busyPoll, log)
	log.Debug("data path scheduling", "sched", sched, "gomaxprocs", runtime.GOMAXPROCS(0), "busy-poll", busypoll.Default().Budget())
	var nsCfg daemon.NamespaceConfig
	if o.netns != "" {
		var err error
		if nsCfg, err = o.namespaceConfig(log); err != nil {
			return err
		}
	}
	path := ctl.SocketPath(o.ctl)
	d, err := daemon.New(daemon.Config{
		CtlPath:        path,
		Services:       splitList(o.services),
		CreateTap:      createTap,
		CreateAFPacket: createAFPacket,
		Groups:         o.groups,
		ZoneMap:        o.zoneMap,
		StatePath:      o.state,
		NoDAD:          !o.dad,
		Log:            log,
	})
	if err != nil {
		return err
	}
	defer d.Close()
	var nsDone <-chan struct{}
	if o.netns != "" {
		n, err := d.ConnectNamespace(nsCfg)
		if err != nil {
			return err
		}
		nsDone = n.Done()
	}
	// After the gateway's own link exists, so its saved addresses apply.
	d.RestoreState()
	log.Info("tapstackd listening", "ctl", path, "services", o.services, "netns", o.netns)
	stopServing := startServing(ctx, d)
	if err := signalReady(o.readyFD); err != nil {
		stopServing()
		return err
	}
	select {
	case <-ctx.Done():
	case <-nsDone:
		log.Info("the namespace is gone")
	case <-watchExitFD(o.exitFD):
		log.Info("exit descriptor closed")
	}
	log.Info("tapstackd shutting down")
	return stopServing()
}

func newLogger(w io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// startServing serves the control socket in the background; the returned
// function stops serving and returns Serve's error.
func startServing(ctx context.Context, d *daemon.Daemon) func() error {
	ctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- d.Serve(ctx) }()
	return func() error {
		cancel()
		return <-errc
	}
}

// signalReady writes "1" to fd and closes it (--ready-fd); fd < 0 does
// nothing.
func signalReady(fd int) error {
	if fd < 0 {
		return nil
	}
	f := os.NewFile(uintptr(fd), "ready-fd")
	defer f.Close()
	if _, err := f.Write([]byte("1")); err != nil {
		return fmt.Errorf("--ready-fd %d: %w", fd, err)
	}
	return nil
}

// watchExitFD returns a channel closed when fd becomes readable or its
// other end is closed (--exit-fd); fd < 0 returns nil, which never fires.
func watchExitFD(fd int) <-chan struct{} {
	if fd < 0 {
		return nil
	}
	ch := make(chan struct{})
	go func() {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(fds, -1); err != unix.EINTR {
				break
			}
		}
		close(ch)
	}()
	return ch
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
	l, err := tap.Create(tap.Config{Name: a.Name, Netns: a.Netns, MTU: a.MTU, MAC: mac, Queues: a.Queues, NoOffload: a.NoOffload})
	if err != nil {
		e := ctl.ErrnoOf(err)
		if e == 0 {
			e = ctl.EINVAL
		}
		return nil, ctl.Errorf(e, "%v", err)
	}
	return l, nil
}
