package daemon

import (
	"context"
	"errors"
	"time"

	"github.com/tapstack/tapstack/ctl"
)

// DAD waits: bringing an address up starts duplicate address
// detection, and the address is usable only when it ends. tapadm
// ifconfig and ipadm wait for it before they return, as illumos
// ifconfig and ipadm do, so a script's next command finds the address
// working (or learns it is a duplicate).

const (
	dadWaitDefault = 10 * time.Second
	dadWaitMax     = time.Minute
)

// waitDAD is the "wait-dad" operation.
func (d *Daemon) waitDAD(fam ctl.Family, a ctl.WaitDAD) error {
	if a.TimeoutMS < 0 {
		return ctl.Errorf(ctl.EINVAL, "timeout_ms %d is negative", a.TimeoutMS)
	}
	timeout := dadWaitDefault
	if a.TimeoutMS > 0 {
		timeout = min(time.Duration(a.TimeoutMS)*time.Millisecond, dadWaitMax)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := d.ifm.WaitDAD(ctx, a.Name, fam)
	if errors.Is(err, context.DeadlineExceeded) {
		return ctl.Errorf(ctl.ETIMEDOUT, "%s: duplicate address detection still running after %v", a.Name, timeout)
	}
	return err
}

// waitAddrDAD waits for DAD of the address object obj after an ipadm
// change brought it up.
func (d *Daemon) waitAddrDAD(obj string) error {
	rows, err := d.ipadm.ShowAddr(ctl.IpadmAddrObj{Obj: obj})
	if err != nil || len(rows) != 1 || rows[0].Lifname == "" {
		return nil // nothing up to wait for
	}
	return d.waitDAD(addrFamily(rows[0].Addr), ctl.WaitDAD{Name: rows[0].Lifname})
}
