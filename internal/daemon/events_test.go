package daemon

import (
	"context"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/tapstack/tapstack/ctl"
)

// TestEventsStream: a change made on one connection reaches a client
// streaming "events" on another (tapadm route monitor).
func TestEventsStream(t *testing.T) {
	_, sock := startTestDaemon(t)
	mon, err := ctl.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close()
	cl, err := ctl.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	got := make(chan []ctl.Event, 1)
	go func() {
		var evs []ctl.Event
		err := mon.Stream(ctx, "events", "", ctl.Events{Count: 2}, func(raw json.RawMessage) error {
			var e ctl.Event
			if err := json.Unmarshal(raw, &e); err != nil {
				return err
			}
			evs = append(evs, e)
			return nil
		})
		if err != nil {
			t.Error(err)
		}
		got <- evs
	}()
	// The stream subscribes when it starts; keep changing lo0:1's address
	// until two events have arrived.
	var unit ctl.Lifreq
	if err := cl.Do(ctx, "SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "lo0"}, &unit); err != nil {
		t.Fatal(err)
	}
	for i := 2; ; i++ {
		a := netip.AddrFrom4([4]byte{127, 0, 0, byte(i)})
		if err := cl.Do(ctx, "SIOCSLIFADDR", ctl.AF_INET, ctl.Lifreq{Name: unit.Name, Addr: a}, nil); err != nil {
			t.Fatal(err)
		}
		select {
		case evs := <-got:
			if len(evs) != 2 || evs[0].Kind != "RTM_CHGADDR" || evs[0].Name != unit.Name || !evs[0].Addr.IsValid() {
				t.Errorf("events %+v", evs)
			}
			return
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("no events arrived")
		}
	}
}
