package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tapstack/tapstack/ctl"
)

func TestDladmCreateAFPacket(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want ctl.CreateAFPacket
	}{
		{
			name: "name and device",
			args: []string{"create-afpacket", "pkt0", "--over", "veth0"},
			want: ctl.CreateAFPacket{Name: "pkt0", Over: "veth0"},
		},
		{
			name: "every option, before and after the name",
			args: []string{"create-afpacket", "--netns=ns1", "--over", "veth0", "pkt0", "--rings", "4", "--mtu=9000", "--mac", "2:0:0:0:0:a", "--rx", "recvmmsg"},
			want: ctl.CreateAFPacket{Name: "pkt0", Over: "veth0", Netns: "ns1", Rings: 4, MTU: 9000, MAC: "02:00:00:00:00:0a", RX: "recvmmsg"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &fakeDaemon{answer: func(c call) (any, error) { return ctl.LinkInfo{Link: "pkt0"}, nil }}
			a, stdout, _ := testApp(d)
			if err := a.dispatch(context.Background(), append([]string{"dladm"}, tt.args...)); err != nil {
				t.Fatalf("dladm %v: %v", tt.args, err)
			}
			if d := diff([]call{{Op: "dladm.create-afpacket", Args: tt.want}}, d.calls); d != "" {
				t.Errorf("requests (-want +got):\n%s", d)
			}
			if stdout.Len() != 0 {
				t.Errorf("dladm %v printed %q; illumos dladm prints nothing on success", tt.args, stdout)
			}
		})
	}
}

func TestDladmCreateAFPacketRefused(t *testing.T) {
	d := &fakeDaemon{answer: func(c call) (any, error) {
		return nil, refuse(c.Op, ctl.ENODEV, "afpacket pkt0: no device veth9 in ns1")
	}}
	a, _, _ := testApp(d)
	err := a.dispatch(context.Background(), []string{"dladm", "create-afpacket", "pkt0", "--over", "veth9", "--netns", "ns1"})
	if d := diff("dladm.create-afpacket: ENODEV: afpacket pkt0: no device veth9 in ns1", errString(err)); d != "" {
		t.Errorf("error (-want +got):\n%s", d)
	}
}

func TestDladmCreateAFPacketUsage(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"create-afpacket"}, "dladm: create-afpacket: missing link name"},
		{[]string{"create-afpacket", "pkt0"}, "dladm: create-afpacket: missing --over DEV"},
		{[]string{"create-afpacket", "pkt0", "pkt1", "--over", "v"}, `dladm: create-afpacket: unexpected argument "pkt1"`},
		{[]string{"create-afpacket", "pkt0", "--over"}, "dladm: create-afpacket: --over needs an argument"},
		{[]string{"create-afpacket", "pkt0", "--over", "averyverylongdevice"}, `dladm: create-afpacket: bad --over "averyverylongdevice"`},
		{[]string{"create-afpacket", "pkt0", "--over", "v", "--rings", "0"}, `dladm: create-afpacket: bad --rings "0"`},
		{[]string{"create-afpacket", "pkt0", "--over", "v", "--rings", "x"}, `dladm: create-afpacket: bad --rings "x"`},
		{[]string{"create-afpacket", "pkt0", "--over", "v", "--mtu", "-1"}, `dladm: create-afpacket: bad --mtu "-1"`},
		{[]string{"create-afpacket", "pkt0", "--over", "v", "--mac", "zz"}, `dladm: bad MAC address "zz"`},
		{[]string{"create-afpacket", "pkt0", "--over", "v", "--rx", "mmap"}, `dladm: create-afpacket: bad --rx "mmap" (recvmmsg or ring)`},
		{[]string{"create-afpacket", "pkt0", "--over", "v", "--netns", ""}, "dladm: create-afpacket: empty --netns"},
		{[]string{"create-afpacket", "pkt0", "--over", "v", "--queues", "2"}, `dladm: create-afpacket: unknown option "--queues"`},
		{[]string{"create-afpacket", "pkt:0", "--over", "v"}, `dladm: bad link name "pkt:0"`},
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
