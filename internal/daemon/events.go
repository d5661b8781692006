package daemon

import (
	"context"
	"sync/atomic"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/ifmgr"
)

// eventQueue bounds the events waiting for a slow client; more are
// dropped and counted, so the interface layer never waits for a reader.
const eventQueue = 1024

// events streams interface-layer events (tapadm route monitor).
func (d *Daemon) events(a ctl.Events) (stream, error) {
	if a.Count < 0 {
		return nil, ctl.Errorf(ctl.EINVAL, "count %d is negative", a.Count)
	}
	return func(ctx context.Context, w *streamWriter) error {
		q := make(chan ifmgr.Event, eventQueue)
		var dropped atomic.Uint64
		cancel := d.ifm.Subscribe(func(e ifmgr.Event) {
			select {
			case q <- e:
			default:
				dropped.Add(1)
			}
		})
		defer cancel()
		for sent := 0; a.Count == 0 || sent < a.Count; sent++ {
			select {
			case <-ctx.Done():
				return nil
			case e := <-q:
				ev := ctl.Event{Kind: string(e.Kind), Name: e.Name, Index: e.Index, Flags: e.Flags, Addr: e.Addr, Dropped: dropped.Load()}
				if err := w.Send(ev); err != nil {
					return err
				}
				if len(q) == 0 {
					if err := w.Flush(); err != nil {
						return err
					}
				}
			}
		}
		return w.Flush()
	}, nil
}
