package main

// `tapstackd slirp4netns`: a drop-in for slirp4netns(1), with slirp4netns's
// command line, API socket, ready and exit descriptors and defaults
// (10.0.2.0/24, host loopback reachable as 10.0.2.2, port forwards
// masqueraded as coming from 10.0.2.2). scripts/slirp4netns installs it
// under that name.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/gateway"
	"github.com/tapstack/tapstack/internal/daemon"
	"github.com/tapstack/tapstack/internal/slirp"
	"github.com/tapstack/tapstack/link"
	"github.com/tapstack/tapstack/link/tap"
)

// slirp4netnsVerb is the subcommand.
const slirp4netnsVerb = "slirp4netns"

// slirp4netns runs `tapstackd slirp4netns [OPTION]... PID|PATH TAPNAME`.
// As slirp4netns: -h and -v print on standard output and exit 0; a bad
// command line prints what is wrong on standard error and the usage on
// standard output, and exits 1; a bad value (CIDR, MAC) or a failure to
// start prints what is wrong and exits 1.
func slirp4netns(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := slirp.Parse(args)
	var ue *slirp.UsageError
	switch {
	case errors.Is(err, slirp.ErrHelp):
		fmt.Fprint(stdout, slirp.Usage())
		return nil
	case errors.Is(err, slirp.ErrVersion):
		fmt.Fprint(stdout, slirp.VersionText())
		return nil
	case errors.As(err, &ue):
		if ue.Msg != "" {
			fmt.Fprintln(stderr, ue.Msg)
		}
		fmt.Fprint(stdout, slirp.Usage())
		return exitCode(1)
	case err != nil:
		fmt.Fprintln(stderr, err)
		return exitCode(1)
	}
	for _, w := range o.Warnings {
		fmt.Fprintln(stdout, w)
	}
	applySched(schedAuto, true, defaultBusyPoll, slog.New(slog.DiscardHandler))
	if err := serveSlirp4netns(ctx, o, stdout, stderr); err != nil {
		// The message without the errno a *ctl.Error puts first, which
		// means nothing to slirp4netns's users.
		msg := err.Error()
		var ce *ctl.Error
		if errors.As(err, &ce) {
			msg = ce.Msg
		}
		fmt.Fprintf(stderr, "%s: %s\n", slirp.Prog, msg)
		return exitCode(1)
	}
	return nil
}

// serveSlirp4netns connects the namespace and serves it until a signal,
// the exit descriptor hanging up, or the namespace going away (its
// process exits, or its TAP is deleted).
func serveSlirp4netns(ctx context.Context, o *slirp.Options, stdout, stderr io.Writer) error {
	out4, out6, err := o.Outbound()
	if err != nil {
		return err
	}
	if o.ExitFD >= 0 {
		if err := slirp.CheckFD(o.ExitFD, "exit-fd"); err != nil {
			return err
		}
	}
	if o.ReadyFD >= 0 {
		if err := slirp.CheckFD(o.ReadyFD, "ready-fd"); err != nil {
			return err
		}
	}
	// As slirp4netns: a reader that went away (a closed log pipe) makes
	// writes fail, rather than killing the process.
	signal.Ignore(syscall.SIGPIPE)
	log := newLogger(stderr, false)

	// The daemon's control socket, private to this instance: tapadm --ctl
	// PATH shows the drop-in's interfaces and routes.
	dir, err := os.MkdirTemp("", "tapstack-slirp4netns-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctlPath := filepath.Join(dir, "tapstackd.sock")
	// No DAD: tapstack configures both ends of the namespace's link.
	d, err := daemon.New(daemon.Config{CtlPath: ctlPath, NoDAD: true, Log: log})
	if err != nil {
		return err
	}
	defer d.Close()
	stopServing := startServing(ctx, d)
	defer stopServing()

	cfg, err := slirpNamespaceConfig(ctx, o, out4, out6, log)
	if err != nil {
		return err
	}
	n, err := d.ConnectNamespace(cfg)
	if err != nil {
		return err
	}
	defer n.Close()

	var api *slirp.API
	if o.APISocket != "" {
		if api, err = slirp.ListenAPI(o.APISocket, n.Gateway(), o.Guest4(), log); err != nil {
			return err
		}
		defer api.Close()
		go func() {
			if err := api.Serve(); err != nil {
				log.Error("api socket", "err", err)
			}
		}()
	}
	printSlirpBanner(stdout, o, out4, out6, ctlPath)

	var exitC <-chan struct{}
	if o.ExitFD >= 0 {
		w, err := slirp.WatchHangup(o.ExitFD)
		if err != nil {
			return err
		}
		defer w.Stop()
		exitC = w.C
	}
	if o.ReadyFD >= 0 {
		if err := slirp.SignalReady(o.ReadyFD); err != nil {
			return err
		}
	}
	select {
	case <-ctx.Done():
		log.Info("slirp4netns: signalled, exiting")
	case <-exitC:
		log.Info("slirp4netns: exit-fd event, exiting", "fd", o.ExitFD)
	case <-n.Done():
		log.Info("slirp4netns: the namespace is gone, exiting")
	}
	return nil
}

// slirpNamespaceConfig maps the options onto the daemon's namespace
// session, with slirp4netns's policies: host loopback reachable through
// the gateway unless --disable-host-loopback, forwards masqueraded. When
// tapstack cannot enter the namespace itself (rootless), the helper opens
// and configures the TAP from inside it.
func slirpNamespaceConfig(ctx context.Context, o *slirp.Options, out4, out6 netip.Addr, log *slog.Logger) (daemon.NamespaceConfig, error) {
	cfg := daemon.NamespaceConfig{
		Netns:     o.Netns(),
		TapName:   o.TapName,
		Configure: o.Configure,
		MTU:       o.MTU,
		CIDR:      o.CIDR,
		IPv6:      o.IPv6,
		MAC:       o.MAC,
		Gateway: gateway.Config{
			AllowHostLoopback:  !o.DisableHostLoopback,
			OutboundAddr4:      out4,
			OutboundAddr6:      out6,
			DisableDNS:         o.DisableDNS,
			MasqueradeForwards: true,
		},
	}
	if o.PID > 0 {
		// A process id: the session also ends when the process exits.
		cfg.Netns = strconv.Itoa(o.PID)
	}
	target, ok := o.NeedsHelper()
	if !ok {
		return cfg, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return cfg, fmt.Errorf("find tapstackd for the TAP helper: %w", err)
	}
	spec := slirp.TapSpec{Name: o.TapName, MTU: o.MTU, VnetHdr: true}
	if o.Configure {
		spec.Configure = &slirp.NetConfig{
			Addr4:    netip.PrefixFrom(o.Guest4(), o.CIDR.Bits()),
			Gateway4: o.Gateway4(),
		}
		if o.MAC != nil {
			spec.Configure.MAC = o.MAC.String()
		}
		if o.IPv6 {
			spec.Configure.Addr6 = netip.PrefixFrom(gateway.DefaultGuestV6, gateway.DefaultCIDR6.Bits())
			spec.Configure.Gateway6 = gateway.DefaultGatewayV6
		}
		// The helper has configured the namespace by the time the
		// daemon would, and the daemon could not enter it.
		cfg.Configure, cfg.MAC = false, nil
	}
	log.Info("slirp4netns: opening the TAP through a helper in the namespace", "target", target.String())
	cfg.OpenTap = func(c tap.Config) (*link.Link, error) {
		fd, err := slirp.OpenTap(ctx, exe, target, spec)
		if err != nil {
			return nil, err
		}
		return tap.FromFD(fd, c)
	}
	return cfg, nil
}

// printSlirpBanner prints what slirp4netns prints on start, less its DHCP
// lines (tapstack serves no DHCP), plus the control socket.
func printSlirpBanner(w io.Writer, o *slirp.Options, out4, out6 netip.Addr, ctlPath string) {
	mask := net.IP(net.CIDRMask(o.CIDR.Bits(), 32)).String()
	fmt.Fprintf(w, "Starting slirp (tapstack)\n")
	fmt.Fprintf(w, "* MTU:             %d\n", o.MTU)
	fmt.Fprintf(w, "* Network:         %s\n", o.CIDR.Addr())
	fmt.Fprintf(w, "* Netmask:         %s\n", mask)
	fmt.Fprintf(w, "* Gateway:         %s\n", o.Gateway4())
	fmt.Fprintf(w, "* DNS:             %s\n", o.DNS4())
	fmt.Fprintf(w, "* Recommended IP:  %s\n", o.Guest4())
	if o.APISocket != "" {
		fmt.Fprintf(w, "* API Socket:      %s\n", o.APISocket)
	}
	if out4.IsValid() {
		fmt.Fprintf(w, "* Outbound IPv4:   %s\n", out4)
	}
	if out6.IsValid() {
		fmt.Fprintf(w, "* Outbound IPv6:   %s\n", out6)
	}
	if o.MAC != nil {
		fmt.Fprintf(w, "* MAC address:     %s\n", o.MAC)
	}
	fmt.Fprintf(w, "* Control socket:  %s (tapadm --ctl)\n", ctlPath)
	if !o.DisableHostLoopback {
		fmt.Fprintf(w, "WARNING: 127.0.0.1:* on the host is accessible as %s (set --disable-host-loopback to prohibit connecting to 127.0.0.1:*)\n", o.Gateway4())
	}
}

// tapOpenHelper is the hidden helper subcommand (slirp.HelperCommand).
func tapOpenHelper(args []string, stderr io.Writer) error {
	if code := slirp.HelperMain(args, stderr); code != 0 {
		return exitCode(code)
	}
	return nil
}
