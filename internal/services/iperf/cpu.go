package iperf

import "time"

// cpuTimes is CPU time used, as getrusage(2) reports it.
type cpuTimes struct {
	user, system time.Duration
}

// cpuUtil is CPU use over an interval, in percent of one CPU, as iperf3
// reports it (cpu_util_total, _user, _system); it may exceed 100.
type cpuUtil struct {
	total, user, system float64
}

// sub returns the use between earlier and t over wall time.
func (t cpuTimes) sub(earlier cpuTimes, wall time.Duration) cpuUtil {
	if wall <= 0 {
		return cpuUtil{}
	}
	pct := func(d time.Duration) float64 { return max(float64(d)/float64(wall)*100, 0) }
	u := pct(t.user - earlier.user)
	s := pct(t.system - earlier.system)
	return cpuUtil{total: u + s, user: u, system: s}
}
