package main

import (
	"context"
	"strings"
	"testing"

	"github.com/tapstack/tapstack/ctl"
)

func TestPing(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		received int
		wantReq  *ctl.Ping
		wantOut  string
		wantErr  string
	}{
		{name: "one reply", args: []string{"10.0.0.2"}, received: 1,
			wantReq: &ctl.Ping{Dst: mustAddr(t, "10.0.0.2")}, wantOut: "1 packets transmitted, 1 packets received"},
		{name: "count", args: []string{"10.0.0.2", "-c", "3"}, received: 3,
			wantReq: &ctl.Ping{Dst: mustAddr(t, "10.0.0.2"), Count: 3}, wantOut: "3 packets transmitted, 3 packets received"},
		{name: "no reply fails", args: []string{"fd00::1"}, received: 0,
			wantReq: &ctl.Ping{Dst: mustAddr(t, "fd00::1")}, wantErr: "no answer from fd00::1"},
		{name: "host name refused", args: []string{"example"}, wantErr: "HOST must be an IP address"},
		{name: "bad count", args: []string{"10.0.0.2", "-c", "0"}, wantErr: "bad count"},
		{name: "no host", args: nil, wantErr: "no HOST given"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &fakeDaemon{answer: func(c call) (any, error) {
				req := c.Args.(ctl.Ping)
				n := max(req.Count, 1)
				res := ctl.PingResult{Transmitted: n, Received: tc.received, RTTMicros: []int64{}}
				for range tc.received {
					res.RTTMicros = append(res.RTTMicros, 120)
				}
				if tc.received == 0 {
					res.Error = "timeout"
				}
				return res, nil
			}}
			a, out, dials := testApp(d)
			err := a.dispatch(context.Background(), append([]string{"ping"}, tc.args...))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if tc.wantReq == nil {
				if *dials != 0 {
					t.Errorf("a bad command line contacted the daemon")
				}
				return
			}
			if len(d.calls) != 1 || d.calls[0].Op != "ping" {
				t.Fatalf("calls %+v", d.calls)
			}
			if diff := diff(*tc.wantReq, d.calls[0].Args); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("output %q lacks %q", out, tc.wantOut)
			}
		})
	}
}
