package main

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/tapstack/tapstack/ctl"
)

// forwardDaemon fakes the gateway's forward operations over a list.
func forwardDaemon(fs []ctl.Forward) *fakeDaemon {
	return &fakeDaemon{answer: func(c call) (any, error) {
		switch c.Op {
		case "gateway.list-forwards":
			return fs, nil
		case "gateway.add-forward":
			spec := c.Args.(map[string]string)["spec"]
			if spec == "bad" {
				return nil, refuse(c.Op, ctl.EINVAL, `port forward "bad": no host port`)
			}
			return ctl.Forward{ID: 3, Proto: "tcp", HostPort: 8080, GuestPort: 80}, nil
		case "gateway.remove-forward":
			if c.Args.(ctl.ForwardID).ID != 1 {
				return nil, refuse(c.Op, ctl.ENOENT, "no forward 9")
			}
			return nil, nil
		}
		return nil, refuse(c.Op, ctl.EINVAL, "unexpected")
	}}
}

func TestGateway(t *testing.T) {
	list := []ctl.Forward{
		{ID: 1, Proto: "tcp", HostPort: 8080, GuestPort: 80},
		{ID: 2, Proto: "udp", HostAddr: netip.MustParseAddr("::1"), HostPort: 5353, GuestAddr: netip.MustParseAddr("10.0.2.100"), GuestPort: 53},
	}
	for _, tc := range []struct {
		name    string
		args    []string
		wantOp  string
		wantArg any
		wantOut string
		wantErr string
	}{
		{name: "add", args: []string{"add-forward", "8080:80"}, wantOp: "gateway.add-forward",
			wantArg: map[string]string{"spec": "8080:80"}, wantOut: "Created forward 3: tcp *:8080 -> *:80\n"},
		{name: "add json", args: []string{"add-forward", "8080:80", "-o", "json"}, wantOp: "gateway.add-forward",
			wantArg: map[string]string{"spec": "8080:80"}, wantOut: `"id": 3`},
		{name: "add refused", args: []string{"add-forward", "bad"}, wantOp: "gateway.add-forward",
			wantArg: map[string]string{"spec": "bad"}, wantErr: "gateway.add-forward: EINVAL: port forward"},
		{name: "list", args: []string{"list-forwards"}, wantOp: "gateway.list-forwards",
			wantOut: "ID   PROTO HOST                      GUEST\n" +
				"1    tcp   *:8080                    *:80\n" +
				"2    udp   [::1]:5353                10.0.2.100:53\n"},
		{name: "list json", args: []string{"list-forwards", "-o", "json"}, wantOp: "gateway.list-forwards",
			wantOut: `"host_addr": "::1"`},
		{name: "remove", args: []string{"remove-forward", "1"}, wantOp: "gateway.remove-forward", wantArg: ctl.ForwardID{ID: 1}},
		{name: "remove unknown", args: []string{"remove-forward", "9"}, wantOp: "gateway.remove-forward",
			wantArg: ctl.ForwardID{ID: 9}, wantErr: "ENOENT"},
		{name: "remove bad id", args: []string{"remove-forward", "x"}, wantErr: "bad forward ID"},
		{name: "add nothing", args: []string{"add-forward"}, wantErr: "exactly one forward"},
		{name: "add two", args: []string{"add-forward", "1:1", "2:2"}, wantErr: "exactly one forward"},
		{name: "no subcommand", args: nil, wantErr: "missing subcommand"},
		{name: "unknown", args: []string{"frobnicate"}, wantErr: "unknown subcommand"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := forwardDaemon(list)
			a, out, dials := testApp(d)
			err := a.dispatch(context.Background(), append([]string{"gateway"}, tc.args...))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if tc.wantOp == "" {
				if *dials != 0 {
					t.Error("a bad command line contacted the daemon")
				}
				return
			}
			if len(d.calls) != 1 || d.calls[0].Op != tc.wantOp {
				t.Fatalf("calls %+v, want one %s", d.calls, tc.wantOp)
			}
			if tc.wantArg != nil {
				if diff := diff(tc.wantArg, d.calls[0].Args); diff != "" {
					t.Errorf("arguments (-want +got):\n%s", diff)
				}
			}
			if tc.wantOut != "" && !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("output\n%s\nlacks\n%s", out, tc.wantOut)
			}
		})
	}
}

func TestGatewayListEmptyJSON(t *testing.T) {
	a, out, _ := testApp(forwardDaemon(nil))
	if err := a.dispatch(context.Background(), []string{"gateway", "list-forwards", "-o", "json"}); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out.String()); got != "[]" {
		t.Errorf("empty list as JSON: %q, want []", got)
	}
}
