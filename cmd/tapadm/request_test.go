package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/tapstack/tapstack/ctl"
)

// runCalls runs tapadm args against d and returns the requests sent, the
// output and the error (as a string, "" for none).
func runCalls(t *testing.T, d *fakeDaemon, args ...string) (calls []call, out, errStr string) {
	t.Helper()
	a, stdout, _ := testApp(d)
	if err := a.dispatch(context.Background(), args); err != nil {
		errStr = err.Error()
	}
	return d.calls, stdout.String(), errStr
}

func TestRequestArgs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		want    []call // nil: nothing may be sent
		wantErr string
	}{
		{name: "mtu", args: []string{"SIOCSLIFMTU", "lifr_name=tap0", "lifr_mtu=1400"},
			want: []call{{"SIOCSLIFMTU", ctl.AF_INET, map[string]any{"lifr_name": "tap0", "lifr_mtu": json.Number("1400")}}}},
		{name: "conf unspec", args: []string{"SIOCGLIFCONF", "lifc_family=unspec"},
			want: []call{{"SIOCGLIFCONF", ctl.AF_INET, map[string]any{"lifc_family": "unspec"}}}},
		{name: "family inet6", args: []string{"SIOCGLIFADDR", "family=inet6", "lifr_name=lo0"},
			want: []call{{"SIOCGLIFADDR", ctl.AF_INET6, map[string]any{"lifr_name": "lo0"}}}},
		{name: "flag names", args: []string{"SIOCSLIFFLAGS", "lifr_name=tap0", "lifr_flags=IFF_UP|IFF_BROADCAST|MULTICAST"},
			want: []call{{"SIOCSLIFFLAGS", ctl.AF_INET, map[string]any{"lifr_name": "tap0", "lifr_flags": json.Number("2051")}}}},
		{name: "flag hex", args: []string{"SIOCSLIFFLAGS", "lifr_name=tap0", "lifr_flags=0x1000843"},
			want: []call{{"SIOCSLIFFLAGS", ctl.AF_INET, map[string]any{"lifr_name": "tap0", "lifr_flags": json.Number("16779331")}}}},
		{name: "nested", args: []string{"SIOCCLIFFLAGS", "lifr_name=tap0", "lifr_cflags.modflags=IFF_UP", "lifr_cflags.modmask=0x1", "lifr_ifinfo.lir_maxmtu=9000"},
			want: []call{{"SIOCCLIFFLAGS", ctl.AF_INET, map[string]any{"lifr_name": "tap0",
				"lifr_cflags": map[string]any{"modflags": json.Number("1"), "modmask": json.Number("1")},
				"lifr_ifinfo": map[string]any{"lir_maxmtu": json.Number("9000")}}}}},
		{name: "route", args: []string{"SIOCADDRT", "rt_dst=10.1.0.0", "rt_gateway=10.0.0.254", "rt_flags=0x2"},
			want: []call{{"SIOCADDRT", ctl.AF_INET, map[string]any{"rt_dst": "10.1.0.0", "rt_gateway": "10.0.0.254", "rt_flags": json.Number("2")}}}},
		{name: "prop", args: []string{"SIOCGETPROP", "mpr_proto=ip", "mpr_name=_dup_recovery", "mpr_flags=1"},
			want: []call{{"SIOCGETPROP", ctl.AF_INET, map[string]any{"mpr_proto": "ip", "mpr_name": "_dup_recovery", "mpr_flags": json.Number("1")}}}},
		{name: "value typing", args: []string{"X", "a=010", "b=-3", "c=true", "d=false", "e=1.5", "f=0x", "g=", "h=::1"},
			want: []call{{"X", ctl.AF_INET, map[string]any{"a": json.Number("10"), "b": json.Number("-3"), "c": true, "d": false,
				"e": "1.5", "f": "0x", "g": "", "h": "::1"}}}},
		{name: "no args", args: []string{"SIOCGIFNUM"}, want: []call{{"SIOCGIFNUM", ctl.AF_INET, map[string]any{}}}},
		{name: "unknown request sent as is", args: []string{"SIOCNOSUCH", "x=1"},
			want: []call{{"SIOCNOSUCH", ctl.AF_INET, map[string]any{"x": json.Number("1")}}}},

		{name: "no name", args: nil, wantErr: "request: missing request name (SIOCGLIFFLAGS, SIOCADDRT, ...)"},
		{name: "name looks like a field", args: []string{"lifr_name=tap0"}, wantErr: "request: missing request name (SIOCGLIFFLAGS, SIOCADDRT, ...)"},
		{name: "no equals", args: []string{"SIOCGLIFFLAGS", "tap0"}, wantErr: `request: expected FIELD=VALUE, got "tap0"`},
		{name: "empty field", args: []string{"SIOCGLIFFLAGS", "=tap0"}, wantErr: `request: expected FIELD=VALUE, got "=tap0"`},
		{name: "twice", args: []string{"SIOCGLIFFLAGS", "lifr_name=a", "lifr_name=b"}, wantErr: "request: field lifr_name given twice"},
		{name: "bad flags", args: []string{"SIOCSLIFFLAGS", "lifr_flags=UP|BOGUS"}, wantErr: `request: lifr_flags: bad flags "UP|BOGUS" (a number or IFF_ names joined by |)`},
		{name: "empty flags", args: []string{"SIOCSLIFFLAGS", "lifr_flags="}, wantErr: `request: lifr_flags: bad flags "" (a number or IFF_ names joined by |)`},
		{name: "bad family", args: []string{"SIOCGLIFFLAGS", "family=ax25"}, wantErr: `request: bad family "ax25" (inet, inet6 or unspec)`},
		{name: "nesting conflict", args: []string{"X", "a=1", "a.b=2"}, wantErr: "request: field a.b conflicts with a"},
		{name: "nesting conflict reversed", args: []string{"X", "a.b=2", "a=1"}, wantErr: "request: field a conflicts with another field"},
		{name: "empty path part", args: []string{"X", "a..b=1"}, wantErr: `request: bad field name "a..b"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls, _, err := runCalls(t, &fakeDaemon{}, append([]string{"request"}, tc.args...)...)
			if d := diff(tc.wantErr, err); d != "" {
				t.Errorf("error (-want +got):\n%s", d)
			}
			if d := diff(tc.want, calls); d != "" {
				t.Errorf("requests (-want +got):\n%s", d)
			}
		})
	}
}

func TestRequestOutput(t *testing.T) {
	d := &fakeDaemon{answer: func(c call) (any, error) {
		switch c.Op {
		case "SIOCGLIFMTU":
			return ctl.Lifreq{Name: "tap0", MTU: 1500}, nil
		case "SIOCSLIFMTU":
			return nil, nil
		}
		return nil, refuse(c.Op, ctl.EINVAL, `unknown request "`+c.Op+`"`)
	}}
	_, out, err := runCalls(t, d, "request", "SIOCGLIFMTU", "lifr_name=tap0")
	if err != "" {
		t.Fatal(err)
	}
	want := "{\n  \"lifr_name\": \"tap0\",\n  \"lifr_mtu\": 1500\n}\n"
	if d := diff(want, out); d != "" {
		t.Errorf("output (-want +got):\n%s", d)
	}

	d.calls = nil
	if _, out, err = runCalls(t, d, "request", "SIOCSLIFMTU", "lifr_name=tap0", "lifr_mtu=1400"); err != "" || out != "" {
		t.Errorf("a request with no result: output %q, error %q; want neither", out, err)
	}

	d.calls = nil
	_, _, err = runCalls(t, d, "request", "SIOCNOSUCH")
	if !strings.HasPrefix(err, `SIOCNOSUCH: EINVAL: unknown request "SIOCNOSUCH"`) {
		t.Errorf("error %q, want the daemon's EINVAL", err)
	}
}
