package link

import (
	"fmt"
	"net"
	"syscall"
)

// State is a DLPI stream state.
type State int

// DLPI states tapstack emulates (a style-2 connectionless provider).
const (
	DL_UNATTACHED State = iota // open, no PPA attached
	DL_UNBOUND                 // attached, not bound to a SAP
	DL_IDLE                    // bound: frames of the SAP flow
)

func (s State) String() string {
	switch s {
	case DL_UNATTACHED:
		return "UNATTACHED"
	case DL_UNBOUND:
		return "UNBOUND"
	case DL_IDLE:
		return "IDLE"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// ErrorCode is a DLPI error (dl_errno of a DL_ERROR_ACK).
type ErrorCode int

// DLPI error codes the emulation returns.
const (
	DL_BADPPA       ErrorCode = 0x08
	DL_BADSAP       ErrorCode = 0x00
	DL_OUTSTATE     ErrorCode = 0x0f
	DL_NOTSUPPORTED ErrorCode = 0x12
	DL_SYSERR       ErrorCode = 0x04
)

// ENXIO is the UNIX errno a DL_SYSERR carries when a link is gone.
const ENXIO = syscall.ENXIO

func (c ErrorCode) String() string {
	switch c {
	case DL_BADPPA:
		return "DL_BADPPA"
	case DL_BADSAP:
		return "DL_BADSAP"
	case DL_OUTSTATE:
		return "DL_OUTSTATE"
	case DL_NOTSUPPORTED:
		return "DL_NOTSUPPORTED"
	case DL_SYSERR:
		return "DL_SYSERR"
	}
	return fmt.Sprintf("DLPI error %#x", int(c))
}

// Error is a DL_ERROR_ACK: the primitive that failed, the DLPI error and,
// for DL_SYSERR, the UNIX errno.
type Error struct {
	Prim  string
	Code  ErrorCode
	Errno syscall.Errno
	Msg   string
}

func (e *Error) Error() string {
	if e.Code == DL_SYSERR {
		return fmt.Sprintf("%s: %s (%v): %s", e.Prim, e.Code, e.Errno, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", e.Prim, e.Code, e.Msg)
}

// NoteKind is a DL_NOTIFY notification kind (a bit set, as DL_NOTIFY_REQ).
type NoteKind uint32

// Notifications a link raises.
const (
	NoteLinkUp   NoteKind = 1 << iota // carrier up
	NoteLinkDown                      // carrier down
	NotePhysAddr                      // physical address changed
	NoteSDUSize                       // maximum SDU (link MTU) changed
)

// NoteAll is every notification kind.
const NoteAll = NoteLinkUp | NoteLinkDown | NotePhysAddr | NoteSDUSize

func (k NoteKind) String() string {
	switch k {
	case NoteLinkUp:
		return "DL_NOTE_LINK_UP"
	case NoteLinkDown:
		return "DL_NOTE_LINK_DOWN"
	case NotePhysAddr:
		return "DL_NOTE_PHYS_ADDR"
	case NoteSDUSize:
		return "DL_NOTE_SDU_SIZE"
	}
	return fmt.Sprintf("NoteKind(%#x)", uint32(k))
}

// Notification is a DL_NOTIFY_IND.
type Notification struct {
	Kind NoteKind
	Addr net.HardwareAddr // NotePhysAddr
	SDU  uint32           // NoteSDUSize
}

// Capabilities is a DL_CAPABILITY_ACK: what the link offloads. A
// capability is usable only once enabled (EnableCapabilities).
type Capabilities struct {
	HCksum   HCksum `json:"hcksum,omitempty"`   // DL_CAPAB_HCKSUM transmit flags
	LSO      bool   `json:"lso,omitempty"`      // DL_CAPAB_LSO (TCP segmentation)
	LSOMax   uint32 `json:"lso_max,omitempty"`  // largest LSO segment
	ZeroCopy bool   `json:"zerocopy,omitempty"` // DL_CAPAB_ZEROCOPY
	USO      bool   `json:"uso,omitempty"`      // UDP segmentation offload (Linux USO; no DLPI equivalent)
	Enabled  bool   `json:"enabled,omitempty"`  // the ENABLE bit
}

// HCksum are DL_CAPAB_HCKSUM flags.
type HCksum uint32

// Hardware checksum flags.
const (
	HCKSUM_INET_PARTIAL HCksum = 0x01
	HCKSUM_INET_FULL_V4 HCksum = 0x02
	HCKSUM_INET_FULL_V6 HCksum = 0x04
	HCKSUM_IPHDRCKSUM   HCksum = 0x10
)

// Names lists the capabilities for display ("hcksum:0x1", "lso:65536",
// "zerocopy", "uso").
func (c Capabilities) Names() []string {
	out := []string{}
	if c.HCksum != 0 {
		out = append(out, fmt.Sprintf("hcksum:%#x", uint32(c.HCksum)))
	}
	if c.LSO {
		out = append(out, fmt.Sprintf("lso:%d", c.LSOMax))
	}
	if c.ZeroCopy {
		out = append(out, "zerocopy")
	}
	if c.USO {
		out = append(out, "uso")
	}
	return out
}

// Stream is one DLPI stream on a link (one per ill). Its primitives are
// answered synchronously: nil is the ack, *Error the error ack.
//
// A Stream is used by one owner (ifmgr's serialiser for its ill); its state
// fields are guarded by link.mu because Link reads them too.
type Stream struct {
	link   *Link
	state  State // +checklocks:link.mu
	ppa    uint32
	sap    uint16
	notes  NoteKind
	notify func(Notification)
	caps   Capabilities
}

// Link returns the link the stream is open on.
func (s *Stream) Link() *Link { return s.link }

func (s *Stream) outState(prim string, want State) *Error {
	return &Error{Prim: prim, Code: DL_OUTSTATE, Msg: fmt.Sprintf("stream is %s, %s needs %s", s.state, prim, want)}
}

// Attach is DL_ATTACH_REQ: UNATTACHED → UNBOUND.
func (s *Stream) Attach(ppa uint32) error {
	s.link.mu.Lock()
	defer s.link.mu.Unlock()
	if s.link.closed {
		return &Error{Prim: "DL_ATTACH_REQ", Code: DL_SYSERR, Errno: ENXIO, Msg: "link deleted"}
	}
	if s.state != DL_UNATTACHED {
		return s.outState("DL_ATTACH_REQ", DL_UNATTACHED)
	}
	s.ppa = ppa
	s.state = DL_UNBOUND
	return nil
}

// Detach is DL_DETACH_REQ: UNBOUND → UNATTACHED.
func (s *Stream) Detach() error {
	s.link.mu.Lock()
	defer s.link.mu.Unlock()
	if s.state != DL_UNBOUND {
		return s.outState("DL_DETACH_REQ", DL_UNBOUND)
	}
	s.state = DL_UNATTACHED
	return nil
}

// Bind is DL_BIND_REQ: UNBOUND → IDLE on the given SAP.
func (s *Stream) Bind(sap uint16) error {
	s.link.mu.Lock()
	defer s.link.mu.Unlock()
	if s.link.closed {
		return &Error{Prim: "DL_BIND_REQ", Code: DL_SYSERR, Errno: ENXIO, Msg: "link deleted"}
	}
	if s.state != DL_UNBOUND {
		return s.outState("DL_BIND_REQ", DL_UNBOUND)
	}
	if sap != SAPIPv4 && sap != SAPIPv6 {
		return &Error{Prim: "DL_BIND_REQ", Code: DL_BADSAP, Msg: fmt.Sprintf("SAP %#04x is not IPv4 or IPv6", sap)}
	}
	s.sap = sap
	s.state = DL_IDLE
	return nil
}

// Unbind is DL_UNBIND_REQ: IDLE → UNBOUND. Negotiated capabilities are
// reset, as the reference does on the last unit down.
func (s *Stream) Unbind() error {
	s.link.mu.Lock()
	defer s.link.mu.Unlock()
	if s.state != DL_IDLE {
		return s.outState("DL_UNBIND_REQ", DL_IDLE)
	}
	s.state = DL_UNBOUND
	s.caps = Capabilities{}
	return nil
}

// State returns the stream's DLPI state.
func (s *Stream) State() State {
	s.link.mu.Lock()
	defer s.link.mu.Unlock()
	return s.state
}

// Info is DL_INFO_REQ, valid in every state.
func (s *Stream) Info() Info {
	l := s.link
	l.mu.Lock()
	defer l.mu.Unlock()
	return Info{
		MacType:   l.dev.MacType(),
		MaxSDU:    l.sdu,
		MinSDU:    1,
		Addr:      append(net.HardwareAddr(nil), l.addr...),
		Broadcast: l.dev.Broadcast(),
		SAPLength: -2,
		Style:     2,
		State:     s.state,
	}
}

// PhysAddr is DL_PHYS_ADDR_REQ(DL_CURR_PHYS_ADDR); needs an attached stream.
func (s *Stream) PhysAddr() (net.HardwareAddr, error) {
	s.link.mu.Lock()
	defer s.link.mu.Unlock()
	if s.state == DL_UNATTACHED {
		return nil, s.outState("DL_PHYS_ADDR_REQ", DL_UNBOUND)
	}
	return append(net.HardwareAddr(nil), s.link.addr...), nil
}

// Capabilities is DL_CAPABILITY_REQ with no sub-capabilities: it returns
// what the device advertises, without the ENABLE bit. Needs an attached
// stream.
func (s *Stream) Capabilities() (Capabilities, error) {
	s.link.mu.Lock()
	defer s.link.mu.Unlock()
	if s.state == DL_UNATTACHED {
		return Capabilities{}, s.outState("DL_CAPABILITY_REQ", DL_UNBOUND)
	}
	c := s.link.dev.Capabilities()
	c.Enabled = false
	return c, nil
}

// EnableCapabilities is DL_CAPABILITY_REQ with the ENABLE bit: it enables
// the requested subset of what the device advertises and returns what was
// enabled. Asking for more than the device offers enables only the
// intersection, as a driver's ack would.
func (s *Stream) EnableCapabilities(want Capabilities) (Capabilities, error) {
	s.link.mu.Lock()
	defer s.link.mu.Unlock()
	if s.state != DL_IDLE {
		return Capabilities{}, s.outState("DL_CAPABILITY_REQ", DL_IDLE)
	}
	have := s.link.dev.Capabilities()
	got := Capabilities{
		HCksum:   want.HCksum & have.HCksum,
		LSO:      want.LSO && have.LSO,
		ZeroCopy: want.ZeroCopy && have.ZeroCopy,
		USO:      want.USO && have.USO,
		Enabled:  true,
	}
	if got.LSO {
		got.LSOMax = min(want.LSOMax, have.LSOMax)
		if want.LSOMax == 0 {
			got.LSOMax = have.LSOMax
		}
	}
	s.caps = got
	return got, nil
}

// Enabled returns the capabilities currently enabled on the stream.
func (s *Stream) Enabled() Capabilities {
	s.link.mu.Lock()
	defer s.link.mu.Unlock()
	return s.caps
}

// EnableNotifications is DL_NOTIFY_REQ: f is called for each notification
// of the given kinds until the stream is closed. It returns the kinds the
// link supports (all of them). f runs on the notifying goroutine, outside
// the link's lock, in the order notifications were raised.
func (s *Stream) EnableNotifications(kinds NoteKind, f func(Notification)) NoteKind {
	s.link.mu.Lock()
	defer s.link.mu.Unlock()
	s.notes = kinds & NoteAll
	s.notify = f
	return s.notes
}

// Close closes the stream (unbinding and detaching implicitly, as closing
// a DLPI stream does).
func (s *Stream) Close() {
	s.link.mu.Lock()
	defer s.link.mu.Unlock()
	s.state = DL_UNATTACHED
	s.notify = nil
	delete(s.link.streams, s)
}
