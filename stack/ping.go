package stack

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// Ping sends one ICMP echo request from the stack to dst and waits for the
// reply, returning the round-trip time. The stack picks the source address
// and resolves the next hop (ARP/ND) as for any other traffic. Equivalent
// to `ping -c 1` run on the stack itself.
func (s *Stack) Ping(ctx context.Context, dst netip.Addr, seq uint16) (time.Duration, error) {
	netProto, transProto := ipv4.ProtocolNumber, icmp.ProtocolNumber4
	hdrLen, echoType := header.ICMPv4MinimumSize, uint8(header.ICMPv4Echo)
	if dst.Is6() {
		netProto, transProto = ipv6.ProtocolNumber, icmp.ProtocolNumber6
		hdrLen, echoType = header.ICMPv6EchoMinimumSize, uint8(header.ICMPv6EchoRequest)
	}
	var wq waiter.Queue
	ep, terr := s.s.NewEndpoint(transProto, netProto, &wq)
	if terr != nil {
		return 0, fmt.Errorf("ping socket: %s", terr)
	}
	defer ep.Close()
	if terr := ep.Connect(tcpip.FullAddress{Addr: tcpip.AddrFromSlice(dst.AsSlice())}); terr != nil {
		return 0, fmt.Errorf("ping %s: %s", dst, terr)
	}

	payload := []byte("tapstack ping")
	req := make([]byte, hdrLen+len(payload))
	req[0] = echoType
	// The stack owns the identifier of a ping socket; it fills it in and
	// the checksum too.
	req[6], req[7] = byte(seq>>8), byte(seq)
	copy(req[hdrLen:], payload)

	we, ch := waiter.NewChannelEntry(waiter.ReadableEvents)
	wq.EventRegister(&we)
	defer wq.EventUnregister(&we)

	start := time.Now()
	var r bytes.Reader
	r.Reset(req)
	for {
		_, terr := ep.Write(&r, tcpip.WriteOptions{})
		if terr == nil {
			break
		}
		if _, ok := terr.(*tcpip.ErrWouldBlock); !ok {
			return 0, fmt.Errorf("ping %s: %s", dst, terr)
		}
		// Link resolution in progress: wait a little and retry.
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("ping %s: no answer to link resolution: %w", dst, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
		r.Reset(req)
	}
	for {
		var buf bytes.Buffer
		_, terr := ep.Read(&buf, tcpip.ReadOptions{})
		if terr == nil {
			b := buf.Bytes()
			if len(b) >= hdrLen && b[6] == byte(seq>>8) && b[7] == byte(seq) {
				return time.Since(start), nil
			}
			continue
		}
		if _, ok := terr.(*tcpip.ErrWouldBlock); !ok {
			return 0, fmt.Errorf("ping %s: %s", dst, terr)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, fmt.Errorf("ping %s: no reply: %w", dst, ctx.Err())
		}
	}
}
