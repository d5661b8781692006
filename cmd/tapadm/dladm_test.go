package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tapstack/tapstack/ctl"
)

var testLinks = []ctl.LinkInfo{
	{Link: "lo0", Class: "loopback", MTU: 8232, State: "up"},
	{Link: "tap0", Class: "tap", MTU: 1500, State: "up", Over: "ns1", MAC: "2:0:0:0:0:1",
		DLPIState: "IDLE", Capabilities: []string{"vnet_hdr"}},
	{Link: "averyverylongtapname0", Class: "tap", MTU: 65535, State: "unknown"},
	{Link: "eth0pkt1", Class: "afpacket", MTU: 9000, State: "down", Over: "eth0"},
}

func TestDladmShowLink(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{
			name: "columns, with ofmt's overflow rules",
			args: []string{"show-link"},
			want: "LINK        CLASS     MTU    STATE    OVER\n" +
				"lo0         loopback  8232   up       --\n" +
				"tap0        tap       1500   up       ns1\n" +
				"averyverylongtapname0 tap 65535 unknown --\n" +
				"eth0pkt1    afpacket  9000   down     eth0\n",
		},
		{
			name: "one link",
			args: []string{"show-link", "tap0"},
			want: "LINK        CLASS     MTU    STATE    OVER\n" +
				"tap0        tap       1500   up       ns1\n",
		},
		{
			name: "json",
			args: []string{"show-link", "-o", "json", "lo0"},
			want: `[
  {
    "link": "lo0",
    "class": "loopback",
    "mtu": 8232,
    "state": "up",
    "over": "",
    "capabilities": []
  }
]
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &fakeDaemon{answer: func(c call) (any, error) { return testLinks, nil }}
			a, stdout, _ := testApp(d)
			if err := a.dispatch(context.Background(), append([]string{"dladm"}, tt.args...)); err != nil {
				t.Fatalf("dladm %v: %v", tt.args, err)
			}
			if d := diff([]call{{Op: "dladm.show-link"}}, d.calls); d != "" {
				t.Errorf("requests (-want +got):\n%s", d)
			}
			if d := diff(tt.want, stdout.String()); d != "" {
				t.Errorf("dladm %v (-want +got):\n%s", tt.args, d)
			}
		})
	}
}

func TestDladmShowLinkMissing(t *testing.T) {
	d := &fakeDaemon{answer: func(c call) (any, error) { return testLinks, nil }}
	a, _, _ := testApp(d)
	err := a.dispatch(context.Background(), []string{"dladm", "show-link", "tap9"})
	if d := diff(`dladm.show-link: ENOENT: no link named "tap9"`, errString(err)); d != "" {
		t.Errorf("error (-want +got):\n%s", d)
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func TestDladmRequests(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want call
	}{
		{
			name: "create-tap",
			args: []string{"create-tap", "tap0"},
			want: call{Op: "dladm.create-tap", Args: ctl.CreateTap{Name: "tap0"}},
		},
		{
			name: "create-tap with every option, before and after the name",
			args: []string{"create-tap", "--netns", "ns1", "tap0", "--mtu=9000", "--mac", "2:0:0:0:0:a", "--queues", "2", "--no-offload"},
			want: call{Op: "dladm.create-tap", Args: ctl.CreateTap{Name: "tap0", Netns: "ns1", MTU: 9000, MAC: "02:00:00:00:00:0a", Queues: 2, NoOffload: true}},
		},
		{
			name: "delete-link",
			args: []string{"delete-link", "tap0"},
			want: call{Op: "dladm.delete-link", Args: ctl.LinkName{Name: "tap0"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &fakeDaemon{answer: func(c call) (any, error) { return ctl.LinkInfo{Link: "tap0"}, nil }}
			a, stdout, _ := testApp(d)
			if err := a.dispatch(context.Background(), append([]string{"dladm"}, tt.args...)); err != nil {
				t.Fatalf("dladm %v: %v", tt.args, err)
			}
			if d := diff([]call{tt.want}, d.calls); d != "" {
				t.Errorf("requests (-want +got):\n%s", d)
			}
			if stdout.Len() != 0 {
				t.Errorf("dladm %v printed %q; illumos dladm prints nothing on success", tt.args, stdout)
			}
		})
	}
}

func TestDladmUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "dladm: missing subcommand"},
		{[]string{"create-vnic", "v0"}, `dladm: unknown subcommand "create-vnic"`},
		{[]string{"create-tap"}, "dladm: create-tap: missing link name"},
		{[]string{"create-tap", "tap0", "tap1"}, `dladm: create-tap: unexpected argument "tap1"`},
		{[]string{"create-tap", "tap0", "--mtu"}, "dladm: create-tap: --mtu needs an argument"},
		{[]string{"create-tap", "tap0", "--mtu", "x"}, `dladm: create-tap: bad --mtu "x"`},
		{[]string{"create-tap", "tap0", "--mac", "2:0:0:0:0"}, `dladm: bad MAC address "2:0:0:0:0"`},
		{[]string{"create-tap", "tap0", "--mac", "2:0:0:0:0:100"}, `dladm: bad MAC address "2:0:0:0:0:100"`},
		{[]string{"create-tap", "tap0", "--queues", "0"}, `dladm: create-tap: bad --queues "0"`},
		{[]string{"create-tap", "tap0", "--queues", "x"}, `dladm: create-tap: bad --queues "x"`},
		{[]string{"create-tap", "tap0", "--no-offload=1"}, "dladm: create-tap: --no-offload takes no value"},
		{[]string{"create-tap", "tap0", "--bogus", "1"}, `dladm: create-tap: unknown option "--bogus"`},
		{[]string{"create-tap", "tap:0"}, `dladm: bad link name "tap:0"`},
		{[]string{"delete-link"}, "dladm: delete-link takes exactly one link name"},
		{[]string{"show-link", "a", "b"}, "dladm: show-link takes at most one link name and -o json"},
		{[]string{"show-link", "-p"}, "dladm: show-link takes at most one link name and -o json"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			d := &fakeDaemon{}
			a, _, dials := testApp(d)
			err := a.dispatch(context.Background(), append([]string{"dladm"}, tt.args...))
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("got %v, want a usage error", err)
			}
			if d := diff(tt.want, err.Error()); d != "" {
				t.Errorf("error (-want +got):\n%s", d)
			}
			if *dials != 0 {
				t.Errorf("a usage error contacted the daemon")
			}
		})
	}
}

func TestFormatMAC(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"02:00:00:00:00:01", "2:0:0:0:0:1"},
		{"2:0:0:0:0:1", "2:0:0:0:0:1"},
		{"0A-1b-00-ff-10-01", "a:1b:0:ff:10:1"},
		{"not a mac", "not a mac"},
	} {
		if got := formatMAC(tt.in); got != tt.want {
			t.Errorf("formatMAC(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
