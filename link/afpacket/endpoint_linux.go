package afpacket

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// endpoint is the link's gVisor data path over its rings.
//
// The receive goroutines start at the first Attach(d) and run until
// release (Device.Close): Attach(nil) only detaches them (they drop what
// they read), and Wait does not wait for them before release. gVisor calls
// Attach(nil) and Wait with its stack lock held, and a receive goroutine
// delivering a packet inline may be waiting for that very lock; stopping
// them there would deadlock. The transmit path runs on the callers of
// WritePackets.
//
// Locking: mu serialises Attach, SetLinkAddress and release; the data
// path reads mtu, addr and disp atomically and never takes mu.
type endpoint struct {
	rings  []*ring
	cpus   []int // the CPUs the process may run on, for pinning
	gsoMax uint32
	stopFD int // eventfd: readable while the receive goroutines must stop

	mtu  atomic.Uint32
	addr atomic.Pointer[tcpip.LinkAddress]
	disp atomic.Pointer[dispatcher] // nil while detached
	stop atomic.Bool                // the receive goroutines must exit (also signalled on stopFD)

	mu sync.Mutex
	// +checklocks:mu
	started bool // the receive goroutines run
	// +checklocks:mu
	released bool
	wg       sync.WaitGroup // the receive goroutines
}

// dispatcher boxes a stack.NetworkDispatcher for atomic.Pointer.
type dispatcher struct{ stack.NetworkDispatcher }

// dispatcher returns where received frames go; nil while detached.
func (e *endpoint) dispatcher() stack.NetworkDispatcher {
	if d := e.disp.Load(); d != nil {
		return d.NetworkDispatcher
	}
	return nil
}

var (
	_ stack.LinkEndpoint = (*endpoint)(nil)
	_ stack.GSOEndpoint  = (*endpoint)(nil)
)

func newEndpoint(mtu, gsoMax uint32, mac tcpip.LinkAddress, cpus []int) (*endpoint, error) {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	e := &endpoint{cpus: cpus, gsoMax: gsoMax, stopFD: efd}
	e.mtu.Store(mtu)
	e.addr.Store(&mac)
	return e, nil
}

func (e *endpoint) linkAddress() tcpip.LinkAddress { return *e.addr.Load() }

// MTU implements stack.LinkEndpoint.
func (e *endpoint) MTU() uint32 { return e.mtu.Load() }

// SetMTU implements stack.LinkEndpoint.
func (e *endpoint) SetMTU(mtu uint32) { e.mtu.Store(mtu) }

// MaxHeaderLength implements stack.LinkEndpoint: the Ethernet header (the
// virtio-net header travels in an iovec of its own).
func (e *endpoint) MaxHeaderLength() uint16 { return header.EthernetMinimumSize }

// LinkAddress implements stack.LinkEndpoint.
func (e *endpoint) LinkAddress() tcpip.LinkAddress { return e.linkAddress() }

// SetLinkAddress implements stack.LinkEndpoint: frames for the new address
// are received from now on (the rings' filters are replaced).
func (e *endpoint) SetLinkAddress(addr tcpip.LinkAddress) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.addr.Store(&addr)
	if e.released {
		return
	}
	for _, r := range e.rings {
		r.tx.mu.Lock()
		if !r.tx.closed {
			r.setFilter(addr)
		}
		r.tx.mu.Unlock()
	}
}

// Capabilities implements stack.LinkEndpoint. RX checksum offload because
// the kernel hands over partial checksums (see the package doc); no TX
// checksum offload: gVisor computes every checksum but TCP's, which GSO
// leaves partial.
func (e *endpoint) Capabilities() stack.LinkEndpointCapabilities {
	return stack.CapabilityResolutionRequired | stack.CapabilityRXChecksumOffload
}

// GSOMaxSize implements stack.GSOEndpoint.
func (e *endpoint) GSOMaxSize() uint32 { return e.gsoMax }

// SupportedGSO implements stack.GSOEndpoint: the kernel segments, from
// the virtio-net header.
func (e *endpoint) SupportedGSO() stack.SupportedGSO { return stack.HostGSOSupported }

// Attach implements stack.LinkEndpoint: received frames go to d from now
// on, or, with d nil, are dropped. The first Attach(d) starts one receive
// goroutine per ring; after release it starts nothing.
func (e *endpoint) Attach(d stack.NetworkDispatcher) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if d == nil || e.released {
		e.disp.Store(nil)
		return
	}
	e.disp.Store(&dispatcher{d})
	if e.started {
		return
	}
	e.started = true
	for i, r := range e.rings {
		cpu := -1
		if len(e.cpus) > 0 {
			cpu = e.cpus[i%len(e.cpus)]
		}
		e.wg.Add(1)
		go r.run(cpu, e.wg.Done)
	}
}

// stopLocked stops the receive goroutines, if running, and waits for them.
//
// +checklocks:e.mu
func (e *endpoint) stopLocked() {
	e.disp.Store(nil)
	if !e.started {
		return
	}
	// The flag for goroutines that are busy (they check it between
	// batches), the eventfd for those waiting in poll.
	e.stop.Store(true)
	var one [8]byte
	one[0] = 1 // host byte order; any non-zero value does
	unix.Write(e.stopFD, one[:])
	e.wg.Wait()
	e.started = false
}

// IsAttached implements stack.LinkEndpoint.
func (e *endpoint) IsAttached() bool { return e.disp.Load() != nil }

// Wait implements stack.LinkEndpoint. The receive goroutines stop only at
// release (see endpoint), which waits for them; so Wait returns at once.
func (e *endpoint) Wait() {}

// ARPHardwareType implements stack.LinkEndpoint.
func (e *endpoint) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareEther }

// AddHeader implements stack.LinkEndpoint.
func (e *endpoint) AddHeader(pkt *stack.PacketBuffer) {
	f := header.EthernetFields{
		SrcAddr: pkt.EgressRoute.LocalLinkAddress,
		DstAddr: pkt.EgressRoute.RemoteLinkAddress,
		Type:    pkt.NetworkProtocolNumber,
	}
	if f.SrcAddr == "" {
		f.SrcAddr = e.linkAddress()
	}
	header.Ethernet(pkt.LinkHeader().Push(header.EthernetMinimumSize)).Encode(&f)
}

// ParseHeader implements stack.LinkEndpoint.
func (e *endpoint) ParseHeader(pkt *stack.PacketBuffer) bool {
	h, ok := pkt.LinkHeader().Consume(header.EthernetMinimumSize)
	if ok {
		pkt.NetworkProtocolNumber = header.Ethernet(h).Type()
	}
	return ok
}

// Close implements stack.LinkEndpoint. The sockets belong to the device
// and are closed by Device.Close, not by the stack.
func (e *endpoint) Close() {}

// SetOnCloseAction implements stack.LinkEndpoint.
func (e *endpoint) SetOnCloseAction(func()) {}

// WritePackets implements stack.LinkWriter. Each run of consecutive
// packets with the same hash goes out on one ring, in batches of up to 64
// frames per sendmmsg. The packets remain the caller's (nothing is
// released here). After release every packet is refused
// (ErrClosedForSend).
func (e *endpoint) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	s := pkts.AsSlice()
	n := uint32(len(e.rings))
	sent := 0
	for len(s) > 0 {
		ri := s[0].Hash % n
		j := 1
		for j < len(s) && s[j].Hash%n == ri {
			j++
		}
		k, err := e.rings[ri].send(s[:j])
		sent += k
		if err != nil {
			return sent, err
		}
		s = s[j:]
	}
	return sent, nil
}

// release stops the receive goroutines for good and closes the rings.
// The endpoint stays safe to use: WritePackets refuses packets, Attach
// starts nothing.
func (e *endpoint) release(ifindex int) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.released {
		return nil
	}
	e.stopLocked()
	e.released = true
	var errs []error
	if len(e.rings) > 0 {
		// Explicitly, though closing the socket would do it too.
		e.rings[0].tx.mu.Lock()
		if err := e.rings[0].setPromisc(ifindex, false); err != nil && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, err)
		}
		e.rings[0].tx.mu.Unlock()
	}
	for _, r := range e.rings {
		if err := r.close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := unix.Close(e.stopFD); err != nil {
		errs = append(errs, fmt.Errorf("close eventfd: %w", err))
	}
	return errors.Join(errs...)
}

// stats returns every ring's counters.
func (e *endpoint) stats() []RingStats {
	out := make([]RingStats, len(e.rings))
	for i, r := range e.rings {
		out[i] = r.stats()
	}
	return out
}
