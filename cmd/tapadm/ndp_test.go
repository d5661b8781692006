package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/tapstack/tapstack/ctl"
)

// ndpDaemon answers the ndp verb's requests from a neighbour table and
// the units of two IPv6 interfaces (tap0 on 2001:db8:1::/64, tap1 on
// 2001:db8:2::/64, both with link-locals).
func ndpDaemon(t *testing.T) *fakeDaemon {
	entries := []ctl.NdEntry{
		{Ifname: "tap0", HdwAddr: "2:0:0:0:0:1", Type: "local", State: "REACHABLE", Addr: mustAddr(t, "fe80::ff:fe00:1")},
		{Ifname: "tap0", HdwAddr: "2:0:0:0:10:1", Type: "dynamic", State: "STALE", Addr: mustAddr(t, "fe80::10:1"), Router: true},
		{Ifname: "tap0", Type: "dynamic", State: "INCOMPLETE", Addr: mustAddr(t, "2001:db8:1::9")},
		{Ifname: "tap1", HdwAddr: "2:0:0:0:20:1", Type: "static", State: "REACHABLE", Addr: mustAddr(t, "fe80::10:1")},
	}
	lc := ctl.Lifconf{Family: ctl.AF_INET6, Req: []ctl.Lifreq{
		{Name: "lo0", Addr: mustAddr(t, "::1"), Addrlen: 128},
		{Name: "tap0", Addr: mustAddr(t, "fe80::ff:fe00:1"), Addrlen: 10},
		{Name: "tap0:1", Addr: mustAddr(t, "2001:db8:1::1"), Addrlen: 64},
		{Name: "tap1", Addr: mustAddr(t, "fe80::ff:fe00:2"), Addrlen: 10},
		{Name: "tap1:1", Addr: mustAddr(t, "2001:db8:2::1"), Addrlen: 64},
	}}
	return &fakeDaemon{answer: func(c call) (any, error) {
		switch c.Op {
		case "ndp.list":
			l := *c.Args.(*ctl.NdList)
			for _, e := range entries {
				if l.Ifname == "" || l.Ifname == e.Ifname {
					l.Entries = append(l.Entries, e)
				}
			}
			return l, nil
		case "SIOCGLIFCONF":
			return lc, nil
		case "SIOCLIFGETND":
			r := *c.Args.(*ctl.Ndreq)
			if r.ND.Addr == mustAddr(t, "2001:db8:1::9") {
				return nil, refuse(c.Op, ctl.ESRCH, "neighbour 2001:db8:1::9 on tap0 is not resolved yet")
			}
			r.ND.HdwLen, r.ND.HdwAddr, r.ND.Flags = 6, "2:0:0:0:10:1", ctl.NDF_ISROUTER_ON
			return r, nil
		case "SIOCLIFSETND":
			if c.Args.(*ctl.Ndreq).ND.Flags&ctl.NDF_PROXY_ON != 0 {
				return nil, refuse(c.Op, ctl.ENOTSUP, "proxy neighbour entries (NDF_PROXY_ON) are not supported")
			}
		}
		return nil, nil
	}}
}

func TestNdpList(t *testing.T) {
	d := ndpDaemon(t)
	a, out, _ := testApp(d)
	if err := a.dispatch(context.Background(), []string{"ndp", "-a"}); err != nil {
		t.Fatal(err)
	}
	want := `
Net to Media Table: IPv6
 If   Physical Address    Type      State      Destination/Mask
----- -----------------  ------- ------------ ---------------------------
tap0  2:0:0:0:0:1        local   REACHABLE    fe80::ff:fe00:1
tap0  2:0:0:0:10:1       dynamic STALE        fe80::10:1
tap0                     dynamic INCOMPLETE   2001:db8:1::9
tap1  2:0:0:0:20:1       static  REACHABLE    fe80::10:1
`
	if got := out.String(); got != want {
		t.Errorf("ndp -a:\n%s\nwant:\n%s", got, want)
	}

	// -i limits the list to one interface; -o json is the entries.
	out.Reset()
	d.calls = nil
	if err := a.dispatch(context.Background(), []string{"ndp", "-a", "-i", "tap1", "-o", "json"}); err != nil {
		t.Fatal(err)
	}
	if dd := diff([]call{{Op: "ndp.list", Family: ctl.AF_INET6, Args: &ctl.NdList{Ifname: "tap1", Entries: []ctl.NdEntry{
		{Ifname: "tap1", HdwAddr: "2:0:0:0:20:1", Type: "static", State: "REACHABLE", Addr: mustAddr(t, "fe80::10:1")}}}}}, d.calls); dd != "" {
		t.Errorf("ndp -a -i tap1 (-want +got):\n%s", dd)
	}
	var got []ctl.NdEntry
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("ndp -a -o json: %v\n%s", err, out)
	}
	if len(got) != 1 || got[0].Ifname != "tap1" || got[0].Type != "static" {
		t.Errorf("ndp -a -i tap1 -o json = %+v", got)
	}
}

// The interface of an ND request: -i or a zone when given, else the one
// table holding the entry, else the one interface on-link to the host.
func TestNdpInterfaceChoice(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		wantOp  string
		wantIf  string
		wantErr string // a usage error, nothing sent
	}{
		{name: "get, entry on one table", args: []string{"ndp", "2001:db8:1::9"}, wantOp: "SIOCLIFGETND", wantIf: "tap0"},
		{name: "get, zone", args: []string{"ndp", "fe80::10:1%tap1"}, wantOp: "SIOCLIFGETND", wantIf: "tap1"},
		{name: "get, -i", args: []string{"ndp", "-i", "tap1", "fe80::10:1"}, wantOp: "SIOCLIFGETND", wantIf: "tap1"},
		{name: "get, on two tables", args: []string{"ndp", "fe80::10:1"}, wantErr: "fe80::10:1 has entries on tap0, tap1; name one with -i"},
		{name: "get, no entry, on-link", args: []string{"ndp", "2001:db8:2::77"}, wantOp: "SIOCLIFGETND", wantIf: "tap1"},
		{name: "set, on-link", args: []string{"ndp", "-s", "2001:db8:2::5", "2:0:0:0:0:5"}, wantOp: "SIOCLIFSETND", wantIf: "tap1"},
		{name: "set, link-local on two", args: []string{"ndp", "-s", "fe80::5", "2:0:0:0:0:5"}, wantErr: "fe80::5 is on-link to tap0, tap1; name one with -i"},
		{name: "set, off-link", args: []string{"ndp", "-s", "2001:db8:9::5", "2:0:0:0:0:5"}, wantErr: "no IPv6 interface is on-link to 2001:db8:9::5; name one with -i"},
		{name: "delete, entry on one table", args: []string{"ndp", "-d", "2001:db8:1::9"}, wantOp: "SIOCLIFDELND", wantIf: "tap0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := ndpDaemon(t)
			a, _, _ := testApp(d)
			err := a.dispatch(context.Background(), tc.args)
			var sent *ctl.Ndreq
			for _, c := range d.calls {
				if strings.HasPrefix(c.Op, "SIOCLIF") {
					sent = c.Args.(*ctl.Ndreq)
					if c.Op != tc.wantOp {
						t.Errorf("sent %s, want %s", c.Op, tc.wantOp)
					}
				}
			}
			if tc.wantErr != "" {
				if _, ok := err.(*usageError); !ok || err.Error() != "ndp: "+tc.wantErr {
					t.Errorf("error %v, want usage error %q", err, tc.wantErr)
				}
				if sent != nil {
					t.Errorf("a usage error sent %+v", sent)
				}
				return
			}
			if sent == nil || sent.Name != tc.wantIf {
				t.Fatalf("ND request %+v (err %v), want one to %s", sent, err, tc.wantIf)
			}
			if sent.ND.Addr.Zone() != "" {
				t.Errorf("lnr_addr %s keeps its zone", sent.ND.Addr)
			}
		})
	}
}

func TestNdpSetGetDelete(t *testing.T) {
	d := ndpDaemon(t)
	a, out, _ := testApp(d)
	ctx := context.Background()

	set := func(words ...string) ctl.LifNdReq {
		t.Helper()
		d.calls = nil
		if err := a.dispatch(ctx, append([]string{"ndp", "-i", "tap0", "-s", "fe80::5", "02:00:00:00:00:05"}, words...)); err != nil {
			t.Fatal(err)
		}
		if len(d.calls) != 1 || d.calls[0].Op != "SIOCLIFSETND" {
			t.Fatalf("calls %+v, want one SIOCLIFSETND", d.calls)
		}
		return d.calls[0].Args.(*ctl.Ndreq).ND
	}
	base := ctl.LifNdReq{Addr: mustAddr(t, "fe80::5"), StateCreate: ctl.ND_REACHABLE, StateSameLLA: ctl.ND_UNCHANGED,
		StateDiffLLA: ctl.ND_STALE, HdwLen: 6, HdwAddr: "2:0:0:0:0:5"}
	for _, tc := range []struct {
		words []string
		flags int
	}{
		{nil, ctl.NDF_STATIC | ctl.NDF_ISROUTER_OFF | ctl.NDF_ANYCAST_OFF | ctl.NDF_PROXY_OFF},
		{[]string{"temp", "router"}, ctl.NDF_ISROUTER_ON | ctl.NDF_ANYCAST_OFF | ctl.NDF_PROXY_OFF},
		{[]string{"any"}, ctl.NDF_STATIC | ctl.NDF_ISROUTER_OFF | ctl.NDF_ANYCAST_ON | ctl.NDF_PROXY_OFF},
	} {
		want := base
		want.Flags = tc.flags
		if dd := diff(want, set(tc.words...)); dd != "" {
			t.Errorf("ndp -s ... %v (-want +got):\n%s", tc.words, dd)
		}
	}
	// proxy goes to the daemon, which refuses it.
	err := a.dispatch(ctx, []string{"ndp", "-i", "tap0", "-s", "fe80::5", "2:0:0:0:0:5", "proxy"})
	var buf bytes.Buffer
	printError(&buf, err)
	if got := buf.String(); got != "tapadm: SIOCLIFSETND: ENOTSUP: proxy neighbour entries (NDF_PROXY_ON) are not supported\n" {
		t.Errorf("ndp -s proxy printed %q", got)
	}

	out.Reset()
	if err := a.dispatch(ctx, []string{"ndp", "-i", "tap0", "fe80::10:1"}); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "fe80::10:1 (fe80::10:1) at 2:0:0:0:10:1 router temp\n" {
		t.Errorf("ndp HOST: %q", got)
	}
	if err := a.dispatch(ctx, []string{"ndp", "2001:db8:1::9"}); ctl.ErrnoOf(err) != ctl.ESRCH {
		t.Errorf("ndp of an unresolved entry: %v, want ESRCH from the daemon", err)
	}
	d.calls = nil
	if err := a.dispatch(ctx, []string{"ndp", "-d", "fe80::10:1%tap0"}); err != nil {
		t.Fatal(err)
	}
	if dd := diff([]call{{Op: "SIOCLIFDELND", Family: ctl.AF_INET6, Args: &ctl.Ndreq{Name: "tap0", ND: ctl.LifNdReq{Addr: mustAddr(t, "fe80::10:1")}}}}, d.calls); dd != "" {
		t.Errorf("ndp -d (-want +got):\n%s", dd)
	}

	// Usage errors send nothing.
	d.calls = nil
	for _, args := range [][]string{{"ndp"}, {"ndp", "-s", "fe80::5"}, {"ndp", "-s", "host.example", "2:0:0:0:0:1"},
		{"ndp", "-s", "fe80::5", "2:0:0:0:0:1", "forever"}, {"ndp", "-d"}, {"ndp", "-a", "x"}, {"ndp", "10.0.0.1"},
		{"ndp", "-i"}, {"ndp", "-x"}, {"ndp", "-a", "-o", "yaml"}} {
		if _, ok := a.dispatch(ctx, args).(*usageError); !ok {
			t.Errorf("%v: not a usage error", args)
		}
	}
	if len(d.calls) != 0 {
		t.Errorf("usage errors sent %v", d.calls)
	}
}
