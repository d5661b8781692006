package main

import (
	"fmt"
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
			want: []call{{"SIOCSETPROP", "", ctl.Prop{Proto: "ip", Name: "_arp_probe_count", Val: "5", Flags: ctl.MOD_PROP_ACTIVE}}}},
		{name: "set temporary, joined -p", args: []string{"set-prop", "-t", "-pforwarding=on", "ipv4"},
			want: []call{{"SIOCSETPROP", "", ctl.Prop{Proto: "ipv4", Name: "forwarding", Val: "on", Flags: ctl.MOD_PROP_ACTIVE}}}},
		{name: "append", args: []string{"set-prop", "-p", "x+=1", "tcp"},
			want: []call{{"SIOCSETPROP", "", ctl.Prop{Proto: "tcp", Name: "x", Val: "1", Flags: ctl.MOD_PROP_ACTIVE | ctl.MOD_PROP_APPEND}}}},
		{name: "remove", args: []string{"set-prop", "-p", "x-=1", "tcp"},
			want: []call{{"SIOCSETPROP", "", ctl.Prop{Proto: "tcp", Name: "x", Val: "1", Flags: ctl.MOD_PROP_ACTIVE | ctl.MOD_PROP_REMOVE}}}},
		{name: "reset", args: []string{"reset-prop", "-p", "_dup_recovery", "ip"},
			want: []call{{"SIOCSETPROP", "", ctl.Prop{Proto: "ip", Name: "_dup_recovery", Flags: ctl.MOD_PROP_DEFAULT}}}},

		{name: "no subcommand", wantErr: "ipadm: missing subcommand"},
		{name: "unknown subcommand", args: []string{"create-addr"}, wantErr: `ipadm: unknown subcommand "create-addr"`},
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

// propDaemon answers SIOCGETPROP as ifmgr does: tunables under ip with a
// range, forwarding under ipv4/ipv6 (per interface for tap0, ipv4 only),
// mtu per interface with DEFAULT and POSSIBLE only.
func propDaemon() *fakeDaemon {
	return &fakeDaemon{answer: func(c call) (any, error) {
		if c.Op == "SIOCGLIFMTU" {
			lr := c.Args.(ctl.Lifreq)
			if lr.Name != "tap0" || c.Family != ctl.AF_INET {
				return nil, refuse(c.Op, ctl.ENXIO, "no interface "+lr.Name)
			}
			return ctl.Lifreq{Name: "tap0", MTU: 1400}, nil
		}
		p := c.Args.(ctl.Prop)
		if p.Ifname != "" && (p.Ifname != "tap0" || p.Proto != "ipv4") {
			return nil, refuse(c.Op, ctl.ENXIO, fmt.Sprintf("no %s interface named %q", p.Proto, p.Ifname))
		}
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
		case p.Name == "mtu" && p.Ifname != "":
			if p.Flags&(ctl.MOD_PROP_DEFAULT|ctl.MOD_PROP_POSSIBLE) == 0 {
				return nil, refuse(c.Op, ctl.ENOTSUP, "mtu needs an interface name and DEFAULT or POSSIBLE")
			}
			return pick("", "", "1500", "68-1500")
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
		{name: "named", args: []string{"show-prop", "-p", "forwarding,_arp_probe_count"}, calls: 12, want: "" +
			"PROTO PROPERTY            PERM CURRENT       PERSISTENT    DEFAULT       POSSIBLE\n" +
			"ipv4  forwarding          rw   off           --            off           on,off\n" +
			"ipv6  forwarding          rw   off           --            off           on,off\n" +
			"ip    _arp_probe_count    rw   3             --            3             0-20\n"},
		{name: "named with proto", args: []string{"show-prop", "-p", "forwarding", "ipv6"}, calls: 4, want: "" +
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
		{name: "ifprop", args: []string{"show-ifprop", "-p", "mtu,forwarding", "-m", "ipv4", "tap0"}, want: "" +
			"IFNAME      PROPERTY        PROTO PERM CURRENT    PERSISTENT DEFAULT    POSSIBLE\n" +
			"tap0        mtu             ipv4  --   1400       --         1500       68-1500\n" +
			"tap0        forwarding      ipv4  rw   off        --         off        on,off\n"},
		{name: "ifprop both families, ipv6 not plumbed", args: []string{"show-ifprop", "tap0"}, want: "" +
			"IFNAME      PROPERTY        PROTO PERM CURRENT    PERSISTENT DEFAULT    POSSIBLE\n" +
			"tap0        forwarding      ipv4  rw   off        --         off        on,off\n" +
			"tap0        mtu             ipv4  --   1400       --         1500       68-1500\n"},
		{name: "ifprop missing interface", args: []string{"show-ifprop", "tap9"}, err: `SIOCGETPROP: ENXIO: no ipv4 interface named "tap9"`},
		{name: "ifprop missing family", args: []string{"show-ifprop", "-m", "ipv6", "tap0"}, err: `SIOCGETPROP: ENXIO: no ipv6 interface named "tap0"`},
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
