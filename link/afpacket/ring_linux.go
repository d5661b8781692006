package afpacket

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/tapstack/tapstack/link/vnet"
)

// Receive ring geometry (struct tpacket_req3). A block of 256 KiB holds
// three to four 64 KiB GSO frames or some 2,500 small ones; 64 blocks make
// 16 MiB per ring, enough to absorb a 4 MiB TCP window (gVisor's largest
// receive buffer) several times over while the ring's goroutine is busy in
// the stack. The kernel retires a block to userspace when it is full or
// ringBlockTimeout milliseconds after its first frame: that bounds the
// latency a lone frame sees.
const (
	ringBlockSize    = 256 << 10
	ringBlocks       = 64
	ringFrameSize    = 2048 // only for the kernel's frame count; V3 frames are variable
	ringBlockTimeout = 1    // ms
)

// Offsets in struct tpacket_block_desc (version, offset_to_priv, then
// struct tpacket_hdr_v1) and struct tpacket3_hdr.
const (
	blkStatusOff   = 8
	blkNumPktsOff  = 12
	blkFirstPktOff = 16
	blkHdrLen      = 48

	tpNextOff    = 0
	tpSnaplenOff = 12
	tpLenOff     = 16
	tpStatusOff  = 20
	tpMacOff     = 24
)

// sndBuf is the send buffer asked for each socket (SO_SNDBUFFORCE, as
// root): room for a batch of 64 KiB GSO frames in flight.
const sndBuf = 4 << 20

// ring is one AF_PACKET socket of a link: its receive ring, the goroutine
// reading it, and its transmit state.
//
// Locking: the receive fields (next, pollFDs) belong to the receive
// goroutine. tx.mu guards the transmit scratch and fd's validity for
// senders (Close takes it to close fd). kmu guards the kernel counters.
type ring struct {
	index int
	fd    int
	mode  RXMode
	mem   []byte  // RXRing: the mmap'd blocks
	rx    *mmsgRX // RXRecvmmsg: the receive slots
	ep    *endpoint
	cpu   atomic.Int64 // the CPU the receive goroutine is pinned to; -1 when not running

	next    int               // the next block to read
	pollFDs [2]unix.PollFd    // the socket and the endpoint's stop eventfd
	counts  counters          // updated by the receive goroutine and senders
	tx      txState           // the transmit side (tx_linux.go)
	kmu     sync.Mutex        // guards kstats
	kstats  [2]uint64         // PACKET_STATISTICS accumulated: packets, drops
	bpfProg []unix.SockFilter // the attached filter (kept alive for the kernel call)
}

// counters are a ring's statistics (RingStats without the identity).
type counters struct {
	rxPackets, rxBytes, rxBatches, rxCopies, rxGSO, rxDropped, rxBadCsum atomic.Uint64
	txPackets, txBytes, txSyscalls, txGSO, txCopies, txErrors            atomic.Uint64
}

// openRing creates ring index of a link over the device with the given
// ifindex, in the calling thread's network namespace, and joins the
// link's fanout group: *fanoutID is 0 for the first ring of a link with
// several (the kernel picks a unique group id, stored back into
// *fanoutID), then that id. With one ring (join false) there is no group.
func openRing(ep *endpoint, mode RXMode, index, ifindex int, join bool, fanoutID *uint16) (_ *ring, err error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket(AF_PACKET)", err)
	}
	r := &ring{index: index, fd: fd, ep: ep, mode: mode}
	r.cpu.Store(-1)
	defer func() {
		if err != nil {
			if r.mem != nil {
				unix.Munmap(r.mem)
			}
			unix.Close(fd)
		}
	}()
	setInt := func(name string, level, opt, v int) error {
		if err := unix.SetsockoptInt(fd, level, opt, v); err != nil {
			return os.NewSyscallError("setsockopt("+name+")", err)
		}
		return nil
	}
	if mode == RXRing {
		if err := setInt("PACKET_VERSION", unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
			return nil, err
		}
	}
	// Before the ring: the kernel refuses PACKET_VNET_HDR once it exists.
	if err := setInt("PACKET_VNET_HDR", unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		return nil, err
	}
	if err := setInt("PACKET_IGNORE_OUTGOING", unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return nil, err
	}
	if err := setInt("SO_SNDBUFFORCE", unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, sndBuf); err != nil {
		// Not root: the default, capped by net.core.wmem_max.
		if err := setInt("SO_SNDBUF", unix.SOL_SOCKET, unix.SO_SNDBUF, sndBuf); err != nil {
			return nil, err
		}
	}
	// A send that cannot get buffer space gives up after this rather than
	// hold the ring's transmit lock indefinitely.
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &unix.Timeval{Sec: 1}); err != nil {
		return nil, os.NewSyscallError("setsockopt(SO_SNDTIMEO)", err)
	}
	if mode == RXRing {
		req := unix.TpacketReq3{
			Block_size:     ringBlockSize,
			Block_nr:       ringBlocks,
			Frame_size:     ringFrameSize,
			Frame_nr:       ringBlockSize / ringFrameSize * ringBlocks,
			Retire_blk_tov: ringBlockTimeout,
		}
		if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
			return nil, os.NewSyscallError("setsockopt(PACKET_RX_RING)", err)
		}
		r.mem, err = unix.Mmap(fd, 0, ringBlockSize*ringBlocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
		if err != nil {
			r.mem = nil
			return nil, os.NewSyscallError("mmap(PACKET_RX_RING)", err)
		}
	} else {
		// The socket's receive queue is the ring: as much room as one.
		if err := setInt("SO_RCVBUFFORCE", unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, ringBlockSize*ringBlocks); err != nil {
			if err := setInt("SO_RCVBUF", unix.SOL_SOCKET, unix.SO_RCVBUF, ringBlockSize*ringBlocks); err != nil {
				return nil, err
			}
		}
		r.rx = new(mmsgRX)
	}
	// The filter before the bind, so that no frame for someone else is
	// ever queued.
	if err := r.setFilter(ep.linkAddress()); err != nil {
		return nil, err
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}
	if err := unix.Bind(fd, sa); err != nil {
		return nil, os.NewSyscallError("bind(AF_PACKET)", err)
	}
	if join {
		arg := int(*fanoutID) | unix.PACKET_FANOUT_HASH<<16
		if *fanoutID == 0 {
			arg |= unix.PACKET_FANOUT_FLAG_UNIQUEID << 16
		}
		if err := setInt("PACKET_FANOUT", unix.SOL_PACKET, unix.PACKET_FANOUT, arg); err != nil {
			return nil, err
		}
		if *fanoutID == 0 {
			v, err := unix.GetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT)
			if err != nil {
				return nil, os.NewSyscallError("getsockopt(PACKET_FANOUT)", err)
			}
			*fanoutID = uint16(v)
		}
	}
	r.pollFDs = [2]unix.PollFd{
		{Fd: int32(fd), Events: unix.POLLIN | unix.POLLERR},
		{Fd: int32(ep.stopFD), Events: unix.POLLIN},
	}
	return r, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// setFilter attaches a classic BPF program that accepts only untagged
// frames for mac or for a group (multicast, broadcast) address, so that in
// promiscuous mode the ring carries no one else's traffic. Equivalent to
// `tcpdump 'not vlan and (ether dst MAC or ether multicast)'`, where "vlan"
// includes tags the device stripped.
func (r *ring) setFilter(mac tcpip.LinkAddress) error {
	if len(mac) != 6 {
		return fmt.Errorf("filter: MAC %x is not 6 bytes", mac)
	}
	w := binary.BigEndian.Uint32([]byte(mac[:4]))
	h := uint32(binary.BigEndian.Uint16([]byte(mac[4:])))
	prog, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtVLANTagPresent},                      // A = tag stripped?
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 0, SkipTrue: 7},            // yes: drop
		bpf.LoadAbsolute{Off: 0, Size: 1},                                  // A = dst[0]
		bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 1, SkipTrue: 4},             // group address: accept
		bpf.LoadAbsolute{Off: 0, Size: 4},                                  // A = dst[0:4]
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: w, SkipFalse: 3},              // no: drop
		bpf.LoadAbsolute{Off: 4, Size: 2},                                  // A = dst[4:6]
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: h, SkipTrue: 0, SkipFalse: 1}, // no: drop
		bpf.RetConstant{Val: 0xffffffff},                                   // accept whole
		bpf.RetConstant{Val: 0},                                            // drop
	})
	if err != nil {
		return fmt.Errorf("filter: %w", err)
	}
	filter := make([]unix.SockFilter, len(prog))
	for i, ins := range prog {
		filter[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.SetsockoptSockFprog(r.fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		return os.NewSyscallError("setsockopt(SO_ATTACH_FILTER)", err)
	}
	r.bpfProg = filter
	return nil
}

// setPromisc turns the device's promiscuous mode on or off for this
// socket (the kernel counts promiscuity per membership, and drops the
// membership when the socket closes).
func (r *ring) setPromisc(ifindex int, on bool) error {
	opt, name := unix.PACKET_ADD_MEMBERSHIP, "PACKET_ADD_MEMBERSHIP"
	if !on {
		opt, name = unix.PACKET_DROP_MEMBERSHIP, "PACKET_DROP_MEMBERSHIP"
	}
	mreq := unix.PacketMreq{Ifindex: int32(ifindex), Type: unix.PACKET_MR_PROMISC}
	if err := unix.SetsockoptPacketMreq(r.fd, unix.SOL_PACKET, opt, &mreq); err != nil {
		return os.NewSyscallError("setsockopt("+name+")", err)
	}
	return nil
}

// block returns block i of the ring.
func (r *ring) block(i int) []byte {
	return r.mem[i*ringBlockSize : (i+1)*ringBlockSize : (i+1)*ringBlockSize]
}

// blockStatus returns the address of a block's block_status word, which
// the kernel and the receive goroutine hand the block over with.
func blockStatus(blk []byte) *uint32 {
	return (*uint32)(unsafe.Pointer(&blk[blkStatusOff]))
}

// run is the ring's receive goroutine: pinned to cpu (if >= 0), it reads
// blocks (or batches of messages, in recvmmsg mode) until the endpoint's
// stop eventfd is signalled, delivering every frame to the endpoint's
// dispatcher, or dropping it while there is none. It never unlocks its OS
// thread: the thread's CPU affinity was changed, so Go discards the thread
// when the goroutine exits rather than reuse it.
func (r *ring) run(cpu int, done func()) {
	defer done()
	runtime.LockOSThread()
	if cpu >= 0 {
		var set unix.CPUSet
		set.Set(cpu)
		if unix.SchedSetaffinity(0, &set) == nil {
			r.cpu.Store(int64(cpu))
		}
	}
	defer r.cpu.Store(-1)
	if r.mode == RXRecvmmsg {
		r.runMmsg()
		return
	}
	for !r.ep.stop.Load() {
		blk := r.block(r.next)
		if atomic.LoadUint32(blockStatus(blk))&unix.TP_STATUS_USER == 0 {
			if stop := r.wait(); stop {
				return
			}
			continue
		}
		r.walkBlock(blk, r.ep.dispatcher())
		atomic.StoreUint32(blockStatus(blk), unix.TP_STATUS_KERNEL)
		r.next = (r.next + 1) % ringBlocks
	}
}

// wait polls until the socket is readable (a block was retired) or the
// endpoint is stopping; it reports the latter.
func (r *ring) wait() (stop bool) {
	r.pollFDs[0].Revents, r.pollFDs[1].Revents = 0, 0
	_, err := unix.Poll(r.pollFDs[:], -1)
	if err != nil && !errors.Is(err, unix.EINTR) {
		return true // EBADF, ENOMEM: nothing sensible to retry
	}
	if r.pollFDs[1].Revents != 0 {
		return true
	}
	if r.pollFDs[0].Revents&unix.POLLERR != 0 {
		// ENETDOWN when the device goes away, say: reading SO_ERROR
		// clears it, so that poll does not spin.
		unix.GetsockoptInt(r.fd, unix.SOL_SOCKET, unix.SO_ERROR)
	}
	return false
}

// walkBlock delivers every frame of a retired block to d, in order, or
// drops them all if d is nil (the endpoint is detached). Offsets come from
// the kernel and are checked, not trusted.
func (r *ring) walkBlock(blk []byte, d stack.NetworkDispatcher) {
	n := binary.NativeEndian.Uint32(blk[blkNumPktsOff:])
	off := int(binary.NativeEndian.Uint32(blk[blkFirstPktOff:]))
	var t tally
	if d == nil {
		t.dropped = uint64(n)
		n = 0
	}
	for ; n > 0; n-- {
		if off < blkHdrLen || off+unix.SizeofTpacket3Hdr > len(blk) {
			t.dropped += uint64(n)
			break
		}
		h := blk[off:]
		t.add(r.frame(h, d))
		next := int(binary.NativeEndian.Uint32(h[tpNextOff:]))
		if next == 0 {
			break
		}
		off += next
	}
	t.flush(&r.counts, t.delivered)
}

// tally counts a batch's outcomes, to update the ring's counters once per
// batch.
type tally struct {
	delivered, bytes, gso, dropped, badCsum uint64
}

func (t *tally) add(res frameResult, size int) {
	switch res {
	case frameDelivered:
		t.delivered++
		t.bytes += uint64(size)
	case frameDeliveredGSO:
		t.delivered++
		t.gso++
		t.bytes += uint64(size)
	case frameBadCsum:
		t.badCsum++
		t.dropped++
	default:
		t.dropped++
	}
}

// flush adds the batch to c, with the number of userspace copies made.
func (t *tally) flush(c *counters, copies uint64) {
	c.rxBatches.Add(1)
	if t.delivered != 0 {
		c.rxPackets.Add(t.delivered)
		c.rxBytes.Add(t.bytes)
		c.rxGSO.Add(t.gso)
	}
	if copies != 0 {
		c.rxCopies.Add(copies)
	}
	if t.dropped != 0 {
		c.rxDropped.Add(t.dropped)
		c.rxBadCsum.Add(t.badCsum)
	}
}

// What became of a frame.
type frameResult int

const (
	frameDelivered frameResult = iota
	frameDeliveredGSO
	frameDropped
	frameBadCsum
	frameSegment // a UDP GSO frame, to be split (admit only)
)

// frame delivers the frame whose struct tpacket3_hdr starts h (which runs
// to the end of the block) to d and returns what became of it and its
// size. The frame is copied once, into pooled gVisor views; the block is
// not referenced after the call.
func (r *ring) frame(h []byte, d stack.NetworkDispatcher) (frameResult, int) {
	snap := int(binary.NativeEndian.Uint32(h[tpSnaplenOff:]))
	wire := int(binary.NativeEndian.Uint32(h[tpLenOff:]))
	status := binary.NativeEndian.Uint32(h[tpStatusOff:])
	mac := int(binary.NativeEndian.Uint16(h[tpMacOff:]))
	switch {
	case snap != wire, // truncated
		status&unix.TP_STATUS_VLAN_VALID != 0, // tagged: not our link
		mac < unix.SizeofTpacket3Hdr+vnetHdrLen || mac+snap > len(h):
		return frameDropped, 0
	}
	frame := h[mac : mac+snap : mac+snap]
	vh := decodeVnetHdr(h[mac-vnetHdrLen : mac])
	ethType, verify, res := r.admit(vh, frame, snap)
	switch {
	case res == frameDelivered && verify && !verifyChecksums(ethType, frame[header.EthernetMinimumSize:]):
		return frameBadCsum, 0
	case res == frameSegment:
		return segmentUDP(d, ethType, copyFrame(frame), vh, snap)
	case res != frameDelivered:
		return res, 0
	}
	return deliver(d, ethType, copyFrame(frame), vh, snap)
}

// admit decides from a frame's virtio-net header, its first bytes (head:
// the Ethernet header at least, if the frame has one) and its size whether
// it goes to the stack. It returns the EtherType, whether
// the checksums must be verified in software (no checksum flag), and
// frameDelivered, or why the frame is to be dropped.
func (r *ring) admit(vh vnetHdr, head []byte, size int) (ethType uint16, verify bool, res frameResult) {
	if len(head) < header.EthernetMinimumSize || vh.validate(size) != nil {
		return 0, false, frameDropped
	}
	dst := head[:6]
	if dst[0]&1 == 0 && string(dst) != string(r.ep.linkAddress()) {
		return 0, false, frameDropped // filtered too, but the MAC may just have changed
	}
	ethType = binary.BigEndian.Uint16(head[12:])
	switch vh.gso() {
	case vnetGSOUDPL4:
		if vh.Flags&vnetFlagNeedsCsum == 0 {
			return 0, false, frameDropped // see the package doc
		}
		return ethType, false, frameSegment
	case vnetGSOUDP:
		return 0, false, frameDropped // UFO: IP fragmentation, never produced by Linux now
	}
	return ethType, vh.Flags&(vnetFlagNeedsCsum|vnetFlagDataValid) == 0, frameDelivered
}

// deliver makes payload (a whole frame, which deliver takes) a packet
// buffer and hands it to d, returning the outcome for the counters.
func deliver(d stack.NetworkDispatcher, ethType uint16, payload buffer.Buffer, vh vnetHdr, size int) (frameResult, int) {
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: payload})
	defer pkt.DecRef()
	if _, ok := pkt.LinkHeader().Consume(header.EthernetMinimumSize); !ok {
		return frameDropped, 0
	}
	proto := tcpip.NetworkProtocolNumber(ethType)
	pkt.NetworkProtocolNumber = proto
	d.DeliverNetworkPacket(proto, pkt)
	if vh.gso() != vnetGSONone {
		return frameDeliveredGSO, size
	}
	return frameDelivered, size
}

// segmentUDP splits a UDP GSO frame (taken) into datagrams, the way the
// kernel would, and delivers each. The payload is shared, not copied; the
// split allocates, but a sender has to ask for UDP GSO (UDP_SEGMENT).
func segmentUDP(d stack.NetworkDispatcher, ethType uint16, frame buffer.Buffer, vh vnetHdr, size int) (frameResult, int) {
	f := vnet.Fields{
		Flags: vh.Flags, GSOType: vh.GSOType, HdrLen: vh.HdrLen,
		GSOSize: vh.GSOSize, CsumStart: vh.CsumStart, CsumOffset: vh.CsumOffset,
	}
	err := vnet.SegmentUDP(frame, &f, func(seg buffer.Buffer) {
		deliver(d, ethType, seg, vnetHdr{}, 0)
	})
	if err != nil {
		return frameDropped, 0
	}
	return frameDeliveredGSO, size
}

// copyFrame copies frame into pooled views (gVisor pools chunks of up to
// buffer.MaxChunkSize; a GSO frame can be a little larger, and takes two)
// and returns them as a buffer the caller owns. This is the receive path's
// one copy.
func copyFrame(frame []byte) buffer.Buffer {
	var b buffer.Buffer
	for len(frame) > 0 {
		n := min(len(frame), buffer.MaxChunkSize)
		v := buffer.NewView(n)
		v.Write(frame[:n])
		b.Append(v)
		frame = frame[n:]
	}
	return b
}

// kernelStats reads PACKET_STATISTICS (which the kernel resets on each
// read) and returns the totals so far.
func (r *ring) kernelStats() (packets, drops uint64) {
	r.tx.mu.Lock()
	closed := r.tx.closed
	r.kmu.Lock()
	if !closed {
		if st, err := unix.GetsockoptTpacketStatsV3(r.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
			r.kstats[0] += uint64(st.Packets)
			r.kstats[1] += uint64(st.Drops)
		}
	}
	packets, drops = r.kstats[0], r.kstats[1]
	r.kmu.Unlock()
	r.tx.mu.Unlock()
	return packets, drops
}

// stats returns the ring's counters.
func (r *ring) stats() RingStats {
	c := &r.counts
	kp, kd := r.kernelStats()
	return RingStats{
		Ring: r.index, CPU: int(r.cpu.Load()),
		RxPackets: c.rxPackets.Load(), RxBytes: c.rxBytes.Load(), RxBatches: c.rxBatches.Load(),
		RxCopies: c.rxCopies.Load(), RxGSO: c.rxGSO.Load(), RxDropped: c.rxDropped.Load(),
		RxBadCsum: c.rxBadCsum.Load(),
		TxPackets: c.txPackets.Load(), TxBytes: c.txBytes.Load(), TxSyscalls: c.txSyscalls.Load(),
		TxGSO: c.txGSO.Load(), TxCopies: c.txCopies.Load(), TxErrors: c.txErrors.Load(),
		KernelPackets: kp, KernelDrops: kd,
	}
}

// close unmaps the ring and closes the socket (leaving the fanout group
// and dropping the promiscuous membership). The receive goroutine has
// stopped; senders are shut out by tx.closed.
func (r *ring) close() error {
	r.kernelStats() // keep the last counts
	r.tx.mu.Lock()
	defer r.tx.mu.Unlock()
	if r.tx.closed {
		return nil
	}
	r.tx.closed = true
	var errs []error
	if r.mem != nil {
		if err := unix.Munmap(r.mem); err != nil {
			errs = append(errs, fmt.Errorf("munmap ring %d: %w", r.index, err))
		}
		r.mem = nil
	}
	if r.rx != nil {
		r.rx.release()
	}
	if err := unix.Close(r.fd); err != nil {
		errs = append(errs, fmt.Errorf("close ring %d: %w", r.index, err))
	}
	r.fd = -1
	return errors.Join(errs...)
}
