package main

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/tapstack/tapstack/ctl"
)

func route(dst, gw, typ, flags, ifname string, refs int) ctl.RouteEntry {
	r := ctl.RouteEntry{
		Destination: netip.MustParsePrefix(dst),
		Type:        typ,
		Flags:       flags,
		Interface:   ifname,
		Refs:        refs,
	}
	if gw != "" {
		r.Gateway = netip.MustParseAddr(gw)
	}
	return r
}

// testRoutes is an IRE table as the daemon might return it, both families
// mixed.
var testRoutes = []ctl.RouteEntry{
	route("0.0.0.0/0", "10.0.0.254", "DEFAULT", "UG", "tap0", 1),
	route("10.0.0.0/24", "10.0.0.1", "IF_RESOLVER", "U", "tap0", 1),
	route("::1/128", "::1", "LOOPBACK", "UH", "lo0", 1),
	route("10.0.0.1/32", "10.0.0.1", "LOCAL", "UHL", "tap0", 1),
	route("10.0.0.255/32", "10.0.0.1", "BROADCAST", "UHB", "tap0", 2),
	route("2001:db8::/64", "fe80::ff", "PREFIX", "UG", "tap0", 1),
	route("127.0.0.1/32", "127.0.0.1", "LOOPBACK", "UH", "lo0", 1),
	route("fe80::/10", "fe80::1", "IF_RESOLVER", "U", "tap0", 1),
	route("fe80::1/128", "fe80::1", "LOCAL", "UHL", "tap0", 1),
	route("::/0", "", "IF_NORESOLVER", "U", "tap1", 1),
}

func TestNetstat(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		family ctl.Family
		want   string
	}{
		{
			name:   "-rn hides local and broadcast entries",
			args:   []string{"-rn"},
			family: ctl.AF_UNSPEC,
			want: "\n" +
				"Routing Table: IPv4\n" +
				"  Destination           Gateway           Flags  Ref     Use     Interface \n" +
				"-------------------- -------------------- ----- ----- ---------- --------- \n" +
				"default              10.0.0.254           UG        1          0 tap0      \n" +
				"10.0.0.0             10.0.0.1             U         1          0 tap0      \n" +
				"127.0.0.1            127.0.0.1            UH        1          0 lo0       \n" +
				"\n" +
				"Routing Table: IPv6\n" +
				"  Destination/Mask            Gateway                   Flags Ref   Use    If   \n" +
				"--------------------------- --------------------------- ----- --- ------- ----- \n" +
				"::1                         ::1                         UH      1       0 lo0   \n" +
				"2001:db8::/64               fe80::ff                    UG      1       0 tap0  \n" +
				"fe80::/10                   fe80::1                     U       1       0 tap0  \n" +
				"default                         --                      U       1       0 tap1  \n",
		},
		{
			name:   "-arn -f inet shows everything of IPv4",
			args:   []string{"-arn", "-f", "inet"},
			family: ctl.AF_INET,
			want: "\n" +
				"Routing Table: IPv4\n" +
				"  Destination           Gateway           Flags  Ref     Use     Interface \n" +
				"-------------------- -------------------- ----- ----- ---------- --------- \n" +
				"default              10.0.0.254           UG        1          0 tap0      \n" +
				"10.0.0.0             10.0.0.1             U         1          0 tap0      \n" +
				"10.0.0.1             10.0.0.1             UHL       1          0 tap0      \n" +
				"10.0.0.255           10.0.0.1             UHB       2          0 tap0      \n" +
				"127.0.0.1            127.0.0.1            UH        1          0 lo0       \n",
		},
		{
			name:   "-r -n -a -finet6",
			args:   []string{"-r", "-n", "-a", "-finet6"},
			family: ctl.AF_INET6,
			want: "\n" +
				"Routing Table: IPv6\n" +
				"  Destination/Mask            Gateway                   Flags Ref   Use    If   \n" +
				"--------------------------- --------------------------- ----- --- ------- ----- \n" +
				"::1                         ::1                         UH      1       0 lo0   \n" +
				"2001:db8::/64               fe80::ff                    UG      1       0 tap0  \n" +
				"fe80::/10                   fe80::1                     U       1       0 tap0  \n" +
				"fe80::1                     fe80::1                     UHL     1       0 tap0  \n" +
				"default                         --                      U       1       0 tap1  \n",
		},
		{
			name:   "-o json",
			args:   []string{"-rn", "-f", "inet", "-o", "json"},
			family: ctl.AF_INET,
			want: `[
  {
    "family": "inet",
    "destination": "0.0.0.0/0",
    "gateway": "10.0.0.254",
    "flags": "UG",
    "ref": 1,
    "interface": "tap0",
    "type": "DEFAULT"
  },
  {
    "family": "inet",
    "destination": "10.0.0.0/24",
    "gateway": "10.0.0.1",
    "flags": "U",
    "ref": 1,
    "interface": "tap0",
    "type": "IF_RESOLVER"
  },
  {
    "family": "inet",
    "destination": "127.0.0.1/32",
    "gateway": "127.0.0.1",
    "flags": "UH",
    "ref": 1,
    "interface": "lo0",
    "type": "LOOPBACK"
  }
]
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &fakeDaemon{answer: func(c call) (any, error) { return testRoutes, nil }}
			a, stdout, _ := testApp(d)
			if err := a.dispatch(context.Background(), append([]string{"netstat"}, tt.args...)); err != nil {
				t.Fatalf("netstat %v: %v", tt.args, err)
			}
			if d := diff([]call{{Op: "netstat.routes", Family: tt.family}}, d.calls); d != "" {
				t.Errorf("requests (-want +got):\n%s", d)
			}
			if d := diff(tt.want, stdout.String()); d != "" {
				t.Errorf("netstat %v (-want +got):\n%s", tt.args, d)
			}
		})
	}
}

func TestNetstatEmptyTableOmitted(t *testing.T) {
	var b strings.Builder
	v4, v6 := splitRoutes([]ctl.RouteEntry{route("10.0.0.1/32", "10.0.0.1", "LOCAL", "UHL", "tap0", 1)}, false)
	if err := writeRoutes(&b, v4, v6); err != nil {
		t.Fatal(err)
	}
	if b.Len() != 0 {
		t.Errorf("a table with nothing to show printed %q", b.String())
	}
}

func TestNetstatUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "netstat: only the routing table (-r) is supported"},
		{[]string{"-i"}, "netstat: unsupported option -i"},
		{[]string{"-rn", "-f"}, "netstat: -f needs an address family (inet or inet6)"},
		{[]string{"-rn", "-f", "unix"}, `netstat: bad address family "unix" (inet or inet6)`},
		{[]string{"-rn", "extra"}, `netstat: unexpected argument "extra"`},
		{[]string{"-rn", "-o"}, "netstat: -o needs an argument (json)"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			d := &fakeDaemon{}
			a, _, dials := testApp(d)
			err := a.dispatch(context.Background(), append([]string{"netstat"}, tt.args...))
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("got %v, want a usage error", err)
			}
			if d := diff(tt.want, err.Error()); d != "" {
				t.Errorf("error (-want +got):\n%s", d)
			}
			if *dials != 0 {
				t.Errorf("a usage error contacted the daemon")
			}
		})
	}
}
