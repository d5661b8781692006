package daemon

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/ifmgr"
	"github.com/tapstack/tapstack/link"
)

// snoopQueue is how many captured frames may wait for the client; more
// are dropped and counted (ctl.Frame.Drops), so that a slow client never
// slows the link.
const snoopQueue = 512

// snoopLinkCheck is how often a capture checks that its link still exists.
const snoopLinkCheck = time.Second

// captured is one frame on its way from the tap to the client.
type captured struct {
	time time.Time
	dir  link.Direction
	data []byte // the capture's own copy
}

// snoop checks a "snoop" request and returns the stream that answers it
// (tapadm snoop). Nothing is tapped until the stream runs.
func (d *Daemon) snoop(caller ifmgr.Caller, a ctl.Snoop) (stream, error) {
	if !caller.Privileged {
		return nil, ctl.Errorf(ctl.EPERM, "capturing traffic needs privilege")
	}
	if a.Count < 0 {
		return nil, ctl.Errorf(ctl.EINVAL, "count %d is negative", a.Count)
	}
	l, ok := d.links.Get(a.Link)
	if !ok {
		return nil, ctl.Errorf(ctl.ENXIO, "no link named %s", a.Link)
	}
	return func(ctx context.Context, w *streamWriter) error {
		return d.capture(ctx, l, a.Count, w)
	}, nil
}

// capture taps l and sends what crosses it as ctl.Frame items until count
// frames are sent (0: no limit), ctx ends or the link is deleted. The tap
// is removed before capture returns.
func (d *Daemon) capture(ctx context.Context, l *link.Link, count int, w *streamWriter) error {
	frames := make(chan captured, snoopQueue)
	var drops atomic.Uint64
	// The tap runs on the data path: it copies and queues, or drops.
	remove := l.AddTap(func(dir link.Direction, frame []byte) {
		if len(frames) == cap(frames) {
			drops.Add(1)
			return
		}
		select {
		case frames <- captured{time: time.Now(), dir: dir, data: append([]byte(nil), frame...)}:
		default:
			drops.Add(1)
		}
	})
	d.log.Info("snoop started", "link", l.Name(), "count", count)
	sent, err := d.sendFrames(ctx, l, count, frames, &drops, w)
	remove()
	why := "count reached"
	switch {
	case ctx.Err() != nil:
		why = "client gone"
	case err != nil:
		why = err.Error()
	}
	d.log.Info("snoop ended", "link", l.Name(), "frames", sent, "dropped", drops.Load(), "why", why)
	return err
}

// sendFrames is capture's loop; it returns how many frames it sent.
func (d *Daemon) sendFrames(ctx context.Context, l *link.Link, count int, frames <-chan captured, drops *atomic.Uint64, w *streamWriter) (int, error) {
	check := time.NewTicker(snoopLinkCheck)
	defer check.Stop()
	sent := 0
	for count == 0 || sent < count {
		select {
		case <-ctx.Done():
			return sent, ctx.Err()
		case <-check.C:
			if cur, ok := d.links.Get(l.Name()); !ok || cur != l {
				return sent, ctl.Errorf(ctl.ENXIO, "link %s was deleted", l.Name())
			}
		case f := <-frames:
			dir := ctl.DirIn
			if f.dir == link.Outbound {
				dir = ctl.DirOut
			}
			if err := w.Send(ctl.Frame{Time: f.time, Dir: dir, Data: f.data, Drops: drops.Load()}); err != nil {
				return sent, err
			}
			sent++
			// Batch what is already queued into one write.
			if len(frames) == 0 {
				if err := w.Flush(); err != nil {
					return sent, err
				}
			}
		}
	}
	return sent, nil
}
