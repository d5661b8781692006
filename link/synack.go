package link

import (
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// SYN-ACKs leave on a goroutine of their own.
//
// gVisor's passive open sends the SYN-ACK while it holds the new
// endpoint's lock, and the TCP processor goroutine only TryLocks an
// endpoint: when that fails it puts the endpoint back on its queue and
// tries again at once, spinning a CPU until the lock is free. Over a TAP the
// write is slow and the peer is fast: the kernel runs the namespace's
// side of the SYN-ACK inside our write(2), so the client's ACK and first
// data reach the reader, and the processor, before the write returns. On a
// 2-CPU machine that spin took a fifth of the daemon's CPU in a connect
// benchmark and left other goroutines waiting for its P. Handing the
// SYN-ACK to a fresh goroutine releases the lock at once; the handshake
// waits for the peer's ACK anyway, and nothing else of the connection can
// be sent before that ACK, so order is kept.

// isSynAck reports whether pkt, an outbound packet, is a TCP SYN-ACK.
func isSynAck(pkt *stack.PacketBuffer) bool {
	if pkt.TransportProtocolNumber != header.TCPProtocolNumber {
		return false
	}
	th := pkt.TransportHeader().Slice()
	if len(th) < header.TCPMinimumSize {
		return false
	}
	const synAck = header.TCPFlagSyn | header.TCPFlagAck
	return header.TCP(th).Flags()&(synAck|header.TCPFlagRst) == synAck
}

// writeDetached writes pkt on a goroutine of its own and returns at once.
// It takes a reference for the goroutine, so the caller keeps its own.
// A failed write is counted by the device, as any other.
func (e *hookEndpoint) writeDetached(pkt *stack.PacketBuffer) {
	pkt.IncRef()
	go func() {
		var one stack.PacketBufferList
		one.PushBack(pkt)
		e.Endpoint.WritePackets(one)
		one.Reset() // drops the reference taken above
	}()
}
