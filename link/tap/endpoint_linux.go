package tap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/tapstack/tapstack/link/busypoll"
	"github.com/tapstack/tapstack/link/internal/host"
	"github.com/tapstack/tapstack/link/vnet"
)

// endpoint is the data path over one TAP device: a stack.LinkEndpoint and
// stack.GSOEndpoint with Ethernet framing over one descriptor per queue.
// Its descriptor I/O works on any descriptor that keeps message
// boundaries (a SOCK_SEQPACKET socket in the unit tests), so nothing here
// needs a TAP.
//
// Receive: one goroutine per queue (ring.run) reads a frame per readv into
// pooled views (rxBuffer), strips and checks the virtio-net header, and
// delivers the frame inline: no channel, no other goroutine. A pinned
// reader is locked to its thread and CPU and waits in ppoll; a polled one
// parks in Go's poller (ReaderMode). Transmit: WritePackets, on the caller's
// goroutine, writes each frame with one writev over the packet's views
// behind a virtio-net header built from its GSO options; the queue is
// chosen by the packet's flow hash, so a flow stays on one queue.
//
// Close semantics (kept from the fdbased-based endpoint): the stack may
// write until its NIC is removed, so release does not close the queue
// descriptors, which could then be reused by another file and receive the
// stack's frames; it puts /dev/null in their place (dup3: the numbers
// never become free), which drops the last reference to the TAP and
// deletes a non-persistent device (polled readers' duplicate descriptors
// are closed first). The placeholders are closed when the
// stack detaches (Attach(nil)).
//
// Locking: mu serialises Attach and release and guards the fields marked;
// the data path takes no lock. The rings load the dispatcher atomically
// (disp) for every frame and drop frames while none is attached.
//
// Detaching never waits for the rings: gVisor detaches a NIC while holding
// its stack lock, and a ring delivering a frame may be waiting for that
// same lock. The rings run from the first Attach until release, which is
// never called with a stack lock held.
type endpoint struct {
	rings []*ring // one per queue; fixed
	off   Offloads
	caps  stack.LinkEndpointCapabilities
	gso   bool

	mtu  atomic.Uint32
	addr atomic.Pointer[[header.EthernetAddressSize]byte]

	copies atomic.Uint64 // payload copies on transmit (see writeFlat)

	wg sync.WaitGroup // running rings

	disp atomic.Pointer[dispatcherBox] // nil while detached

	mu sync.Mutex
	// +checklocks:mu
	dispatcher stack.NetworkDispatcher
	// +checklocks:mu
	running bool // the rings have been started and not stopped
	// +checklocks:mu
	released bool
	// +checklocks:mu
	fdsClosed bool
	// +checklocks:mu
	onClose func()
}

var (
	_ stack.LinkEndpoint = (*endpoint)(nil)
	_ stack.GSOEndpoint  = (*endpoint)(nil)
)

// endpointOptions describe an endpoint to make.
type endpointOptions struct {
	fds  []int // one per queue; the endpoint owns them once newEndpoint succeeds
	mtu  uint32
	mac  []byte   // 6 bytes
	off  Offloads // as negotiated; OffloadVnetHdr if the frames carry the header
	cpus []int    // CPUs to pin ring i to (cpus[i%len]); nil: no pinning
	// readers is ReadersPinned or ReadersPolled (cpus unused then).
	readers ReaderMode
}

// newEndpoint makes the endpoint over opts.fds, which it sets
// non-blocking. It owns the descriptors once it succeeds; if it fails they
// stay the caller's.
func newEndpoint(opts endpointOptions) (*endpoint, error) {
	if len(opts.fds) == 0 {
		return nil, fmt.Errorf("tap endpoint: no descriptors")
	}
	if len(opts.mac) != header.EthernetAddressSize {
		return nil, fmt.Errorf("tap endpoint: MAC %x is not an Ethernet address", opts.mac)
	}
	e := &endpoint{off: opts.off, caps: stack.CapabilityResolutionRequired}
	if opts.off&OffloadVnetHdr != 0 {
		// The link checks what the kernel did not (ChecksumsValid), so
		// gVisor need not; partial checksums from the kernel would fail
		// gVisor's check anyway. Not CapabilityTXChecksumOffload: see
		// vnet.ForTransmit; TCP segments go with partial checksums
		// through host GSO.
		e.caps |= stack.CapabilityRXChecksumOffload
		e.gso = opts.off.TSO()
	}
	e.mtu.Store(opts.mtu)
	var mac [header.EthernetAddressSize]byte
	copy(mac[:], opts.mac)
	e.addr.Store(&mac)
	for i, fd := range opts.fds {
		if err := unix.SetNonblock(fd, true); err != nil {
			e.closeWakers()
			return nil, fmt.Errorf("tap queue %d: set non-blocking: %w", i, err)
		}
		r := &ring{e: e, idx: i, fd: fd, efd: -1, cpu: -1, vnetHdr: opts.off&OffloadVnetHdr != 0}
		e.rings = append(e.rings, r) // before anything can fail: closeWakers sees it
		if opts.readers == ReadersPolled {
			w, err := host.NewReadyWaiter(fd)
			if err != nil {
				e.closeWakers()
				return nil, fmt.Errorf("tap queue %d: %w", i, err)
			}
			r.waiter, r.drainFn = w, r.drain
			// A queue the busy-poller cannot watch works all the same,
			// only with a wakeup per frame.
			busypoll.Default().Watch(fd)
			continue
		}
		efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
		if err != nil {
			e.closeWakers()
			return nil, fmt.Errorf("tap queue %d: eventfd: %w", i, err)
		}
		r.efd = efd
		if len(opts.cpus) > 0 {
			r.cpu = opts.cpus[i%len(opts.cpus)]
		}
	}
	return e, nil
}

// closeWakers closes what the readers wait and are stopped with: pinned
// readers' eventfds, polled readers' waiters (duplicate descriptors: the
// TAP device lives until they are closed too). Once.
func (e *endpoint) closeWakers() {
	for _, r := range e.rings {
		if r.efd >= 0 {
			unix.Close(r.efd)
			r.efd = -1
		}
		if r.waiter != nil {
			busypoll.Default().Unwatch(r.fd)
			r.waiter.Close()
			r.waiter = nil
		}
	}
}

// MTU implements stack.LinkEndpoint.
func (e *endpoint) MTU() uint32 { return e.mtu.Load() }

// SetMTU implements stack.LinkEndpoint.
func (e *endpoint) SetMTU(mtu uint32) { e.mtu.Store(mtu) }

// MaxHeaderLength implements stack.LinkEndpoint: the Ethernet header.
// The virtio-net header goes in an iovec of its own.
func (e *endpoint) MaxHeaderLength() uint16 { return header.EthernetMinimumSize }

// LinkAddress implements stack.LinkEndpoint.
func (e *endpoint) LinkAddress() tcpip.LinkAddress {
	a := e.addr.Load()
	return tcpip.LinkAddress(a[:])
}

// SetLinkAddress implements stack.LinkEndpoint.
func (e *endpoint) SetLinkAddress(addr tcpip.LinkAddress) {
	var mac [header.EthernetAddressSize]byte
	copy(mac[:], addr)
	e.addr.Store(&mac)
}

// Capabilities implements stack.LinkEndpoint: address resolution and,
// with the virtio-net header, receive checksum offload (the kernel's
// flags, else our own check). Transmit checksums are offloaded for TCP
// segments through host GSO (SupportedGSO), not for every packet.
func (e *endpoint) Capabilities() stack.LinkEndpointCapabilities { return e.caps }

// GSOMaxSize implements stack.GSOEndpoint.
func (e *endpoint) GSOMaxSize() uint32 {
	if e.gso {
		return vnet.GSOMaxSize
	}
	return 0
}

// SupportedGSO implements stack.GSOEndpoint: host GSO when the kernel
// took TSO for both IP versions.
func (e *endpoint) SupportedGSO() stack.SupportedGSO {
	if e.gso {
		return stack.HostGSOSupported
	}
	return stack.GSONotSupported
}

// ARPHardwareType implements stack.LinkEndpoint.
func (*endpoint) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareEther }

// AddHeader implements stack.LinkEndpoint.
func (*endpoint) AddHeader(pkt *stack.PacketBuffer) {
	eth := header.Ethernet(pkt.LinkHeader().Push(header.EthernetMinimumSize))
	eth.Encode(&header.EthernetFields{
		SrcAddr: pkt.EgressRoute.LocalLinkAddress,
		DstAddr: pkt.EgressRoute.RemoteLinkAddress,
		Type:    pkt.NetworkProtocolNumber,
	})
}

// ParseHeader implements stack.LinkEndpoint.
func (*endpoint) ParseHeader(pkt *stack.PacketBuffer) bool {
	h, ok := pkt.LinkHeader().Consume(header.EthernetMinimumSize)
	if ok {
		pkt.NetworkProtocolNumber = header.Ethernet(h).Type()
	}
	return ok
}

// Attach implements stack.LinkEndpoint: a dispatcher starts one reader
// per queue; nil stops them and waits for them. Attaching again while
// attached changes nothing. After release it starts nothing, and nil
// closes the placeholders.
func (e *endpoint) Attach(d stack.NetworkDispatcher) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.released {
		if d == nil {
			e.closeFDsLocked()
		}
		return
	}
	e.dispatcher = d
	if d == nil {
		e.disp.Store(nil) // the rings drop frames from now on
		return
	}
	e.disp.Store(&dispatcherBox{d})
	if e.running {
		return
	}
	e.running = true
	for _, r := range e.rings {
		r.stop.Store(false)
		r.clearStop() // a stop left over from last time
		e.wg.Add(1)
		go r.run()
	}
}

// dispatcherBox lets an interface value live in an atomic.Pointer.
type dispatcherBox struct{ d stack.NetworkDispatcher }

// stopLocked tells the rings to stop and waits until they have. The rings
// never take mu.
//
// +checklocks:e.mu
func (e *endpoint) stopLocked() {
	if !e.running {
		return
	}
	e.running = false
	for _, r := range e.rings {
		r.stop.Store(true)
		r.wake()
	}
	e.wg.Wait()
}

// IsAttached implements stack.LinkEndpoint.
func (e *endpoint) IsAttached() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.dispatcher != nil
}

// Wait implements stack.LinkEndpoint. It does not wait: the readers
// belong to the device and run until release (Link.Close), which stops
// them. gVisor calls Wait with its stack lock held, and a reader in the
// middle of delivering a frame may be waiting for that lock.
func (e *endpoint) Wait() {}

// Close implements stack.LinkEndpoint.
func (e *endpoint) Close() {
	e.mu.Lock()
	f := e.onClose
	e.onClose = nil
	e.mu.Unlock()
	if f != nil {
		f()
	}
}

// SetOnCloseAction implements stack.LinkEndpoint.
func (e *endpoint) SetOnCloseAction(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.onClose = f
}

// release stops the readers and lets go of the TAP: the descriptors are
// closed if the stack is not attached, else replaced by placeholders.
func (e *endpoint) release() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.released {
		return nil
	}
	e.released = true
	e.stopLocked()
	e.closeWakers() // the rings never start again
	if e.dispatcher == nil {
		return e.closeFDsLocked()
	}
	null, err := unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return err // the TAP stays open rather than risk a recycled fd
	}
	defer unix.Close(null)
	var first error
	for _, r := range e.rings {
		if err := unix.Dup3(null, r.fd, unix.O_CLOEXEC); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// closeFDsLocked closes the queue descriptors (or their placeholders) and
// the eventfds, once, and frees the rings' buffers. The rings are stopped.
//
// +checklocks:e.mu
func (e *endpoint) closeFDsLocked() error {
	if e.fdsClosed {
		return nil
	}
	e.fdsClosed = true
	var first error
	for _, r := range e.rings {
		if err := unix.Close(r.fd); err != nil && first == nil {
			first = err
		}
		r.buf.release()
	}
	return first
}

// stats adds up the rings' counters.
func (e *endpoint) stats() Stats {
	var s Stats
	for _, r := range e.rings {
		s.RXFrames += r.rxFrames.Load()
		s.RXBytes += r.rxBytes.Load()
		s.RXSegments += r.rxSegments.Load()
		s.RXDropped += r.rxDropped.Load()
		s.RXBadCsum += r.rxBadCsum.Load()
		s.RXErrors += r.rxErrors.Load()
		s.HeaderCopies += r.rxHeaderCopies.Load()
		s.TXFrames += r.txFrames.Load()
		s.TXBytes += r.txBytes.Load()
		s.TXErrors += r.txErrors.Load()
	}
	s.Copies = e.copies.Load()
	return s
}

// WritePackets implements stack.LinkEndpoint: one writev per packet, on
// the queue the packet's flow hash picks. It stops at the first failure.
// The packets stay the caller's, unmodified.
func (e *endpoint) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	n := 0
	for _, pkt := range pkts.AsSlice() {
		r := e.rings[0]
		if len(e.rings) > 1 {
			r = e.rings[pkt.Hash%uint32(len(e.rings))]
		}
		if err := r.write(pkt); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// txIovecs is how many iovecs a write keeps on the stack: the virtio-net
// header, the packet's header view and its payload views. gVisor's TCP
// sends a 64 KiB segment in a few views; a packet of more goes through
// writeMany.
const txIovecs = 32

// maxIovecs is the kernel's UIO_MAXIOV.
const maxIovecs = 1024

var iovecPool = sync.Pool{New: func() any { s := make([]unix.Iovec, 0, maxIovecs); return &s }}

// write writes pkt to the ring's descriptor: the virtio-net header, if
// the frames carry it, and the packet's views, without copying them.
func (r *ring) write(pkt *stack.PacketBuffer) tcpip.Error {
	var iov [txIovecs]unix.Iovec
	var hdr [vnet.Size]byte
	n := 0
	if r.vnetHdr {
		var f vnet.Fields
		vnet.ForTransmit(&f, pkt, header.EthernetMinimumSize)
		vnet.Header(hdr[:]).Encode(&f)
		iov[0] = unix.Iovec{Base: &hdr[0], Len: vnet.Size}
		n = 1
	}
	vl, off := pkt.AsViewList()
	size := 0
	for v := vl.Front(); v != nil; v = v.Next() {
		s := v.AsSlice()
		if off >= len(s) {
			off -= len(s)
			continue
		}
		s = s[off:]
		off = 0
		if n == len(iov) {
			return r.writeMany(pkt, hdr)
		}
		iov[n] = unix.Iovec{Base: &s[0], Len: uint64(len(s))}
		n++
		size += len(s)
	}
	if err := r.writev(iov[:n]); err != nil {
		return err
	}
	r.txFrames.Add(1)
	r.txBytes.Add(uint64(size))
	return nil
}

// writeMany is write for a packet of more than txIovecs views: its
// iovecs come from a pool, and a packet of more than UIO_MAXIOV views is
// flattened, which is a copy and counted as one. hdr is the virtio-net
// header write made.
func (r *ring) writeMany(pkt *stack.PacketBuffer, hdr [vnet.Size]byte) tcpip.Error {
	p := iovecPool.Get().(*[]unix.Iovec)
	iov := (*p)[:0]
	defer func() {
		clear(iov) // drop the references to the packet's memory
		*p = iov[:0]
		iovecPool.Put(p)
	}()
	if r.vnetHdr {
		iov = append(iov, unix.Iovec{Base: &hdr[0], Len: vnet.Size})
	}
	first := len(iov)
	vl, off := pkt.AsViewList()
	for v := vl.Front(); v != nil; v = v.Next() {
		s := v.AsSlice()
		if off >= len(s) {
			off -= len(s)
			continue
		}
		s = s[off:]
		off = 0
		if len(iov) == maxIovecs {
			flat := pkt.ToView()
			defer flat.Release()
			r.e.copies.Add(1)
			s := flat.AsSlice()
			iov = append(iov[:first], unix.Iovec{Base: &s[0], Len: uint64(len(s))})
			break
		}
		iov = append(iov, unix.Iovec{Base: &s[0], Len: uint64(len(s))})
	}
	if err := r.writev(iov); err != nil {
		return err
	}
	size := 0
	for _, v := range iov[first:] {
		size += int(v.Len)
	}
	r.txFrames.Add(1)
	r.txBytes.Add(uint64(size))
	return nil
}

// writev writes one frame. The descriptor is non-blocking, so the call is
// short, and RawSyscall keeps the P: the kernel runs the namespace's side
// of the frame inside it, and a Syscall that outlasts sysmon's 20 µs tick
// hands the P to another thread (costly under --sched loop).
func (r *ring) writev(iov []unix.Iovec) tcpip.Error {
	for {
		_, _, errno := unix.RawSyscall(unix.SYS_WRITEV, uintptr(r.fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
		switch errno {
		case 0:
			return nil
		case unix.EINTR:
			continue
		}
		r.txErrors.Add(1)
		return tcpip.TranslateErrno(errno)
	}
}

// ring is one TAP queue: its descriptor, its reader's state and its
// counters. The reader's fields are its alone; the counters are atomic
// because Stats reads them and writers on any goroutine add to the
// transmit ones.
type ring struct {
	e   *endpoint
	idx int
	fd  int // the queue's descriptor; never changes (see endpoint)
	efd int // pinned reader: eventfd that wakes it to stop; -1 otherwise
	// waiter parks a polled reader until the queue is readable, and wakes
	// it to stop; nil for a pinned reader and once released.
	waiter *host.ReadyWaiter
	// drainFn is r.drain as a func value, made once: Wait takes it per
	// park without allocating. failed is set by drain (the reader's).
	drainFn func() bool
	failed  bool
	cpu     int  // CPU the reader is pinned to; -1 for none
	vnetHdr bool // frames carry the virtio-net header

	stop atomic.Bool

	// The reader's.
	hdr [vnet.Size]byte
	buf rxBuffer
	iov [1 + len(rxSizes)]unix.Iovec

	rxFrames       atomic.Uint64
	rxBytes        atomic.Uint64
	rxSegments     atomic.Uint64
	rxDropped      atomic.Uint64
	rxBadCsum      atomic.Uint64
	rxErrors       atomic.Uint64
	rxHeaderCopies atomic.Uint64
	rxErrno        atomic.Uint64 // the error that stopped the reader

	_        [64]byte // the transmit counters are written from other CPUs
	txFrames atomic.Uint64
	txBytes  atomic.Uint64
	txErrors atomic.Uint64
}

// run is the reader: it reads and delivers frames until told to stop or
// the descriptor fails (the device was deleted). The goroutine stays
// locked to its thread, so the pinned thread exits with it.
func (r *ring) run() {
	defer r.e.wg.Done()
	if r.waiter != nil {
		r.runPolled()
		return
	}
	runtime.LockOSThread()
	if r.cpu >= 0 {
		var set unix.CPUSet
		set.Set(r.cpu)
		unix.SchedSetaffinity(0, &set) // best effort: a cgroup may forbid it
	}
	for !r.stop.Load() && r.receive() {
	}
}

// receive reads one frame and delivers it to the endpoint's dispatcher,
// waiting for one if there is none. It returns false when the reader must
// stop.
func (r *ring) receive() bool { return r.receiveInto(nil) }

// receiveInto is receive with the dispatcher given (tests); nil means the
// endpoint's (see readOne).
func (r *ring) receiveInto(d stack.NetworkDispatcher) bool {
	switch r.readOne(d) {
	case readEmpty:
		return r.wait()
	case readFailed:
		return false
	}
	return true
}

// readResult is what one read of the queue did.
type readResult int

const (
	readDone   readResult = iota // a frame was read (and delivered), or EINTR
	readEmpty                    // EAGAIN: nothing queued
	readFailed                   // the descriptor failed; counted, the reader stops
)

// readOne reads one frame, if there is one, and delivers it to d, or
// with d nil to the endpoint's dispatcher as it is once the frame has been
// read: a frame that arrives after Attach(nil) has returned is dropped
// (its buffers reused), never handed to the dispatcher just detached.
func (r *ring) readOne(d stack.NetworkDispatcher) readResult {
	iov := r.iovecs()
	n, _, errno := unix.RawSyscall(unix.SYS_READV, uintptr(r.fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
	switch errno {
	case 0:
		if d == nil {
			if box := r.e.disp.Load(); box != nil {
				d = box.d
			}
		}
		if d != nil {
			r.deliver(d, int(n))
		}
		return readDone
	case unix.EAGAIN:
		return readEmpty
	case unix.EINTR:
		return readDone
	}
	r.rxErrors.Add(1)
	r.rxErrno.Store(uint64(errno))
	return readFailed
}

// wait blocks until the descriptor is readable (or failed: the next read
// says how) or the reader is told to stop. It returns false to stop.
func (r *ring) wait() bool {
	fds := [2]unix.PollFd{
		{Fd: int32(r.fd), Events: unix.POLLIN},
		{Fd: int32(r.efd), Events: unix.POLLIN},
	}
	for {
		_, _, errno := unix.Syscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&fds[0])), 2, 0, 0, 0, 0)
		switch {
		case errno == unix.EINTR:
			continue
		case errno != 0:
			r.rxErrors.Add(1)
			r.rxErrno.Store(uint64(errno))
			return false
		}
		return fds[1].Revents == 0
	}
}

// iovecs returns the iovecs to read the next frame into: the virtio-net
// header, then the buffer's views, refilled where the last frame took
// them.
func (r *ring) iovecs() []unix.Iovec {
	i := 0
	if r.vnetHdr {
		r.iov[0] = unix.Iovec{Base: &r.hdr[0], Len: vnet.Size}
		i = 1
	}
	r.buf.fill(r.iov[i:])
	return r.iov[:i+len(rxSizes)]
}

// deliver turns the n bytes just read into a packet and hands it to d.
func (r *ring) deliver(d stack.NetworkDispatcher, n int) {
	var f vnet.Fields
	if r.vnetHdr {
		if n < vnet.Size {
			r.rxDropped.Add(1)
			return
		}
		n -= vnet.Size
		f = vnet.Header(r.hdr[:]).Decode()
		if f.Validate(n) != nil {
			r.rxDropped.Add(1)
			return
		}
	}
	if n < header.EthernetMinimumSize || n >= rxCapacity {
		// Too short, or possibly truncated.
		r.rxDropped.Add(1)
		return
	}
	// The Ethernet header is in the first view: not yet pulled, so it
	// can be checked without touching the packet machinery.
	eth := r.buf.views[0].AsSlice()[:header.EthernetMinimumSize]
	if eth[0]&1 == 0 && !bytes.Equal(eth[:header.EthernetAddressSize], r.e.addr.Load()[:]) {
		r.rxDropped.Add(1) // unicast for someone else
		return
	}
	proto := binary.BigEndian.Uint16(eth[12:])
	frame := r.buf.pull(n)
	if r.vnetHdr && f.Flags&(vnet.FlagNeedsCsum|vnet.FlagDataValid) == 0 && !vnet.ChecksumsValid(&frame, header.EthernetMinimumSize, proto) {
		frame.Release()
		r.rxDropped.Add(1)
		r.rxBadCsum.Add(1)
		return
	}
	switch f.GSOType &^ vnet.GSOECN {
	case vnet.GSONone, vnet.GSOTCPv4, vnet.GSOTCPv6:
		// A coalesced TCP frame goes up whole: gVisor's TCP takes
		// segments longer than the MSS.
		r.rxFrames.Add(1)
		r.rxBytes.Add(uint64(n))
		r.dispatch(d, frame)
	case vnet.GSOUDPL4:
		r.rxFrames.Add(1)
		r.rxBytes.Add(uint64(n))
		if err := vnet.SegmentUDP(frame, &f, func(seg buffer.Buffer) {
			r.rxSegments.Add(1)
			r.rxHeaderCopies.Add(1)
			r.dispatch(d, seg)
		}); err != nil {
			r.rxDropped.Add(1)
		}
	default:
		frame.Release() // UFO: never negotiated
		r.rxDropped.Add(1)
	}
}

// dispatch makes frame, which it takes, a packet and delivers it.
func (r *ring) dispatch(d stack.NetworkDispatcher, frame buffer.Buffer) {
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: frame})
	h, ok := pkt.LinkHeader().Consume(header.EthernetMinimumSize)
	if !ok {
		pkt.DecRef()
		r.rxDropped.Add(1)
		return
	}
	proto := header.Ethernet(h).Type()
	pkt.NetworkProtocolNumber = proto
	d.DeliverNetworkPacket(proto, pkt)
	pkt.DecRef()
}

// rxSizes are the views a frame is read into. The first holds every
// header and a whole MTU-1500 frame; the others double, up to a 64 KiB
// coalesced frame, so a frame holds at most about twice its size.
// Every size is a gVisor chunk pool size, so the views come from the
// pools and are full: appending one to a buffer never copies.
var rxSizes = [...]int{2048, 2048, 4096, 8192, 16384, 32768, 2048}

// rxCapacity is the sum of rxSizes; a read that fills it may have been
// truncated. It is more than vnet.MaxFrame.
const rxCapacity = 2048 + 2048 + 4096 + 8192 + 16384 + 32768 + 2048

// rxBuffer is a ring's receive memory: views from gVisor's pools, refilled
// as frames take them.
type rxBuffer struct {
	views [len(rxSizes)]*buffer.View
}

// fill points iov at the views, making the missing ones.
func (b *rxBuffer) fill(iov []unix.Iovec) {
	for i := range b.views {
		if b.views[i] == nil {
			b.views[i] = buffer.NewViewSize(rxSizes[i])
		}
		iov[i] = unix.Iovec{Base: b.views[i].BasePtr(), Len: uint64(rxSizes[i])}
	}
}

// pull takes the views holding the first n bytes as a buffer of n bytes;
// the rest stay for the next read.
func (b *rxBuffer) pull(n int) buffer.Buffer {
	var out buffer.Buffer
	for i := 0; n > 0; i++ {
		v := b.views[i]
		b.views[i] = nil
		if v.Size() > n {
			v.CapLength(n)
		}
		n -= v.Size()
		out.Append(v) // the view before is full: no copy
	}
	return out
}

func (b *rxBuffer) release() {
	for i, v := range b.views {
		if v != nil {
			v.Release()
			b.views[i] = nil
		}
	}
}

// runPolled is run for a polled reader: an ordinary goroutine that reads
// inside the poller's callback (drain) and parks in the poller when the
// queue is empty, which frees its thread for the goroutines its frames
// woke (see ReadersPolled).
func (r *ring) runPolled() {
	for !r.stop.Load() && !r.failed {
		switch err := r.waiter.Wait(r.drainFn); {
		case err == nil:
		case errors.Is(err, host.ErrStopped):
			return
		default:
			r.rxErrors.Add(1)
			var errno syscall.Errno
			if errors.As(err, &errno) {
				r.rxErrno.Store(uint64(errno))
			}
			return
		}
	}
}

// busyPollBurst: a drain that delivered this much or more was part of a
// stream (one TSO frame is up to 64 KiB), and the stream's next frame
// comes without spinning for it. Spinning between a stream's frames gains
// nothing and takes the CPU its sender and receiver share (medians of 5
// interleaved runs, namespace → host at MTU 1500: 13.8 Gbit/s spinning
// after every drain, 14.9 with this rule, 13.9 with no busy-poll).
const busyPollBurst = 16 << 10

// drain reads and delivers frames until the queue is empty (false: park)
// or the reader must stop (true).
func (r *ring) drain() bool {
	before := r.rxBytes.Load()
	for got := false; !r.stop.Load(); got = true {
		switch r.readOne(nil) {
		case readEmpty:
			if got && r.rxBytes.Load()-before < busyPollBurst {
				// A request, not a stream: what it starts (a relay's
				// host write) runs first, then the loop stays awake
				// for the answer.
				busypoll.Default().Kick()
			}
			return false
		case readFailed:
			r.failed = true
			return true
		}
	}
	return true
}

// wake tells a waiting reader to look at r.stop.
func (r *ring) wake() {
	if r.waiter != nil {
		r.waiter.Stop()
		return
	}
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	unix.Write(r.efd, one[:])
}

// clearStop undoes a wake before the reader starts again.
func (r *ring) clearStop() {
	if r.waiter != nil {
		r.waiter.Rearm()
		return
	}
	var b [8]byte
	unix.Read(r.efd, b[:])
}
