// Package link is tapstack's link layer: the contract every link (TAP,
// AF_PACKET, the in-memory pair) meets. A Link is two things at once:
//
//   - a data path: a gVisor stack.LinkEndpoint (Endpoint) that moves frames;
//   - an emulated DLPI provider: ifmgr opens a Stream on the link per IP
//     version, the way illumos IP opens the link's device node once per ill,
//     and drives it with DLPI primitives (attach, bind, unbind, detach, info,
//     capability, physical address, notify), each answered synchronously
//     with an ack or an error ack.
//
// Package link owns neither addresses nor routing. It imports none of
// tapstack's packages.
package link

import (
	"fmt"
	"net"
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// MacType is the DLPI mac type of a link (dl_mac_type).
type MacType int

// The mac types tapstack links report (values from illumos <sys/dlpi.h>).
const (
	DL_ETHER MacType = 0x04
	DL_LOOP  MacType = 0x17
	DL_OTHER MacType = 0x09
)

func (m MacType) String() string {
	switch m {
	case DL_ETHER:
		return "DL_ETHER"
	case DL_LOOP:
		return "DL_LOOP"
	}
	return fmt.Sprintf("DL_OTHER(%#x)", int(m))
}

// SAPs IP binds to.
const (
	SAPIPv4 uint16 = 0x0800
	SAPIPv6 uint16 = 0x86dd
)

// Info is a DL_INFO_ACK: what the link tells IP about itself.
type Info struct {
	MacType   MacType
	MaxSDU    uint32           // largest frame payload (the link MTU)
	MinSDU    uint32           // smallest
	Addr      net.HardwareAddr // current physical address; empty if none
	Broadcast net.HardwareAddr // broadcast address; empty if the link has none
	SAPLength int              // -2: a two-byte SAP follows the address
	Style     int              // 2: an ATTACH (with PPA) is needed before BIND
	State     State            // the stream's DLPI state
}

// Device is the driver under a Link: the part that differs between TAP,
// AF_PACKET and the in-memory pair. Link adds the DLPI state machine and
// notification fan-out on top.
type Device interface {
	// Endpoint is the gVisor data path. It is the same value for the
	// device's whole life.
	Endpoint() stack.LinkEndpoint
	// MacType, MaxSDU and Broadcast describe the medium.
	MacType() MacType
	MaxSDU() uint32
	Broadcast() net.HardwareAddr
	// Capabilities is what the device can offload today (truthfully).
	Capabilities() Capabilities
	// Close releases the device (deletes the TAP, closes sockets). Called
	// once, by Link.Close.
	Close() error
}

// Link is a named link: a Device plus its DLPI provider emulation.
//
// Locking: mu guards streams, addr, sdu, up and bound. Notifications are
// delivered outside mu, in the order they were raised (notifyMu).
type Link struct {
	name  string
	class string
	over  string
	dev   Device
	hooks *hookEndpoint // wraps dev.Endpoint(); what the stack attaches to

	notifyMu sync.Mutex // serialises notification delivery

	mu      sync.Mutex
	addr    net.HardwareAddr
	sdu     uint32
	up      bool
	streams map[*Stream]struct{}
	closed  bool
}

// New wraps dev as a link named name. class is the kind shown by
// `dladm show-link` ("tap", "afpacket", "memory"); over says where the
// device lives (a netns, or the device an AF_PACKET link is over).
func New(name, class, over string, dev Device) *Link {
	ep := dev.Endpoint()
	return &Link{
		name:    name,
		class:   class,
		over:    over,
		dev:     dev,
		hooks:   newHookEndpoint(ep),
		addr:    net.HardwareAddr(ep.LinkAddress()),
		sdu:     dev.MaxSDU(),
		up:      true,
		streams: make(map[*Stream]struct{}),
	}
}

// Name returns the link name ("tap0").
func (l *Link) Name() string { return l.name }

// Class returns the link class ("tap").
func (l *Link) Class() string { return l.class }

// Over returns where the device lives.
func (l *Link) Over() string { return l.over }

// Endpoint returns the gVisor data path: the device's endpoint behind the
// link's taps and diverter (hooks.go).
func (l *Link) Endpoint() stack.LinkEndpoint { return l.hooks }

// Device returns the driver under the link.
func (l *Link) Device() Device { return l.dev }

// Up reports the link (carrier) state as last notified.
func (l *Link) Up() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.up
}

// Addr returns the current physical address.
func (l *Link) Addr() net.HardwareAddr {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append(net.HardwareAddr(nil), l.addr...)
}

// SDU returns the current maximum SDU (link MTU).
func (l *Link) SDU() uint32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sdu
}

// Bound reports whether any stream is bound (DL_IDLE): the data path
// carries traffic only then.
func (l *Link) Bound() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for s := range l.streams {
		if s.state == DL_IDLE {
			return true
		}
	}
	return false
}

// DLPIState summarises the streams' states for display: IDLE if any
// stream is bound, else UNBOUND if any is attached, else UNATTACHED.
func (l *Link) DLPIState() State {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := DL_UNATTACHED
	for s := range l.streams {
		if s.state > st {
			st = s.state
		}
	}
	return st
}

// Open opens a new DLPI stream on the link, in state DL_UNATTACHED (the
// link is a style-2 provider). Equivalent to open("/dev/net/<link>").
func (l *Link) Open() (*Stream, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, &Error{Prim: "open", Code: DL_SYSERR, Errno: ENXIO, Msg: "link " + l.name + " has been deleted"}
	}
	s := &Stream{link: l}
	l.streams[s] = struct{}{}
	return s, nil
}

// Notify raises a driver event: the link's own state is updated and every
// stream that asked for this kind of notification (DL_NOTIFY_REQ) is told.
// Notifications that change nothing are dropped.
func (l *Link) Notify(n Notification) {
	l.notifyMu.Lock()
	defer l.notifyMu.Unlock()

	l.mu.Lock()
	switch n.Kind {
	case NoteLinkUp, NoteLinkDown:
		up := n.Kind == NoteLinkUp
		if l.up == up {
			l.mu.Unlock()
			return
		}
		l.up = up
	case NotePhysAddr:
		if string(l.addr) == string(n.Addr) {
			l.mu.Unlock()
			return
		}
		l.addr = append(net.HardwareAddr(nil), n.Addr...)
	case NoteSDUSize:
		if l.sdu == n.SDU {
			l.mu.Unlock()
			return
		}
		l.sdu = n.SDU
	}
	var targets []func(Notification)
	for s := range l.streams {
		if s.notes&n.Kind != 0 && s.notify != nil {
			targets = append(targets, s.notify)
		}
	}
	l.mu.Unlock()

	for _, f := range targets {
		f(n)
	}
}

// Close closes every stream and the device. Streams opened afterwards fail.
func (l *Link) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	for s := range l.streams {
		s.state = DL_UNATTACHED
		s.notify = nil
	}
	clear(l.streams)
	l.mu.Unlock()
	return l.dev.Close()
}
