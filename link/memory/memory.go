// Package memory is an in-memory link pair for unit tests: two Ethernet
// links joined by a virtual cable, so that two gVisor stacks (or a stack
// and a test) can exchange frames without root or a kernel device.
//
// Frames are copied when written, as a wire would, and delivered to the
// peer by the peer's own goroutine, so a stack never re-enters itself or
// its peer while holding a lock. It is not a performance model.
package memory

import (
	"crypto/rand"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/tapstack/tapstack/link"
)

// queueLen is how many frames may wait for delivery on each side; more are
// dropped (and counted), like a full NIC ring.
const queueLen = 1024

// Device is one end of a pair. Tests reach it as
// l.Device().(*memory.Device) to pull the cable or change the MAC or MTU.
type Device struct {
	ep   *endpoint
	link *link.Link    // set by NewPair before the Device is shared
	sdu  atomic.Uint32 // the link MTU, whatever the stack sets on ep
}

var _ link.Device = (*Device)(nil)

// NewPair returns two links, named nameA and nameB, joined to each other.
// Both carry Ethernet frames with the given MTU (the largest IP packet);
// a nil MAC is replaced by a random locally administered one. The links
// start with carrier up. Close both when done: each stops its delivery
// goroutine.
func NewPair(nameA, nameB string, mtu uint32, macA, macB net.HardwareAddr) (*link.Link, *link.Link) {
	a := newEndpoint(macOrRandom(macA), mtu)
	b := newEndpoint(macOrRandom(macB), mtu)
	a.peer, b.peer = b, a
	da, db := &Device{ep: a}, &Device{ep: b}
	da.sdu.Store(mtu)
	db.sdu.Store(mtu)
	la := link.New(nameA, "memory", nameB, da)
	lb := link.New(nameB, "memory", nameA, db)
	da.link, db.link = la, lb
	return la, lb
}

func macOrRandom(mac net.HardwareAddr) tcpip.LinkAddress {
	if mac == nil {
		mac = make(net.HardwareAddr, 6)
		rand.Read(mac)
		mac[0] = mac[0]&^0x01 | 0x02 // unicast, locally administered
	}
	if len(mac) != 6 {
		panic(fmt.Sprintf("memory: MAC %v is not 6 bytes", mac))
	}
	return tcpip.LinkAddress(mac)
}

// Endpoint implements link.Device.
func (d *Device) Endpoint() stack.LinkEndpoint { return d.ep }

// MacType implements link.Device.
func (d *Device) MacType() link.MacType { return link.DL_ETHER }

// MaxSDU implements link.Device.
func (d *Device) MaxSDU() uint32 { return d.sdu.Load() }

// Broadcast implements link.Device.
func (d *Device) Broadcast() net.HardwareAddr {
	return net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
}

// Capabilities implements link.Device: the pair offloads nothing.
func (d *Device) Capabilities() link.Capabilities { return link.Capabilities{} }

// Close implements link.Device: it unplugs this end for good and waits
// for its delivery goroutine to stop. Frames queued for it are dropped.
func (d *Device) Close() error {
	d.ep.close()
	return nil
}

// SetCarrier plugs (up) or unplugs this end of the cable and raises
// NoteLinkUp or NoteLinkDown. While unplugged, frames written on this end
// and frames arriving at it are dropped; the peer's carrier is unchanged.
func (d *Device) SetCarrier(up bool) {
	d.ep.mu.Lock()
	d.ep.carrier = up
	d.ep.mu.Unlock()
	kind := link.NoteLinkDown
	if up {
		kind = link.NoteLinkUp
	}
	d.link.Notify(link.Notification{Kind: kind})
}

// SetMAC changes this end's MAC address and raises NotePhysAddr.
func (d *Device) SetMAC(mac net.HardwareAddr) {
	d.ep.SetLinkAddress(tcpip.LinkAddress(mac))
	d.link.Notify(link.Notification{Kind: link.NotePhysAddr, Addr: mac})
}

// SetMTU changes this end's MTU and raises NoteSDUSize. The peer's MTU is
// unchanged, so frames larger than the peer's MTU can be sent, as on a
// misconfigured wire.
func (d *Device) SetMTU(mtu uint32) {
	d.ep.SetMTU(mtu)
	d.sdu.Store(mtu)
	d.link.Notify(link.Notification{Kind: link.NoteSDUSize, SDU: mtu})
}

// Drops returns how many frames this end has dropped: written while
// unplugged, or arriving while unplugged, unattached, closed or with its
// queue full.
func (d *Device) Drops() uint64 { return d.ep.drops.Load() }

// endpoint is one end's gVisor data path: an Ethernet endpoint whose wire
// is the peer's receive queue.
//
// Locking: mu guards the fields below it. It is never held across a call
// into the stack: deliver copies the dispatcher out first.
type endpoint struct {
	peer  *endpoint          // set once, before use
	rx    chan buffer.Buffer // frames from the peer; the queue owns them until delivered
	done  chan struct{}      // closed by close
	wg    sync.WaitGroup     // the delivery goroutine
	drops atomic.Uint64

	mu sync.RWMutex
	// +checklocks:mu
	dispatcher stack.NetworkDispatcher
	// +checklocks:mu
	addr tcpip.LinkAddress
	// +checklocks:mu
	mtu uint32
	// +checklocks:mu
	carrier bool
	// +checklocks:mu
	closed bool
}

var _ stack.LinkEndpoint = (*endpoint)(nil)

func newEndpoint(addr tcpip.LinkAddress, mtu uint32) *endpoint {
	e := &endpoint{
		rx:      make(chan buffer.Buffer, queueLen),
		done:    make(chan struct{}),
		addr:    addr,
		mtu:     mtu,
		carrier: true,
	}
	e.wg.Add(1)
	go e.run()
	return e
}

// run delivers queued frames until close, then releases what is left.
func (e *endpoint) run() {
	defer e.wg.Done()
	for {
		select {
		case f := <-e.rx:
			e.deliver(f)
		case <-e.done:
			for {
				select {
				case f := <-e.rx:
					f.Release()
					e.drops.Add(1)
				default:
					return
				}
			}
		}
	}
}

// enqueue queues a frame for delivery on e; it takes ownership of frame.
func (e *endpoint) enqueue(frame buffer.Buffer) {
	// The read lock makes the closed check and the send atomic with
	// respect to close, so nothing is queued after the final drain.
	e.mu.RLock()
	defer e.mu.RUnlock()
	if !e.closed {
		select {
		case e.rx <- frame:
			return
		default:
		}
	}
	frame.Release()
	e.drops.Add(1)
}

// deliver hands one frame to the attached dispatcher; it takes ownership
// of frame.
func (e *endpoint) deliver(frame buffer.Buffer) {
	e.mu.RLock()
	d, up, addr := e.dispatcher, e.carrier, e.addr
	e.mu.RUnlock()
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: frame})
	defer pkt.DecRef()
	hdr, ok := pkt.LinkHeader().Consume(header.EthernetMinimumSize)
	if d == nil || !up || !ok {
		e.drops.Add(1)
		return
	}
	// There is no hardware filter: classify as ethernet.Endpoint does and
	// let the stack decide.
	eth := header.Ethernet(hdr)
	switch dst := eth.DestinationAddress(); {
	case dst == header.EthernetBroadcastAddress:
		pkt.PktType = tcpip.PacketBroadcast
	case header.IsMulticastEthernetAddress(dst):
		pkt.PktType = tcpip.PacketMulticast
	case dst == addr:
		pkt.PktType = tcpip.PacketHost
	default:
		pkt.PktType = tcpip.PacketOtherHost
	}
	d.DeliverNetworkPacket(eth.Type(), pkt)
}

func (e *endpoint) close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	e.carrier = false
	e.mu.Unlock()
	close(e.done)
	e.wg.Wait()
}

// WritePackets implements stack.LinkWriter. Each frame is copied onto the
// peer's queue; the packets stay the caller's.
func (e *endpoint) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	e.mu.RLock()
	up := e.carrier
	e.mu.RUnlock()
	for _, pkt := range pkts.AsSlice() {
		if !up {
			e.drops.Add(1)
			continue
		}
		e.peer.enqueue(buffer.MakeWithView(pkt.ToView()))
	}
	// Frames lost on the wire are still sent, as far as the sender knows.
	return pkts.Len(), nil
}

// Attach implements stack.LinkEndpoint. Detaching does not wait for a
// delivery in progress: gVisor drops packets for a removed NIC.
func (e *endpoint) Attach(d stack.NetworkDispatcher) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.dispatcher = d
}

// IsAttached implements stack.LinkEndpoint.
func (e *endpoint) IsAttached() bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.dispatcher != nil
}

// Wait implements stack.LinkEndpoint. The delivery goroutine belongs to the
// Device, not to the stack, and stops at Device.Close.
func (*endpoint) Wait() {}

// MTU implements stack.LinkEndpoint: the largest IP packet, without the
// Ethernet header.
func (e *endpoint) MTU() uint32 {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.mtu
}

// SetMTU implements stack.LinkEndpoint.
func (e *endpoint) SetMTU(mtu uint32) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.mtu = mtu
}

// Capabilities implements stack.LinkEndpoint.
func (*endpoint) Capabilities() stack.LinkEndpointCapabilities {
	return stack.CapabilityResolutionRequired
}

// MaxHeaderLength implements stack.LinkEndpoint.
func (*endpoint) MaxHeaderLength() uint16 { return header.EthernetMinimumSize }

// LinkAddress implements stack.LinkEndpoint.
func (e *endpoint) LinkAddress() tcpip.LinkAddress {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.addr
}

// SetLinkAddress implements stack.LinkEndpoint.
func (e *endpoint) SetLinkAddress(addr tcpip.LinkAddress) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.addr = addr
}

// ARPHardwareType implements stack.LinkEndpoint.
func (*endpoint) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareEther }

// AddHeader implements stack.LinkEndpoint.
func (e *endpoint) AddHeader(pkt *stack.PacketBuffer) {
	src := pkt.EgressRoute.LocalLinkAddress
	if src == "" {
		src = e.LinkAddress()
	}
	eth := header.Ethernet(pkt.LinkHeader().Push(header.EthernetMinimumSize))
	eth.Encode(&header.EthernetFields{
		SrcAddr: src,
		DstAddr: pkt.EgressRoute.RemoteLinkAddress,
		Type:    pkt.NetworkProtocolNumber,
	})
}

// ParseHeader implements stack.LinkEndpoint.
func (*endpoint) ParseHeader(pkt *stack.PacketBuffer) bool {
	_, ok := pkt.LinkHeader().Consume(header.EthernetMinimumSize)
	return ok
}

// Close implements stack.LinkEndpoint; gVisor calls it when the NIC is
// removed. The Device, not the stack, owns the endpoint's life.
func (*endpoint) Close() {}

// SetOnCloseAction implements stack.LinkEndpoint.
func (*endpoint) SetOnCloseAction(func()) {}
