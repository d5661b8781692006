package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tapstack/tapstack/ctl"
)

// call is one request as the fake daemon received it.
type call struct {
	Op     string
	Family ctl.Family
	Args   any
}

// fakeDaemon records requests and answers them with answer (nil: no result,
// no error). Results go through JSON, as with the real client.
type fakeDaemon struct {
	calls  []call
	answer func(c call) (any, error)
}

var _ requester = (*fakeDaemon)(nil)

func (f *fakeDaemon) Do(_ context.Context, op string, family ctl.Family, args, result any) error {
	c := call{Op: op, Family: family, Args: args}
	f.calls = append(f.calls, c)
	if f.answer == nil {
		return nil
	}
	res, err := f.answer(c)
	if err != nil {
		return err
	}
	if result != nil && res != nil {
		raw, err := json.Marshal(res)
		if err != nil {
			return err
		}
		return json.Unmarshal(raw, result)
	}
	return nil
}

// refuse returns the error the real client returns for a refused request.
func refuse(op string, e ctl.Errno, msg string) error {
	return &ctl.Error{Request: op, Errno: e, Msg: msg}
}

// testApp returns an app whose connection is d, and counts dials.
func testApp(d requester) (a *app, stdout *bytes.Buffer, dials *int) {
	stdout, dials = new(bytes.Buffer), new(int)
	a = &app{stdout: stdout, dial: func() (requester, error) {
		*dials++
		return d, nil
	}}
	return a, stdout, dials
}

// cmpAddrs lets cmp compare the netip values inside requests.
var cmpAddrs = cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})

func diff(want, got any) string { return cmp.Diff(want, got, cmpAddrs) }

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	return netip.MustParseAddr(s)
}

// lif is one logical interface of the fake daemon's model.
type lif struct {
	name   string
	flags  ctl.Flags
	metric int
	mtu    int64
	index  uint32
	zone   string
	addr   string
	plen   int
	mask   string
	brd    string
	dst    string
	hw     string // "" : EADDRNOTAVAIL
}

// model answers the status requests of ifconfig from per-family lists of
// logical interfaces.
type model map[ctl.Family][]lif

func (m model) answer(c call) (any, error) {
	if c.Op == "SIOCGLIFCONF" {
		lc := ctl.Lifconf{Family: c.Family}
		for _, l := range m[c.Family] {
			lc.Req = append(lc.Req, ctl.Lifreq{Name: l.name, Addr: parseOpt(l.addr), Addrlen: l.plen})
		}
		return lc, nil
	}
	req := c.Args.(ctl.Lifreq)
	for _, l := range m[c.Family] {
		if l.name != req.Name {
			continue
		}
		r := ctl.Lifreq{Name: l.name}
		switch c.Op {
		case "SIOCGLIFFLAGS":
			r.Flags = l.flags
		case "SIOCGLIFMETRIC":
			r.Metric = l.metric
		case "SIOCGLIFMTU":
			r.MTU = l.mtu
		case "SIOCGLIFINDEX":
			r.Index = l.index
		case "SIOCGLIFZONE":
			r.Zone = l.zone
		case "SIOCGLIFADDR":
			r.Addr, r.Addrlen = parseOpt(l.addr), l.plen
		case "SIOCGLIFNETMASK":
			r.Addr, r.Addrlen = parseOpt(l.mask), l.plen
		case "SIOCGLIFBRDADDR":
			r.Broadaddr = parseOpt(l.brd)
		case "SIOCGLIFDSTADDR":
			r.Dstaddr = parseOpt(l.dst)
		case "SIOCGLIFHWADDR":
			if l.hw == "" {
				return nil, refuse(c.Op, ctl.EADDRNOTAVAIL, l.name+" has no hardware address")
			}
			r.HWAddr = l.hw
		default:
			return nil, refuse(c.Op, ctl.EINVAL, "unexpected request")
		}
		return r, nil
	}
	return nil, refuse(c.Op, ctl.ENXIO, "no interface "+req.Name)
}

func parseOpt(s string) netip.Addr {
	if s == "" {
		return netip.Addr{}
	}
	return netip.MustParseAddr(s)
}

// cliExample is the system of cli.md's `ifconfig -a` example.
var cliExample = model{
	ctl.AF_INET: {
		{name: "lo0", flags: 0x2001000849, mtu: 8232, index: 1, addr: "127.0.0.1", plen: 8, mask: "255.0.0.0"},
		{name: "tap0", flags: 0x1000843, mtu: 1500, index: 2, addr: "10.0.0.1", plen: 24, mask: "255.255.255.0",
			brd: "10.0.0.255", hw: "2:0:0:0:0:1"},
		{name: "tap0:1", flags: 0x1000843, mtu: 1500, index: 2, addr: "10.0.0.3", plen: 24, mask: "255.255.255.0",
			brd: "10.0.0.255", hw: "2:0:0:0:0:1"},
	},
	ctl.AF_INET6: {
		{name: "lo0", flags: 0x2002000849, mtu: 8252, index: 1, addr: "::1", plen: 128,
			mask: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
	},
}
