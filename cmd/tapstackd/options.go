package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/gateway"
	"github.com/tapstack/tapstack/internal/daemon"
	"github.com/tapstack/tapstack/link/tap"
)

// options are tapstackd's flags, for both the daemon and `run`.
type options struct {
	ctl      string
	services string
	verbose  bool
	sched    string        // --sched: auto, loop or pinned
	busyPoll time.Duration // --busy-poll: the loop's spin after activity (0: none)

	// The namespace gateway.
	netns      string
	configure  bool
	tap        string
	mtu        uint
	queues     int
	cidr       prefixFlag
	ipv6       bool
	mac        string
	loopback   bool
	outAddrs   addrsFlag
	outIf      string
	masquerade bool
	disableDNS bool
	resolvConf string
	udpTimeout time.Duration
	forwards   forwardsFlag
	readyFD    int
	exitFD     int

	// Who may do what on the control socket (serve only).
	groups  []string          // --group: privileged groups
	zoneMap map[uint32]string // --zone-map: the zone of a uid's clients

	state string // --state: the ipadm state file (serve only; "" for none)
	dad   bool   // --dad: IPv4 duplicate address detection (serve only)
}

// defaultStatePath is where tapstackd keeps the ipadm configuration.
const defaultStatePath = "/var/lib/tapstack/state.json"

// gatewayFlags are the flags that only make sense with a namespace; the
// daemon refuses them without --netns.
var gatewayFlags = []string{
	"configure", "tap", "mtu", "queues", "cidr", "ipv6", "mac", "allow-host-loopback", "outbound-addr",
	"outbound-if", "masquerade-forwards", "disable-dns", "resolv-conf", "udp-timeout", "p",
}

// newFlagSet defines the flags; forRun leaves out --netns and --configure,
// which `run` implies.
func newFlagSet(name string, o *options, forRun bool) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// Errors are returned and printed once, by main; -h prints the usage
	// (parseFlags).
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.ctl, "ctl", "", "control socket (default $TAPSTACK_CTL or "+ctl.DefaultSocket+runCtlNote(forRun)+")")
	fs.StringVar(&o.services, "services", "", "in-stack services to run: echo,discard")
	fs.BoolVar(&o.verbose, "v", false, "log debug messages")
	o.sched = schedAuto
	fs.Func("sched", "data path scheduling: loop (one scheduler thread, TAP readers in Go's poller: best on 1-2 CPUs), pinned (a reader thread per TAP queue pinned to a CPU), auto (loop for a namespace gateway with at most 2 CPUs, else pinned) (default auto)", func(s string) (err error) {
		o.sched, err = parseSched(s)
		return err
	})
	o.busyPoll = defaultBusyPoll
	fs.Func("busy-poll", "in the loop, keep polling this long after activity before sleeping, so a reply or the next request is taken without a wakeup: lower latency for some CPU (0 turns it off, at most "+maxBusyPoll.String()+") (default "+defaultBusyPoll.String()+")", func(s string) (err error) {
		o.busyPoll, err = parseBusyPoll(s)
		return err
	})
	if !forRun {
		fs.StringVar(&o.netns, "netns", "", "connect this network namespace: a name under /run/netns, an absolute path, or a PID")
		fs.BoolVar(&o.configure, "configure", false, "configure the namespace side: address, default route, MTU, lo up")
		fs.StringVar(&o.state, "state", defaultStatePath, "the file tapadm ipadm's persistent configuration is kept in and restored from at start (\"\" keeps none; with --netns none unless given)")
		fs.BoolVar(&o.dad, "dad", true, "duplicate address detection (ARP, NDP) when addresses come up (with --netns off unless given: tapstack configures both ends of that link)")
		fs.Func("group", "members of this group (name or gid) may run set-requests, as root and the daemon's user may (repeatable, or a comma list)", func(s string) error {
			for g := range strings.SplitSeq(s, ",") {
				if g = strings.TrimSpace(g); g == "" {
					return fmt.Errorf("empty group name in %q", s)
				}
				o.groups = append(o.groups, g)
			}
			return nil
		})
		fs.Func("zone-map", "UID=ZONE: clients of this uid (or user name) see only ZONE's interfaces and change nothing (repeatable)", func(s string) error {
			uid, zone, err := daemon.ParseZoneMap(s)
			if err != nil {
				return err
			}
			if o.zoneMap == nil {
				o.zoneMap = map[uint32]string{}
			}
			o.zoneMap[uid] = zone
			return nil
		})
	}
	fs.StringVar(&o.tap, "tap", daemon.DefaultTapName, "name of the TAP device in the namespace")
	fs.UintVar(&o.mtu, "mtu", daemon.DefaultMTU, fmt.Sprintf("MTU of the namespace link (max %d)", daemon.MaxMTU))
	fs.IntVar(&o.queues, "queues", 0, fmt.Sprintf("TAP queues (default min(CPUs, 4), max %d)", tap.MaxQueues))
	fs.Var(&o.cidr, "cidr", "the namespace's IPv4 subnet: gateway .2, DNS .3, namespace .100 (default "+gateway.DefaultCIDR.String()+")")
	fs.BoolVar(&o.ipv6, "ipv6", true, "also serve IPv6 on fd00::/64 (gateway fd00::2, DNS fd00::3, namespace fd00::100); --ipv6=false to disable")
	fs.StringVar(&o.mac, "mac", "", "MAC address of the namespace side (with --configure)")
	fs.BoolVar(&o.loopback, "allow-host-loopback", false, "let connections to the gateway address reach the host's loopback")
	fs.Var(&o.outAddrs, "outbound-addr", "host source address of outbound connections (IPv4 or IPv6; may be given once per family)")
	fs.StringVar(&o.outIf, "outbound-if", "", "host interface outbound connections leave by")
	fs.BoolVar(&o.masquerade, "masquerade-forwards", false, "forwarded connections come from the gateway address, not the real client")
	fs.BoolVar(&o.disableDNS, "disable-dns", false, "no DNS forwarder at the DNS address")
	fs.StringVar(&o.resolvConf, "resolv-conf", "", "the host resolvers the DNS forwarder relays to (default /etc/resolv.conf)")
	fs.DurationVar(&o.udpTimeout, "udp-timeout", 0, fmt.Sprintf("end a UDP flow after this long without traffic (default %v)", gateway.DefaultUDPIdleTimeout))
	fs.Var(&o.forwards, "p", "forward a host port into the namespace: [HOSTADDR:]HOSTPORT:NSPORT[/tcp|/udp] (repeatable)")
	fs.IntVar(&o.readyFD, "ready-fd", -1, "write \"1\" to this descriptor and close it once serving")
	fs.IntVar(&o.exitFD, "exit-fd", -1, "exit when this descriptor becomes readable or is closed by the other end")
	return fs
}

func runCtlNote(forRun bool) string {
	if forRun {
		return "; run: a private socket under $XDG_RUNTIME_DIR/tapstack or /run/tapstack"
	}
	return ""
}

// check validates what the flag package cannot: flags that need
// --netns, the descriptors. set is the set of flags given.
func (o *options) check(set map[string]bool, forRun bool) error {
	if !forRun && o.netns != "" && !set["state"] {
		// A daemon serving one namespace is one of many: they must not
		// share (and restore) the system daemon's configuration.
		o.state = ""
	}
	if !forRun && o.netns != "" && !set["dad"] {
		o.dad = false
	}
	if !forRun && o.netns == "" {
		for _, f := range gatewayFlags {
			if set[f] {
				return fmt.Errorf("-%s needs --netns", f)
			}
		}
	}
	if o.mac != "" && !o.configure && !forRun {
		return errors.New("--mac needs --configure")
	}
	for _, fd := range []struct {
		name string
		fd   int
	}{{"ready-fd", o.readyFD}, {"exit-fd", o.exitFD}} {
		if !set[fd.name] {
			continue
		}
		if fd.fd < 0 {
			return fmt.Errorf("--%s %d: not a descriptor", fd.name, fd.fd)
		}
		if _, err := unix.FcntlInt(uintptr(fd.fd), unix.F_GETFD, 0); err != nil {
			return fmt.Errorf("--%s %d: %v", fd.name, fd.fd, err)
		}
	}
	if set["ready-fd"] && set["exit-fd"] && o.readyFD == o.exitFD {
		return errors.New("--ready-fd and --exit-fd must differ")
	}
	if o.udpTimeout < 0 {
		return fmt.Errorf("--udp-timeout %v is negative", o.udpTimeout)
	}
	return nil
}

// namespaceConfig turns the options into the daemon's configuration.
func (o *options) namespaceConfig(log *slog.Logger) (daemon.NamespaceConfig, error) {
	cfg := daemon.NamespaceConfig{
		Netns:     o.netns,
		TapName:   o.tap,
		Configure: o.configure,
		MTU:       uint32(o.mtu),
		Queues:    o.queues,
		CIDR:      o.cidr.p,
		IPv6:      o.ipv6,
		Forwards:  o.forwards.fs,
		Gateway: gateway.Config{
			AllowHostLoopback:  o.loopback,
			OutboundAddr4:      o.outAddrs.v4,
			OutboundAddr6:      o.outAddrs.v6,
			OutboundIf:         o.outIf,
			UDPIdleTimeout:     o.udpTimeout,
			DisableDNS:         o.disableDNS,
			ResolvConf:         o.resolvConf,
			MasqueradeForwards: o.masquerade,
			Log:                log,
		},
	}
	if o.mtu > daemon.MaxMTU {
		return cfg, fmt.Errorf("--mtu %d: more than %d", o.mtu, daemon.MaxMTU)
	}
	if o.mac != "" {
		mac, err := net.ParseMAC(o.mac)
		if err != nil {
			return cfg, fmt.Errorf("--mac %q: %v", o.mac, err)
		}
		cfg.MAC = mac
	}
	return cfg, nil
}

// parseFlags parses args; -h writes usage and the flags to stderr and
// reports help.
func parseFlags(fs *flag.FlagSet, args []string, usage string, stderr io.Writer) (help bool, err error) {
	err = fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stderr)
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
		return true, nil
	}
	return false, err
}

// visited returns the names of the flags given on the command line.
func visited(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

// prefixFlag is --cidr.
type prefixFlag struct{ p netip.Prefix }

func (f *prefixFlag) String() string {
	if f == nil || !f.p.IsValid() {
		return ""
	}
	return f.p.String()
}

func (f *prefixFlag) Set(s string) error {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return fmt.Errorf("not an address/prefix: %q", s)
	}
	if !p.Addr().Is4() {
		return fmt.Errorf("%s is not an IPv4 prefix", s)
	}
	f.p = p.Masked()
	return nil
}

// addrsFlag is --outbound-addr: one address per family.
type addrsFlag struct{ v4, v6 netip.Addr }

func (f *addrsFlag) String() string {
	if f == nil {
		return ""
	}
	var s []string
	for _, a := range []netip.Addr{f.v4, f.v6} {
		if a.IsValid() {
			s = append(s, a.String())
		}
	}
	return strings.Join(s, ",")
}

func (f *addrsFlag) Set(s string) error {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return fmt.Errorf("not an IP address: %q", s)
	}
	a = a.Unmap()
	dst := &f.v4
	if a.Is6() {
		dst = &f.v6
	}
	if dst.IsValid() {
		return fmt.Errorf("%s: an outbound address of this family was already given (%s)", s, *dst)
	}
	*dst = a
	return nil
}

// forwardsFlag is -p, repeatable; specs are parsed as given, so a bad one
// fails before anything is created.
type forwardsFlag struct {
	specs []string
	fs    []ctl.Forward
}

func (f *forwardsFlag) String() string {
	if f == nil {
		return ""
	}
	return strings.Join(f.specs, " ")
}

func (f *forwardsFlag) Set(s string) error {
	fw, err := gateway.ParseForward(s)
	if err != nil {
		var ce *ctl.Error
		if errors.As(err, &ce) {
			return errors.New(ce.Msg)
		}
		return err
	}
	f.specs = append(f.specs, s)
	f.fs = append(f.fs, fw)
	return nil
}
