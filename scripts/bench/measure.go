package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// throughput is one iperf3 run: ns→host sends from the namespace to the
// host (or to the stack's service), host→ns is the same with -R.
type throughput struct {
	mtu     int
	reverse bool
	streams int
}

func (t throughput) key() string {
	dir := "ns→host"
	if t.reverse {
		dir = "host→ns"
	}
	return fmt.Sprintf("%s %d P%d", dir, t.mtu, t.streams)
}

// throughputCols lists the runs, grouped by MTU in the order of mtus.
var throughputCols = func() []throughput {
	var ts []throughput
	for _, m := range mtus {
		for _, r := range []bool{false, true} {
			for _, p := range []int{1, 4} {
				ts = append(ts, throughput{m, r, p})
			}
		}
	}
	return ts
}()

var errInterrupted = errors.New("interrupted")

// The other columns.
const (
	colP50   = "RR p50 µs"
	colP99   = "RR p99 µs"
	colConn  = "conn/s"
	colRRCPU = "CPU µs/RR" // the daemon's, over the request/response run
	colCPU   = "CPU s/GB"
	colRSS   = "RSS MiB"
)

// iperf runs iperf3 in e.ns against e.target and returns the receiver's
// bits per second and bytes.
func (b *bench) iperf(e *env, t throughput) (bps, bytes float64, err error) {
	args := []string{"netns", "exec", e.ns, "iperf3", "-J", "-c", e.target, "-p", iperfPort,
		"-t", fmt.Sprint(b.secs), "-P", fmt.Sprint(t.streams)}
	if t.reverse {
		args = append(args, "-R")
	}
	ctx, cancel := context.WithTimeout(b.ctx, time.Duration(b.secs+20)*time.Second)
	defer cancel()
	out, runErr := execCommand(ctx, "ip", args...).Output()
	if b.ctx.Err() != nil {
		return 0, 0, errInterrupted
	}
	var res struct {
		Error string
		End   struct {
			SumReceived struct {
				Bytes         float64
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		}
	}
	if err := json.Unmarshal(out, &res); err != nil {
		if runErr != nil {
			return 0, 0, runErr
		}
		return 0, 0, fmt.Errorf("iperf3 output: %v", err)
	}
	if res.Error != "" {
		return 0, 0, errors.New(res.Error)
	}
	if runErr != nil {
		return 0, 0, runErr
	}
	return res.End.SumReceived.BitsPerSecond, res.End.SumReceived.Bytes, nil
}

// requestResponse runs the rr client and connect tests in e.ns.
func (b *bench) requestResponse(c config, e *env, r *result) {
	addr := net.JoinHostPort(e.target, e.rrPort)
	var v map[string]float64
	const roundTrips = 20000
	c0 := cpuSeconds(e.daemon)
	err := b.rrRun(e, &v, "client", addr, "-n", fmt.Sprint(roundTrips))
	if err == nil && e.daemon != 0 {
		r.Values[colRRCPU] = (cpuSeconds(e.daemon) - c0) / roundTrips * 1e6
	}
	if err != nil {
		r.fail(colP50, err)
		r.fail(colP99, err)
		b.progress("%s request/response ... fail: %v", c.name, err)
	} else {
		r.Values[colP50], r.Values[colP99] = v["p50_us"], v["p99_us"]
		b.progress("%s request/response ... p50 %.0f µs, p99 %.0f µs", c.name, v["p50_us"], v["p99_us"])
	}
	err = b.rrRun(e, &v, "connect", addr, "-d", fmt.Sprintf("%ds", min(b.secs, 3)))
	if err != nil {
		r.fail(colConn, err)
		b.progress("%s connections ... fail: %v", c.name, err)
		return
	}
	r.Values[colConn] = v["conn_per_s"]
	b.progress("%s connections ... %.0f/s", c.name, v["conn_per_s"])
}

func (b *bench) rrRun(e *env, v *map[string]float64, args ...string) error {
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	out, err := execCommand(ctx, "ip", append([]string{"netns", "exec", e.ns, b.rr}, args...)...).CombinedOutput()
	if b.ctx.Err() != nil {
		return errInterrupted
	}
	if err != nil {
		return fmt.Errorf("%v: %s", err, lastLine(string(out)))
	}
	return json.Unmarshal(out, v)
}

// cpuSeconds is pid's user+system time (all threads); 0 for pid 0.
func cpuSeconds(pid int) float64 {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name; utime and stime are
	// fields 14 and 15 of the whole line.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

// peakRSS is pid's VmHWM in MiB.
func peakRSS(pid int) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if kb, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			n, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(kb), " kB"), 64)
			return n / 1024
		}
	}
	return 0
}

// machineInfo is what the figures depend on besides the code.
type machineInfo struct {
	CPU    string `json:"cpu"`
	Cores  int    `json:"cores"`
	Kernel string `json:"kernel"`
	Date   string `json:"date"`
	Go     string `json:"go"`
	Tools  string `json:"tools"`
}

func machine() machineInfo {
	m := machineInfo{CPU: "unknown", Cores: runtime.NumCPU(), Date: time.Now().UTC().Format("2006-01-02"), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for l := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimLeft(v, " \t:"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	var tools []string
	for _, t := range [][]string{{"iperf3", "-v"}, {"slirp4netns", "-v"}} {
		o, _ := command(context.Background(), t[0], t[1:]...)
		for l := range strings.Lines(o) {
			if !strings.Contains(l, "syslog") && strings.TrimSpace(l) != "" {
				tools = append(tools, strings.TrimSpace(l))
				break
			}
		}
	}
	// pasta --version says "unknown version" in Debian's snapshot.
	if v, err := command(context.Background(), "dpkg-query", "-W", "-f", "${Version}", "passt"); err == nil {
		tools = append(tools, "passt "+v)
	}
	m.Tools = strings.Join(tools, "; ")
	return m
}

func (m machineInfo) line() string {
	return fmt.Sprintf("Machine: %s, %d cores, Linux %s, %s, %s; %s.", m.CPU, m.Cores, m.Kernel, m.Go, m.Date, m.Tools)
}
