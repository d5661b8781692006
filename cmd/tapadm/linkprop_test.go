package main

import (
	"context"
	"testing"

	"github.com/tapstack/tapstack/ctl"
)

func TestDladmShowLinkprop(t *testing.T) {
	links := []ctl.LinkInfo{
		{Link: "lo0", Class: "loopback", MTU: 8232, State: "up"},
		{Link: "tap0", Class: "tap", MTU: 1500, State: "up", Over: "ns1", Queues: 2,
			Capabilities: []string{"hcksum:0x1", "lso:65536", "zerocopy", "uso"}},
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{
			name: "all links",
			args: []string{"show-linkprop"},
			want: "LINK        PROPERTY       PERM VALUE          DEFAULT        POSSIBLE\n" +
				"lo0         mtu            rw   8232           --             --\n" +
				"lo0         offloads       r-   --             --             --\n" +
				"tap0        mtu            rw   1500           --             --\n" +
				"tap0        queues         r-   2              --             --\n" +
				"tap0        offloads       r-   hcksum:0x1,lso:65536,zerocopy,uso -- --\n",
		},
		{
			name: "json carries queues",
			args: []string{"show-link", "-o", "json", "tap0"},
			want: `[
  {
    "link": "tap0",
    "class": "tap",
    "mtu": 1500,
    "state": "up",
    "over": "ns1",
    "capabilities": [
      "hcksum:0x1",
      "lso:65536",
      "zerocopy",
      "uso"
    ],
    "queues": 2
  }
]
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &fakeDaemon{answer: func(c call) (any, error) { return links, nil }}
			a, stdout, _ := testApp(d)
			if err := a.dispatch(context.Background(), append([]string{"dladm"}, tt.args...)); err != nil {
				t.Fatalf("dladm %v: %v", tt.args, err)
			}
			if d := diff(tt.want, stdout.String()); d != "" {
				t.Errorf("dladm %v (-want +got):\n%s", tt.args, d)
			}
		})
	}
}
