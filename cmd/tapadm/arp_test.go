package main

import (
	"context"
	"testing"

	"github.com/tapstack/tapstack/ctl"
)

func TestArpCommands(t *testing.T) {
	table := ctl.ArpTable{Entries: []ctl.ArpEntry{
		{Ifname: "tap0", Addr: mustAddr(t, "10.0.0.1"), Mask: mustAddr(t, "255.255.255.255"), HWAddr: "2:0:0:0:0:1",
			Flags: ctl.ATF_INUSE | ctl.ATF_COM | ctl.ATF_PERM | ctl.ATF_PUBL | ctl.ATF_AUTHORITY},
		{Ifname: "tap0", Addr: mustAddr(t, "10.0.0.7"), Mask: mustAddr(t, "255.255.255.255"), HWAddr: "2:0:0:0:0:77",
			Flags: ctl.ATF_INUSE | ctl.ATF_COM | ctl.ATF_PUBL},
		{Ifname: "tap0", Addr: mustAddr(t, "10.0.0.9"), Mask: mustAddr(t, "255.255.255.255"), Flags: ctl.ATF_INUSE},
	}}
	d := &fakeDaemon{answer: func(c call) (any, error) {
		switch c.Op {
		case "MIB2_IP_MEDIA":
			return table, nil
		case "SIOCGARP":
			return ctl.Arpreq{PA: c.Args.(*ctl.Arpreq).PA, HA: "2:0:0:0:0:77", Flags: ctl.ATF_INUSE | ctl.ATF_COM | ctl.ATF_PERM | ctl.ATF_PUBL}, nil
		case "SIOCDARP":
			return nil, refuse(c.Op, ctl.ENXIO, "no ARP entry for 10.0.0.5 on tap0")
		}
		return nil, nil
	}}
	a, out, _ := testApp(d)
	if err := a.dispatch(context.Background(), []string{"arp", "-a"}); err != nil {
		t.Fatal(err)
	}
	want := `
Net to Media Table: IPv4
Device IP Address           Mask            Flags    Phys Addr
------ -------------------- --------------- -------- ---------------
tap0   10.0.0.1             255.255.255.255 SPLA     2:0:0:0:0:1
tap0   10.0.0.7             255.255.255.255 P        2:0:0:0:0:77
tap0   10.0.0.9             255.255.255.255 U        
`
	if got := out.String(); got != want {
		t.Errorf("arp -a:\n%s\nwant:\n%s", got, want)
	}

	out.Reset()
	if err := a.dispatch(context.Background(), []string{"arp", "10.0.0.7"}); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "10.0.0.7 (10.0.0.7) at 2:0:0:0:0:77 permanent published\n" {
		t.Errorf("arp HOST: %q", got)
	}

	d.calls = nil
	if err := a.dispatch(context.Background(), []string{"arp", "-s", "10.0.0.8", "2:0:0:0:0:88", "temp", "pub"}); err != nil {
		t.Fatal(err)
	}
	wantCall := []call{{Op: "SIOCSARP", Family: ctl.AF_INET, Args: &ctl.Arpreq{PA: mustAddr(t, "10.0.0.8"), HA: "2:0:0:0:0:88", Flags: ctl.ATF_PUBL}}}
	if d := diff(wantCall, d.calls); d != "" {
		t.Errorf("arp -s temp pub (-want +got):\n%s", d)
	}
	if err := a.dispatch(context.Background(), []string{"arp", "-d", "10.0.0.5"}); ctl.ErrnoOf(err) != ctl.ENXIO {
		t.Errorf("arp -d of a missing entry: %v, want ENXIO from the daemon", err)
	}

	// Usage errors send nothing.
	d.calls = nil
	for _, args := range [][]string{{"arp"}, {"arp", "-s", "10.0.0.8"}, {"arp", "-s", "host.example", "2:0:0:0:0:1"},
		{"arp", "-s", "10.0.0.8", "2:0:0:0:0:1", "forever"}, {"arp", "-d"}, {"arp", "-a", "x"}, {"arp", "fe80::1"}} {
		if _, ok := a.dispatch(context.Background(), args).(*usageError); !ok {
			t.Errorf("%v: not a usage error", args)
		}
	}
	if len(d.calls) != 0 {
		t.Errorf("usage errors sent %v", d.calls)
	}
}
