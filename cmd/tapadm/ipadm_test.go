package main

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/tapstack/tapstack/ctl"
)

func TestIpadmSetPropArgs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		want    []call
		wantErr string
	}{
		{name: "set", args: []string{"set-prop", "-p", "_arp_probe_count=5", "ip"},
			want: []call{{"ipadm.set-prop", "", ctl.IpadmProp{Proto: "ip", Name: "_arp_probe_count", Value: "5"}}}},
		{name: "set temporary, joined -p", args: []string{"set-prop", "-t", "-pforwarding=on", "ipv4"},
			want: []call{{"ipadm.set-prop", "", ctl.IpadmProp{Proto: "ipv4", Name: "forwarding", Value: "on", Temporary: true}}}},
		{name: "append", args: []string{"set-prop", "-p", "x+=1", "tcp"},
			want: []call{{"ipadm.set-prop", "", ctl.IpadmProp{Proto: "tcp", Name: "x", Value: "1", Flags: ctl.MOD_PROP_APPEND}}}},
		{name: "remove", args: []string{"set-prop", "-p", "x-=1", "tcp"},
			want: []call{{"ipadm.set-prop", "", ctl.IpadmProp{Proto: "tcp", Name: "x", Value: "1", Flags: ctl.MOD_PROP_REMOVE}}}},
		{name: "reset", args: []string{"reset-prop", "-p", "_dup_recovery", "ip"},
			want: []call{{"ipadm.reset-prop", "", ctl.IpadmProp{Proto: "ip", Name: "_dup_recovery"}}}},

		{name: "no subcommand", wantErr: "ipadm: missing subcommand"},
		{name: "unknown subcommand", args: []string{"create-bridge"}, wantErr: `ipadm: unknown subcommand "create-bridge"`},
		{name: "set without -p", args: []string{"set-prop", "ip"}, wantErr: "ipadm: set-prop takes exactly one -p"},
		{name: "set two -p", args: []string{"set-prop", "-p", "a=1", "-p", "b=2", "ip"}, wantErr: "ipadm: set-prop takes exactly one -p"},
		{name: "set without value", args: []string{"set-prop", "-p", "forwarding", "ipv4"}, wantErr: `ipadm: set-prop takes -p PROP=VALUE, not "forwarding"`},
		{name: "set without name", args: []string{"set-prop", "-p", "=1", "ipv4"}, wantErr: `ipadm: set-prop: missing property name in "=1"`},
		{name: "set without proto", args: []string{"set-prop", "-p", "forwarding=on"}, wantErr: "ipadm: set-prop takes exactly one protocol (ip, ipv4, ipv6, ...)"},
		{name: "set -p without value", args: []string{"set-prop", "ip", "-p"}, wantErr: "ipadm: set-prop: -p needs an argument"},
		{name: "set unknown option", args: []string{"set-prop", "-m", "ipv4", "-p", "a=1", "ip"}, wantErr: "ipadm: set-prop: unsupported option -m"},
		{name: "set json", args: []string{"set-prop", "-p", "a=1", "ip", "-o", "json"}, wantErr: "ipadm: set-prop has no output to format"},
		{name: "reset with value", args: []string{"reset-prop", "-p", "a=1", "ip"}, wantErr: `ipadm: reset-prop takes -p PROP, not "a=1"`},
		{name: "show-prop two protos", args: []string{"show-prop", "ip", "tcp"}, wantErr: "ipadm: show-prop takes at most one protocol"},
		{name: "show-prop -m", args: []string{"show-prop", "-m", "ipv4"}, wantErr: "ipadm: show-prop: unsupported option -m"},
		{name: "show-prop bad -o", args: []string{"show-prop", "-o", "csv"}, wantErr: `ipadm: unsupported output format "csv" (only json)`},
		{name: "show-ifprop no interface", args: []string{"show-ifprop", "-p", "mtu"}, wantErr: "ipadm: show-ifprop takes exactly one interface"},
		{name: "show-ifprop bad -m", args: []string{"show-ifprop", "-m", "inet", "tap0"}, wantErr: `ipadm: show-ifprop: -m takes ipv4 or ipv6, not "inet"`},
		{name: "show-ifprop empty name", args: []string{"show-ifprop", "-p", "mtu,", "tap0"}, wantErr: `ipadm: show-ifprop: empty property name in "mtu,"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls, _, err := runCalls(t, &fakeDaemon{}, append([]string{"ipadm"}, tc.args...)...)
			if d := diff(tc.wantErr, err); d != "" {
				t.Errorf("error (-want +got):\n%s", d)
			}
			if d := diff(tc.want, calls); d != "" {
				t.Errorf("requests (-want +got):\n%s", d)
			}
		})
	}
}

// propDaemon answers SIOCGETPROP as ifmgr does (tunables under ip with a
// range, forwarding under ipv4/ipv6), and ipadm.persistent-props with
// _arp_probe_count recorded as 4.
func propDaemon() *fakeDaemon {
	return &fakeDaemon{answer: func(c call) (any, error) {
		if c.Op == "ipadm.persistent-props" {
			return []ctl.IpadmProp{{Proto: "ip", Name: "_arp_probe_count", Value: "4"}}, nil
		}
		p := c.Args.(ctl.Prop)
		pick := func(perm, cur, def, poss string) (any, error) {
			switch {
			case p.Flags&ctl.MOD_PROP_PERM != 0:
				p.Val = perm
			case p.Flags&ctl.MOD_PROP_DEFAULT != 0:
				p.Val = def
			case p.Flags&ctl.MOD_PROP_POSSIBLE != 0:
				p.Val = poss
			default:
				p.Val = cur
			}
			return p, nil
		}
		switch {
		case p.Name == "forwarding" && (p.Proto == "ipv4" || p.Proto == "ipv6"):
			return pick("rw", "off", "off", "on,off")
		case strings.HasPrefix(p.Name, "_") && p.Name != "_nosuch" && p.Proto == "ip":
			return pick("rw", "3", "3", "0-20")
		}
		return nil, refuse(c.Op, ctl.ENOENT, fmt.Sprintf("no property %s for protocol %s", p.Name, p.Proto))
	}}
}

func TestIpadmShowProp(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		want  string
		err   string
		calls int // requests sent, when checked
	}{
		{name: "named", args: []string{"show-prop", "-p", "forwarding,_arp_probe_count"}, calls: 13, want: "" +
			"PROTO PROPERTY            PERM CURRENT       PERSISTENT    DEFAULT       POSSIBLE\n" +
			"ipv4  forwarding          rw   off           --            off           on,off\n" +
			"ipv6  forwarding          rw   off           --            off           on,off\n" +
			"ip    _arp_probe_count    rw   3             4             3             0-20\n"},
		{name: "named with proto", args: []string{"show-prop", "-p", "forwarding", "ipv6"}, calls: 5, want: "" +
			"PROTO PROPERTY            PERM CURRENT       PERSISTENT    DEFAULT       POSSIBLE\n" +
			"ipv6  forwarding          rw   off           --            off           on,off\n"},
		{name: "a protocol's properties", args: []string{"show-prop", "ipv4"}, want: "" +
			"PROTO PROPERTY            PERM CURRENT       PERSISTENT    DEFAULT       POSSIBLE\n" +
			"ipv4  forwarding          rw   off           --            off           on,off\n"},
		{name: "json", args: []string{"show-prop", "-p", "forwarding", "ipv4", "-o", "json"}, want: `[
  {
    "proto": "ipv4",
    "property": "forwarding",
    "perm": "rw",
    "current": "off",
    "persistent": "",
    "default": "off",
    "possible": "on,off"
  }
]
`},
		{name: "no such protocol", args: []string{"show-prop", "-o", "json", "ax25"}, want: "[]\n"},
		{name: "unknown property", args: []string{"show-prop", "-p", "_nosuch"}, err: "SIOCGETPROP: ENOENT: no property _nosuch for protocol ip"},
		{name: "mtu is per interface", args: []string{"show-prop", "-p", "mtu"},
			err: "SIOCGETPROP: ENOENT: no property mtu for protocol ip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls, out, err := runCalls(t, propDaemon(), append([]string{"ipadm"}, tc.args...)...)
			if d := diff(tc.err, err); d != "" {
				t.Errorf("error (-want +got):\n%s", d)
			}
			if d := diff(tc.want, out); d != "" {
				t.Errorf("output (-want +got):\n%s", d)
			}
			if tc.calls != 0 && len(calls) != tc.calls {
				t.Errorf("%d requests, want %d", len(calls), tc.calls)
			}
		})
	}
}

// TestIpadmShowPropAll checks the listing without -p walks ctl.PropNames:
// every tunable under ip, then forwarding under ipv4 and ipv6, never mtu.
func TestIpadmShowPropAll(t *testing.T) {
	_, out, err := runCalls(t, propDaemon(), "ipadm", "show-prop")
	if err != "" {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	var got []string
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		got = append(got, f[0]+" "+f[1])
	}
	var want []string
	for _, n := range ctl.PropNames {
		if strings.HasPrefix(n, "_") {
			want = append(want, "ip "+n)
		}
	}
	want = append(want, "ipv4 forwarding", "ipv6 forwarding")
	if d := diff(want, got); d != "" {
		t.Errorf("rows (-want +got):\n%s", d)
	}
}

func TestIpadmAddrObjectArgs(t *testing.T) {
	pfx := netip.MustParsePrefix
	for _, tc := range []struct {
		name    string
		args    []string
		want    []call
		wantErr string
	}{
		{name: "create-ip", args: []string{"create-ip", "tap0"}, want: []call{{"ipadm.create-ip", "", ctl.IpadmIf{Name: "tap0"}}}},
		{name: "create-ip -t", args: []string{"create-ip", "-t", "tap0"}, want: []call{{"ipadm.create-ip", "", ctl.IpadmIf{Name: "tap0", Temporary: true}}}},
		{name: "delete-ip", args: []string{"delete-ip", "tap0"}, want: []call{{"ipadm.delete-ip", "", ctl.IpadmIf{Name: "tap0"}}}},
		{name: "disable-if", args: []string{"disable-if", "-t", "tap0"}, want: []call{{"ipadm.disable-if", "", ctl.IpadmIf{Name: "tap0", Temporary: true}}}},
		{name: "static", args: []string{"create-addr", "-T", "static", "-a", "10.0.0.1/24", "tap0/v4"},
			want: []call{{"ipadm.create-addr", "", ctl.IpadmAddr{Obj: "tap0/v4", Type: "static", Local: pfx("10.0.0.1/24")}}}},
		{name: "static local= remote=", args: []string{"create-addr", "-t", "-T", "static", "-a", "local=10.0.0.1,remote=10.0.0.2", "tap0/p"},
			want: []call{{"ipadm.create-addr", "", ctl.IpadmAddr{Obj: "tap0/p", Type: "static", Local: pfx("10.0.0.1/32"),
				Remote: netip.MustParseAddr("10.0.0.2"), Temporary: true}}}},
		{name: "static v6", args: []string{"create-addr", "-T", "static", "-a", "local=2001:db8::1/64", "tap0/v6"},
			want: []call{{"ipadm.create-addr", "", ctl.IpadmAddr{Obj: "tap0/v6", Type: "static", Local: pfx("2001:db8::1/64")}}}},
		{name: "addrconf", args: []string{"create-addr", "-T", "addrconf", "tap0/ll"},
			want: []call{{"ipadm.create-addr", "", ctl.IpadmAddr{Obj: "tap0/ll", Type: "addrconf"}}}},
		{name: "delete-addr", args: []string{"delete-addr", "tap0/v4"}, want: []call{{"ipadm.delete-addr", "", ctl.IpadmAddrObj{Obj: "tap0/v4"}}}},
		{name: "down-addr", args: []string{"down-addr", "-t", "tap0/v4"}, want: []call{{"ipadm.down-addr", "", ctl.IpadmAddrObj{Obj: "tap0/v4", Temporary: true}}}},
		{name: "set-ifprop", args: []string{"set-ifprop", "-p", "mtu=1400", "-m", "ipv4", "tap0"},
			want: []call{{"ipadm.set-ifprop", "", ctl.IpadmProp{Ifname: "tap0", Proto: "ipv4", Name: "mtu", Value: "1400"}}}},
		{name: "reset-ifprop", args: []string{"reset-ifprop", "-t", "-p", "mtu", "-m", "ipv6", "tap0"},
			want: []call{{"ipadm.reset-ifprop", "", ctl.IpadmProp{Ifname: "tap0", Proto: "ipv6", Name: "mtu", Temporary: true}}}},
		{name: "set-addrprop", args: []string{"set-addrprop", "-p", "deprecated=on", "tap0/v4"},
			want: []call{{"ipadm.set-addrprop", "", ctl.IpadmProp{Obj: "tap0/v4", Name: "deprecated", Value: "on"}}}},

		{name: "create-ip two", args: []string{"create-ip", "tap0", "tap1"}, wantErr: "ipadm: create-ip takes exactly one interface"},
		{name: "delete-ip -t", args: []string{"delete-ip", "-t", "tap0"}, wantErr: "ipadm: delete-ip: unsupported option -t"},
		{name: "no -T", args: []string{"create-addr", "-a", "10.0.0.1/24", "tap0/v4"}, wantErr: "ipadm: create-addr needs -T static or -T addrconf"},
		{name: "bad -T", args: []string{"create-addr", "-T", "dynamic", "tap0/v4"}, wantErr: `ipadm: create-addr: -T takes static or addrconf, not "dynamic"`},
		{name: "static without -a", args: []string{"create-addr", "-T", "static", "tap0/v4"}, wantErr: "ipadm: create-addr -T static needs -a [local=]ADDR/PREFIX[,remote=ADDR]"},
		{name: "no prefix", args: []string{"create-addr", "-T", "static", "-a", "10.0.0.1", "tap0/v4"}, wantErr: `ipadm: create-addr: the local address must be ADDR/PREFIX, not "10.0.0.1"`},
		{name: "bad address", args: []string{"create-addr", "-T", "static", "-a", "10.0.0.300/24", "tap0/v4"}, wantErr: `ipadm: create-addr: bad local address "10.0.0.300/24"`},
		{name: "bad key", args: []string{"create-addr", "-T", "static", "-a", "peer=10.0.0.1/24", "tap0/v4"}, wantErr: `ipadm: create-addr: -a takes local= and remote=, not "peer"`},
		{name: "addrconf with -a", args: []string{"create-addr", "-T", "addrconf", "-a", "fe80::1/64", "tap0/v6"}, wantErr: "ipadm: create-addr -T addrconf takes no -a"},
		{name: "no object", args: []string{"create-addr", "-T", "addrconf"}, wantErr: "ipadm: create-addr takes exactly one address object (IF/NAME)"},
		{name: "set-ifprop no -m", args: []string{"set-ifprop", "-p", "mtu=1400", "tap0"}, wantErr: "ipadm: set-ifprop needs -m ipv4 or -m ipv6"},
		{name: "set-ifprop no value", args: []string{"set-ifprop", "-p", "mtu=", "-m", "ipv4", "tap0"}, wantErr: `ipadm: set-ifprop: missing value in "mtu="`},
		{name: "show-addr -p without -o", args: []string{"show-addr", "-p"}, wantErr: "ipadm: show-addr: -p needs -o FIELD,..."},
		{name: "show-addr unknown field", args: []string{"show-addr", "-o", "addrobj,color"}, wantErr: `ipadm: show-addr: unknown field "color"`},
		{name: "show-if two", args: []string{"show-if", "tap0", "tap1"}, wantErr: "ipadm: show-if takes at most one interface"},
		{name: "create-addr json", args: []string{"create-addr", "-T", "addrconf", "tap0/v6", "-o", "json"}, wantErr: "ipadm: create-addr has no output to format"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls, _, err := runCalls(t, &fakeDaemon{}, append([]string{"ipadm"}, tc.args...)...)
			if d := diff(tc.wantErr, err); d != "" {
				t.Errorf("error (-want +got):\n%s", d)
			}
			if d := diff(tc.want, calls); d != "" {
				t.Errorf("requests (-want +got):\n%s", d)
			}
		})
	}
}

// showDaemon answers the ipadm show operations with fixed rows.
func showDaemon() *fakeDaemon {
	return &fakeDaemon{answer: func(c call) (any, error) {
		switch c.Op {
		case "ipadm.show-addr":
			return []ctl.AddrInfo{
				{Obj: "lo0/v4", Type: "static", State: "ok", Addr: "127.0.0.1/8"},
				{Obj: "tap0/v4", Type: "static", State: "ok", Addr: "10.0.0.1/24", Persistent: true},
				{Obj: "tap0/averyveryverylongname", Type: "static", State: "inaccessible", Addr: "10.0.0.9/24"},
				{Obj: "lo0/v6", Type: "static", State: "ok", Addr: "::1/128"},
			}, nil
		case "ipadm.show-if":
			return []ctl.IfInfo{
				{Name: "lo0", Class: "loopback", State: "ok", Current: "-m-v------46", Persistent: "---"},
				{Name: "tap0", Class: "ip", State: "ok", Current: "bm--------46", Persistent: "-46"},
			}, nil
		case "ipadm.show-ifprop":
			return []ctl.PropInfo{{Ifname: "tap0", Proto: "ipv4", Property: "mtu", Perm: "rw", Current: "1400",
				Persistent: "1400", Default: "1500", Possible: "68-1500"}}, nil
		case "ipadm.show-addrprop":
			return []ctl.PropInfo{{Obj: "tap0/v4", Property: "deprecated", Perm: "rw", Current: "off",
				Default: "off", Possible: "on,off"}}, nil
		}
		return nil, refuse(c.Op, ctl.EINVAL, "unexpected")
	}}
}

func TestIpadmShowOutput(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{name: "show-addr", args: []string{"show-addr"}, want: "" +
			"ADDROBJ           TYPE     STATE        ADDR\n" +
			"lo0/v4            static   ok           127.0.0.1/8\n" +
			"tap0/v4           static   ok           10.0.0.1/24\n" +
			"tap0/averyveryverylongname static inaccessible 10.0.0.9/24\n" +
			"lo0/v6            static   ok           ::1/128\n"},
		{name: "show-addr fields", args: []string{"show-addr", "-o", "ADDR,addrobj"}, want: fmt.Sprintf(""+
			"%-35s%s\n%-35s%s\n%-35s%s\n%-35s%s\n%-35s%s\n", "ADDR", "ADDROBJ", "127.0.0.1/8", "lo0/v4",
			"10.0.0.1/24", "tap0/v4", "10.0.0.9/24", "tap0/averyveryverylongname", "::1/128", "lo0/v6")},
		{name: "show-addr parsable", args: []string{"show-addr", "-p", "-o", "addrobj,addr"}, want: "" +
			"lo0/v4:127.0.0.1/8\n" +
			"tap0/v4:10.0.0.1/24\n" +
			"tap0/averyveryverylongname:10.0.0.9/24\n" +
			`lo0/v6:\:\:1/128` + "\n"},
		{name: "show-addr parsable one field", args: []string{"show-addr", "-p", "-o", "addr", "lo0/"}, want: "" +
			"127.0.0.1/8\n10.0.0.1/24\n10.0.0.9/24\n::1/128\n"},
		{name: "show-if", args: []string{"show-if"}, want: "" +
			"IFNAME     CLASS    STATE    CURRENT      PERSISTENT\n" +
			"lo0        loopback ok       -m-v------46 ---\n" +
			"tap0       ip       ok       bm--------46 -46\n"},
		{name: "show-if parsable", args: []string{"show-if", "-p", "-o", "ifname,state"}, want: "lo0:ok\ntap0:ok\n"},
		{name: "show-if json", args: []string{"show-if", "tap0", "-o", "json"}, want: `[
  {
    "ifname": "lo0",
    "class": "loopback",
    "state": "ok",
    "current": "-m-v------46",
    "persistent": "---"
  },
  {
    "ifname": "tap0",
    "class": "ip",
    "state": "ok",
    "current": "bm--------46",
    "persistent": "-46"
  }
]
`},
		{name: "show-ifprop", args: []string{"show-ifprop", "-p", "mtu", "-m", "ipv4", "tap0"}, want: "" +
			"IFNAME      PROPERTY        PROTO PERM CURRENT    PERSISTENT DEFAULT    POSSIBLE\n" +
			"tap0        mtu             ipv4  rw   1400       1400       1500       68-1500\n"},
		{name: "show-addrprop", args: []string{"show-addrprop", "-p", "deprecated", "tap0/v4"}, want: "" +
			"ADDROBJ         PROPERTY    PERM CURRENT      PERSISTENT   DEFAULT      POSSIBLE\n" +
			"tap0/v4         deprecated  rw   off          --           off          on,off\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, out, err := runCalls(t, showDaemon(), append([]string{"ipadm"}, tc.args...)...)
			if err != "" {
				t.Fatal(err)
			}
			if d := diff(tc.want, out); d != "" {
				t.Errorf("output (-want +got):\n%s", d)
			}
		})
	}
}
