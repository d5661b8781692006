// Package slirp is tapstack's slirp4netns drop-in: the slirp4netns(1)
// command line (options, usage, version, its error messages), the
// QMP-like API socket (add_hostfwd, list_hostfwd, remove_hostfwd) mapped
// onto the gateway's port forwards, the ready and exit descriptors, and
// the helper that opens a TAP inside a user namespace and passes it back.
//
// It is not the gateway (package gateway) nor the daemon wiring
// (internal/daemon): cmd/tapstackd joins the three.
package slirp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// Version is the slirp4netns release whose interface the drop-in follows.
const Version = "1.3.2"

// Prog is the name the drop-in uses in its messages.
const Prog = "slirp4netns"

// Defaults, as slirp4netns has them.
const (
	DefaultMTU  = 1500
	MaxMTU      = 65521
	DefaultCIDR = "10.0.2.0/24"
)

// Options are slirp4netns's command-line options, parsed and checked.
type Options struct {
	Configure           bool             // -c: configure the TAP (address, route, lo up)
	ExitFD              int              // -e: exit when this descriptor hangs up; -1 none
	ReadyFD             int              // -r: write "1" here when ready; -1 none
	MTU                 uint32           // -m
	IPv6                bool             // -6
	APISocket           string           // -a
	CIDR                netip.Prefix     // --cidr (masked, IPv4, /1 to /25)
	DisableHostLoopback bool             // --disable-host-loopback
	NetnsType           string           // --netns-type: "pid" or "path"
	UsernsPath          string           // --userns-path
	EnableSandbox       bool             // --enable-sandbox: accepted, not needed
	EnableSeccomp       bool             // --enable-seccomp: accepted, not needed
	OutboundAddr        string           // --outbound-addr: IPv4 address or interface, as given
	OutboundAddr6       string           // --outbound-addr6: IPv6 address or interface, as given
	DisableDNS          bool             // --disable-dns
	MAC                 net.HardwareAddr // --macaddress: the namespace side's MAC (needs -c)

	PID       int    // the target process (netns type pid)
	NetnsPath string // the target namespace file (netns type path)
	TapName   string

	// Warnings are lines slirp4netns prints on standard output while
	// parsing ("WARNING: too many arguments").
	Warnings []string
}

// Netns is the path of the target network namespace.
func (o *Options) Netns() string {
	if o.NetnsPath != "" {
		return o.NetnsPath
	}
	return fmt.Sprintf("/proc/%d/ns/net", o.PID)
}

// Gateway4 is the stack's address, network + 2 (10.0.2.2).
func (o *Options) Gateway4() netip.Addr { return nthAddr(o.CIDR, 2) }

// DNS4 is the DNS forwarder's address, network + 3 (10.0.2.3).
func (o *Options) DNS4() netip.Addr { return nthAddr(o.CIDR, 3) }

// Guest4 is the namespace's address with --configure, network + 100
// (10.0.2.100), and the default guest_addr of add_hostfwd.
func (o *Options) Guest4() netip.Addr { return nthAddr(o.CIDR, 100) }

func nthAddr(p netip.Prefix, n uint32) netip.Addr {
	b := p.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += n
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// UsageError is a bad command line: slirp4netns prints Msg (if any) on
// standard error, then the usage on standard output, and exits with 1.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string {
	if e.Msg == "" {
		return "bad usage"
	}
	return e.Msg
}

// ErrHelp and ErrVersion are returned by Parse for -h and -v: print
// Usage or VersionText on standard output and exit 0.
var (
	ErrHelp    = errors.New("help requested")
	ErrVersion = errors.New("version requested")
)

// Option names: the long name is the key getopt reports.
const (
	optConfigure       = "configure"
	optExitFD          = "exit-fd"
	optReadyFD         = "ready-fd"
	optMTU             = "mtu"
	optCIDR            = "cidr"
	optDisableLoopback = "disable-host-loopback"
	optNoHostLoopback  = "no-host-loopback" // deprecated alias
	optNetnsType       = "netns-type"
	optUsernsPath      = "userns-path"
	optAPISocket       = "api-socket"
	optEnableIPv6      = "enable-ipv6"
	optEnableSandbox   = "enable-sandbox"
	optCreateSandbox   = "create-sandbox" // deprecated alias
	optEnableSeccomp   = "enable-seccomp"
	optHelp            = "help"
	optVersion         = "version"
	optOutboundAddr    = "outbound-addr"
	optOutboundAddr6   = "outbound-addr6"
	optDisableDNS      = "disable-dns"
	optMACAddress      = "macaddress"
	optTargetType      = "target-type"
)

// slirp4netns's other constants and messages.
const (
	defaultNetnsType   = "pid"
	defaultTargetType  = "netns"
	networkPrefixMin   = 1
	networkPrefixMax   = 25  // the namespace is network + 100
	maxUnixSocketPath  = 108 // sizeof(sun_path)
	tooManyArgsWarning = "WARNING: too many arguments"
	deprecatedLoopback = "WARNING: --no-host-loopback is deprecated and will be removed in future releases, please use --disable-host-loopback instead."
	deprecatedSandbox  = "WARNING: --create-sandbox is deprecated and will be removed in future releases, please use --enable-sandbox instead."
)

// specs are slirp4netns's options (getopt_long "ce:r:m:a:6hv" and its
// long table).
var specs = []optSpec{
	{long: optConfigure, short: 'c'},
	{long: optExitFD, short: 'e', arg: true},
	{long: optReadyFD, short: 'r', arg: true},
	{long: optMTU, short: 'm', arg: true},
	{long: optCIDR, arg: true},
	{long: optDisableLoopback},
	{long: optNoHostLoopback},
	{long: optNetnsType, arg: true},
	{long: optUsernsPath, arg: true},
	{long: optAPISocket, short: 'a', arg: true},
	{long: optEnableIPv6, short: '6'},
	{long: optEnableSandbox},
	{long: optCreateSandbox},
	{long: optEnableSeccomp},
	{long: optHelp, short: 'h'},
	{long: optVersion, short: 'v'},
	{long: optOutboundAddr, arg: true},
	{long: optOutboundAddr6, arg: true},
	{long: optDisableDNS},
	{long: optMACAddress, arg: true},
	{long: optTargetType, arg: true},
}

// Parse parses slirp4netns's arguments (without the program name) the way
// slirp4netns does, in two steps as it does: the command line (errors are
// *UsageError), then the values (CIDR, MAC; plain errors, no usage). -h
// and -v stop parsing with ErrHelp and ErrVersion.
//
// Differences: --target-type=bess and --netns-type=tapfd are refused as
// not supported; a --netns-type other than pid or path is refused rather
// than taken as path.
func Parse(args []string) (*Options, error) {
	o := &Options{ExitFD: -1, ReadyFD: -1, MTU: DefaultMTU}
	// Options act in order, as getopt_long returns them: "-h --bogus"
	// prints the help, "--bogus -h" the error.
	vals, operands, optErr := getopt(Prog, args, specs)
	var err error
	var cidr, mac, targetType string
	netnsType := ""
	for _, v := range vals {
		switch v.name {
		case optConfigure:
			o.Configure = true
		case optExitFD:
			if o.ExitFD, err = nonNegative(v.arg); err != nil {
				return nil, &UsageError{Msg: "exit-fd must be a non-negative integer"}
			}
		case optReadyFD:
			if o.ReadyFD, err = nonNegative(v.arg); err != nil {
				return nil, &UsageError{Msg: "ready-fd must be a non-negative integer"}
			}
		case optMTU:
			n, err := strconv.ParseInt(v.arg, 10, 64)
			if err != nil || n <= 0 || n > MaxMTU {
				return nil, &UsageError{Msg: fmt.Sprintf("MTU must be a positive integer (< %d)", MaxMTU+1)}
			}
			o.MTU = uint32(n)
		case optCIDR:
			cidr = v.arg
		case optNoHostLoopback:
			o.Warnings = append(o.Warnings, deprecatedLoopback)
			o.DisableHostLoopback = true
		case optDisableLoopback:
			o.DisableHostLoopback = true
		case optCreateSandbox:
			o.Warnings = append(o.Warnings, deprecatedSandbox)
			o.EnableSandbox = true
		case optEnableSandbox:
			o.EnableSandbox = true
		case optEnableSeccomp:
			o.EnableSeccomp = true
		case optNetnsType:
			netnsType = v.arg
		case optUsernsPath:
			if _, err := os.Stat(v.arg); err != nil {
				return nil, &UsageError{Msg: "userns path doesn't exist: " + v.arg}
			}
			o.UsernsPath = v.arg
		case optAPISocket:
			o.APISocket = v.arg
		case optEnableIPv6:
			o.IPv6 = true
		case optHelp:
			return nil, ErrHelp
		case optVersion:
			return nil, ErrVersion
		case optOutboundAddr:
			o.OutboundAddr = v.arg
		case optOutboundAddr6:
			o.OutboundAddr6 = v.arg
		case optDisableDNS:
			o.DisableDNS = true
		case optMACAddress:
			mac = v.arg
		case optTargetType:
			targetType = v.arg
		}
	}
	if optErr != nil {
		return nil, &UsageError{Msg: optErr.Error()}
	}
	if mac != "" && !o.Configure {
		return nil, &UsageError{Msg: "--macaddr cannot be specified when --configure or -c is not specified"}
	}
	switch targetType {
	case "", defaultTargetType:
	case "bess":
		return nil, &UsageError{Msg: "--target-type=bess is not supported by tapstack (only netns)"}
	default:
		return nil, &UsageError{Msg: `--target-type must be either "netns" or "bess"`}
	}
	if len(operands) < 1 {
		return nil, &UsageError{}
	}
	switch netnsType {
	case "", defaultNetnsType:
		o.NetnsType = defaultNetnsType
		pid, err := strconv.ParseInt(operands[0], 10, 32)
		if err != nil || pid <= 0 {
			return nil, &UsageError{Msg: "PID must be a positive integer"}
		}
		o.PID = int(pid)
	case "path":
		o.NetnsType = netnsType
		if _, err := os.Stat(operands[0]); err != nil {
			return nil, &UsageError{Msg: "existing path expected when --netns-type=path: " + errnoText(err)}
		}
		o.NetnsPath = operands[0]
	case "tapfd":
		return nil, &UsageError{Msg: "--netns-type=tapfd is not supported by tapstack (only pid and path)"}
	default:
		return nil, &UsageError{Msg: fmt.Sprintf("--netns-type must be either \"pid\" or \"path\", not %q", netnsType)}
	}
	if len(operands) < 2 {
		return nil, &UsageError{}
	}
	if len(operands) > 2 {
		// Not an error in slirp4netns either, for compatibility.
		o.Warnings = append(o.Warnings, tooManyArgsWarning)
	}
	o.TapName = operands[1]

	// The values, which slirp4netns checks after the command line and
	// reports without the usage.
	if cidr == "" {
		cidr = DefaultCIDR
	}
	if o.CIDR, err = parseCIDR(cidr); err != nil {
		return nil, err
	}
	if mac != "" {
		if o.MAC, err = parseMAC(mac); err != nil {
			return nil, err
		}
	}
	if o.APISocket != "" && len(o.APISocket) >= maxUnixSocketPath {
		return nil, fmt.Errorf("the specified API socket path is too long (>= %d)", maxUnixSocketPath)
	}
	return o, nil
}

func nonNegative(s string) (int, error) {
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil || n < 0 {
		return 0, errors.New("negative")
	}
	return int(n), nil
}

// errnoText is what perror(3) would print for err: the errno's text.
func errnoText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	s := err.Error()
	if s != "" {
		s = strings.ToUpper(s[:1]) + s[1:]
	}
	return s
}

var cidrRE = regexp.MustCompile(`^(([0-9]{1,3}\.){3}[0-9]{1,3})/([0-9]{1,2})$`)

// parseCIDR checks --cidr as slirp4netns does: an IPv4 network address
// (host bits zero) with a prefix length from 1 to 25.
func parseCIDR(s string) (netip.Prefix, error) {
	m := cidrRE.FindStringSubmatch(s)
	if m == nil {
		return netip.Prefix{}, fmt.Errorf("invalid CIDR: %s", s)
	}
	a, err := netip.ParseAddr(m[1])
	if err != nil || !a.Is4() {
		return netip.Prefix{}, fmt.Errorf("invalid network address: %s", m[1])
	}
	bits, _ := strconv.Atoi(m[3])
	if bits < networkPrefixMin || bits > networkPrefixMax {
		return netip.Prefix{}, fmt.Errorf("prefix length needs to be %d-%d", networkPrefixMin, networkPrefixMax)
	}
	p := netip.PrefixFrom(a, bits)
	if p.Masked().Addr() != a {
		return netip.Prefix{}, fmt.Errorf("CIDR needs to be a network address like 10.0.2.0/24, not like 10.0.2.100/24")
	}
	return p, nil
}

// parseMAC parses xx:xx:xx:xx:xx:xx (one or two hex digits a byte) as
// slirp4netns does, and refuses what no Ethernet interface can have.
func parseMAC(s string) (net.HardwareAddr, error) {
	fail := func(why string) error {
		return fmt.Errorf("%q is an invalid MAC address%s\nmacaddress has to be a valid MAC address (hex string, 6 bytes, each byte separated by a ':').", s, why)
	}
	parts := strings.Split(s, ":")
	if len(parts) > 6 {
		return nil, fail(".  Is it too long?")
	}
	if len(parts) < 6 {
		return nil, fail(".")
	}
	mac := make(net.HardwareAddr, 6)
	for i, p := range parts {
		v, err := strconv.ParseUint(p, 16, 8)
		if err != nil || len(p) > 2 {
			return nil, fail(".")
		}
		mac[i] = byte(v)
	}
	if mac[0]&1 != 0 || string(mac) == "\x00\x00\x00\x00\x00\x00" {
		return nil, fail(": it is multicast or all zeros.")
	}
	return mac, nil
}

// Usage is slirp4netns's help text, with tapstack's notes. Tools probe it
// for the options they may pass (podman looks for --disable-host-loopback,
// --mtu, --enable-sandbox, --enable-seccomp, --enable-ipv6, --netns-type,
// --outbound-addr), so every option slirp4netns lists is listed.
func Usage() string {
	return fmt.Sprintf(`Usage: %[1]s [OPTION]... PID|PATH [TAPNAME]
User-mode networking for unprivileged network namespaces.
(tapstack's drop-in: a gVisor netstack behind the TAP instead of libslirp.)

-c, --configure          bring up the interface
-e, --exit-fd=FD         specify the FD for terminating slirp4netns
-r, --ready-fd=FD        specify the FD to write to when the network is configured
-m, --mtu=MTU            specify MTU (default=%[2]d, max=%[3]d)
-6, --enable-ipv6        enable IPv6 (experimental)
-a, --api-socket=PATH    specify API socket path
--cidr=CIDR              specify network address CIDR (default=%[4]s)
--disable-host-loopback  prohibit connecting to 127.0.0.1:* on the host namespace
--netns-type=TYPE        specify network namespace type ([path|pid], default=%[5]s)
--userns-path=PATH       specify user namespace path
--enable-sandbox         accepted; tapstack does not need it (no libslirp to confine)
--enable-seccomp         accepted; tapstack does not need it (no libslirp to confine)
--outbound-addr=IPv4     sets outbound ipv4 address (or interface) to bind to
--outbound-addr6=IPv6    sets outbound ipv6 address (or interface) to bind to
--disable-dns            disables 10.0.2.3 (or configured internal ip) to host dns redirect
--macaddress=MAC         specify the MAC address of the TAP (only valid with -c)
--target-type=TYPE       specify the target type ([netns], default=%[6]s; bess is not supported)
-h, --help               show this help and exit
-v, --version            show version and exit
`, Prog, DefaultMTU, MaxMTU, DefaultCIDR, defaultNetnsType, defaultTargetType)
}

// VersionText is what -v prints. The first line keeps slirp4netns's
// machine-parsable form ("slirp4netns version X.Y.Z"), with tapstack as
// semver build metadata.
func VersionText() string {
	return fmt.Sprintf("%s version %s+tapstack\ntapstack: slirp4netns %s drop-in (gVisor netstack, no libslirp)\n", Prog, Version, Version)
}
