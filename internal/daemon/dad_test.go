package daemon

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tapstack/tapstack/ctl"
)

// wait-dad returns once the address is usable, and refuses bad input
// with its errno.
func TestWaitDAD(t *testing.T) {
	f := newSnoopFixture(t)
	c := f.dial()
	f.plumb(c) // ifconfig mem0 10.9.0.1/24 up, then wait-dad
	var st ctl.Lifreq
	do(t, c, "SIOCGLIFDADSTATE", ctl.Lifreq{Name: "mem0"}, &st)
	if st.DADState != 2 {
		t.Errorf("after wait-dad: DAD state %d, want 2 (done)", st.DADState)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, tc := range []struct {
		arg  ctl.WaitDAD
		want ctl.Errno
	}{
		{ctl.WaitDAD{Name: "mem9"}, ctl.ENXIO},
		{ctl.WaitDAD{Name: "mem0", TimeoutMS: -1}, ctl.EINVAL},
	} {
		err := c.Do(ctx, "wait-dad", ctl.AF_INET, tc.arg, nil)
		var e *ctl.Error
		if !errors.As(err, &e) || e.Errno != tc.want {
			t.Errorf("wait-dad %+v: %v, want %v", tc.arg, err, tc.want)
		}
	}
}
