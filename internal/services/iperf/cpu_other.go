//go:build !unix

package iperf

// cpuNow reports nothing where getrusage(2) does not exist.
func cpuNow() cpuTimes { return cpuTimes{} }
