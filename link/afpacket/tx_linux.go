package afpacket

import (
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// Transmit batching limits: frames per sendmmsg(2), and iovecs per batch
// (UIO_MAXIOV, which also bounds one frame).
const (
	txBatch   = 64
	txMaxIovs = 1024
)

// mmsghdr is struct mmsghdr.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// txState is a ring's transmit scratch: one batch of message headers,
// virtio-net headers and iovecs, reused for every batch so that sending
// allocates nothing.
//
// Locking: mu guards everything, and the ring's fd for senders.
type txState struct {
	mu sync.Mutex
	// +checklocks:mu
	closed bool
	// +checklocks:mu
	hdrs [txBatch]mmsghdr
	// +checklocks:mu
	vnet [txBatch][vnetHdrLen]byte
	// +checklocks:mu
	iovs [txMaxIovs]unix.Iovec
	// +checklocks:mu
	lens [txBatch]int
	// +checklocks:mu
	gso [txBatch]bool
	// +checklocks:mu
	flat []byte // for a frame of more than txMaxIovs-1 views (never seen in practice)
}

// send writes pkts on the ring's socket, up to txBatch frames per
// sendmmsg. It returns how many the kernel took. The packets stay the
// caller's.
func (r *ring) send(pkts []*stack.PacketBuffer) (int, tcpip.Error) {
	t := &r.tx
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return 0, &tcpip.ErrClosedForSend{}
	}
	sent := 0
	for sent < len(pkts) {
		n := t.fill(r, pkts[sent:])
		k, err := t.flush(r, n)
		sent += k
		if err != nil {
			r.counts.txErrors.Add(uint64(len(pkts) - sent))
			return sent, err
		}
	}
	return sent, nil
}

// fill builds message headers for as many of pkts as fit in one batch
// (at least one) and returns how many.
//
// +checklocks:t.mu
func (t *txState) fill(r *ring, pkts []*stack.PacketBuffer) int {
	niov := 0
	n := 0
	for ; n < len(pkts) && n < txBatch; n++ {
		pkt := pkts[n]
		views, off := pkt.AsViewList()
		need := 1 + views.Len()
		if niov+need > txMaxIovs && n > 0 {
			break // the next batch
		}
		first := niov
		t.vnetHeader(pkt, n)
		t.iovs[niov] = iovec(t.vnet[n][:])
		niov++
		size := 0
		if need > txMaxIovs {
			// Linearise: one copy, counted.
			t.flat = t.flat[:0]
			for v := views.Front(); v != nil; v = v.Next() {
				t.flat = append(t.flat, v.AsSlice()...)
			}
			t.flat = t.flat[off:]
			t.iovs[niov] = iovec(t.flat)
			niov++
			size = len(t.flat)
			r.counts.txCopies.Add(1)
		} else {
			for v := views.Front(); v != nil; v = v.Next() {
				b := v.AsSlice()
				if off >= len(b) {
					off -= len(b)
					continue
				}
				b = b[off:]
				off = 0
				t.iovs[niov] = iovec(b)
				niov++
				size += len(b)
			}
		}
		h := &t.hdrs[n]
		h.hdr = unix.Msghdr{Iov: &t.iovs[first]}
		h.hdr.SetIovlen(niov - first)
		h.len = 0
		t.lens[n] = size
	}
	return n
}

// vnetHeader writes the virtio-net header of pkt into slot i. TCP
// segments from a GSO route carry a partial checksum (gVisor wrote the
// pseudo-header sum); those longer than the MSS are GSO frames the kernel
// (or the peer, over veth) segments.
//
// +checklocks:t.mu
func (t *txState) vnetHeader(pkt *stack.PacketBuffer, i int) {
	var h vnetHdr
	t.gso[i] = false
	if g := pkt.GSOOptions; g.Type != stack.GSONone {
		h.HdrLen = uint16(pkt.HeaderSize())
		if g.NeedsCsum {
			h.Flags = vnetFlagNeedsCsum
			h.CsumStart = header.EthernetMinimumSize + g.L3HdrLen
			h.CsumOffset = g.CsumOffset
		}
		if pkt.Data().Size() > int(g.MSS) {
			switch g.Type {
			case stack.GSOTCPv4:
				h.GSOType = vnetGSOTCPv4
			case stack.GSOTCPv6:
				h.GSOType = vnetGSOTCPv6
			}
			if h.GSOType != vnetGSONone {
				h.GSOSize = g.MSS
				t.gso[i] = true
			}
		}
	}
	h.encode(t.vnet[i][:])
}

// flush sends the first n prepared messages, retrying what the kernel did
// not take, and returns how many were sent.
//
// +checklocks:t.mu
func (t *txState) flush(r *ring, n int) (int, tcpip.Error) {
	done := 0
	for done < n {
		k, err := sendmmsg(r.fd, t.hdrs[done:n])
		r.counts.txSyscalls.Add(1)
		switch err {
		case 0:
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			// SO_SNDTIMEO expired: no buffer space.
			return done, &tcpip.ErrWouldBlock{}
		default:
			return done, tcpip.TranslateErrno(err)
		}
		var bytes, gso uint64
		for i := done; i < done+k; i++ {
			bytes += uint64(t.lens[i])
			if t.gso[i] {
				gso++
			}
		}
		c := &r.counts
		c.txPackets.Add(uint64(k))
		c.txBytes.Add(bytes)
		c.txGSO.Add(gso)
		done += k
	}
	return done, nil
}

func iovec(b []byte) unix.Iovec {
	v := unix.Iovec{Base: unsafe.SliceData(b)}
	v.SetLen(len(b))
	return v
}

// sendmmsg is sendmmsg(2), blocking (bounded by SO_SNDTIMEO).
func sendmmsg(fd int, hdrs []mmsghdr) (int, unix.Errno) {
	n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&hdrs[0])), uintptr(len(hdrs)), 0, 0, 0)
	return int(n), errno
}
