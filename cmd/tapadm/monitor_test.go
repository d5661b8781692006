package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/tapstack/tapstack/ctl"
)

// eventStreamer streams canned events.
type eventStreamer struct {
	fakeDaemon
	events []ctl.Event
}

func (f *eventStreamer) Stream(ctx context.Context, op string, family ctl.Family, args any, each func(json.RawMessage) error) error {
	f.calls = append(f.calls, call{Op: op, Family: family, Args: args})
	for _, e := range f.events {
		raw, _ := json.Marshal(e)
		if err := each(raw); err != nil {
			return err
		}
	}
	return nil
}

func TestRouteMonitor(t *testing.T) {
	d := &eventStreamer{events: []ctl.Event{
		{Kind: "RTM_IFINFO", Name: "tap0", Index: 2, Flags: 0x1000843},
		{Kind: "RTM_ADD", Name: "tap0:1", Index: 2, Flags: 0x1000843, Addr: mustAddr(t, "10.0.0.3"), Dropped: 2},
	}}
	a, out, _ := testApp(d)
	if err := a.dispatch(context.Background(), []string{"route", "monitor", "-c", "2"}); err != nil {
		t.Fatal(err)
	}
	want := "RTM_IFINFO: tap0 index 2 flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4>\n" +
		"RTM_ADD: tap0:1 index 2 flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> addr 10.0.0.3 (2 events dropped before this one)\n"
	if diff := diff(want, out.String()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	if diff := diff([]call{{Op: "events", Args: ctl.Events{Count: 2}}}, d.calls); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	for _, bad := range [][]string{{"-c"}, {"-c", "0"}, {"-o", "yaml"}, {"now"}} {
		a, _, dials := testApp(&eventStreamer{})
		err := a.dispatch(context.Background(), append([]string{"route", "monitor"}, bad...))
		if err == nil || *dials != 0 || !strings.Contains(err.Error(), "monitor") {
			t.Errorf("route monitor %v: %v (dials %d)", bad, err, *dials)
		}
	}
}
