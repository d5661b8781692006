package link_test

import (
	"errors"
	"net"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tapstack/tapstack/link"
	"github.com/tapstack/tapstack/link/memory"
)

var (
	macA = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xa}
	macB = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xb}
)

// newLink returns one end of a memory pair; both ends are closed at the
// end of the test.
func newLink(t *testing.T) *link.Link {
	t.Helper()
	a, b := memory.NewPair("mem0", "mem1", 1500, macA, macB)
	t.Cleanup(func() { a.Close(); b.Close() })
	return a
}

// openIn opens a stream on l and drives it to state st.
func openIn(t *testing.T, l *link.Link, st link.State) *link.Stream {
	t.Helper()
	s, err := l.Open()
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if st >= link.DL_UNBOUND {
		if err := s.Attach(0); err != nil {
			t.Fatalf("Attach: %v", err)
		}
	}
	if st >= link.DL_IDLE {
		if err := s.Bind(link.SAPIPv4); err != nil {
			t.Fatalf("Bind: %v", err)
		}
	}
	if got := s.State(); got != st {
		t.Fatalf("stream is %v, want %v", got, st)
	}
	return s
}

func dlpiCode(err error) (link.ErrorCode, bool) {
	var le *link.Error
	if !errors.As(err, &le) {
		return 0, false
	}
	return le.Code, true
}

func TestPrimitiveOutOfState(t *testing.T) {
	prims := []struct {
		name string
		ok   []link.State // states the primitive is valid in
		do   func(*link.Stream) error
	}{
		{"DL_ATTACH_REQ", []link.State{link.DL_UNATTACHED}, func(s *link.Stream) error { return s.Attach(0) }},
		{"DL_DETACH_REQ", []link.State{link.DL_UNBOUND}, (*link.Stream).Detach},
		{"DL_BIND_REQ", []link.State{link.DL_UNBOUND}, func(s *link.Stream) error { return s.Bind(link.SAPIPv6) }},
		{"DL_UNBIND_REQ", []link.State{link.DL_IDLE}, (*link.Stream).Unbind},
		{"DL_PHYS_ADDR_REQ", []link.State{link.DL_UNBOUND, link.DL_IDLE}, func(s *link.Stream) error {
			_, err := s.PhysAddr()
			return err
		}},
		{"DL_CAPABILITY_REQ", []link.State{link.DL_UNBOUND, link.DL_IDLE}, func(s *link.Stream) error {
			_, err := s.Capabilities()
			return err
		}},
		{"DL_CAPABILITY_REQ(enable)", []link.State{link.DL_IDLE}, func(s *link.Stream) error {
			_, err := s.EnableCapabilities(link.Capabilities{})
			return err
		}},
	}
	for _, p := range prims {
		for _, st := range []link.State{link.DL_UNATTACHED, link.DL_UNBOUND, link.DL_IDLE} {
			valid := false
			for _, ok := range p.ok {
				valid = valid || ok == st
			}
			t.Run(p.name+"/"+st.String(), func(t *testing.T) {
				s := openIn(t, newLink(t), st)
				err := p.do(s)
				if valid {
					if err != nil {
						t.Fatalf("in %v: %v, want ack", st, err)
					}
					return
				}
				if code, ok := dlpiCode(err); !ok || code != link.DL_OUTSTATE {
					t.Fatalf("in %v: got %v (%T), want *link.Error DL_OUTSTATE", st, err, err)
				}
				if got := s.State(); got != st {
					t.Errorf("error ack changed state to %v, want %v", got, st)
				}
			})
		}
	}
}

func TestAttachBindUnbindDetach(t *testing.T) {
	l := newLink(t)
	s := openIn(t, l, link.DL_UNATTACHED)
	step := func(name string, err error, want link.State) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := s.State(); got != want {
			t.Fatalf("after %s: stream is %v, want %v", name, got, want)
		}
		if got := l.DLPIState(); got != want {
			t.Fatalf("after %s: link is %v, want %v", name, got, want)
		}
		if got := l.Bound(); got != (want == link.DL_IDLE) {
			t.Fatalf("after %s: Bound() = %v", name, got)
		}
	}
	step("attach", s.Attach(0), link.DL_UNBOUND)
	step("bind", s.Bind(link.SAPIPv4), link.DL_IDLE)

	info := s.Info()
	want := link.Info{
		MacType:   link.DL_ETHER,
		MaxSDU:    1500,
		MinSDU:    1,
		Addr:      macA,
		Broadcast: net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		SAPLength: -2,
		Style:     2,
		State:     link.DL_IDLE,
	}
	if diff := cmp.Diff(want, info); diff != "" {
		t.Errorf("Info (-want +got):\n%s", diff)
	}
	if hw, err := s.PhysAddr(); err != nil || hw.String() != macA.String() {
		t.Errorf("PhysAddr = %v, %v; want %v", hw, err, macA)
	}

	step("unbind", s.Unbind(), link.DL_UNBOUND)
	step("detach", s.Detach(), link.DL_UNATTACHED)
}

func TestBindBadSAP(t *testing.T) {
	s := openIn(t, newLink(t), link.DL_UNBOUND)
	if code, ok := dlpiCode(s.Bind(0x0806)); !ok || code != link.DL_BADSAP {
		t.Fatalf("Bind(ARP) code = %v, want DL_BADSAP", code)
	}
	if s.State() != link.DL_UNBOUND {
		t.Fatalf("state changed on error ack")
	}
}

func TestClosedLink(t *testing.T) {
	l := newLink(t)
	s := openIn(t, l, link.DL_IDLE)
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if s.State() != link.DL_UNATTACHED {
		t.Errorf("stream on a closed link is %v, want UNATTACHED", s.State())
	}
	if err := s.Attach(0); err == nil {
		t.Errorf("Attach on a closed link succeeded")
	} else if le := new(link.Error); !errors.As(err, &le) || le.Code != link.DL_SYSERR || le.Errno != link.ENXIO {
		t.Errorf("Attach on a closed link: %v, want DL_SYSERR ENXIO", err)
	}
	if _, err := l.Open(); err == nil {
		t.Errorf("Open on a closed link succeeded")
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// capDevice is a memory device that claims offloads, to test negotiation.
type capDevice struct {
	link.Device
	caps link.Capabilities
}

func (d capDevice) Capabilities() link.Capabilities { return d.caps }

func TestEnableCapabilitiesIntersects(t *testing.T) {
	have := link.Capabilities{
		HCksum: link.HCKSUM_INET_PARTIAL | link.HCKSUM_INET_FULL_V4,
		LSO:    true,
		LSOMax: 65536,
	}
	tests := []struct {
		name string
		want link.Capabilities
		got  link.Capabilities
	}{
		{"nothing", link.Capabilities{}, link.Capabilities{Enabled: true}},
		{"subset", link.Capabilities{HCksum: link.HCKSUM_INET_PARTIAL}, link.Capabilities{HCksum: link.HCKSUM_INET_PARTIAL, Enabled: true}},
		{
			"more than offered",
			link.Capabilities{HCksum: link.HCKSUM_INET_FULL_V4 | link.HCKSUM_INET_FULL_V6 | link.HCKSUM_IPHDRCKSUM, ZeroCopy: true},
			link.Capabilities{HCksum: link.HCKSUM_INET_FULL_V4, Enabled: true},
		},
		{"lso any size", link.Capabilities{LSO: true}, link.Capabilities{LSO: true, LSOMax: 65536, Enabled: true}},
		{"lso smaller", link.Capabilities{LSO: true, LSOMax: 32768}, link.Capabilities{LSO: true, LSOMax: 32768, Enabled: true}},
		{"lso larger", link.Capabilities{LSO: true, LSOMax: 1 << 20}, link.Capabilities{LSO: true, LSOMax: 65536, Enabled: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := link.New("cap0", "test", "", capDevice{newLink(t).Device(), have})
			s := openIn(t, l, link.DL_IDLE)

			adv, err := s.Capabilities()
			if err != nil {
				t.Fatalf("Capabilities: %v", err)
			}
			if diff := cmp.Diff(have, adv); diff != "" {
				t.Errorf("advertised (-want +got):\n%s", diff)
			}
			got, err := s.EnableCapabilities(tc.want)
			if err != nil {
				t.Fatalf("EnableCapabilities: %v", err)
			}
			if diff := cmp.Diff(tc.got, got); diff != "" {
				t.Errorf("enabled (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.got, s.Enabled()); diff != "" {
				t.Errorf("Enabled() (-want +got):\n%s", diff)
			}
			if err := s.Unbind(); err != nil {
				t.Fatalf("Unbind: %v", err)
			}
			if got := s.Enabled(); got != (link.Capabilities{}) {
				t.Errorf("after unbind, enabled = %+v, want none", got)
			}
		})
	}
}

func TestMemoryReportsNoCapabilities(t *testing.T) {
	s := openIn(t, newLink(t), link.DL_IDLE)
	got, err := s.EnableCapabilities(link.Capabilities{HCksum: link.HCKSUM_INET_PARTIAL, LSO: true, ZeroCopy: true})
	if err != nil {
		t.Fatalf("EnableCapabilities: %v", err)
	}
	if diff := cmp.Diff(link.Capabilities{Enabled: true}, got); diff != "" {
		t.Errorf("enabled (-want +got):\n%s", diff)
	}
}

func TestNotifications(t *testing.T) {
	l := newLink(t)
	dev := l.Device().(*memory.Device)

	// Each stream records what it receives; callbacks run on the notifying
	// goroutine, which is this one.
	type rec struct {
		kinds link.NoteKind
		got   []link.Notification
	}
	streams := map[string]*rec{
		"carrier": {kinds: link.NoteLinkUp | link.NoteLinkDown},
		"addr":    {kinds: link.NotePhysAddr},
		"all":     {kinds: link.NoteAll},
		"none":    {kinds: 0},
	}
	for _, r := range streams {
		s := openIn(t, l, link.DL_UNBOUND)
		if got := s.EnableNotifications(r.kinds, func(n link.Notification) { r.got = append(r.got, n) }); got != r.kinds {
			t.Fatalf("EnableNotifications(%v) = %v", r.kinds, got)
		}
	}
	// A stream that asked for nothing and one that was closed hear nothing.
	closed := openIn(t, l, link.DL_UNBOUND)
	closed.EnableNotifications(link.NoteAll, func(n link.Notification) { t.Errorf("closed stream notified: %v", n) })
	closed.Close()

	newMAC := net.HardwareAddr{0x02, 0, 0, 0, 0, 0xc}
	dev.SetCarrier(false)
	dev.SetCarrier(false) // duplicate: dropped
	dev.SetMAC(macA)      // unchanged: dropped
	dev.SetMAC(newMAC)
	dev.SetMTU(9000)
	dev.SetMTU(9000) // duplicate: dropped
	dev.SetCarrier(true)

	down := link.Notification{Kind: link.NoteLinkDown}
	up := link.Notification{Kind: link.NoteLinkUp}
	addr := link.Notification{Kind: link.NotePhysAddr, Addr: newMAC}
	sdu := link.Notification{Kind: link.NoteSDUSize, SDU: 9000}
	want := map[string][]link.Notification{
		"carrier": {down, up},
		"addr":    {addr},
		"all":     {down, addr, sdu, up},
		"none":    nil,
	}
	for name, r := range streams {
		if diff := cmp.Diff(want[name], r.got); diff != "" {
			t.Errorf("stream %q (-want +got):\n%s", name, diff)
		}
	}
	if !l.Up() || l.SDU() != 9000 || l.Addr().String() != newMAC.String() {
		t.Errorf("link state: up %v sdu %d addr %v", l.Up(), l.SDU(), l.Addr())
	}
	if got := l.Endpoint().MTU(); got != 9000 {
		t.Errorf("endpoint MTU = %d, want 9000", got)
	}
}
