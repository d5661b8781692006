package link

import (
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/nested"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// Direction says which way a frame crossed the link.
type Direction int

// Directions.
const (
	Inbound  Direction = iota // from the wire to the stack
	Outbound                  // from the stack to the wire
)

// TapFunc observes one frame (link header included). frame is valid only
// during the call; copy what must outlive it. Taps run on the data path:
// they must not block.
type TapFunc func(dir Direction, frame []byte)

// Diverter sees every inbound packet before the stack does (network
// header at pkt.Data()). Returning true consumes the packet: the stack
// never sees it, and the diverter must not keep pkt without IncRef.
type Diverter func(proto tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) bool

// hookEndpoint sits between a device's endpoint and the stack and runs the
// link's taps and diverter. With none installed it costs two atomic loads
// per packet.
type hookEndpoint struct {
	nested.Endpoint

	divert atomic.Pointer[Diverter]
	taps   atomic.Pointer[[]*TapFunc] // copy-on-write, under tapMu
	tapMu  sync.Mutex

	arpDivert atomic.Pointer[Diverter] // sees ARP only, before divert
}

var (
	_ stack.LinkEndpoint      = (*hookEndpoint)(nil)
	_ stack.NetworkDispatcher = (*hookEndpoint)(nil)
	_ stack.GSOEndpoint       = (*hookEndpoint)(nil)
)

func newHookEndpoint(child stack.LinkEndpoint) *hookEndpoint {
	e := &hookEndpoint{}
	e.Endpoint.Init(child, e)
	return e
}

// DeliverNetworkPacket implements stack.NetworkDispatcher.
func (e *hookEndpoint) DeliverNetworkPacket(proto tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	if taps := e.taps.Load(); taps != nil {
		frame := frameOf(pkt, true)
		for _, t := range *taps {
			(*t)(Inbound, frame)
		}
	}
	if proto == header.ARPProtocolNumber {
		if d := e.arpDivert.Load(); d != nil && (*d)(proto, pkt) {
			return
		}
	}
	if d := e.divert.Load(); d != nil && (*d)(proto, pkt) {
		return
	}
	e.Endpoint.DeliverNetworkPacket(proto, pkt)
}

// WritePackets implements stack.LinkEndpoint.
func (e *hookEndpoint) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	if taps := e.taps.Load(); taps != nil {
		for _, pkt := range pkts.AsSlice() {
			frame := frameOf(pkt, false)
			for _, t := range *taps {
				(*t)(Outbound, frame)
			}
		}
	}
	if pkts.Len() == 1 && isSynAck(pkts.AsSlice()[0]) {
		e.writeDetached(pkts.AsSlice()[0]) // see synack.go
		return 1, nil
	}
	return e.Endpoint.WritePackets(pkts)
}

// frameOf flattens a packet into one slice (a copy). Inbound packets have
// their link header consumed already; outbound ones carry it in the header
// stack.
func frameOf(pkt *stack.PacketBuffer, inbound bool) []byte {
	var out []byte
	if inbound {
		out = append(out, pkt.LinkHeader().Slice()...)
		out = append(out, pkt.NetworkHeader().Slice()...)
		out = append(out, pkt.TransportHeader().Slice()...)
		return append(out, pkt.Data().AsRange().ToSlice()...)
	}
	for _, s := range pkt.AsSlices() {
		out = append(out, s...)
	}
	return out
}

// SetDiverter installs d (nil removes it). One diverter per link.
func (l *Link) SetDiverter(d Diverter) {
	if d == nil {
		l.hooks.divert.Store(nil)
		return
	}
	l.hooks.divert.Store(&d)
}

// SetARPDiverter installs d (nil removes it) as the link's ARP diverter:
// it sees inbound ARP packets only, ahead of the general diverter, so the
// ARP layer and a gateway can each have one. One per link.
func (l *Link) SetARPDiverter(d Diverter) {
	if d == nil {
		l.hooks.arpDivert.Store(nil)
		return
	}
	l.hooks.arpDivert.Store(&d)
}

// AddTap starts calling f for every frame crossing the link, both ways,
// until the returned function is called.
func (l *Link) AddTap(f TapFunc) (remove func()) {
	e := l.hooks
	p := &f
	e.tapMu.Lock()
	defer e.tapMu.Unlock()
	var cur []*TapFunc
	if old := e.taps.Load(); old != nil {
		cur = *old
	}
	next := append(append([]*TapFunc(nil), cur...), p)
	e.taps.Store(&next)
	return func() {
		e.tapMu.Lock()
		defer e.tapMu.Unlock()
		old := e.taps.Load()
		if old == nil {
			return
		}
		var next []*TapFunc
		for _, x := range *old {
			if x != p {
				next = append(next, x)
			}
		}
		if len(next) == 0 {
			e.taps.Store(nil)
			return
		}
		e.taps.Store(&next)
	}
}
