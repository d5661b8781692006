package main

import (
	"net/netip"
	"testing"

	"github.com/tapstack/tapstack/ctl"
)

func TestRouteArgs(t *testing.T) {
	a := netip.MustParseAddr
	for _, tc := range []struct {
		name    string
		args    []string
		want    []call
		wantErr string
	}{
		{name: "net by prefix", args: []string{"add", "10.1.0.0/16", "10.0.0.254"},
			want: []call{{"SIOCADDRT", ctl.AF_INET, ctl.Rtentry{Dst: a("10.1.0.0"), Gateway: a("10.0.0.254"),
				Genmask: a("255.255.0.0"), Flags: ctl.RTF_GATEWAY}}}},
		{name: "net with -netmask", args: []string{"add", "-net", "10.1.0.0", "10.0.0.254", "-netmask", "255.255.0.0"},
			want: []call{{"SIOCADDRT", ctl.AF_INET, ctl.Rtentry{Dst: a("10.1.0.0"), Gateway: a("10.0.0.254"),
				Genmask: a("255.255.0.0"), Flags: ctl.RTF_GATEWAY}}}},
		{name: "hex netmask", args: []string{"add", "10.1.0.0", "10.0.0.254", "-netmask", "0xffffff00"},
			want: []call{{"SIOCADDRT", ctl.AF_INET, ctl.Rtentry{Dst: a("10.1.0.0"), Gateway: a("10.0.0.254"),
				Genmask: a("255.255.255.0"), Flags: ctl.RTF_GATEWAY}}}},
		{name: "net without mask", args: []string{"add", "-net", "10.0.0.0", "10.0.0.254"},
			want: []call{{"SIOCADDRT", ctl.AF_INET, ctl.Rtentry{Dst: a("10.0.0.0"), Gateway: a("10.0.0.254"), Flags: ctl.RTF_GATEWAY}}}},
		{name: "host", args: []string{"add", "-host", "192.0.2.7", "10.0.0.254", "-ifp", "tap0"},
			want: []call{{"SIOCADDRT", ctl.AF_INET, ctl.Rtentry{Dst: a("192.0.2.7"), Gateway: a("10.0.0.254"),
				Flags: ctl.RTF_GATEWAY | ctl.RTF_HOST, Ifp: "tap0"}}}},
		{name: "default", args: []string{"add", "default", "10.0.0.254"},
			want: []call{{"SIOCADDRT", ctl.AF_INET, ctl.Rtentry{Dst: a("0.0.0.0"), Gateway: a("10.0.0.254"),
				Genmask: a("0.0.0.0"), Flags: ctl.RTF_GATEWAY}}}},
		{name: "default inet6", args: []string{"add", "-inet6", "default", "fe80::1", "-ifp", "tap0"},
			want: []call{{"SIOCADDRT", ctl.AF_INET6, ctl.Rtentry{Dst: a("::"), Gateway: a("fe80::1"),
				Genmask: a("::"), Flags: ctl.RTF_GATEWAY, Ifp: "tap0"}}}},
		{name: "inet6 prefix", args: []string{"add", "2001:db8:1::/48", "2001:db8::fe"},
			want: []call{{"SIOCADDRT", ctl.AF_INET6, ctl.Rtentry{Dst: a("2001:db8:1::"), Gateway: a("2001:db8::fe"),
				Genmask: a("ffff:ffff:ffff::"), Flags: ctl.RTF_GATEWAY}}}},
		{name: "interface route", args: []string{"add", "10.2.0.0/16", "10.0.0.1", "-interface"},
			want: []call{{"SIOCADDRT", ctl.AF_INET, ctl.Rtentry{Dst: a("10.2.0.0"), Gateway: a("10.0.0.1"),
				Genmask: a("255.255.0.0")}}}},
		{name: "delete", args: []string{"delete", "10.1.0.0/16", "10.0.0.254"},
			want: []call{{"SIOCDELRT", ctl.AF_INET, ctl.Rtentry{Dst: a("10.1.0.0"), Gateway: a("10.0.0.254"),
				Genmask: a("255.255.0.0"), Flags: ctl.RTF_GATEWAY}}}},
		{name: "delete without gateway", args: []string{"delete", "default"},
			want: []call{{"SIOCDELRT", ctl.AF_INET, ctl.Rtentry{Dst: a("0.0.0.0"), Genmask: a("0.0.0.0"), Flags: ctl.RTF_GATEWAY}}}},
		{name: "get", args: []string{"get", "10.1.2.3"},
			want: []call{{"RTM_GET", ctl.AF_INET, ctl.Rtentry{Dst: a("10.1.2.3")}}}},
		{name: "get inet6", args: []string{"get", "2001:db8::1", "-o", "json"},
			want: []call{{"RTM_GET", ctl.AF_INET6, ctl.Rtentry{Dst: a("2001:db8::1")}}}},

		{name: "no subcommand", wantErr: "route: missing subcommand (add, delete or get)"},
		{name: "unknown subcommand", args: []string{"flush"}, wantErr: `route: unknown subcommand "flush" (add, delete or get)`},
		{name: "add without gateway", args: []string{"add", "10.1.0.0/16"},
			wantErr: "route: add needs a gateway (with -interface, one of this host's addresses)"},
		{name: "add nothing", args: []string{"add"}, wantErr: "route: add needs a destination"},
		{name: "extra", args: []string{"add", "10.1.0.0/16", "10.0.0.254", "x"}, wantErr: `route: unexpected argument "x"`},
		{name: "bad dest", args: []string{"add", "10.1.0/16", "10.0.0.254"}, wantErr: `route: bad destination "10.1.0/16" (ADDR, ADDR/PLEN or default)`},
		{name: "bad gateway", args: []string{"add", "10.1.0.0/16", "gw"}, wantErr: `route: bad gateway "gw" (an address)`},
		{name: "mixed families", args: []string{"add", "10.1.0.0/16", "fe80::1"}, wantErr: "route: gateway fe80::1 is not of the family of 10.1.0.0/16"},
		{name: "inet6 v4 dest", args: []string{"add", "-inet6", "10.1.0.0/16", "10.0.0.1"}, wantErr: "route: 10.1.0.0/16 is not an IPv6 destination"},
		{name: "host with prefix", args: []string{"add", "-host", "10.1.0.0/16", "10.0.0.254"}, wantErr: "route: -host cannot have a prefix length or default"},
		{name: "net and host", args: []string{"add", "-net", "-host", "10.1.0.0", "10.0.0.254"}, wantErr: "route: -net and -host exclude each other"},
		{name: "prefix and netmask", args: []string{"add", "10.1.0.0/16", "10.0.0.254", "-netmask", "255.255.0.0"},
			wantErr: "route: give the netmask as /PLEN or -netmask, not both"},
		{name: "bad netmask", args: []string{"add", "10.1.0.0", "10.0.0.254", "-netmask", "nope"},
			wantErr: `route: bad netmask "nope" (use 255.255.255.0 or 0xffffff00)`},
		{name: "netmask without value", args: []string{"add", "10.1.0.0", "10.0.0.254", "-netmask"}, wantErr: "route: -netmask needs an argument"},
		{name: "unknown option", args: []string{"add", "-proto", "10.1.0.0/16", "10.0.0.254"}, wantErr: "route: unsupported option -proto"},
		{name: "get two", args: []string{"get", "10.0.0.1", "10.0.0.2"}, wantErr: "route: get takes exactly one destination"},
		{name: "get with -host", args: []string{"get", "-host", "10.0.0.1"}, wantErr: "route: get takes only -inet6 and -o json"},
		{name: "json on add", args: []string{"add", "default", "10.0.0.254", "-o", "json"}, wantErr: "route: add has no output to format"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls, _, err := runCalls(t, &fakeDaemon{}, append([]string{"route"}, tc.args...)...)
			if d := diff(tc.wantErr, err); d != "" {
				t.Errorf("error (-want +got):\n%s", d)
			}
			if d := diff(tc.want, calls); d != "" {
				t.Errorf("requests (-want +got):\n%s", d)
			}
		})
	}
}

func TestRouteGetOutput(t *testing.T) {
	a := netip.MustParseAddr
	replies := map[string]ctl.Rtentry{
		"10.1.2.3": {Dst: a("10.1.0.0"), Gateway: a("10.0.0.254"), Genmask: a("255.255.0.0"),
			Flags: ctl.RTF_UP | ctl.RTF_GATEWAY | ctl.RTF_STATIC, Ifp: "tap0", Type: "PREFIX"},
		"0.0.0.0": {Dst: a("0.0.0.0"), Gateway: a("10.0.0.254"), Genmask: a("0.0.0.0"),
			Flags: ctl.RTF_UP | ctl.RTF_GATEWAY | ctl.RTF_STATIC | 0x100000, Ifp: "tap0", Type: "DEFAULT"},
		"10.0.0.9": {Dst: a("10.0.0.0"), Gateway: a("10.0.0.1"), Genmask: a("255.255.255.0"),
			Flags: ctl.RTF_UP | ctl.RTF_KERNEL, Ifp: "tap0", Type: "IF_RESOLVER"},
		"2001:db8::1": {Dst: a("2001:db8::"), Genmask: a("ffff:ffff:ffff:ffff::"), Flags: ctl.RTF_UP, Ifp: "tap0", Type: "IF_RESOLVER"},
	}
	d := &fakeDaemon{answer: func(c call) (any, error) {
		r, ok := replies[c.Args.(ctl.Rtentry).Dst.String()]
		if !ok {
			return nil, refuse(c.Op, ctl.ESRCH, "no route to "+c.Args.(ctl.Rtentry).Dst.String())
		}
		return r, nil
	}}
	for _, tc := range []struct {
		name string
		args []string
		want string
		err  string
	}{
		{name: "gateway route", args: []string{"10.1.2.3"}, want: "" +
			"   route to: 10.1.2.3\n" +
			"destination: 10.1.0.0\n" +
			"       mask: 255.255.0.0\n" +
			"    gateway: 10.0.0.254\n" +
			"  interface: tap0\n" +
			"      flags: <UP,GATEWAY,STATIC>\n"},
		{name: "default", args: []string{"default"}, want: "" +
			"   route to: default\n" +
			"destination: default\n" +
			"       mask: default\n" +
			"    gateway: 10.0.0.254\n" +
			"  interface: tap0\n" +
			"      flags: <UP,GATEWAY,STATIC,0x100000>\n"},
		{name: "interface route", args: []string{"10.0.0.9"}, want: "" +
			"   route to: 10.0.0.9\n" +
			"destination: 10.0.0.0\n" +
			"       mask: 255.255.255.0\n" +
			"    gateway: 10.0.0.1\n" +
			"  interface: tap0\n" +
			"      flags: <UP,KERNEL>\n"},
		{name: "inet6 without gateway", args: []string{"2001:db8::1"}, want: "" +
			"   route to: 2001:db8::1\n" +
			"destination: 2001:db8::\n" +
			"       mask: ffff:ffff:ffff:ffff::\n" +
			"  interface: tap0\n" +
			"      flags: <UP>\n"},
		{name: "json", args: []string{"-o", "json", "10.1.2.3"}, want: `{
  "rt_dst": "10.1.0.0",
  "rt_gateway": "10.0.0.254",
  "rt_genmask": "255.255.0.0",
  "rt_flags": 2051,
  "rt_ifp": "tap0",
  "rt_type": "PREFIX"
}
`},
		{name: "no route", args: []string{"192.0.2.1"}, err: "RTM_GET: ESRCH: no route to 192.0.2.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d.calls = nil
			_, out, err := runCalls(t, d, append([]string{"route", "get"}, tc.args...)...)
			if d := diff(tc.err, err); d != "" {
				t.Errorf("error (-want +got):\n%s", d)
			}
			if d := diff(tc.want, out); d != "" {
				t.Errorf("output (-want +got):\n%s", d)
			}
		})
	}
}
