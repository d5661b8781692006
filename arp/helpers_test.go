package arp

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/tapstack/tapstack/link"
	"github.com/tapstack/tapstack/link/memory"
	"github.com/tapstack/tapstack/stack"
)

var (
	ourMAC  = net.HardwareAddr{2, 0, 0, 0, 0, 1}
	peerMAC = net.HardwareAddr{2, 0, 0, 0, 0, 2}
)

// bench is an Interface on one end of an in-memory cable, a manual
// clock, and a recorder of what arrives at the other end.
type bench struct {
	t     *testing.T
	st    *stack.Stack
	clock *ManualClock
	ifc   *Interface
	peer  *link.Link
	rec   *recorder
}

func newBench(t *testing.T) *bench {
	t.Helper()
	st := stack.New()
	a, b := memory.NewPair("tap0", "peer0", 1500, ourMAC, peerMAC)
	if err := st.AddNIC("tap0", a.Endpoint()); err != nil {
		t.Fatal(err)
	}
	if err := st.EnableNIC("tap0"); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{arrived: make(chan struct{}, 1024)}
	b.Endpoint().Attach(rec)
	clk := NewManualClock()
	ifc, err := New(Config{Stack: st, NIC: "tap0", Link: a, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ifc.Close()
		st.Close()
		a.Close()
		b.Close()
	})
	return &bench{t: t, st: st, clock: clk, ifc: ifc, peer: b, rec: rec}
}

// frame is one ARP packet seen on the wire, with its Ethernet addresses.
type frame struct {
	src, dst net.HardwareAddr
	Packet
}

// recorder is the peer's NetworkDispatcher: it keeps every ARP frame.
type recorder struct {
	mu      sync.Mutex
	frames  []frame
	arrived chan struct{}
}

func (r *recorder) DeliverNetworkPacket(proto tcpip.NetworkProtocolNumber, pkt *gstack.PacketBuffer) {
	if proto != header.ARPProtocolNumber {
		return
	}
	eth := header.Ethernet(pkt.LinkHeader().Slice())
	p, ok := Parse(pkt.Data().AsRange().ToSlice())
	if !ok {
		return
	}
	r.mu.Lock()
	r.frames = append(r.frames, frame{
		src: net.HardwareAddr(eth.SourceAddress()), dst: net.HardwareAddr(eth.DestinationAddress()), Packet: p,
	})
	r.mu.Unlock()
	r.arrived <- struct{}{}
}

func (r *recorder) DeliverLinkPacket(tcpip.NetworkProtocolNumber, *gstack.PacketBuffer) {}

// wait returns once n frames have arrived in all (failing the test if
// they never do).
func (b *bench) wait(n int) []frame {
	b.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		b.rec.mu.Lock()
		got := append([]frame(nil), b.rec.frames...)
		b.rec.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-b.rec.arrived:
		case <-deadline:
			b.t.Fatalf("%d ARP frames arrived at the peer, want %d: %+v", len(got), n, got)
		}
	}
}

// inject sends p from the peer's end of the cable, Ethernet source src.
func (b *bench) inject(src, dst net.HardwareAddr, p Packet) {
	b.t.Helper()
	eth := make([]byte, header.EthernetMinimumSize)
	header.Ethernet(eth).Encode(&header.EthernetFields{
		SrcAddr: tcpip.LinkAddress(src), DstAddr: tcpip.LinkAddress(dst), Type: header.ARPProtocolNumber,
	})
	pkt := gstack.NewPacketBuffer(gstack.PacketBufferOptions{Payload: buffer.MakeWithData(append(eth, p.Marshal()...))})
	defer pkt.DecRef()
	var l gstack.PacketBufferList
	l.PushBack(pkt)
	if _, err := b.peer.Endpoint().WritePackets(l); err != nil {
		b.t.Fatalf("inject: %s", err)
	}
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }
