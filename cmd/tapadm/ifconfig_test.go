package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapstack/tapstack/ctl"
)

// cliIfconfigA is the `ifconfig -a` example of cli.md, byte for byte
// (TestCLIExampleMatchesSpec keeps the two the same).
const cliIfconfigA = "" +
	"lo0: flags=2001000849<UP,LOOPBACK,RUNNING,MULTICAST,IPv4,VIRTUAL> mtu 8232 index 1\n" +
	"\tinet 127.0.0.1 netmask ff000000 \n" +
	"tap0: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 2\n" +
	"\tinet 10.0.0.1 netmask ffffff00 broadcast 10.0.0.255\n" +
	"\tether 2:0:0:0:0:1 \n" +
	"tap0:1: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 2\n" +
	"\tinet 10.0.0.3 netmask ffffff00 broadcast 10.0.0.255\n" +
	"lo0: flags=2002000849<UP,LOOPBACK,RUNNING,MULTICAST,IPv6,VIRTUAL> mtu 8252 index 1\n" +
	"\tinet6 ::1/128 \n"

// TestCLIExampleMatchesSpec checks cliIfconfigA against the block in
// ../shared/spec/cli.md, so the test follows the spec if it changes.
func TestCLIExampleMatchesSpec(t *testing.T) {
	// The shared directory sits next to the checkout (../shared) in a
	// developer's tree; a clone made elsewhere (CI) finds it at /work/shared
	// or $TAPSTACK_SHARED.
	var f *os.File
	var err error
	for _, dir := range []string{os.Getenv("TAPSTACK_SHARED"), filepath.Join("..", "..", "..", "shared"), "/work/shared"} {
		if dir == "" {
			continue
		}
		if f, err = os.Open(filepath.Join(dir, "spec", "cli.md")); err == nil {
			break
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cli.md is needed under CI: %v", err)
		}
		t.Skipf("cli.md not found outside CI (%v); the shared directory is expected at ../shared", err)
	}
	defer f.Close()
	var block strings.Builder
	state := 0 // 0: before the heading, 1: before the fence, 2: in the block
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case state == 0 && strings.HasPrefix(line, "Output of `ifconfig -a`"):
			state = 1
		case state == 1 && strings.HasPrefix(line, "```"):
			state = 2
		case state == 2 && strings.HasPrefix(line, "```"):
			state = 3
		case state == 2:
			block.WriteString(line + "\n")
		}
	}
	if state != 3 {
		t.Fatalf("no `ifconfig -a` example block found in %s", f.Name())
	}
	if d := diff(block.String(), cliIfconfigA); d != "" {
		t.Errorf("cli.md example differs from the test's copy (-cli.md +test):\n%s", d)
	}
}

func TestIfconfigAllOutput(t *testing.T) {
	d := &fakeDaemon{answer: cliExample.answer}
	a, stdout, _ := testApp(d)
	if err := a.dispatch(context.Background(), []string{"ifconfig", "-a"}); err != nil {
		t.Fatalf("ifconfig -a: %v", err)
	}
	if d := diff(cliIfconfigA, stdout.String()); d != "" {
		t.Errorf("ifconfig -a output (-want +got):\n%s", d)
	}

	// The listing asks IPv4 then IPv6 with ifconfig's lifc_flags, and asks
	// for the hardware address of unit 0 only.
	wantConf := []call{
		{Op: "SIOCGLIFCONF", Family: ctl.AF_INET, Args: ctl.Lifconf{Family: ctl.AF_INET, Flags: lifcAll}},
		{Op: "SIOCGLIFCONF", Family: ctl.AF_INET6, Args: ctl.Lifconf{Family: ctl.AF_INET6, Flags: lifcAll}},
	}
	var gotConf []call
	var hw []string
	for _, c := range d.calls {
		switch c.Op {
		case "SIOCGLIFCONF":
			gotConf = append(gotConf, c)
		case "SIOCGLIFHWADDR":
			hw = append(hw, string(c.Family)+" "+c.Args.(ctl.Lifreq).Name)
		}
	}
	if d := diff(wantConf, gotConf); d != "" {
		t.Errorf("SIOCGLIFCONF requests (-want +got):\n%s", d)
	}
	if d := diff([]string{"inet lo0", "inet tap0", "inet6 lo0"}, hw); d != "" {
		t.Errorf("SIOCGLIFHWADDR requests (-want +got):\n%s", d)
	}
	if lifcAll != 0x1d {
		t.Errorf("lifc_flags = %#x, want LIFC_NOXMIT|LIFC_TEMPORARY|LIFC_ALLZONES|LIFC_UNDER_IPMP (0x1d)", lifcAll)
	}
}

func TestIfconfigStatusRequests(t *testing.T) {
	d := &fakeDaemon{answer: cliExample.answer}
	a, _, _ := testApp(d)
	if err := a.dispatch(context.Background(), []string{"ifconfig", "tap0"}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range d.calls {
		got = append(got, c.Op+" "+string(c.Family)+" "+c.Args.(ctl.Lifreq).Name)
	}
	want := []string{
		"SIOCGLIFFLAGS inet tap0",
		"SIOCGLIFMETRIC inet tap0",
		"SIOCGLIFMTU inet tap0",
		"SIOCGLIFINDEX inet tap0",
		"SIOCGLIFZONE inet tap0",
		"SIOCGLIFADDR inet tap0",
		"SIOCGLIFNETMASK inet tap0",
		"SIOCGLIFBRDADDR inet tap0",
		"SIOCGLIFHWADDR inet tap0",
	}
	if d := diff(want, got); d != "" {
		t.Errorf("requests for `ifconfig tap0` (-want +got):\n%s", d)
	}
}

func TestIfconfigShow(t *testing.T) {
	m := model{
		ctl.AF_INET: append(append([]lif{}, cliExample[ctl.AF_INET]...),
			lif{name: "ptp0", flags: ctl.IFF_UP | ctl.IFF_POINTOPOINT | ctl.IFF_RUNNING | ctl.IFF_IPV4,
				metric: 2, mtu: 1400, index: 5, addr: "10.1.0.1", plen: 32, mask: "255.255.255.255", dst: "10.1.0.2"},
			lif{name: "z0", flags: 0x1000842, mtu: 1500, index: 6, zone: "web", mask: "255.0.0.0"},
		),
		ctl.AF_INET6: append(append([]lif{}, cliExample[ctl.AF_INET6]...),
			lif{name: "tap0", flags: 0x2000841, mtu: 1500, index: 2, addr: "fe80::1", plen: 10,
				mask: "ffc0::", hw: "02:00:00:00:00:01"},
			lif{name: "tun6", flags: 0x2000851, mtu: 1480, index: 7, addr: "fe80::a", plen: 10,
				mask: "ffc0::", dst: "fe80::b"},
		),
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{
			name: "unit 0 without a family shows ether",
			args: []string{"tap0"},
			want: "tap0: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 2\n" +
				"\tinet 10.0.0.1 netmask ffffff00 broadcast 10.0.0.255\n" +
				"\tether 2:0:0:0:0:1 \n",
		},
		{
			name: "an explicit family shows just that family, as illumos",
			args: []string{"tap0", "inet"},
			want: "tap0: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 2\n" +
				"\tinet 10.0.0.1 netmask ffffff00 broadcast 10.0.0.255\n",
		},
		{
			name: "logical unit",
			args: []string{"tap0:1"},
			want: "tap0:1: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 2\n" +
				"\tinet 10.0.0.3 netmask ffffff00 broadcast 10.0.0.255\n",
		},
		{
			name: "inet6 on unit 0",
			args: []string{"tap0", "inet6"},
			want: "tap0: flags=2000841<UP,RUNNING,MULTICAST,IPv6> mtu 1500 index 2\n" +
				"\tinet6 fe80::1/10 \n",
		},
		{
			name: "point-to-point with a metric",
			args: []string{"ptp0"},
			want: "ptp0: flags=1000051<UP,POINTOPOINT,RUNNING,IPv4> metric 2 mtu 1400 index 5\n" +
				"\tinet 10.1.0.1 --> 10.1.0.2 netmask ffffffff \n",
		},
		{
			name: "point-to-point inet6",
			args: []string{"tun6", "inet6"},
			want: "tun6: flags=2000851<UP,POINTOPOINT,RUNNING,MULTICAST,IPv6> mtu 1480 index 7\n" +
				"\tinet6 fe80::a/10 --> fe80::b \n",
		},
		{
			name: "non-global zone, no address",
			args: []string{"z0", "inet"},
			want: "z0: flags=1000842<BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 6\n" +
				"\tzone web\n" +
				"\tinet 0.0.0.0 netmask ff000000 \n",
		},
		{
			name: "-a6 lists IPv6 only",
			args: []string{"-a6"},
			want: "lo0: flags=2002000849<UP,LOOPBACK,RUNNING,MULTICAST,IPv6,VIRTUAL> mtu 8252 index 1\n" +
				"\tinet6 ::1/128 \n" +
				"tap0: flags=2000841<UP,RUNNING,MULTICAST,IPv6> mtu 1500 index 2\n" +
				"\tinet6 fe80::1/10 \n" +
				"\tether 2:0:0:0:0:1 \n" +
				"tun6: flags=2000851<UP,POINTOPOINT,RUNNING,MULTICAST,IPv6> mtu 1480 index 7\n" +
				"\tinet6 fe80::a/10 --> fe80::b \n",
		},
		{
			name: "-ad4 lists IPv4 interfaces that are down",
			args: []string{"-ad4"},
			want: "z0: flags=1000842<BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 6\n" +
				"\tzone web\n" +
				"\tinet 0.0.0.0 netmask ff000000 \n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &fakeDaemon{answer: m.answer}
			a, stdout, _ := testApp(d)
			if err := a.dispatch(context.Background(), append([]string{"ifconfig"}, tt.args...)); err != nil {
				t.Fatalf("ifconfig %v: %v", tt.args, err)
			}
			if d := diff(tt.want, stdout.String()); d != "" {
				t.Errorf("ifconfig %v (-want +got):\n%s", tt.args, d)
			}
		})
	}
}

func TestIfconfigAllSkipsVanished(t *testing.T) {
	// tap0:1 is listed but gone by the time it is queried.
	d := &fakeDaemon{}
	d.answer = func(c call) (any, error) {
		if c.Op != "SIOCGLIFCONF" && c.Args.(ctl.Lifreq).Name == "tap0:1" {
			return nil, refuse(c.Op, ctl.ENXIO, "no interface tap0:1")
		}
		return cliExample.answer(c)
	}
	a, stdout, _ := testApp(d)
	if err := a.dispatch(context.Background(), []string{"ifconfig", "-a"}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stdout.String(), "tap0:1") {
		t.Errorf("vanished tap0:1 was listed:\n%s", stdout)
	}
}

func TestIfconfigJSON(t *testing.T) {
	d := &fakeDaemon{answer: cliExample.answer}
	a, stdout, _ := testApp(d)
	if err := a.dispatch(context.Background(), []string{"ifconfig", "tap0", "-o", "json"}); err != nil {
		t.Fatal(err)
	}
	want := `[
  {
    "name": "tap0",
    "family": "inet",
    "flags": 16779331,
    "flag_names": [
      "UP",
      "BROADCAST",
      "RUNNING",
      "MULTICAST",
      "IPv4"
    ],
    "metric": 0,
    "mtu": 1500,
    "index": 2,
    "addr": "10.0.0.1",
    "prefixlen": 24,
    "netmask": "255.255.255.0",
    "broadcast": "10.0.0.255",
    "zone": "global",
    "ether": "2:0:0:0:0:1"
  }
]
`
	if d := diff(want, stdout.String()); d != "" {
		t.Errorf("ifconfig tap0 -o json (-want +got):\n%s", d)
	}

	d = &fakeDaemon{answer: cliExample.answer}
	a, stdout, _ = testApp(d)
	if err := a.dispatch(context.Background(), []string{"ifconfig", "-a", "-o", "json"}); err != nil {
		t.Fatal(err)
	}
	var got []lifJSON
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("ifconfig -a -o json is not one JSON array: %v\n%s", err, stdout)
	}
	wantAll := []lifJSON{
		{Name: "lo0", Family: "inet", Flags: 0x2001000849,
			FlagNames: []string{"UP", "LOOPBACK", "RUNNING", "MULTICAST", "IPv4", "VIRTUAL"},
			MTU:       8232, Index: 1, Addr: "127.0.0.1", Prefixlen: 8, Netmask: "255.0.0.0", Zone: "global"},
		{Name: "tap0", Family: "inet", Flags: 0x1000843,
			FlagNames: []string{"UP", "BROADCAST", "RUNNING", "MULTICAST", "IPv4"},
			MTU:       1500, Index: 2, Addr: "10.0.0.1", Prefixlen: 24, Netmask: "255.255.255.0",
			Broadcast: "10.0.0.255", Zone: "global", Ether: "2:0:0:0:0:1"},
		{Name: "tap0:1", Family: "inet", Flags: 0x1000843,
			FlagNames: []string{"UP", "BROADCAST", "RUNNING", "MULTICAST", "IPv4"},
			MTU:       1500, Index: 2, Addr: "10.0.0.3", Prefixlen: 24, Netmask: "255.255.255.0",
			Broadcast: "10.0.0.255", Zone: "global"},
		{Name: "lo0", Family: "inet6", Flags: 0x2002000849,
			FlagNames: []string{"UP", "LOOPBACK", "RUNNING", "MULTICAST", "IPv6", "VIRTUAL"},
			MTU:       8252, Index: 1, Addr: "::1", Prefixlen: 128,
			Netmask: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Zone: "global"},
	}
	if d := diff(wantAll, got); d != "" {
		t.Errorf("ifconfig -a -o json (-want +got):\n%s", d)
	}

	// The field names scripts rely on are present in every object.
	var objs []map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &objs); err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		for _, k := range []string{"name", "family", "flags", "flag_names", "mtu", "index", "addr", "prefixlen", "netmask", "zone"} {
			if _, ok := o[k]; !ok {
				t.Errorf("object %v lacks field %q", o["name"], k)
			}
		}
	}
}

// flagsAnswer answers a plan's requests: SIOCGLIFFLAGS with cur, SIOCLIFADDIF
// with unit 1, anything else with no result.
func flagsAnswer(cur ctl.Flags) func(c call) (any, error) {
	return func(c call) (any, error) {
		switch c.Op {
		case "SIOCGLIFFLAGS":
			return ctl.Lifreq{Name: c.Args.(ctl.Lifreq).Name, Flags: cur}, nil
		case "SIOCLIFADDIF":
			return ctl.Lifreq{Name: c.Args.(ctl.Lifreq).Name + ":1"}, nil
		}
		return nil, nil
	}
}

func TestIfconfigRequests(t *testing.T) {
	const down = ctl.IFF_BROADCAST | ctl.IFF_MULTICAST | ctl.IFF_IPV4 // 0x1000802
	v4, v6 := ctl.AF_INET, ctl.AF_INET6
	a4 := func(s string) ctl.Lifreq { return ctl.Lifreq{Addr: mustAddr(t, s)} }
	named := func(name string, r ctl.Lifreq) ctl.Lifreq { r.Name = name; return r }
	getFlags := func(name string, f ctl.Family) call {
		return call{Op: "SIOCGLIFFLAGS", Family: f, Args: ctl.Lifreq{Name: name}}
	}
	setFlags := func(name string, f ctl.Family, fl ctl.Flags) call {
		return call{Op: "SIOCSLIFFLAGS", Family: f, Args: ctl.Lifreq{Name: name, Flags: fl}}
	}
	// Bringing a unit up is followed by a wait for its DAD.
	waitDAD := func(name string, f ctl.Family) call {
		return call{Op: "wait-dad", Family: f, Args: ctl.WaitDAD{Name: name}}
	}
	tests := []struct {
		name   string
		args   []string
		want   []call
		stdout string
	}{
		{
			name: "plumb",
			args: []string{"tap0", "plumb"},
			want: []call{{Op: "SIOCSLIFNAME", Family: v4, Args: ctl.Lifreq{Name: "tap0", Flags: ctl.IFF_IPV4}}},
		},
		{
			name: "plumb inet6",
			args: []string{"tap0", "inet6", "plumb"},
			want: []call{{Op: "SIOCSLIFNAME", Family: v6, Args: ctl.Lifreq{Name: "tap0", Flags: ctl.IFF_IPV6}}},
		},
		{
			name: "unplumb inet6",
			args: []string{"tap0", "inet6", "unplumb"},
			want: []call{{Op: "unplumb", Family: v6, Args: ctl.Lifreq{Name: "tap0"}}},
		},
		{
			name: "address with prefix, broadcast, up: mask, address, broadcast, flags",
			args: []string{"tap0", "10.0.0.1/24", "broadcast", "10.0.0.255", "up"},
			want: []call{
				{Op: "SIOCSLIFNETMASK", Family: v4, Args: named("tap0", a4("255.255.255.0"))},
				{Op: "SIOCSLIFADDR", Family: v4, Args: named("tap0", a4("10.0.0.1"))},
				{Op: "SIOCSLIFBRDADDR", Family: v4, Args: ctl.Lifreq{Name: "tap0", Broadaddr: mustAddr(t, "10.0.0.255")}},
				getFlags("tap0", v4),
				setFlags("tap0", v4, down|ctl.IFF_UP), waitDAD("tap0", v4),
			},
		},
		{
			name: "up is applied after the address wherever it appears",
			args: []string{"tap0", "up", "mtu", "1400", "10.0.0.1/8"},
			want: []call{
				{Op: "SIOCSLIFNETMASK", Family: v4, Args: named("tap0", a4("255.0.0.0"))},
				{Op: "SIOCSLIFADDR", Family: v4, Args: named("tap0", a4("10.0.0.1"))},
				{Op: "SIOCSLIFMTU", Family: v4, Args: ctl.Lifreq{Name: "tap0", MTU: 1400}},
				getFlags("tap0", v4),
				setFlags("tap0", v4, down|ctl.IFF_UP), waitDAD("tap0", v4),
			},
		},
		{
			name: "a broadcast given before the address is set after it",
			args: []string{"tap0", "broadcast", "10.0.0.127", "10.0.0.1/25"},
			want: []call{
				{Op: "SIOCSLIFNETMASK", Family: v4, Args: named("tap0", a4("255.255.255.128"))},
				{Op: "SIOCSLIFADDR", Family: v4, Args: named("tap0", a4("10.0.0.1"))},
				{Op: "SIOCSLIFBRDADDR", Family: v4, Args: ctl.Lifreq{Name: "tap0", Broadaddr: mustAddr(t, "10.0.0.127")}},
			},
		},
		{
			name: "netmask after the address is set before it (hex with 0x)",
			args: []string{"tap0", "10.0.0.1", "netmask", "0xffffff00"},
			want: []call{
				{Op: "SIOCSLIFNETMASK", Family: v4, Args: named("tap0", a4("255.255.255.0"))},
				{Op: "SIOCSLIFADDR", Family: v4, Args: named("tap0", a4("10.0.0.1"))},
			},
		},
		{
			name: "netmask before a network-looking address (dotted)",
			args: []string{"tap0", "netmask", "255.255.0.0", "10.0.0.0"},
			want: []call{
				{Op: "SIOCSLIFNETMASK", Family: v4, Args: named("tap0", a4("255.255.0.0"))},
				{Op: "SIOCSLIFADDR", Family: v4, Args: named("tap0", a4("10.0.0.0"))},
			},
		},
		{
			name: "a prefix overrides netmask",
			args: []string{"tap0", "10.0.0.1/24", "netmask", "255.255.0.0"},
			want: []call{
				{Op: "SIOCSLIFNETMASK", Family: v4, Args: named("tap0", a4("255.255.255.0"))},
				{Op: "SIOCSLIFADDR", Family: v4, Args: named("tap0", a4("10.0.0.1"))},
			},
		},
		{
			name: "netmask alone, hex without 0x",
			args: []string{"tap0", "netmask", "ffffff00"},
			want: []call{{Op: "SIOCSLIFNETMASK", Family: v4, Args: named("tap0", a4("255.255.255.0"))}},
		},
		{
			name: "/PREFIX alone sets the netmask",
			args: []string{"tap0:2", "/28"},
			want: []call{{Op: "SIOCSLIFNETMASK", Family: v4, Args: named("tap0:2", a4("255.255.255.240"))}},
		},
		{
			name: "netmask + and broadcast + send nothing of their own",
			args: []string{"tap0", "10.0.0.1", "netmask", "+", "broadcast", "+"},
			want: []call{{Op: "SIOCSLIFADDR", Family: v4, Args: named("tap0", a4("10.0.0.1"))}},
		},
		{
			name: "down",
			args: []string{"tap0:1", "down"},
			want: []call{getFlags("tap0:1", v4), setFlags("tap0:1", v4, down)},
		},
		{
			name: "mtu and metric in argument order",
			args: []string{"tap0", "metric", "3", "mtu", "9000"},
			want: []call{
				{Op: "SIOCSLIFMETRIC", Family: v4, Args: ctl.Lifreq{Name: "tap0", Metric: 3}},
				{Op: "SIOCSLIFMTU", Family: v4, Args: ctl.Lifreq{Name: "tap0", MTU: 9000}},
			},
		},
		{
			name: "inet6 address with prefix",
			args: []string{"tap0", "inet6", "2001:db8::1/64", "up"},
			want: []call{
				{Op: "SIOCSLIFNETMASK", Family: v6, Args: named("tap0", a4("ffff:ffff:ffff:ffff::"))},
				{Op: "SIOCSLIFADDR", Family: v6, Args: named("tap0", a4("2001:db8::1"))},
				getFlags("tap0", v6),
				setFlags("tap0", v6, down|ctl.IFF_UP), waitDAD("tap0", v6),
			},
		},
		{
			name:   "addif: create, then mask, address and up on the new unit",
			args:   []string{"tap0", "addif", "10.0.0.3/24", "up"},
			stdout: "Created new logical interface tap0:1\n",
			want: []call{
				{Op: "SIOCLIFADDIF", Family: v4, Args: ctl.Lifreq{Name: "tap0"}},
				{Op: "SIOCSLIFNETMASK", Family: v4, Args: named("tap0:1", a4("255.255.255.0"))},
				{Op: "SIOCSLIFADDR", Family: v4, Args: named("tap0:1", a4("10.0.0.3"))},
				getFlags("tap0:1", v4),
				setFlags("tap0:1", v4, down|ctl.IFF_UP), waitDAD("tap0:1", v4),
			},
		},
		{
			name:   "addif with netmask after it",
			args:   []string{"tap0", "addif", "10.0.0.3", "netmask", "255.255.255.0"},
			stdout: "Created new logical interface tap0:1\n",
			want: []call{
				{Op: "SIOCLIFADDIF", Family: v4, Args: ctl.Lifreq{Name: "tap0"}},
				{Op: "SIOCSLIFNETMASK", Family: v4, Args: named("tap0:1", a4("255.255.255.0"))},
				{Op: "SIOCSLIFADDR", Family: v4, Args: named("tap0:1", a4("10.0.0.3"))},
			},
		},
		{
			name: "removeif",
			args: []string{"tap0", "removeif", "10.0.0.3"},
			want: []call{{Op: "SIOCLIFREMOVEIF", Family: v4, Args: named("tap0", a4("10.0.0.3"))}},
		},
		{
			name: "removeif inet6",
			args: []string{"tap0", "inet6", "removeif", "2001:db8::3"},
			want: []call{{Op: "SIOCLIFREMOVEIF", Family: v6, Args: named("tap0", a4("2001:db8::3"))}},
		},
		{
			name: "plumb then configure in one command",
			args: []string{"tap0", "plumb", "10.0.0.1/24", "up"},
			want: []call{
				{Op: "SIOCSLIFNAME", Family: v4, Args: ctl.Lifreq{Name: "tap0", Flags: ctl.IFF_IPV4}},
				{Op: "SIOCSLIFNETMASK", Family: v4, Args: named("tap0", a4("255.255.255.0"))},
				{Op: "SIOCSLIFADDR", Family: v4, Args: named("tap0", a4("10.0.0.1"))},
				getFlags("tap0", v4),
				setFlags("tap0", v4, down|ctl.IFF_UP), waitDAD("tap0", v4),
			},
		},
		{
			name: "second address is the point-to-point destination",
			args: []string{"ptp0", "10.1.0.1", "10.1.0.2"},
			want: []call{
				{Op: "SIOCSLIFADDR", Family: v4, Args: named("ptp0", a4("10.1.0.1"))},
				{Op: "SIOCSLIFDSTADDR", Family: v4, Args: ctl.Lifreq{Name: "ptp0", Dstaddr: mustAddr(t, "10.1.0.2")}},
			},
		},
		{
			name: "destination keyword",
			args: []string{"ptp0", "destination", "10.1.0.2"},
			want: []call{{Op: "SIOCSLIFDSTADDR", Family: v4, Args: ctl.Lifreq{Name: "ptp0", Dstaddr: mustAddr(t, "10.1.0.2")}}},
		},
		{
			name: "flag keywords each read and write the flags, in order",
			args: []string{"tap0", "-arp", "deprecated", "-failover"},
			want: []call{
				getFlags("tap0", v4), setFlags("tap0", v4, down|ctl.IFF_NOARP),
				getFlags("tap0", v4), setFlags("tap0", v4, down|ctl.IFF_DEPRECATED),
				getFlags("tap0", v4), setFlags("tap0", v4, down|ctl.IFF_NOFAILOVER),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &fakeDaemon{answer: flagsAnswer(down)}
			a, stdout, _ := testApp(d)
			if err := a.dispatch(context.Background(), append([]string{"ifconfig"}, tt.args...)); err != nil {
				t.Fatalf("ifconfig %v: %v", tt.args, err)
			}
			if d := diff(tt.want, d.calls); d != "" {
				t.Errorf("ifconfig %v requests (-want +got):\n%s", tt.args, d)
			}
			if d := diff(tt.stdout, stdout.String()); d != "" {
				t.Errorf("ifconfig %v stdout (-want +got):\n%s", tt.args, d)
			}
		})
	}
}

func TestIfconfigUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "ifconfig: missing interface name or -a"},
		{[]string{"-x"}, "ifconfig: unknown option -x"},
		{[]string{"-u"}, "ifconfig: -u: options other than -a need -a"},
		{[]string{"-a", "up"}, "ifconfig: -a takes no further arguments (only -o json)"},
		{[]string{"tap0", "auto-revarp"}, "ifconfig: auto-revarp is not supported"},
		{[]string{"tap0", "bogus"}, `ifconfig: unknown argument or bad address "bogus"`},
		{[]string{"tap0", "netmask"}, "ifconfig: netmask needs an argument"},
		{[]string{"tap0", "netmask", "ffff00"}, `ifconfig: bad netmask "ffff00" (use 0xffffff00, ffffff00 or 255.255.255.0)`},
		{[]string{"tap0", "netmask", "0x1ffffff00"}, `ifconfig: bad netmask "0x1ffffff00" (use 0xffffff00, ffffff00 or 255.255.255.0)`},
		{[]string{"tap0", "netmask", "255.255.255"}, `ifconfig: bad netmask "255.255.255" (use 0xffffff00, ffffff00 or 255.255.255.0)`},
		{[]string{"tap0", "10.0.0.1/33"}, `ifconfig: bad prefix length "33"`},
		{[]string{"tap0", "10.0.0.1/x"}, `ifconfig: bad prefix length "x"`},
		{[]string{"tap0", "fe80::1"}, "ifconfig: fe80::1 is not an IPv4 address (use inet6 for IPv6)"},
		{[]string{"tap0", "inet6", "10.0.0.1/8"}, "ifconfig: 10.0.0.1 is not an IPv6 address"},
		{[]string{"tap0", "inet6", "netmask", "ffffff00"}, "ifconfig: netmask is not supported for inet6; use ADDR/PREFIX"},
		{[]string{"tap0", "inet6", "broadcast", "10.0.0.255"}, "ifconfig: broadcast is not supported for inet6"},
		{[]string{"tap0", "inet6", "-arp"}, "ifconfig: -arp is not supported for inet6"},
		{[]string{"tap0", "broadcast", "up"}, `ifconfig: expected an address, got keyword "up"`},
		{[]string{"tap0", "mtu", "0"}, `ifconfig: bad mtu "0"`},
		{[]string{"tap0", "mtu", "big"}, `ifconfig: bad mtu "big"`},
		{[]string{"tap0", "metric", "-1"}, `ifconfig: bad metric "-1"`},
		{[]string{"tap0", "addif"}, "ifconfig: addif needs an argument"},
		{[]string{"tap0", "removeif", "10.0.0.3/24"}, `ifconfig: unknown argument or bad address "10.0.0.3/24"`},
		{[]string{"tap0", "up", "inet6"}, "ifconfig: the address family (inet6) must come right after the interface name"},
		{[]string{"tap0", "group", "g0"}, "ifconfig: group is not supported by tapadm yet"},
		{[]string{"tap0", "10.0.0.1", "10.0.0.2", "10.0.0.3"}, `ifconfig: unexpected argument "10.0.0.3"`},
		{[]string{"tap0", "10.0.0.1", "-o", "json"}, "ifconfig: -o json applies only to showing interfaces"},
		{[]string{"tap0", "-o", "yaml"}, `ifconfig: unsupported output format "yaml" (only json)`},
		{[]string{"tap0", "fe80::1%eth0"}, `ifconfig: unknown argument or bad address "fe80::1%eth0"`},
		{[]string{"a/b"}, `ifconfig: bad interface name "a/b"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			d := &fakeDaemon{}
			a, _, dials := testApp(d)
			err := a.dispatch(context.Background(), append([]string{"ifconfig"}, tt.args...))
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("ifconfig %q: got error %v, want a usage error", tt.args, err)
			}
			if d := diff(tt.want, err.Error()); d != "" {
				t.Errorf("ifconfig %q error (-want +got):\n%s", tt.args, d)
			}
			if *dials != 0 || len(d.calls) != 0 {
				t.Errorf("ifconfig %q: a usage error contacted the daemon (%d dials, %d requests)", tt.args, *dials, len(d.calls))
			}
		})
	}
}

func TestIfconfigStopsAtFirstRefusal(t *testing.T) {
	d := &fakeDaemon{answer: func(c call) (any, error) {
		if c.Op == "SIOCSLIFADDR" {
			return nil, refuse(c.Op, ctl.EADDRNOTAVAIL, "10.0.0.1 is up on tap1")
		}
		return flagsAnswer(0x1000802)(c)
	}}
	a, _, _ := testApp(d)
	err := a.dispatch(context.Background(), []string{"ifconfig", "tap0", "10.0.0.1/24", "up"})
	if !errors.Is(err, ctl.EADDRNOTAVAIL) {
		t.Fatalf("got %v, want EADDRNOTAVAIL", err)
	}
	var ops []string
	for _, c := range d.calls {
		ops = append(ops, c.Op)
	}
	if d := diff([]string{"SIOCSLIFNETMASK", "SIOCSLIFADDR"}, ops); d != "" {
		t.Errorf("requests sent (-want +got):\n%s", d)
	}
}

func TestParseNetmask(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"0xffffff00", "255.255.255.0"},
		{"0XFFFF0000", "255.255.0.0"},
		{"ffffff80", "255.255.255.128"},
		{"255.255.252.0", "255.255.252.0"},
		{"0x0", "0.0.0.0"},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseNetmask(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tt.want {
				t.Errorf("parseNetmask(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}
