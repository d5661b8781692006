//go:build linux && !race

// Allocation counts need a build without -race: under the race detector
// sync.Pool drops items at random. `make test` runs them in a second,
// non-race pass (go test -run Allocs ./link/...).

package afpacket

import (
	"testing"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// TestAllocsReceive: walking a block of 64 frames, copying each into
// pooled views and delivering it, allocates nothing in steady state.
func TestAllocsReceive(t *testing.T) {
	partial := vnetHdr{Flags: vnetFlagNeedsCsum, CsumStart: 34, CsumOffset: 16}
	var frames []testFrame
	for i := range 64 {
		switch i % 4 {
		case 0:
			frames = append(frames, testFrame{frame: ipv4Frame(testMAC, ipProtoTCP, 1448), vnet: partial})
		case 1:
			frames = append(frames, testFrame{frame: ipv4Frame(testMAC, ipProtoTCP, 0)}) // an ACK, verified
		case 2:
			frames = append(frames, testFrame{frame: ipv4Frame(testMAC, ipProtoTCP, 65000), vnet: vnetHdr{
				Flags: vnetFlagNeedsCsum, CsumStart: 34, CsumOffset: 16, GSOType: vnetGSOTCPv4, GSOSize: 1448, HdrLen: 54}})
		case 3:
			frames = append(frames, testFrame{frame: ipv6Frame(testMAC, ipProtoUDP, 200)})
		}
	}
	for len(frames) > 0 {
		// A block holds what fits: three 64 KiB frames.
		n := min(len(frames), 10)
		blk := buildBlock(frames[:n])
		frames = frames[n:]
		r := testRing(t, -1)
		c := &counter{}
		allocs := testing.AllocsPerRun(200, func() { r.walkBlock(blk, c) })
		if c.n != 201*n {
			t.Fatalf("delivered %d frames, want %d", c.n, 201*n)
		}
		if allocs != 0 {
			t.Errorf("%v allocations per block of %d frames, want 0", allocs, n)
		}
	}
}

// TestAllocsTransmit: sending a batch of 64 frames (one sendmmsg) with
// scatter-gather allocates nothing in steady state.
func TestAllocsTransmit(t *testing.T) {
	tx, rx := socketPair(t)
	r := testRing(t, tx)
	ep := r.ep
	var list stack.PacketBufferList
	for i := range txBatch {
		p := testPacket(ep, 64+i*500, i%2 == 0)
		defer p.DecRef()
		list.PushBack(p)
	}
	buf := make([]byte, 1<<16)
	allocs := testing.AllocsPerRun(200, func() {
		if n, err := ep.WritePackets(list); n != txBatch || err != nil {
			t.Fatalf("WritePackets = %d, %v", n, err)
		}
		for range txBatch {
			if _, err := unix.Read(rx, buf); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per batch of %d frames, want 0", allocs, txBatch)
	}
	if st := r.stats(); st.TxSyscalls != 201 {
		t.Errorf("%d sendmmsg calls for 201 batches of 64", st.TxSyscalls)
	}
}

// TestAllocsReceiveRecvmmsg: one recvmmsg of 64 frames straight into
// pooled views, delivered, and the views replaced, allocates nothing in
// steady state.
func TestAllocsReceiveRecvmmsg(t *testing.T) {
	partial := vnetHdr{Flags: vnetFlagNeedsCsum, CsumStart: 34, CsumOffset: 16}
	gso := vnetHdr{Flags: vnetFlagNeedsCsum, CsumStart: 34, CsumOffset: 16, GSOType: vnetGSOTCPv4, GSOSize: 1448, HdrLen: 54}
	var msgs [][]byte
	for i := range rxBatch {
		switch i % 4 {
		case 0:
			msgs = append(msgs, message(partial, ipv4Frame(testMAC, ipProtoTCP, 1448)))
		case 1:
			msgs = append(msgs, message(vnetHdr{}, ipv4Frame(testMAC, ipProtoTCP, 0)))
		case 2:
			msgs = append(msgs, message(gso, ipv4Frame(testMAC, ipProtoTCP, 30000)))
		case 3:
			msgs = append(msgs, message(vnetHdr{}, ipv6Frame(testMAC, ipProtoUDP, 60)))
		}
	}
	r, peer := mmsgRing(t)
	c := &counter{}
	allocs := testing.AllocsPerRun(100, func() {
		for _, m := range msgs {
			if _, err := unix.Write(peer, m); err != nil {
				t.Fatal(err)
			}
		}
		if errno := r.readBatch(c); errno != 0 {
			t.Fatalf("readBatch: %v", errno)
		}
	})
	if c.n != 101*rxBatch {
		t.Fatalf("delivered %d frames, want %d", c.n, 101*rxBatch)
	}
	if allocs != 0 {
		t.Errorf("%v allocations per batch of %d frames, want 0", allocs, rxBatch)
	}
	if st := r.stats(); st.RxCopies != 0 {
		t.Errorf("%d copies", st.RxCopies)
	}
}
