package daemon

import (
	"context"
	"time"

	"github.com/tapstack/tapstack/ctl"
)

// maxPings bounds one ping request so a client cannot tie up a connection.
const maxPings = 100

// ping sends ICMP echo requests from the stack (tapadm ping).
func (d *Daemon) ping(a ctl.Ping) (*ctl.PingResult, error) {
	if !a.Dst.IsValid() {
		return nil, ctl.Errorf(ctl.EINVAL, "ping needs a destination address")
	}
	if a.Count <= 0 {
		a.Count = 1
	}
	if a.Count > maxPings {
		return nil, ctl.Errorf(ctl.EINVAL, "count %d is more than %d", a.Count, maxPings)
	}
	timeout := time.Duration(a.TimeoutMS) * time.Millisecond
	if timeout <= 0 {
		timeout = time.Second
	}
	res := &ctl.PingResult{RTTMicros: []int64{}}
	for i := range a.Count {
		if i > 0 {
			time.Sleep(100 * time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		rtt, err := d.stack.Ping(ctx, a.Dst.Unmap(), uint16(i+1))
		cancel()
		res.Transmitted++
		if err != nil {
			res.Error = err.Error()
			continue
		}
		res.Received++
		res.RTTMicros = append(res.RTTMicros, rtt.Microseconds())
	}
	return res, nil
}
