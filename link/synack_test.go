package link

import (
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// gatedDevice is a device endpoint whose writes block until the test
// opens the gate, and which reports the TCP flags of what it wrote.
type gatedDevice struct {
	*channel.Endpoint
	gate    chan struct{}
	written chan header.TCPFlags
}

func (d *gatedDevice) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	<-d.gate
	for _, pkt := range pkts.AsSlice() {
		d.written <- header.TCP(pkt.TransportHeader().Slice()).Flags()
	}
	return pkts.Len(), nil
}

func tcpPacket(flags header.TCPFlags) *stack.PacketBuffer {
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{ReserveHeaderBytes: header.TCPMinimumSize})
	header.TCP(pkt.TransportHeader().Push(header.TCPMinimumSize)).Encode(&header.TCPFields{
		SrcPort: 80, DstPort: 4000, DataOffset: header.TCPMinimumSize, Flags: flags,
	})
	pkt.TransportProtocolNumber = header.TCPProtocolNumber
	return pkt
}

// TestSynAckWrittenDetached: a SYN-ACK's write returns before the device
// has written it, and the device still gets it; every other segment is
// written on the caller's goroutine, before WritePackets returns.
func TestSynAckWrittenDetached(t *testing.T) {
	for _, tc := range []struct {
		name     string
		flags    header.TCPFlags
		detached bool
	}{
		{"SYN-ACK", header.TCPFlagSyn | header.TCPFlagAck, true},
		{"SYN", header.TCPFlagSyn, false},
		{"ACK", header.TCPFlagAck, false},
		{"PSH-ACK", header.TCPFlagPsh | header.TCPFlagAck, false},
		{"SYN-ACK-RST", header.TCPFlagSyn | header.TCPFlagAck | header.TCPFlagRst, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev := &gatedDevice{Endpoint: channel.New(1, 1500, ""), gate: make(chan struct{}), written: make(chan header.TCPFlags, 1)}
			e := newHookEndpoint(dev)
			pkt := tcpPacket(tc.flags)
			var pkts stack.PacketBufferList
			pkts.PushBack(pkt)
			returned := make(chan int, 1)
			go func() {
				n, _ := e.WritePackets(pkts)
				returned <- n
			}()
			select {
			case n := <-returned:
				if !tc.detached {
					t.Fatal("WritePackets returned while the device was still writing")
				}
				if n != 1 {
					t.Fatalf("WritePackets took %d packets, want 1", n)
				}
			case <-time.After(100 * time.Millisecond):
				if tc.detached {
					t.Fatal("WritePackets waited for the device to write a SYN-ACK")
				}
			}
			if tc.detached {
				pkt.DecRef() // the caller's reference: the detached write keeps its own
			}
			close(dev.gate)
			select {
			case got := <-dev.written:
				if got != tc.flags {
					t.Errorf("device wrote flags %v, want %v", got, tc.flags)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the device never wrote the packet")
			}
			if !tc.detached {
				<-returned
				pkt.DecRef()
			}
		})
	}
}

// TestSynAckOnlyAlone: a SYN-ACK batched with other packets is written in
// order with them, on the caller's goroutine.
func TestSynAckOnlyAlone(t *testing.T) {
	dev := &gatedDevice{Endpoint: channel.New(1, 1500, ""), gate: make(chan struct{}), written: make(chan header.TCPFlags, 2)}
	close(dev.gate)
	e := newHookEndpoint(dev)
	var pkts stack.PacketBufferList
	pkts.PushBack(tcpPacket(header.TCPFlagAck))
	pkts.PushBack(tcpPacket(header.TCPFlagSyn | header.TCPFlagAck))
	defer pkts.Reset()
	if n, err := e.WritePackets(pkts); n != 2 || err != nil {
		t.Fatalf("WritePackets: %d, %v", n, err)
	}
	for _, want := range []header.TCPFlags{header.TCPFlagAck, header.TCPFlagSyn | header.TCPFlagAck} {
		select {
		case got := <-dev.written:
			if got != want {
				t.Errorf("wrote %v, want %v", got, want)
			}
		default:
			t.Fatalf("%v not written before WritePackets returned", want)
		}
	}
}
