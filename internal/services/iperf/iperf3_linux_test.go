package iperf_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tapstack/tapstack/internal/netnstest"
	"github.com/tapstack/tapstack/internal/services/iperf"
	"github.com/tapstack/tapstack/link/tap"
	"github.com/tapstack/tapstack/stack"
)

// The real iperf3 client (Debian's iperf3, installed by make deps) against
// our server, in a namespace the test creates: the stack is at the other
// end of a TAP device, as in tapstackd. Each run lasts 1 or 2 s.

// Addresses inside the test's own namespace and stack; nothing else sees
// them.
var (
	stack4  = netip.MustParsePrefix("10.52.0.1/24")
	ns4     = netip.MustParsePrefix("10.52.0.2/24")
	stack6  = netip.MustParsePrefix("fd00:52::1/64")
	ns6     = netip.MustParsePrefix("fd00:52::2/64")
	stackLL = netip.MustParsePrefix("fe80::52:1/64")
	nsLL    = netip.MustParsePrefix("fe80::52:2/64")
)

// nsSetup is a stack serving iperf3 over a TAP device whose kernel side is
// in a new namespace.
type nsSetup struct {
	ns  string
	dev string // the TAP device, in ns
	srv *iperf.Server
}

func newNSSetup(t *testing.T) *nsSetup {
	t.Helper()
	netnstest.Require(t)
	if _, err := netnstest.LookCmd("iperf3"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("iperf3 missing under CI=true: %v (make deps installs it)", err)
		}
		netnstest.Unavailable(t, "%v; run make deps", err)
	}
	ns := netnstest.NewNetns(t)
	// Cleanups run last first: the server, then the link, then the stack.
	// The link goes before the stack so that no frame is still being
	// delivered when the stack removes the NIC: removing it waits for
	// the TAP's reader while holding the stack's lock, which a frame
	// being delivered (a late datagram answered with ICMP) may need.
	st := stack.New()
	t.Cleanup(st.Close)
	dev := netnstest.UniqueName("ipf")
	l, err := tap.Create(tap.Config{Name: dev, Netns: ns})
	if err != nil {
		t.Fatalf("create TAP %s in %s: %v", dev, ns, err)
	}
	t.Cleanup(func() { l.Close() })
	const nic = "tap0"
	must(t, st.AddNIC(nic, l.Endpoint()))
	must(t, st.EnableNIC(nic))
	must(t, st.AddAddress(nic, stack4))
	must(t, st.AddAddress(nic, stack6))
	must(t, st.AddAddress(nic, stackLL))
	st.SetRoutes([]stack.Route{
		{Dest: stack4.Masked(), NIC: nic},
		{Dest: stack6.Masked(), NIC: nic},
		{Dest: stackLL.Masked(), NIC: nic},
	})

	for _, args := range [][]string{
		{"ip", "addr", "add", ns4.String(), "dev", dev},
		{"ip", "-6", "addr", "add", ns6.String(), "dev", dev, "nodad"},
		{"ip", "-6", "addr", "add", nsLL.String(), "dev", dev, "nodad"},
		{"ip", "link", "set", dev, "up"},
	} {
		if out, err := netnstest.Exec(t, ns, args...); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	}

	srv, err := iperf.Serve(st.GVisor(), iperf.Options{})
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	t.Cleanup(srv.Close)
	return &nsSetup{ns: ns, dev: dev, srv: srv}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// report is what the tests read of `iperf3 --json`.
type report struct {
	Error string `json:"error"`
	End   struct {
		SumSent                 *sum `json:"sum_sent"`
		SumReceived             *sum `json:"sum_received"`
		SumSentBidirReverse     *sum `json:"sum_sent_bidir_reverse"`
		SumReceivedBidirReverse *sum `json:"sum_received_bidir_reverse"`
		Streams                 []json.RawMessage
		CPU                     struct {
			HostTotal   float64 `json:"host_total"`
			RemoteTotal float64 `json:"remote_total"`
		} `json:"cpu_utilization_percent"`
	} `json:"end"`
}

type sum struct {
	Bytes       uint64  `json:"bytes"`
	Bits        float64 `json:"bits_per_second"`
	Retransmits *int64  `json:"retransmits"`
	Seconds     float64 `json:"seconds"`
	JitterMS    float64 `json:"jitter_ms"`
	Lost        int64   `json:"lost_packets"`
	Packets     int64   `json:"packets"`
}

// iperf3 runs the client in the namespace with args and the JSON output,
// and returns the decoded report and the raw output.
func (s *nsSetup) iperf3(t *testing.T, args ...string) (report, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := netnstest.ExecContext(ctx, s.ns, append([]string{"iperf3", "--json"}, args...)...)
	var r report
	if jerr := json.Unmarshal([]byte(out), &r); jerr != nil {
		t.Fatalf("iperf3 %s: %v; output is not JSON (%v):\n%s", strings.Join(args, " "), err, jerr, out)
	}
	if err != nil && r.Error == "" {
		t.Fatalf("iperf3 %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return r, out
}

// idleStats returns the server's stats once it has finished the test: the
// client may exit before the server has closed its end.
func (s *nsSetup) idleStats() iperf.Stats {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if st := s.srv.Stats(); !st.Running {
			return st
		}
	}
	return s.srv.Stats()
}

func mbps(s *sum) string {
	if s == nil {
		return "-"
	}
	return fmt.Sprintf("%.0f Mbit/s", s.Bits/1e6)
}

// TestRealClient runs the real iperf3 client against the server: TCP and
// UDP, forward, reverse, parallel and bidirectional, over IPv4, IPv6 and an
// IPv6 link-local address. The main cases run 2 s, variants 1 s.
// Throughputs are logged, not asserted.
func TestRealClient(t *testing.T) {
	s := newNSSetup(t)
	a4, a6 := stack4.Addr().String(), stack6.Addr().String()
	ll := stackLL.Addr().String() + "%" + s.dev
	for _, tc := range []struct {
		name string
		args []string
		udp  bool
		// bidir: also the reverse sums.
		bidir bool
	}{
		{name: "TCP", args: []string{"-c", a4, "-t", "2"}},
		{name: "TCP-R", args: []string{"-c", a4, "-t", "2", "-R"}},
		{name: "TCP-P4", args: []string{"-c", a4, "-t", "2", "-P", "4"}},
		{name: "TCP-R-P4", args: []string{"-c", a4, "-t", "1", "-R", "-P", "4"}},
		{name: "TCP-bidir", args: []string{"-c", a4, "-t", "1", "--bidir"}, bidir: true},
		{name: "TCP6", args: []string{"-c", a6, "-t", "1"}},
		{name: "UDP-50M", args: []string{"-c", a4, "-t", "2", "-u", "-b", "50M"}, udp: true},
		{name: "UDP-R-50M", args: []string{"-c", a4, "-t", "2", "-u", "-b", "50M", "-R"}, udp: true},
		{name: "UDP-P2-64bit", args: []string{"-c", a4, "-t", "1", "-u", "-b", "20M", "-P", "2", "--udp-counters-64bit"}, udp: true},
		{name: "UDP6-R", args: []string{"-c", a6, "-t", "1", "-u", "-b", "20M", "-R"}, udp: true},
		{name: "UDP6-link-local", args: []string{"-c", ll, "-t", "1", "-u", "-b", "20M"}, udp: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := s.srv.Stats()
			r, out := s.iperf3(t, tc.args...)
			if r.Error != "" {
				t.Fatalf("iperf3 reports an error: %s\n%s", r.Error, out)
			}
			e := r.End
			if e.SumSent == nil || e.SumReceived == nil || e.SumSent.Bytes == 0 || e.SumReceived.Bytes == 0 {
				t.Fatalf("no data both sides: sum_sent %+v, sum_received %+v\n%s", e.SumSent, e.SumReceived, out)
			}
			if tc.bidir && (e.SumSentBidirReverse == nil || e.SumReceivedBidirReverse == nil || e.SumReceivedBidirReverse.Bytes == 0) {
				t.Fatalf("bidir: no reverse sums: %+v, %+v\n%s", e.SumSentBidirReverse, e.SumReceivedBidirReverse, out)
			}
			if tc.udp {
				t.Logf("%s: sent %s, received %s, %d/%d lost, jitter %.3f ms; CPU host %.0f%%, stack %.0f%%",
					tc.name, mbps(e.SumSent), mbps(e.SumReceived), e.SumReceived.Lost, e.SumReceived.Packets, e.SumReceived.JitterMS, e.CPU.HostTotal, e.CPU.RemoteTotal)
			} else {
				t.Logf("%s: sent %s, received %s; CPU host %.0f%%, stack %.0f%%",
					tc.name, mbps(e.SumSent), mbps(e.SumReceived), e.CPU.HostTotal, e.CPU.RemoteTotal)
			}
			if tc.bidir {
				t.Logf("%s reverse: sent %s, received %s", tc.name, mbps(e.SumSentBidirReverse), mbps(e.SumReceivedBidirReverse))
			}
			after := s.idleStats()
			if after.Completed != before.Completed+1 || after.Failed != before.Failed {
				t.Errorf("server stats %+v after %+v: want one more completed test, no failure", after, before)
			}
		})
	}
}

// TestRealClientBusy: a second client while a test runs is told the server
// is busy, and the first test is not disturbed.
func TestRealClientBusy(t *testing.T) {
	s := newNSSetup(t)
	a4 := stack4.Addr().String()
	first := make(chan report, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, _ := netnstest.ExecContext(ctx, s.ns, "iperf3", "--json", "-c", a4, "-t", "2")
		var r report
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			r.Error = fmt.Sprintf("output is not JSON (%v): %s", err, out)
		}
		first <- r
	}()
	for deadline := time.Now().Add(10 * time.Second); !s.srv.Stats().Running; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first test never started")
		}
	}
	r, out := s.iperf3(t, "-c", a4, "-t", "1")
	if !strings.Contains(r.Error, "busy") {
		t.Errorf("second client: error %q, want the server-is-busy error\n%s", r.Error, out)
	}
	if r := <-first; r.Error != "" || r.End.SumReceived == nil || r.End.SumReceived.Bytes == 0 {
		t.Errorf("first client: error %q, sum_received %+v", r.Error, r.End.SumReceived)
	}
	if st := s.idleStats(); st.Denied == 0 || st.Completed != 1 {
		t.Errorf("server stats %+v: want a denial and one completed test", st)
	}
}
