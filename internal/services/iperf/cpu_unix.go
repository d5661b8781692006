//go:build unix

package iperf

import (
	"syscall"
	"time"
)

// cpuNow returns the CPU time the process has used so far. The server
// reports the whole process's use, which in tapstackd is mostly the stack
// moving the test's packets: what a stack benchmark wants to know.
func cpuNow() cpuTimes {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return cpuTimes{}
	}
	return cpuTimes{
		user:   time.Duration(ru.Utime.Nano()),
		system: time.Duration(ru.Stime.Nano()),
	}
}
