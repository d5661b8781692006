package afpacket

import (
	"unsafe"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// The recvmmsg receive path (RXRecvmmsg): the kernel copies each frame
// straight into pooled gVisor views, which become the packet buffer: no
// userspace copy, and no block timeout.

// rxBatch is the most frames one recvmmsg(2) returns.
const rxBatch = 64

// mmsgViewSizes are the views one receive slot reads a frame into: the
// first holds a small frame (an ACK) whole; together they hold the largest
// GSO frame, an Ethernet header and 65535 bytes of IP (65549 ≤ 65664).
// Only the views a frame fills are taken, so a small frame costs one small
// chunk, not 64 KiB.
var mmsgViewSizes = [...]int{128, 256, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768}

const mmsgViews = len(mmsgViewSizes)

// mmsgRX is the receive goroutine's state in recvmmsg mode: rxBatch slots,
// each a virtio-net header buffer and a chain of views, and the message
// headers pointing at them. It belongs to the receive goroutine.
type mmsgRX struct {
	hdrs  [rxBatch]mmsghdr
	vnet  [rxBatch][vnetHdrLen]byte
	iovs  [rxBatch][1 + mmsgViews]unix.Iovec
	views [rxBatch][mmsgViews]*buffer.View // nil once taken by a packet
	flat  []byte                           // scratch to verify a frame of several views
}

// refill gives slot k fresh views where the last frame took them.
func (m *mmsgRX) refill(k int) {
	iov := &m.iovs[k]
	iov[0] = iovec(m.vnet[k][:])
	for i, v := range m.views[k] {
		if v == nil {
			v = buffer.NewViewSize(mmsgViewSizes[i])
			m.views[k][i] = v
			iov[i+1] = iovec(v.AsSlice())
		}
	}
	m.hdrs[k].hdr = unix.Msghdr{Iov: &iov[0]}
	m.hdrs[k].hdr.SetIovlen(len(iov))
}

// take removes the views holding the n-byte frame of slot k from the slot
// and returns them as a buffer, which the caller owns.
func (m *mmsgRX) take(k, n int) buffer.Buffer {
	var b buffer.Buffer
	for i := 0; n > 0 && i < mmsgViews; i++ {
		v := m.views[k][i]
		m.views[k][i] = nil
		if v.Size() > n {
			v.CapLength(n)
		}
		n -= v.Size()
		b.Append(v) // views are full (power-of-two chunks): no copy
	}
	return b
}

// contiguous returns the n-byte frame of slot k as one slice: the first
// view if it holds it all, else a copy (which it reports).
func (m *mmsgRX) contiguous(k, n int) (frame []byte, copied bool) {
	first := m.views[k][0].AsSlice()
	if n <= len(first) {
		return first[:n], false
	}
	m.flat = m.flat[:0]
	for i := 0; len(m.flat) < n && i < mmsgViews; i++ {
		b := m.views[k][i].AsSlice()
		m.flat = append(m.flat, b[:min(len(b), n-len(m.flat))]...)
	}
	return m.flat, true
}

// release gives every view back to the pool.
func (m *mmsgRX) release() {
	for k := range m.views {
		for i, v := range m.views[k] {
			if v != nil {
				v.Release()
				m.views[k][i] = nil
			}
		}
	}
}

// runMmsg is the receive loop in recvmmsg mode: read batches without
// blocking, and poll when there is nothing to read.
func (r *ring) runMmsg() {
	for k := range r.rx.hdrs {
		r.rx.refill(k)
	}
	for !r.ep.stop.Load() {
		switch r.readBatch(nil) {
		case 0, unix.EINTR:
		default: // EAGAIN; or an error the socket reports once (ENETDOWN)
			if stop := r.wait(); stop {
				return
			}
		}
	}
}

// readBatch reads up to rxBatch frames with one recvmmsg and delivers
// them to d, or with d nil to the endpoint's dispatcher as it is once the
// batch has been read (frames read after a detach are dropped, never
// handed to the dispatcher just detached). The slots must have been
// filled (refill) once.
func (r *ring) readBatch(d stack.NetworkDispatcher) unix.Errno {
	m := r.rx
	n, errno := recvmmsg(r.fd, m.hdrs[:], unix.MSG_DONTWAIT)
	if errno != 0 {
		return errno
	}
	if d == nil {
		d = r.ep.dispatcher()
	}
	var t tally
	var copies uint64
	if d == nil {
		t.dropped = uint64(n)
		n = 0
	}
	for k := range n {
		h := &m.hdrs[k]
		size := int(h.len) - vnetHdrLen
		if h.hdr.Flags&unix.MSG_TRUNC != 0 || size <= 0 {
			t.add(frameDropped, 0) // the slot keeps its views
			continue
		}
		vh := decodeVnetHdr(m.vnet[k][:])
		head := m.views[k][0].AsSlice()
		head = head[:min(len(head), size)]
		ethType, verify, res := r.admit(vh, head, size)
		if res == frameDelivered && verify {
			frame, copied := m.contiguous(k, size)
			if copied {
				copies++
			}
			if !verifyChecksums(ethType, frame[header.EthernetMinimumSize:]) {
				res = frameBadCsum
			}
		}
		switch res {
		case frameDelivered:
			t.add(deliver(d, ethType, m.take(k, size), vh, size))
			m.refill(k)
		case frameSegment:
			t.add(segmentUDP(d, ethType, m.take(k, size), vh, size))
			m.refill(k)
		default:
			t.add(res, 0)
		}
	}
	t.flush(&r.counts, copies)
	return 0
}

// recvmmsg is recvmmsg(2) without a timeout.
func recvmmsg(fd int, hdrs []mmsghdr, flags int) (int, unix.Errno) {
	n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&hdrs[0])), uintptr(len(hdrs)), uintptr(flags), 0, 0)
	return int(n), errno
}
