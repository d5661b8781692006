package slirp

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestGetopt(t *testing.T) {
	specs := []optSpec{
		{long: "configure", short: 'c'},
		{long: "mtu", short: 'm', arg: true},
		{long: "enable-ipv6", short: '6'},
		{long: "enable-sandbox"},
		{long: "enable-seccomp"},
		{long: "api-socket", short: 'a', arg: true},
	}
	tests := []struct {
		name     string
		args     []string
		opts     []optVal
		operands []string
		err      string
	}{
		{name: "empty"},
		{name: "short bundle", args: []string{"-c6", "1", "tap0"},
			opts: []optVal{{name: "configure"}, {name: "enable-ipv6"}}, operands: []string{"1", "tap0"}},
		{name: "short arg attached", args: []string{"-m1500", "1"},
			opts: []optVal{{name: "mtu", arg: "1500"}}, operands: []string{"1"}},
		{name: "short arg separate", args: []string{"-cm", "1500", "1"},
			opts: []optVal{{name: "configure"}, {name: "mtu", arg: "1500"}}, operands: []string{"1"}},
		{name: "long with =", args: []string{"--mtu=65520"}, opts: []optVal{{name: "mtu", arg: "65520"}}},
		{name: "long separate", args: []string{"--mtu", "65520"}, opts: []optVal{{name: "mtu", arg: "65520"}}},
		{name: "long empty value", args: []string{"--api-socket="}, opts: []optVal{{name: "api-socket", arg: ""}}},
		{name: "abbreviation", args: []string{"--conf", "--api", "s"},
			opts: []optVal{{name: "configure"}, {name: "api-socket", arg: "s"}}},
		{name: "permuted", args: []string{"1", "-c", "tap0", "--mtu", "9000"},
			opts: []optVal{{name: "configure"}, {name: "mtu", arg: "9000"}}, operands: []string{"1", "tap0"}},
		{name: "double dash", args: []string{"-c", "--", "-m", "x"},
			opts: []optVal{{name: "configure"}}, operands: []string{"-m", "x"}},
		{name: "lone dash is an operand", args: []string{"-"}, operands: []string{"-"}},
		{name: "unknown long", args: []string{"--bogus"}, err: "prog: unrecognized option '--bogus'"},
		{name: "unknown short", args: []string{"-x"}, err: "prog: invalid option -- 'x'"},
		{name: "missing short arg", args: []string{"-m"}, err: "prog: option requires an argument -- 'm'"},
		{name: "missing long arg", args: []string{"--mtu"}, err: "prog: option '--mtu' requires an argument"},
		{name: "arg not allowed", args: []string{"--configure=yes"}, err: "prog: option '--configure' doesn't allow an argument"},
		{name: "ambiguous", args: []string{"--enable-s"},
			err: "prog: option '--enable-s' is ambiguous; possibilities: '--enable-sandbox' '--enable-seccomp'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, operands, err := getopt("prog", tt.args, specs)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.opts, opts, cmp.AllowUnexported(optVal{}), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("options (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.operands, operands, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("operands (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParse(t *testing.T) {
	dir := t.TempDir()
	userns := filepath.Join(dir, "userns")
	netnsFile := filepath.Join(dir, "netns")
	for _, f := range []string{userns, netnsFile} {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	def := func(mod func(*Options)) *Options {
		o := &Options{ExitFD: -1, ReadyFD: -1, MTU: 1500, CIDR: netip.MustParsePrefix("10.0.2.0/24"),
			NetnsType: "pid", PID: 42, TapName: "tap0"}
		if mod != nil {
			mod(o)
		}
		return o
	}
	tests := []struct {
		name  string
		args  []string
		want  *Options
		usage string // a *UsageError with this message
		err   string // another error with this message
	}{
		{name: "minimal", args: []string{"42", "tap0"}, want: def(nil)},
		{name: "everything", args: []string{
			"-c", "-e", "3", "-r", "4", "-m", "65520", "-6", "-a", "/tmp/api.sock", "--cidr", "10.1.0.0/16",
			"--disable-host-loopback", "--enable-sandbox", "--enable-seccomp", "--outbound-addr=10.9.9.9",
			"--outbound-addr6=2001:db8::1", "--disable-dns", "--macaddress=2:0:0:0:0:1", "--target-type=netns",
			"--userns-path", userns, "42", "tap0"},
			want: def(func(o *Options) {
				o.Configure, o.ExitFD, o.ReadyFD, o.MTU, o.IPv6, o.APISocket = true, 3, 4, 65520, true, "/tmp/api.sock"
				o.CIDR = netip.MustParsePrefix("10.1.0.0/16")
				o.DisableHostLoopback, o.EnableSandbox, o.EnableSeccomp, o.DisableDNS = true, true, true, true
				o.OutboundAddr, o.OutboundAddr6 = "10.9.9.9", "2001:db8::1"
				o.MAC = net.HardwareAddr{2, 0, 0, 0, 0, 1}
				o.UsernsPath = userns
			})},
		{name: "max mtu", args: []string{"--mtu=65521", "42", "tap0"}, want: def(func(o *Options) { o.MTU = 65521 })},
		{name: "path", args: []string{"--netns-type=path", netnsFile, "tap0"}, want: def(func(o *Options) {
			o.NetnsType, o.PID, o.NetnsPath = "path", 0, netnsFile
		})},
		{name: "too many arguments warns", args: []string{"42", "tap0", "extra"}, want: def(func(o *Options) {
			o.Warnings = []string{"WARNING: too many arguments"}
		})},
		{name: "deprecated alias", args: []string{"--no-host-loopback", "42", "tap0"}, want: def(func(o *Options) {
			o.DisableHostLoopback = true
			o.Warnings = []string{deprecatedLoopback}
		})},

		{name: "no arguments", args: nil, usage: ""},
		{name: "no tap name", args: []string{"42"}, usage: ""},
		{name: "bad pid", args: []string{"abc", "tap0"}, usage: "PID must be a positive integer"},
		{name: "zero pid", args: []string{"0", "tap0"}, usage: "PID must be a positive integer"},
		{name: "mtu too big", args: []string{"-m", "65522", "42", "tap0"}, usage: "MTU must be a positive integer (< 65522)"},
		{name: "mtu zero", args: []string{"-m", "0", "42", "tap0"}, usage: "MTU must be a positive integer (< 65522)"},
		{name: "mtu not a number", args: []string{"--mtu=big", "42", "tap0"}, usage: "MTU must be a positive integer (< 65522)"},
		{name: "bad exit fd", args: []string{"-e", "-1", "42", "tap0"}, usage: "exit-fd must be a non-negative integer"},
		{name: "bad ready fd", args: []string{"-r", "x", "42", "tap0"}, usage: "ready-fd must be a non-negative integer"},
		{name: "unknown option", args: []string{"--frobnicate", "42", "tap0"}, usage: "slirp4netns: unrecognized option '--frobnicate'"},
		{name: "mac without configure", args: []string{"--macaddress=02:00:00:00:00:01", "42", "tap0"},
			usage: "--macaddr cannot be specified when --configure or -c is not specified"},
		{name: "bess", args: []string{"--target-type=bess", "/tmp/bess.sock"}, usage: "--target-type=bess is not supported by tapstack (only netns)"},
		{name: "bad target type", args: []string{"--target-type=vm", "42", "tap0"}, usage: `--target-type must be either "netns" or "bess"`},
		{name: "tapfd", args: []string{"--netns-type=tapfd", "5"}, usage: "--netns-type=tapfd is not supported by tapstack (only pid and path)"},
		{name: "missing path", args: []string{"--netns-type=path", "/nonexistent/netns", "tap0"},
			usage: "existing path expected when --netns-type=path: No such file or directory"},
		{name: "missing userns", args: []string{"--userns-path=/nonexistent/userns", "42", "tap0"},
			usage: "userns path doesn't exist: /nonexistent/userns"},

		{name: "cidr syntax", args: []string{"--cidr=10.0.2.0", "42", "tap0"}, err: "invalid CIDR: 10.0.2.0"},
		{name: "cidr address", args: []string{"--cidr=10.0.2.300/24", "42", "tap0"}, err: "invalid network address: 10.0.2.300"},
		{name: "cidr prefix", args: []string{"--cidr=10.0.2.0/26", "42", "tap0"}, err: "prefix length needs to be 1-25"},
		{name: "cidr host bits", args: []string{"--cidr=10.0.2.100/24", "42", "tap0"},
			err: "CIDR needs to be a network address like 10.0.2.0/24, not like 10.0.2.100/24"},
		{name: "bad mac", args: []string{"-c", "--macaddress=zz:00:00:00:00:01", "42", "tap0"},
			err: "\"zz:00:00:00:00:01\" is an invalid MAC address.\nmacaddress has to be a valid MAC address (hex string, 6 bytes, each byte separated by a ':')."},
		{name: "long mac", args: []string{"-c", "--macaddress=02:00:00:00:00:01:02", "42", "tap0"},
			err: "\"02:00:00:00:00:01:02\" is an invalid MAC address.  Is it too long?\nmacaddress has to be a valid MAC address (hex string, 6 bytes, each byte separated by a ':')."},
		{name: "api socket too long", args: []string{"-a", "/" + strings.Repeat("a", 120), "42", "tap0"},
			err: "the specified API socket path is too long (>= 108)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.args)
			var ue *UsageError
			switch {
			case tt.want != nil:
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, got, cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
					t.Errorf("Parse (-want +got):\n%s", diff)
				}
			case tt.err != "":
				if err == nil || errors.As(err, &ue) || err.Error() != tt.err {
					t.Errorf("error %#v, want a plain error %q", err, tt.err)
				}
			default:
				if !errors.As(err, &ue) || ue.Msg != tt.usage {
					t.Errorf("error %#v, want a usage error %q", err, tt.usage)
				}
			}
		})
	}
}

func TestParseHelpVersion(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want error
	}{
		{[]string{"-h"}, ErrHelp},
		{[]string{"--help", "--bogus"}, ErrHelp}, // options act in order
		{[]string{"--bogus", "--help"}, nil},
		{[]string{"-v"}, ErrVersion},
		{[]string{"--vers"}, ErrVersion},
		{[]string{"-c", "-h", "42", "tap0"}, ErrHelp},
	} {
		_, err := Parse(tt.args)
		if tt.want == nil {
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Errorf("Parse(%q) = %v, want a usage error", tt.args, err)
			}
			continue
		}
		if !errors.Is(err, tt.want) {
			t.Errorf("Parse(%q) = %v, want %v", tt.args, err, tt.want)
		}
	}
	for _, opt := range []string{"--configure", "--mtu", "--enable-ipv6", "--api-socket", "--cidr",
		"--disable-host-loopback", "--netns-type", "--userns-path", "--enable-sandbox", "--enable-seccomp",
		"--outbound-addr", "--outbound-addr6", "--disable-dns", "--macaddress", "--target-type"} {
		if !strings.Contains(Usage(), opt) {
			t.Errorf("usage does not list %s (tools probe the help for it)", opt)
		}
	}
	first, _, _ := strings.Cut(VersionText(), "\n")
	if first != "slirp4netns version "+Version+"+tapstack" {
		t.Errorf("version line %q", first)
	}
}

func TestAddresses(t *testing.T) {
	o := &Options{CIDR: netip.MustParsePrefix("10.1.0.0/16")}
	got := []netip.Addr{o.Gateway4(), o.DNS4(), o.Guest4()}
	want := []netip.Addr{netip.MustParseAddr("10.1.0.2"), netip.MustParseAddr("10.1.0.3"), netip.MustParseAddr("10.1.0.100")}
	if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if o := (&Options{PID: 7}); o.Netns() != "/proc/7/ns/net" {
		t.Errorf("Netns() = %q", o.Netns())
	}
}

func TestOutbound(t *testing.T) {
	tests := []struct {
		name   string
		o      Options
		v4, v6 string
		err    string
	}{
		{name: "none"},
		{name: "addresses", o: Options{OutboundAddr: "192.0.2.1", OutboundAddr6: "2001:db8::1"}, v4: "192.0.2.1", v6: "2001:db8::1"},
		{name: "loopback interface", o: Options{OutboundAddr: "lo"}, v4: "127.0.0.1"},
		{name: "v6 given for v4", o: Options{OutboundAddr: "2001:db8::1"}, err: "outbound-addr has to be valid ipv4 address or interface name"},
		{name: "v4 given for v6", o: Options{OutboundAddr6: "192.0.2.1"}, err: "outbound-addr6 has to be valid ipv6 address or interface name"},
		{name: "no such interface", o: Options{OutboundAddr: "nosuchif0"}, err: "outbound-addr has to be valid ipv4 address or interface name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v4, v6, err := tt.o.Outbound()
			if tt.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			str := func(a netip.Addr) string {
				if !a.IsValid() {
					return ""
				}
				return a.String()
			}
			if str(v4) != tt.v4 || str(v6) != tt.v6 {
				t.Errorf("got %v %v, want %q %q", v4, v6, tt.v4, tt.v6)
			}
		})
	}
}
