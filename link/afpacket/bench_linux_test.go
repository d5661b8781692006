package afpacket_test

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"

	"github.com/tapstack/tapstack/internal/netnstest"
	"github.com/tapstack/tapstack/link/afpacket"
)

// mib is the unit of a benchmark iteration: one MiB across the veth.
const mib = 1 << 20

// BenchmarkTransfer measures TCP bulk throughput over the veth between
// the kernel (socat in the namespace) and a gVisor stack on the link:
// "in" is socat /dev/zero → a gVisor discard listener, "out" is gVisor →
// socat > /dev/null. One iteration is one MiB; reported are Gbit/s, the
// userspace payload copies per frame, frames per receive block and per
// sendmmsg, and the share of GSO super-frames.
func BenchmarkTransfer(b *testing.B) {
	requireSocat(b)
	n := min(runtime.NumCPU(), 4)
	for _, mode := range modes {
		for _, rings := range []int{1, n} {
			for _, flows := range []int{1, 4} {
				for _, dir := range []string{"in", "out"} {
					b.Run(fmt.Sprintf("rx=%s/rings=%d/flows=%d/%s", mode, rings, flows, dir), func(b *testing.B) {
						benchTransfer(b, mode, rings, flows, dir == "in")
					})
				}
			}
		}
	}
}

func benchTransfer(b *testing.B, mode afpacket.RXMode, rings, flows int, in bool) {
	tn := newTestNet(b)
	l := tn.create(b, rings, mode)
	s := newStack(b, l)
	d := device(b, l)
	done := make(chan struct{})
	b.Cleanup(func() { close(done) })
	tokens := make(chan struct{}, 64)
	// count turns bytes moved into one token per MiB.
	count := func(r io.Reader, w io.Writer) {
		buf := make([]byte, 256<<10)
		var acc int
		for {
			var m int
			var err error
			if r != nil {
				m, err = r.Read(buf)
			} else {
				m, err = w.Write(buf)
			}
			acc += m
			for ; acc >= mib; acc -= mib {
				select {
				case tokens <- struct{}{}:
				case <-done:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}

	const port = 7100
	if in {
		ln, err := gonet.ListenTCP(s, tcpip.FullAddress{NIC: 1, Addr: stackIP, Port: port}, ipv4.ProtocolNumber)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					count(c, nil)
				}()
			}
		}()
		for range flows {
			cmd := nsCommand(b, tn.ns, "socat", "-b", "262144", "-u", "/dev/zero", fmt.Sprintf("TCP:10.77.0.1:%d", port))
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { cmd.Process.Kill() })
		}
	} else {
		cmd := nsCommand(b, tn.ns, "socat", "-b", "262144", "-u", fmt.Sprintf("TCP-LISTEN:%d,reuseaddr,fork", port), "/dev/null")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { cmd.Process.Kill() })
		for range flows {
			c := dialRetry(b, s, port)
			b.Cleanup(func() { c.Close() })
			go count(nil, c)
		}
	}
	// Warm up: the connections are established and past slow start.
	for range 16 * flows {
		select {
		case <-tokens:
		case <-time.After(10 * time.Second):
			b.Fatal("no data moving")
		}
	}

	before := d.Stats()
	b.SetBytes(mib)
	b.ReportAllocs()
	iters := 0
	start := time.Now()
	for b.Loop() {
		<-tokens
		iters++
	}
	elapsed := time.Since(start)
	after := d.Stats()

	var rx, rxCopies, rxBlocks, rxGSO, tx, txCopies, txCalls, txGSO, drops float64
	for i := range after {
		a, p := after[i], before[i]
		rx += float64(a.RxPackets - p.RxPackets)
		rxCopies += float64(a.RxCopies - p.RxCopies)
		rxBlocks += float64(a.RxBatches - p.RxBatches)
		rxGSO += float64(a.RxGSO - p.RxGSO)
		tx += float64(a.TxPackets - p.TxPackets)
		txCopies += float64(a.TxCopies - p.TxCopies)
		txCalls += float64(a.TxSyscalls - p.TxSyscalls)
		txGSO += float64(a.TxGSO - p.TxGSO)
		drops += float64(a.KernelDrops - p.KernelDrops)
	}
	b.ReportMetric(float64(iters)*mib*8/elapsed.Seconds()/1e9, "Gbit/s")
	b.ReportMetric(ratio(rxCopies, rx), "rx-copies/frame")
	b.ReportMetric(ratio(txCopies, tx), "tx-copies/frame")
	b.ReportMetric(ratio(rx, rxBlocks), "rx-frames/batch")
	b.ReportMetric(ratio(tx, txCalls), "tx-frames/syscall")
	if in {
		b.ReportMetric(ratio(rxGSO, rx), "rx-gso-share")
	} else {
		b.ReportMetric(ratio(txGSO, tx), "tx-gso-share")
	}
	b.ReportMetric(drops, "ring-drops")
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// BenchmarkPingRTT reports the round-trip time of pings from the kernel to
// the stack (ICMP echo, answered inline by the receive goroutine): the
// latency a lone frame sees in each receive mode. One iteration is one
// run of 100 pings, 10 ms apart.
func BenchmarkPingRTT(b *testing.B) {
	netnstest.Require(b)
	for _, mode := range modes {
		b.Run(fmt.Sprintf("rx=%s", mode), func(b *testing.B) {
			tn := newTestNet(b)
			l := tn.create(b, 1, mode)
			newStack(b, l)
			if out, err := netnstest.Exec(b, tn.ns, "ping", "-c", "3", "-i", "0.01", "10.77.0.1"); err != nil {
				b.Fatalf("ping: %v\n%s", err, out)
			}
			var minSum, avgSum float64
			runs := 0
			for b.Loop() {
				out, err := netnstest.Exec(b, tn.ns, "ping", "-q", "-c", "100", "-i", "0.01", "10.77.0.1")
				if err != nil {
					b.Fatalf("ping: %v\n%s", err, out)
				}
				var mn, avg, mx, mdev float64
				i := strings.Index(out, "rtt min/avg/max/mdev = ")
				if i < 0 {
					b.Fatalf("ping output: %s", out)
				}
				if _, err := fmt.Sscanf(out[i:], "rtt min/avg/max/mdev = %f/%f/%f/%f ms", &mn, &avg, &mx, &mdev); err != nil {
					b.Fatalf("ping output %q: %v", out[i:], err)
				}
				minSum += mn
				avgSum += avg
				runs++
			}
			b.ReportMetric(minSum/float64(runs)*1000, "min-µs")
			b.ReportMetric(avgSum/float64(runs)*1000, "avg-µs")
		})
	}
}
