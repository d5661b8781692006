package gateway

// A TCP relay between a gVisor endpoint and a host socket with one
// userspace copy per byte instead of two.
//
// Relaying through net.Conn on both sides copies every byte twice in
// userspace: host socket → a relay buffer → gVisor's send buffer, and
// gVisor's receive queue → a relay buffer → host socket. Here the
// endpoint moves the bytes itself: toStack hands gVisor's Write a reader
// that read(2)s the host socket straight into the views of the new
// segment, and toHost hands gVisor's Read a writer that write(2)s each
// received view straight to the host socket. The host descriptor is used
// non-blocking through syscall.RawConn, so Go's netpoller does the
// waiting and neither side's locks are held across a wait: gVisor holds
// the endpoint's user lock while Read calls the writer, which is why the
// writer never blocks (EAGAIN ends the call with what was written, and
// the relay waits for the socket to drain).

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/tapstack/tapstack/internal/widen"
	"github.com/tapstack/tapstack/link/busypoll"
)

// spliceChunk bounds how much one gVisor Write takes from the host
// socket: large enough to fill a 64 KiB TSO segment several times over,
// small enough that the stack starts sending before a whole socket
// buffer has been read.
const spliceChunk = 256 << 10

// relayReceiveBuffer is the receive buffer of a relayed stack endpoint
// (gVisor's largest; its default is 1 MiB). The daemon's loop moves
// bytes for both sides of a relay in turn, so the window it advertises
// to the namespace must cover the time it spends writing to the host
// side: gVisor advertises half the free buffer, and 512 KiB left the
// namespace's sender waiting for window half of the time (ss:
// rwnd_limited), one stream ns→host at MTU 65520 13.4 → 16.8 Gbit/s,
// four at 1500 14.2 → 16.4 (medians of interleaved runs). It is a bound,
// not an allocation: the buffer fills only while the host side is slower.
const relayReceiveBuffer = 4 << 20

// tcpSplice relays one connection between ep (the namespace's side) and
// host until both directions have ended.
//
// Ownership: the splice owns ep and host from newTCPSplice on; run
// closes both. abort may be called from any goroutine, at any time.
type tcpSplice struct {
	ep   tcpip.Endpoint
	wq   *waiter.Queue
	host hostStream
	raw  syscall.RawConn

	aborted   chan struct{} // closed by abort: wakes waits on ep
	abortOnce sync.Once

	flow *widen.Flow // bytes relayed, both ways: lets a busy loop widen
}

// hostStream is what the relay needs of a host connection: a kernel
// stream socket (*net.TCPConn is one).
type hostStream interface {
	net.Conn
	syscall.Conn
	CloseWrite() error
}

func newTCPSplice(ep tcpip.Endpoint, wq *waiter.Queue, host hostStream) (*tcpSplice, error) {
	raw, err := host.SyscallConn()
	if err != nil {
		return nil, err
	}
	busypoll.Default().WatchConn(raw) // the reply a busy-polling loop waits for comes here
	return &tcpSplice{ep: ep, wq: wq, host: host, raw: raw, aborted: make(chan struct{}), flow: widen.Default().Add()}, nil
}

// run relays both directions (host → namespace on the calling
// goroutine) and closes both sides when they have ended. An end of
// stream in one direction is passed on as a half-close; an error in
// either resets both.
func (s *tcpSplice) run() {
	var wg sync.WaitGroup
	wg.Go(func() { s.end(s.toHost(), s.host.CloseWrite) })
	s.end(s.toStack(), func() error {
		if err := s.ep.Shutdown(tcpip.ShutdownWrite); err != nil {
			return errors.New(err.String())
		}
		return nil
	})
	wg.Wait()
	s.ep.Close()
	s.host.Close()
	s.flow.Done()
}

// end finishes one direction: a half-close after a clean end of stream,
// an abort of both sides after an error.
func (s *tcpSplice) end(err error, closeWrite func() error) {
	if err == nil {
		err = closeWrite()
	}
	if err != nil {
		s.abort()
	}
}

// abort resets both sides (RST to the namespace and to the host peer);
// both directions see errors and end.
func (s *tcpSplice) abort() {
	s.abortOnce.Do(func() {
		close(s.aborted)
		s.ep.Abort()
		abortHost(s.host)
	})
}

// discard resets and releases both sides of a splice that will not run.
func (s *tcpSplice) discard() {
	s.abort()
	s.ep.Close()
	s.flow.Done()
}

// toStack relays host → namespace until the host's end of stream (nil)
// or an error.
func (s *tcpSplice) toStack() error {
	entry, writable := waiter.NewChannelEntry(waiter.WritableEvents | waiter.EventHUp | waiter.EventErr)
	s.wq.EventRegister(&entry)
	defer s.wq.EventUnregister(&entry)
	r := hostReader{}
	for {
		var terr tcpip.Error
		err := s.raw.Read(func(fd uintptr) bool {
			for {
				queued, ok := r.queued(int(fd))
				if !ok {
					return r.err != nil || r.eof // else wait until readable
				}
				r.start(int(fd), queued) // at most spliceChunk: queued peeks no more
				n, werr := s.ep.Write(&r, tcpip.WriteOptions{})
				s.flow.Count(int(n))
				if terr = werr; terr != nil || r.err != nil {
					return true
				}
				// Sent on to the namespace: stay awake for its next request.
				busypoll.Default().Kick()
			}
		})
		switch {
		case err != nil:
			return err
		case r.err != nil:
			return r.err
		case r.eof:
			return nil
		}
		if _, full := terr.(*tcpip.ErrWouldBlock); !full {
			return errors.New(terr.String())
		}
		// The endpoint's send buffer is full: wait for the namespace to
		// acknowledge some.
		select {
		case <-writable:
		case <-s.aborted:
			return net.ErrClosed
		}
	}
}

// toHost relays namespace → host until the namespace's end of stream
// (nil) or an error. Each round peeks at what the endpoint has received,
// writes it to the host with one writev(2) straight from gVisor's views,
// and only then consumes it (which opens the window to the namespace).
// The views stay valid between the peek and the consume because this
// goroutine is the endpoint's only reader.
func (s *tcpSplice) toHost() error {
	entry, readable := waiter.NewChannelEntry(waiter.ReadableEvents | waiter.EventHUp | waiter.EventErr)
	s.wq.EventRegister(&entry)
	defer s.wq.EventUnregister(&entry)
	var v iovecs
	for {
		v.reset()
		res, terr := s.ep.Read(&v, tcpip.ReadOptions{Peek: true})
		switch terr.(type) {
		case nil:
		case *tcpip.ErrWouldBlock:
			select {
			case <-readable:
			case <-s.aborted:
				return net.ErrClosed
			}
			continue
		case *tcpip.ErrClosedForReceive:
			return nil
		default:
			return errors.New(terr.String())
		}
		var werr error
		if err := s.raw.Write(func(fd uintptr) bool {
			werr = v.writeTo(int(fd))
			return werr != unix.EAGAIN // else wait until the socket drains
		}); err != nil {
			return err
		}
		if werr != nil {
			return werr
		}
		s.flow.Count(res.Count)
		d := consumer{left: res.Count}
		if _, terr := s.ep.Read(&d, tcpip.ReadOptions{}); terr != nil {
			return errors.New(terr.String())
		}
	}
}

// spliceIovecs bounds one writev: the kernel's UIO_MAXIOV is 1024.
const spliceIovecs = 64

// iovecs is an io.Writer that collects the slices gVisor's Read (peek)
// passes it, without copying, for one writev.
type iovecs struct {
	iov  [spliceIovecs]unix.Iovec
	n    int // iov[:n] are in use
	next int // the first not yet (fully) written
}

// errIovecsFull ends a peek when the batch is full; only the count of
// what was taken matters.
var errIovecsFull = errors.New("writev batch full")

func (v *iovecs) reset() { v.n, v.next = 0, 0 }

// Write implements io.Writer.
func (v *iovecs) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if v.n == len(v.iov) {
		return 0, errIovecsFull
	}
	v.iov[v.n] = unix.Iovec{Base: &p[0]}
	v.iov[v.n].SetLen(len(p))
	v.n++
	return len(p), nil
}

// rawSyscalls: the relay's system calls on host sockets are non-blocking
// and short, and go through RawSyscall, which keeps the P. A Syscall that
// runs past sysmon's 20 µs tick (a loopback write runs the receiver's TCP
// inline) lets sysmon hand the P to another thread; under --sched loop
// (GOMAXPROCS=1) those hand-offs cost more than the calls.

// writeTo writes the collected slices to fd, non-blocking, resuming
// where an earlier call stopped; unix.EAGAIN when the socket is full.
func (v *iovecs) writeTo(fd int) error {
	for v.next < v.n {
		n, _, errno := unix.RawSyscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&v.iov[v.next])), uintptr(v.n-v.next)) // see rawSyscalls
		switch errno {
		case 0:
		case unix.EINTR:
			continue
		default:
			return errno
		}
		for left := int(n); left > 0; {
			cur := &v.iov[v.next]
			if l := int(cur.Len); l <= left {
				left -= l
				v.next++
				continue
			}
			cur.Base = (*byte)(unsafe.Add(unsafe.Pointer(cur.Base), left))
			cur.SetLen(int(cur.Len) - left)
			left = 0
		}
	}
	return nil
}

// consumer is an io.Writer that takes exactly left bytes: gVisor's Read
// consumes what it wrote, so a Read into it consumes what was sent.
type consumer struct{ left int }

func (d *consumer) Write(p []byte) (int, error) {
	if len(p) <= d.left {
		d.left -= len(p)
		return len(p), nil
	}
	n := d.left
	d.left = 0
	return n, errIovecsFull
}

// hostReader is the tcpip.Payloader gVisor's Write copies from. gVisor
// reads exactly Len bytes (it treats a short read as a reader that is
// not done yet), so Len is what the socket holds (queued), capped at
// spliceChunk; reads of queued data do not come up short.
type hostReader struct {
	fd   int
	left int   // bytes this Write still takes
	eof  bool  // the host peer closed its side and nothing is queued
	err  error // the socket failed
}

// queued returns how many bytes the socket holds (up to spliceChunk); ok
// is false when it holds none, with eof or err set when none will come.
// One peek answers both: with MSG_TRUNC a TCP socket copies nothing and
// returns the length it would have read, 0 at the end of stream.
func (r *hostReader) queued(fd int) (n int, ok bool) {
	for {
		m, _, errno := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), 0, spliceChunk,
			unix.MSG_PEEK|unix.MSG_TRUNC|unix.MSG_DONTWAIT, 0, 0)
		switch {
		case errno == unix.EAGAIN:
			return 0, false
		case errno == unix.EINTR:
			continue
		case errno != 0: // before m, which is -1 then
			r.err = errno
			return 0, false
		case m == 0:
			r.eof = true
			return 0, false
		}
		return int(m), true
	}
}

func (r *hostReader) start(fd, n int) {
	*r = hostReader{fd: fd, left: n}
}

// Len implements tcpip.Payloader.
func (r *hostReader) Len() int { return r.left }

// Read implements io.Reader.
func (r *hostReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.left == 0 {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil // gVisor's end-of-stream probe
	}
	p = p[:min(len(p), r.left)]
	for {
		m, _, errno := unix.RawSyscall(unix.SYS_READ, uintptr(r.fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		n := int(m)
		var err error
		switch {
		case errno == unix.EINTR:
			continue
		case errno != 0:
			err = errno
		case n == 0:
			err = io.ErrUnexpectedEOF // it had said the data was there
		default:
			r.left -= n
			return n, nil
		}
		// gVisor drops what this Write read so far: the connection is
		// reset anyway.
		r.err = err
		return 0, err
	}
}
