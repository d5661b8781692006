package iperf

import (
	"testing"
	"time"
)

// BenchmarkTCPReceive measures the server's receive path: a test client on
// the same gVisor stack writes 128 KiB blocks over the loopback NIC into
// one data stream, and the server reads them (copying, as by default, or
// not, as with --skip-rx-copy). bytes/s is what the server received per
// second of the benchmark; the client's writes run on the same CPUs, so it
// is a floor for the server alone.
func BenchmarkTCPReceive(b *testing.B) {
	for _, bc := range []struct {
		name     string
		skipCopy bool
	}{
		{"copy", false},
		{"skip-rx-copy", true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := newStack(b)
			srv := serve(b, s, Options{})
			c := newClient(b, s, v4)
			p := map[string]any{"tcp": true, "time": 0, "parallel": 1}
			if bc.skipCopy {
				p["skip_rx_copy"] = 1
			}
			c.params(p)
			sc := c.tcpStream()
			c.start()
			block := make([]byte, tcpReadSize)
			b.SetBytes(int64(len(block)))
			b.ReportAllocs()
			var sent uint64
			start := time.Now()
			for b.Loop() {
				if _, err := sc.Write(block); err != nil {
					b.Fatal(err)
				}
				sent += uint64(len(block))
			}
			eventually(b, "the server to read everything", func() bool { return srv.Stats().BytesReceived >= sent })
			b.ReportMetric(float64(sent)/time.Since(start).Seconds(), "bytes/s")
			b.StopTimer()
			if got := streamBytes(c.finish())[1]; got != sent {
				b.Errorf("server received %d bytes, client sent %d", got, sent)
			}
		})
	}
}
