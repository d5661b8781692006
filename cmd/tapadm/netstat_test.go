package main

import (
	"context"
	"encoding/json"
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
		{nil, "netstat: say what to show: -r (routes), -i (interfaces) or -s (statistics)"},
		{[]string{"-x"}, "netstat: unsupported option -x"},
		{[]string{"-ri"}, "netstat: -r, -i and -s cannot be combined"},
		{[]string{"-i", "-s"}, "netstat: -r, -i and -s cannot be combined"},
		{[]string{"-rn", "-I", "tap0"}, "netstat: -I goes with -i or -s, not -r"},
		{[]string{"-i", "-I"}, "netstat: -I needs an interface name"},
		{[]string{"-i", "-f", "inet4"}, `netstat: bad address family "inet4" (inet or inet6)`},
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

// testIfStats is what netstat.interfaces might answer for both families.
var testIfStats = ctl.IfStatsReq{
	Interfaces: []ctl.IfStats{
		{Name: "lo0", Family: ctl.AF_INET, Index: 1, MTU: 8232, Addr: netip.MustParseAddr("127.0.0.1"),
			Subnet: netip.MustParsePrefix("127.0.0.0/8"), LinkStats: ctl.LinkStats{IPackets: 12, OPackets: 12}},
		{Name: "tap0", Family: ctl.AF_INET, Index: 2, MTU: 1500, Addr: netip.MustParseAddr("10.0.0.1"),
			Subnet: netip.MustParsePrefix("10.0.0.0/24"), Link: "tap0",
			IP:        ctl.IPIfStats{InReceives: 40, InDelivers: 38, ForwDatagrams: 2, OutTransmits: 41},
			LinkStats: ctl.LinkStats{IPackets: 1234567, IErrors: 2, OPackets: 7654321, OErrors: 1}},
		{Name: "p2plinkwithlongname0", Family: ctl.AF_INET, Index: 3, MTU: 1400, Addr: netip.MustParseAddr("192.168.100.1"),
			Dst: netip.MustParseAddr("192.168.100.2"), Subnet: netip.MustParsePrefix("192.168.100.1/32")},
		{Name: "lo0", Family: ctl.AF_INET6, Index: 1, MTU: 8252, Addr: netip.IPv6Loopback(),
			Subnet: netip.MustParsePrefix("::1/128"), ICMP6: &ctl.ICMP6IfStats{}, LinkStats: ctl.LinkStats{IPackets: 12, OPackets: 12}},
		{Name: "tap0", Family: ctl.AF_INET6, Index: 2, MTU: 1500, Addr: netip.MustParseAddr("fe80::2:0:0:1"),
			Subnet: netip.MustParsePrefix("fe80::/10"), Link: "tap0", ICMP6: &ctl.ICMP6IfStats{InMsgs: 3, InNeighborSolicits: 3},
			LinkStats: ctl.LinkStats{IPackets: 1234567, IErrors: 2, OPackets: 7654321, OErrors: 1}},
	},
	Totals: []ctl.IPTotals{
		{Family: ctl.AF_INET, IP: ctl.IPIfStats{InReceives: 52, OutRequests: 50}},
		{Family: ctl.AF_INET6, IP: ctl.IPIfStats{InReceives: 9}, ICMP6: &ctl.ICMP6IfStats{InMsgs: 3}},
	},
}

// answerIfStats answers netstat.interfaces as the daemon would: filtered
// by family and name.
func answerIfStats(c call) (any, error) {
	name := c.Args.(ctl.IfStatsReq).Name
	var out ctl.IfStatsReq
	for _, e := range testIfStats.Interfaces {
		if (c.Family == ctl.AF_UNSPEC || e.Family == c.Family) && (name == "" || e.Name == name) {
			out.Interfaces = append(out.Interfaces, e)
		}
	}
	for _, t := range testIfStats.Totals {
		if c.Family == ctl.AF_UNSPEC || t.Family == c.Family {
			out.Totals = append(out.Totals, t)
		}
	}
	return out, nil
}

func TestNetstatInterfaces(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		family ctl.Family
		ifname string
		want   string
	}{
		{
			name:   "-i: IPv4 then IPv6, columns as wide as their values",
			args:   []string{"-i"},
			family: ctl.AF_UNSPEC,
			want: "" +
				"Name                 Mtu  Net/Dest      Address        Ipkts   Ierrs Opkts   Oerrs Collis Queue\n" +
				"lo0                  8232 loopback      localhost      12      0     12      0     0      0\n" +
				"tap0                 1500 10.0.0.0      10.0.0.1       1234567 2     7654321 1     0      0\n" +
				"p2plinkwithlongname0 1400 192.168.100.2 192.168.100.1  0       0     0       0     0      0\n" +
				"\n" +
				"Name  Mtu  Net/Dest                    Address                     Ipkts   Ierrs Opkts   Oerrs Collis\n" +
				"lo0   8252 localhost                   localhost                   12      0     12      0     0\n" +
				"tap0  1500 fe80::2:0:0:1/10            fe80::2:0:0:1               1234567 2     7654321 1     0\n",
		},
		{
			name:   "-in -f inet: numeric, IPv4 only",
			args:   []string{"-in", "-f", "inet"},
			family: ctl.AF_INET,
			want: "" +
				"Name                 Mtu  Net/Dest      Address        Ipkts   Ierrs Opkts   Oerrs Collis Queue\n" +
				"lo0                  8232 127.0.0.0     127.0.0.1      12      0     12      0     0      0\n" +
				"tap0                 1500 10.0.0.0      10.0.0.1       1234567 2     7654321 1     0      0\n" +
				"p2plinkwithlongname0 1400 192.168.100.2 192.168.100.1  0       0     0       0     0      0\n",
		},
		{
			name:   "-i -I lo0 -f inet6 -n",
			args:   []string{"-i", "-Ilo0", "-finet6", "-n"},
			family: ctl.AF_INET6,
			ifname: "lo0",
			want: "" +
				"Name  Mtu  Net/Dest                    Address                     Ipkts  Ierrs Opkts  Oerrs Collis\n" +
				"lo0   8252 ::1/128                     ::1                         12     0     12     0     0\n",
		},
		{
			name:   "-s -I tap0 -f inet: the interface's whole MIB",
			args:   []string{"-s", "-I", "tap0", "-f", "inet"},
			family: ctl.AF_INET,
			ifname: "tap0",
			want: "\nIPv4 tap0\n" +
				"        inReceives                =        40        inOctets                  =         0\n" +
				"        inHdrErrors               =         0        inAddrErrors              =         0\n" +
				"        inDiscards                =         0        inDelivers                =        38\n" +
				"        inMcastPkts               =         0        inBcastPkts               =         0\n" +
				"        outRequests               =         0        outTransmits              =        41\n" +
				"        outOctets                 =         0        outDiscards               =         0\n" +
				"        outNoRoutes               =         0        outMcastPkts              =         0\n" +
				"        outBcastPkts              =         0        forwDatagrams             =         2\n" +
				"        forwProhibits             =         0        reasmFails                =         0\n" +
				"\nLink tap0\n" +
				"        ipackets                  =   1234567        ierrors                   =         2\n" +
				"        opackets                  =   7654321        oerrors                   =         1\n" +
				"        rbytes                    =         0        obytes                    =         0\n" +
				"        collisions                =         0\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &fakeDaemon{answer: answerIfStats}
			a, stdout, _ := testApp(d)
			if err := a.dispatch(context.Background(), append([]string{"netstat"}, tt.args...)); err != nil {
				t.Fatalf("netstat %v: %v", tt.args, err)
			}
			want := []call{{Op: "netstat.interfaces", Family: tt.family, Args: ctl.IfStatsReq{Name: tt.ifname}}}
			if d := diff(want, d.calls); d != "" {
				t.Errorf("requests (-want +got):\n%s", d)
			}
			if d := diff(tt.want, stdout.String()); d != "" {
				t.Errorf("netstat %v (-want +got):\n%s", tt.args, d)
			}
		})
	}
}

// TestNetstatStatsTotals checks netstat -s (the stack-wide MIBs) and that
// -o json carries every counter with its MIB name.
func TestNetstatStatsTotals(t *testing.T) {
	d := &fakeDaemon{answer: answerIfStats}
	a, stdout, _ := testApp(d)
	if err := a.dispatch(context.Background(), []string{"netstat", "-s"}); err != nil {
		t.Fatal(err)
	}
	out := stdout.String()
	for _, want := range []string{
		"\nIPv4\n        inReceives                =        52",
		"outRequests               =        50",
		"\nIPv6\n        inReceives                =         9",
		"\nICMPv6\n        inMsgs                    =         3",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("netstat -s lacks %q:\n%s", want, out)
		}
	}

	stdout.Reset()
	if err := a.dispatch(context.Background(), []string{"netstat", "-i", "-o", "json"}); err != nil {
		t.Fatal(err)
	}
	var got ctl.IfStatsReq
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("netstat -i -o json: %v\n%s", err, stdout)
	}
	if d := diff(testIfStats, got); d != "" {
		t.Errorf("JSON round trip (-want +got):\n%s", d)
	}
	for _, field := range []string{`"inReceives": 40`, `"forwDatagrams": 2`, `"forwProhibits": 0`, `"inNeighborSolicits": 3`, `"ipackets": 1234567`} {
		if !strings.Contains(stdout.String(), field) {
			t.Errorf("netstat -i -o json lacks %s", field)
		}
	}
}
