package ifmgr

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/link"
	"github.com/tapstack/tapstack/link/memory"
	"github.com/tapstack/tapstack/ndp"
	"github.com/tapstack/tapstack/route"
	"github.com/tapstack/tapstack/stack"
)

// newNDPFixture is newFixture with gVisor's NDP events wired to the
// manager, as the daemon does, so router advertisements make units.
func newNDPFixture(t *testing.T, linkNames ...string) *fixture {
	t.Helper()
	disp := ndp.NewDispatcher()
	st := stack.NewWithOptions(stack.Options{NDPDispatcher: disp})
	reg := &link.Registry{}
	f := &fixture{t: t, st: st, links: reg, peers: map[string]*link.Link{}}
	for i, n := range linkNames {
		mac := net.HardwareAddr{2, 0, 0, 0, 0, byte(i + 1)}
		a, b := memory.NewPair(n, n+"-peer", 1500, mac, net.HardwareAddr{2, 0, 0, 0, 0x10, byte(i + 1)})
		if err := reg.Add(a); err != nil {
			t.Fatal(err)
		}
		f.peers[n] = b
		t.Cleanup(func() { b.Close() })
	}
	m, err := New(Config{Stack: st, Links: reg, NDP: disp})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.m = m
	t.Cleanup(func() {
		reg.CloseAll()
		disp.Close()
		st.Close()
	})
	return f
}

// plumb6 plumbs name for IPv6 and brings its link-local unit 0 up.
func (f *fixture) plumb6(name string) {
	f.t.Helper()
	f.must("SIOCSLIFNAME", ctl.AF_INET6, ctl.Lifreq{Name: name, Flags: ctl.IFF_IPV6})
	if err := f.setUp(name, ctl.AF_INET6, true); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) nd(op string, fam ctl.Family, r ctl.Ndreq) (ctl.Ndreq, error) {
	err := f.m.Do(root, op, fam, &r)
	return r, err
}

// ndList is the neighbour table as ndp -a sees it.
func (f *fixture) ndList() []ctl.NdEntry {
	f.t.Helper()
	var l ctl.NdList
	if err := f.m.Do(root, "ndp.list", ctl.AF_INET6, &l); err != nil {
		f.t.Fatal(err)
	}
	return l.Entries
}

// failsND runs an ND request that has to fail with errno want and change
// neither the interfaces nor the neighbour table.
func (f *fixture) failsND(caller Caller, op string, fam ctl.Family, r ctl.Ndreq, want ctl.Errno) {
	f.t.Helper()
	before, nbefore := f.snapshot(), f.ndList()
	err := f.m.Do(caller, op, fam, &r)
	if got := ctl.ErrnoOf(err); got != want {
		f.t.Fatalf("%s %+v: errno %v (%v), want %v", op, r, got, err, want)
	}
	if !strings.Contains(err.Error(), op) {
		f.t.Errorf("error %q does not name the request", err)
	}
	if diff := cmp.Diff(before, f.snapshot()); diff != "" {
		f.t.Fatalf("%s failed but changed the interfaces (-before +after):\n%s", op, diff)
	}
	if diff := cmp.Diff(nbefore, f.ndList(), addrCmp); diff != "" {
		f.t.Fatalf("%s failed but changed the neighbour table (-before +after):\n%s", op, diff)
	}
}

// wire is the far end of an in-memory link seen as raw Ethernet frames:
// it sends frames made with gopacket and collects the IPv6 packets the
// stack sends.
type wire struct {
	t   *testing.T
	ep  gstack.LinkEndpoint
	mac net.HardwareAddr
	in  chan []byte // IPv6 frames received, Ethernet header included
}

func newWire(t *testing.T, peer *link.Link, mac net.HardwareAddr) *wire {
	w := &wire{t: t, ep: peer.Device().Endpoint(), mac: mac, in: make(chan []byte, 256)}
	w.ep.Attach(w)
	t.Cleanup(func() { w.ep.Attach(nil) })
	return w
}

// DeliverNetworkPacket implements gstack.NetworkDispatcher.
func (w *wire) DeliverNetworkPacket(p tcpip.NetworkProtocolNumber, pkt *gstack.PacketBuffer) {
	if p != header.IPv6ProtocolNumber {
		return
	}
	select {
	case w.in <- pkt.ToView().AsSlice():
	default:
	}
}

// DeliverLinkPacket implements gstack.NetworkDispatcher.
func (w *wire) DeliverLinkPacket(tcpip.NetworkProtocolNumber, *gstack.PacketBuffer) {}

// send writes an Ethernet frame carrying ip and icmp to dst.
func (w *wire) send(dst net.HardwareAddr, ip *layers.IPv6, icmp ...gopacket.SerializableLayer) {
	w.t.Helper()
	eth := &layers.Ethernet{SrcMAC: w.mac, DstMAC: dst, EthernetType: layers.EthernetTypeIPv6}
	buf := gopacket.NewSerializeBuffer()
	ls := append([]gopacket.SerializableLayer{eth, ip}, icmp...)
	if c, ok := icmp[0].(*layers.ICMPv6); ok {
		c.SetNetworkLayerForChecksum(ip)
	}
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		w.t.Fatal(err)
	}
	pkt := gstack.NewPacketBuffer(gstack.PacketBufferOptions{Payload: bufferOf(buf.Bytes())})
	defer pkt.DecRef()
	var l gstack.PacketBufferList
	l.PushBack(pkt)
	if _, err := w.ep.WritePackets(l); err != nil {
		w.t.Fatal(err)
	}
}

// routerAdvert sends a router advertisement from fe80::1 for prefix
// with the autonomous flag and the given lifetimes.
func (w *wire) routerAdvert(prefix netip.Prefix, valid, preferred uint32) {
	w.routerAdvertFor(1800, prefix, valid, preferred)
}

// routerAdvertFor is routerAdvert with a router lifetime in seconds (0:
// "no longer a default router").
func (w *wire) routerAdvertFor(routerLifetime uint16, prefix netip.Prefix, valid, preferred uint32) {
	opt := make([]byte, 30)
	opt[0] = byte(prefix.Bits())
	opt[1] = 0xc0 // on-link, autonomous
	be32(opt[2:], valid)
	be32(opt[6:], preferred)
	copy(opt[14:], prefix.Addr().AsSlice())
	ra := &layers.ICMPv6RouterAdvertisement{
		HopLimit: 64, RouterLifetime: routerLifetime,
		Options: layers.ICMPv6Options{
			{Type: layers.ICMPv6OptSourceAddress, Data: w.mac},
			{Type: layers.ICMPv6OptPrefixInfo, Data: opt},
		},
	}
	ip := &layers.IPv6{Version: 6, HopLimit: 255, NextHeader: layers.IPProtocolICMPv6,
		SrcIP: net.ParseIP("fe80::1"), DstIP: net.ParseIP("ff02::1")}
	w.send(net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}, ip,
		&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeRouterAdvertisement, 0)}, ra)
}

func be32(b []byte, v uint32) { b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v) }

// unitsWith returns the IPv6 units whose flags include all of want.
func (f *fixture) unitsWith(want ctl.Flags) map[string]ctl.Lifreq {
	f.t.Helper()
	lc := ctl.Lifconf{Family: ctl.AF_INET6, Flags: ctl.LIFC_TEMPORARY | ctl.LIFC_NOXMIT}
	if err := f.m.Do(root, "SIOCGLIFCONF", ctl.AF_INET6, &lc); err != nil {
		f.t.Fatal(err)
	}
	out := map[string]ctl.Lifreq{}
	for _, r := range lc.Req {
		fl := f.must("SIOCGLIFFLAGS", ctl.AF_INET6, ctl.Lifreq{Name: r.Name})
		if fl.Flags&want == want {
			r.Flags = fl.Flags
			out[r.Name] = r
		}
	}
	return out
}

// waitFor polls cond until it holds; the events arrive on the
// dispatcher's goroutine. This is a wait, not a timing assertion.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var addrCmp = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

func bufferOf(b []byte) buffer.Buffer { return buffer.MakeWithData(b) }

// TestNDRequestErrors: every bad ND request fails with the errno of spec
// §2.14 and changes nothing.
func TestNDRequestErrors(t *testing.T) {
	f := newNDPFixture(t, "tap0")
	f.plumb("tap0")
	f.plumb6("tap0")
	f.must("SIOCLIFADDIF", ctl.AF_INET6, ctl.Lifreq{Name: "tap0"})
	ll := f.must("SIOCGLIFADDR", ctl.AF_INET6, ctl.Lifreq{Name: "tap0"}).Addr
	peer := addr("fe80::10:1")
	good := ctl.LifNdReq{Addr: peer, StateCreate: ctl.ND_REACHABLE, HdwAddr: "2:0:0:0:10:1", Flags: ctl.NDF_STATIC}
	with := func(mod func(*ctl.LifNdReq)) ctl.LifNdReq { r := good; mod(&r); return r }

	cases := []struct {
		name   string
		caller Caller
		op     string
		fam    ctl.Family
		req    ctl.Ndreq
		want   ctl.Errno
	}{
		{"no such interface", root, "SIOCLIFGETND", ctl.AF_INET6, ctl.Ndreq{Name: "tap9", ND: good}, ctl.ENXIO},
		{"logical unit", root, "SIOCLIFGETND", ctl.AF_INET6, ctl.Ndreq{Name: "tap0:1", ND: good}, ctl.EINVAL},
		{"IPv4 interface", root, "SIOCLIFGETND", ctl.AF_INET, ctl.Ndreq{Name: "tap0", ND: good}, ctl.EINVAL},
		{"IPv4 lnr_addr", root, "SIOCLIFGETND", ctl.AF_INET6, ctl.Ndreq{Name: "tap0", ND: with(func(r *ctl.LifNdReq) { r.Addr = addr("10.0.0.1") })}, ctl.EAFNOSUPPORT},
		{"no lnr_addr", root, "SIOCLIFDELND", ctl.AF_INET6, ctl.Ndreq{Name: "tap0"}, ctl.EAFNOSUPPORT},
		{"get unknown", root, "SIOCLIFGETND", ctl.AF_INET6, ctl.Ndreq{Name: "tap0", ND: good}, ctl.ESRCH},
		{"delete unknown", root, "SIOCLIFDELND", ctl.AF_INET6, ctl.Ndreq{Name: "tap0", ND: good}, ctl.ESRCH},
		{"delete local", root, "SIOCLIFDELND", ctl.AF_INET6, ctl.Ndreq{Name: "tap0", ND: ctl.LifNdReq{Addr: ll}}, ctl.EPERM},
		{"set local", root, "SIOCLIFSETND", ctl.AF_INET6, ctl.Ndreq{Name: "tap0", ND: with(func(r *ctl.LifNdReq) { r.Addr = ll })}, ctl.EPERM},
		{"set unprivileged", Caller{}, "SIOCLIFSETND", ctl.AF_INET6, ctl.Ndreq{Name: "tap0", ND: good}, ctl.EPERM},
		{"create state unchanged", root, "SIOCLIFSETND", ctl.AF_INET6, ctl.Ndreq{Name: "tap0", ND: with(func(r *ctl.LifNdReq) { r.StateCreate = ctl.ND_UNCHANGED })}, ctl.EINVAL},
		{"create state probe", root, "SIOCLIFSETND", ctl.AF_INET6, ctl.Ndreq{Name: "tap0", ND: with(func(r *ctl.LifNdReq) { r.StateCreate = ctl.ND_PROBE })}, ctl.EINVAL},
		{"hdw_len too long", root, "SIOCLIFSETND", ctl.AF_INET6, ctl.Ndreq{Name: "tap0", ND: with(func(r *ctl.LifNdReq) { r.HdwLen = 65 })}, ctl.EINVAL},
		{"router on and off", root, "SIOCLIFSETND", ctl.AF_INET6, ctl.Ndreq{Name: "tap0", ND: with(func(r *ctl.LifNdReq) { r.Flags |= ctl.NDF_ISROUTER_ON | ctl.NDF_ISROUTER_OFF })}, ctl.EINVAL},
		{"anycast on and off", root, "SIOCLIFSETND", ctl.AF_INET6, ctl.Ndreq{Name: "tap0", ND: with(func(r *ctl.LifNdReq) { r.Flags |= ctl.NDF_ANYCAST_ON | ctl.NDF_ANYCAST_OFF })}, ctl.EINVAL},
		{"proxy", root, "SIOCLIFSETND", ctl.AF_INET6, ctl.Ndreq{Name: "tap0", ND: with(func(r *ctl.LifNdReq) { r.Flags |= ctl.NDF_PROXY_ON })}, ctl.ENOTSUP},
		{"bad MAC", root, "SIOCLIFSETND", ctl.AF_INET6, ctl.Ndreq{Name: "tap0", ND: with(func(r *ctl.LifNdReq) { r.HdwAddr = "2:0:zz:0:0:1" })}, ctl.EINVAL},
		{"short MAC", root, "SIOCLIFSETND", ctl.AF_INET6, ctl.Ndreq{Name: "tap0", ND: with(func(r *ctl.LifNdReq) { r.HdwAddr = "2:0:0:1" })}, ctl.EINVAL},
		{"multicast MAC", root, "SIOCLIFSETND", ctl.AF_INET6, ctl.Ndreq{Name: "tap0", ND: with(func(r *ctl.LifNdReq) { r.HdwAddr = "33:33:0:0:0:1" })}, ctl.EINVAL},
		{"multicast lnr_addr", root, "SIOCLIFSETND", ctl.AF_INET6, ctl.Ndreq{Name: "tap0", ND: with(func(r *ctl.LifNdReq) { r.Addr = addr("ff02::1") })}, ctl.EINVAL},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f.t = t
			f.failsND(tc.caller, tc.op, tc.fam, tc.req, tc.want)
		})
	}
}

// TestNDSetEntryCarriesTraffic: an entry made with SIOCLIFSETND is what
// the stack sends to, without soliciting; SIOCLIFGETND reports it with
// its flags; after SIOCLIFDELND the stack solicits the address again.
func TestNDSetEntryCarriesTraffic(t *testing.T) {
	f := newNDPFixture(t, "tap0")
	f.plumb6("tap0")
	f.must("SIOCLIFADDIF", ctl.AF_INET6, ctl.Lifreq{Name: "tap0", Addr: addr("2001:db8:7::1")})
	f.must("SIOCSLIFNETMASK", ctl.AF_INET6, ctl.Lifreq{Name: "tap0:1", Addr: maskOf(addr("2001:db8:7::1"), 64)})
	f.setUp("tap0:1", ctl.AF_INET6, true)
	w := newWire(t, f.peers["tap0"], net.HardwareAddr{2, 0, 0, 0, 0x10, 1})
	peer := addr("2001:db8:7::2")
	const peerMAC = "2:0:0:0:99:1"

	set := func(flags int) {
		t.Helper()
		if _, err := f.nd("SIOCLIFSETND", ctl.AF_INET6, ctl.Ndreq{Name: "tap0", ND: ctl.LifNdReq{
			Addr: peer, StateCreate: ctl.ND_REACHABLE, HdwAddr: peerMAC, Flags: flags}}); err != nil {
			t.Fatal(err)
		}
	}
	set(ctl.NDF_STATIC | ctl.NDF_ISROUTER_ON)
	sendUDP(t, f.st, peer)
	dst, solicited := w.firstTo(t, peer)
	if solicited || dst.String() != "02:00:00:00:99:01" {
		t.Errorf("datagram went to %s (solicited first: %v), want 2:0:0:0:99:1 without a solicitation", dst, solicited)
	}
	got, err := f.nd("SIOCLIFGETND", ctl.AF_INET6, ctl.Ndreq{Name: "tap0", ND: ctl.LifNdReq{Addr: peer}})
	if err != nil {
		t.Fatal(err)
	}
	want := ctl.LifNdReq{Addr: peer, HdwLen: 6, HdwAddr: peerMAC, Flags: ctl.NDF_STATIC | ctl.NDF_ISROUTER_ON}
	if diff := cmp.Diff(want, got.ND, addrCmp); diff != "" {
		t.Errorf("SIOCLIFGETND (-want +got):\n%s", diff)
	}
	// A "temp" entry drops NDF_STATIC; NDF_ISROUTER_OFF clears the router flag.
	set(ctl.NDF_ISROUTER_OFF)
	got, _ = f.nd("SIOCLIFGETND", ctl.AF_INET6, ctl.Ndreq{Name: "tap0", ND: ctl.LifNdReq{Addr: peer}})
	if got.ND.Flags != 0 {
		t.Errorf("flags after temp, router off = %#x, want 0", got.ND.Flags)
	}
	if _, err := f.nd("SIOCLIFDELND", ctl.AF_INET6, ctl.Ndreq{Name: "tap0", ND: ctl.LifNdReq{Addr: peer}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.nd("SIOCLIFDELND", ctl.AF_INET6, ctl.Ndreq{Name: "tap0", ND: ctl.LifNdReq{Addr: peer}}); ctl.ErrnoOf(err) != ctl.ESRCH {
		t.Errorf("second SIOCLIFDELND: %v, want ESRCH", err)
	}
	sendUDP(t, f.st, peer)
	if _, solicited := w.firstTo(t, peer); !solicited {
		t.Error("no neighbour solicitation for the address after its entry was deleted")
	}
}

// sendUDP sends one datagram from s to a.
func sendUDP(t *testing.T, s *stack.Stack, a netip.Addr) {
	t.Helper()
	c, err := gonet.DialUDP(s.GVisor(), nil, &tcpip.FullAddress{Addr: tcpip.AddrFrom16(a.As16()), Port: 9}, ipv6.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
}

// firstTo waits for a frame about a: a neighbour solicitation for it (then
// solicited is true) or a packet to it (dst is its Ethernet destination).
func (w *wire) firstTo(t *testing.T, a netip.Addr) (dst net.HardwareAddr, solicited bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case b := <-w.in:
			p := gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.Default)
			if ns, ok := p.Layer(layers.LayerTypeICMPv6NeighborSolicitation).(*layers.ICMPv6NeighborSolicitation); ok {
				if ns.TargetAddress.Equal(net.IP(a.AsSlice())) {
					return nil, true
				}
				continue
			}
			ip, ok := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
			if ok && ip.DstIP.Equal(net.IP(a.AsSlice())) {
				return p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet).DstMAC, false
			}
		case <-deadline:
			t.Fatalf("nothing sent to %s", a)
		}
	}
}

// TestSLAACFromRouterAdvertisement: a prefix advertised with the
// autonomous flag becomes an ADDRCONF unit with the EUI-64 identifier and
// its interface IRE; with TmpAddrsEnabled a TEMPORARY unit joins it; a
// zero preferred lifetime marks them DEPRECATED; a router ignores RAs.
func TestSLAACFromRouterAdvertisement(t *testing.T) {
	f := newNDPFixture(t, "tap0")
	f.plumb6("tap0")
	w := newWire(t, f.peers["tap0"], net.HardwareAddr{2, 0, 0, 0, 0x10, 1})

	w.routerAdvert(netip.MustParsePrefix("2001:db8:1::/64"), 86400, 14400)
	stable := addr("2001:db8:1::ff:fe00:1") // modified EUI-64 of 2:0:0:0:0:1
	waitFor(t, "an ADDRCONF unit", func() bool { return len(f.unitsWith(ctl.IFF_ADDRCONF|ctl.IFF_UP)) == 1 })
	units := f.unitsWith(ctl.IFF_ADDRCONF | ctl.IFF_UP)
	r, ok := units["tap0:1"]
	if !ok || r.Addr != stable || r.Addrlen != 64 || r.Flags&(ctl.IFF_TEMPORARY|ctl.IFF_DEPRECATED) != 0 {
		t.Fatalf("ADDRCONF units = %+v, want tap0:1 %s/64 neither TEMPORARY nor DEPRECATED", units, stable)
	}
	if !f.hasRoute("2001:db8:1::/64") {
		t.Errorf("no interface IRE for 2001:db8:1::/64: %v", f.snapshot().Routes)
	}
	// The advertising router is known as one.
	if e, err := f.nd("SIOCLIFGETND", ctl.AF_INET6, ctl.Ndreq{Name: "tap0", ND: ctl.LifNdReq{Addr: addr("fe80::1")}}); err != nil || e.ND.Flags&ctl.NDF_ISROUTER_ON == 0 {
		t.Errorf("SIOCLIFGETND fe80::1 = %+v, %v; want NDF_ISROUTER_ON", e.ND, err)
	}

	on := true
	if err := f.m.Do(root, "ndp.set-conf", ctl.AF_INET6, &ctl.NdpConf{Name: "tap0", TmpAddrsEnabled: &on}); err != nil {
		t.Fatal(err)
	}
	w.routerAdvert(netip.MustParsePrefix("2001:db8:2::/64"), 86400, 14400)
	waitFor(t, "a TEMPORARY unit", func() bool { return len(f.unitsWith(ctl.IFF_ADDRCONF|ctl.IFF_TEMPORARY|ctl.IFF_UP)) == 1 })
	for _, r := range f.unitsWith(ctl.IFF_TEMPORARY) {
		if !netip.MustParsePrefix("2001:db8:2::/64").Contains(r.Addr) || r.Addr == addr("2001:db8:2::ff:fe00:1") {
			t.Errorf("temporary unit %s has %s, want a random identifier in 2001:db8:2::/64", r.Name, r.Addr)
		}
	}

	// Preferred lifetime 0: deprecated at once (and not chosen as a source).
	w.routerAdvert(netip.MustParsePrefix("2001:db8:1::/64"), 86400, 0)
	waitFor(t, "a DEPRECATED unit", func() bool {
		return len(f.unitsWith(ctl.IFF_ADDRCONF|ctl.IFF_DEPRECATED)) == 1
	})
	if u := f.unitsWith(ctl.IFF_ADDRCONF | ctl.IFF_DEPRECATED); u["tap0:1"].Addr != stable {
		t.Errorf("deprecated units = %+v, want tap0:1", u)
	}

	// A router (IFF_ROUTER) ignores advertisements.
	fl := f.flags("tap0", ctl.AF_INET6)
	f.must("SIOCSLIFFLAGS", ctl.AF_INET6, ctl.Lifreq{Name: "tap0", Flags: fl | ctl.IFF_ROUTER})
	before := len(f.unitsWith(ctl.IFF_ADDRCONF))
	w.routerAdvert(netip.MustParsePrefix("2001:db8:3::/64"), 86400, 14400)
	w.drainAfterEcho(f, addr("fe80::ff:fe00:1"))
	if n := len(f.unitsWith(ctl.IFF_ADDRCONF)); n != before {
		t.Errorf("a router configured an address from an advertisement: %d ADDRCONF units, want %d", n, before)
	}

	// Unplumb takes the ADDRCONF units with it.
	f.must("unplumb", ctl.AF_INET6, ctl.Lifreq{Name: "tap0"})
	if n := len(f.unitsWith(ctl.IFF_ADDRCONF)); n != 0 {
		t.Errorf("%d ADDRCONF units after unplumb", n)
	}
}

// TestNAReflectsRouterFlag: the router bit of tapstack's neighbour
// advertisements follows the ill's ROUTER flag (spec §13.3).
func TestNAReflectsRouterFlag(t *testing.T) {
	f := newNDPFixture(t, "tap0")
	f.plumb6("tap0")
	ll := f.must("SIOCGLIFADDR", ctl.AF_INET6, ctl.Lifreq{Name: "tap0"}).Addr
	w := newWire(t, f.peers["tap0"], net.HardwareAddr{2, 0, 0, 0, 0x10, 1})
	ask := func() bool {
		t.Helper()
		for len(w.in) > 0 {
			<-w.in
		}
		ns := &layers.ICMPv6NeighborSolicitation{TargetAddress: net.IP(ll.AsSlice()),
			Options: layers.ICMPv6Options{{Type: layers.ICMPv6OptSourceAddress, Data: w.mac}}}
		ip := &layers.IPv6{Version: 6, HopLimit: 255, NextHeader: layers.IPProtocolICMPv6,
			SrcIP: net.ParseIP("fe80::10:1"), DstIP: net.IP(ll.AsSlice())}
		w.send(net.HardwareAddr{2, 0, 0, 0, 0, 1}, ip,
			&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeNeighborSolicitation, 0)}, ns)
		deadline := time.After(20 * time.Second)
		for {
			select {
			case b := <-w.in:
				p := gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.Default)
				if na, ok := p.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement); ok {
					return na.Router()
				}
			case <-deadline:
				t.Fatal("no neighbour advertisement")
			}
		}
	}
	if ask() {
		t.Error("a host's advertisement has the router bit")
	}
	fl := f.flags("tap0", ctl.AF_INET6)
	f.must("SIOCSLIFFLAGS", ctl.AF_INET6, ctl.Lifreq{Name: "tap0", Flags: fl | ctl.IFF_ROUTER})
	if !ask() {
		t.Error("a router's advertisement lacks the router bit")
	}
	e, err := f.nd("SIOCLIFGETND", ctl.AF_INET6, ctl.Ndreq{Name: "tap0", ND: ctl.LifNdReq{Addr: ll}})
	if err != nil || e.ND.Flags != ctl.NDF_STATIC|ctl.NDF_ISROUTER_ON || e.ND.HdwAddr != "2:0:0:0:0:1" {
		t.Errorf("local entry = %+v, %v; want static router at 2:0:0:0:0:1", e.ND, err)
	}
}

func (f *fixture) hasRoute(dest string) bool {
	for _, r := range f.snapshot().Routes {
		if strings.Contains(r, dest) {
			return true
		}
	}
	return false
}

// defaultIREs lists the DEFAULT IREs as "gateway ill flags".
func (f *fixture) defaultIREs() []string {
	var out []string
	for _, e := range f.m.Routes().All() {
		if e.Type == route.IRE_DEFAULT {
			out = append(out, fmt.Sprintf("%s %s %s", e.Gateway, e.Ill, route.NetstatFlags(e.IRE)))
		}
	}
	return out
}

// TestDefaultRouteFromRouter: a router that advertises itself becomes a
// default IRE (and gVisor route) through its link-local address while
// the interface is a host with a unit up; the route carries traffic to
// off-link destinations; SIOCDELRT cannot remove it; ROUTER, down and a
// zero router lifetime take it away.
func TestDefaultRouteFromRouter(t *testing.T) {
	f := newNDPFixture(t, "tap0")
	f.plumb6("tap0")
	w := newWire(t, f.peers["tap0"], net.HardwareAddr{2, 0, 0, 0, 0x10, 1})
	prefix := netip.MustParsePrefix("2001:db8:5::/64")
	learned := []string{"fe80::1 tap0 UG"}
	haveRoute := func(want []string) func() bool {
		return func() bool { return cmp.Equal(want, f.defaultIREs()) }
	}

	w.routerAdvert(prefix, 86400, 14400)
	waitFor(t, "a default IRE via fe80::1", haveRoute(learned))
	waitFor(t, "an ADDRCONF unit", func() bool { return len(f.unitsWith(ctl.IFF_ADDRCONF|ctl.IFF_UP)) == 1 })
	off := addr("2001:db8:99::1")
	sendUDP(t, f.st, off)
	if dst, solicited := w.firstTo(t, off); solicited || dst.String() != w.mac.String() {
		t.Errorf("datagram to off-link %s went to %s (solicited %v), want the router %s", off, dst, solicited, w.mac)
	}

	// The protocol owns the route: SIOCDELRT does not find it.
	if err := f.m.Do(root, "SIOCDELRT", ctl.AF_INET6, &ctl.Rtentry{Dst: addr("::"), Gateway: addr("fe80::1")}); ctl.ErrnoOf(err) != ctl.ESRCH {
		t.Errorf("SIOCDELRT of the learned route: %v, want ESRCH", err)
	}
	if !haveRoute(learned)() {
		t.Fatalf("default IREs after SIOCDELRT = %v, want %v", f.defaultIREs(), learned)
	}

	// A router routes by its own table: no learned default while ROUTER is on.
	fl := f.flags("tap0", ctl.AF_INET6)
	f.must("SIOCSLIFFLAGS", ctl.AF_INET6, ctl.Lifreq{Name: "tap0", Flags: fl | ctl.IFF_ROUTER})
	if got := f.defaultIREs(); len(got) != 0 {
		t.Errorf("default IREs of a router = %v, want none", got)
	}
	f.must("SIOCSLIFFLAGS", ctl.AF_INET6, ctl.Lifreq{Name: "tap0", Flags: fl})
	if !haveRoute(learned)() {
		t.Errorf("default IREs after ROUTER off = %v, want %v", f.defaultIREs(), learned)
	}

	// A router lifetime of zero: no longer a default router.
	w.routerAdvertFor(0, prefix, 86400, 14400)
	waitFor(t, "the default IRE to go", haveRoute(nil))
	if e, err := f.nd("SIOCLIFGETND", ctl.AF_INET6, ctl.Ndreq{Name: "tap0", ND: ctl.LifNdReq{Addr: addr("fe80::1")}}); err == nil && e.ND.Flags&ctl.NDF_ISROUTER_ON != 0 {
		t.Errorf("fe80::1 is still flagged a router: %+v", e.ND)
	}

	// Learned again, then the interface goes down: the route goes with it.
	w.routerAdvert(prefix, 86400, 14400)
	waitFor(t, "the default IRE back", haveRoute(learned))
	for _, u := range []string{"tap0:1", "tap0"} {
		if err := f.setUp(u, ctl.AF_INET6, false); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.defaultIREs(); len(got) != 0 {
		t.Errorf("default IREs with every unit down = %v, want none", got)
	}
}

// TestLnkInfoSetsNUDTimes: SIOCSLIFLNKINFO's reachable and retransmit
// times reach gVisor's neighbour unreachability detection on an IPv6
// interface, SIOCGLIFLNKINFO reports what gVisor uses, and a refused
// request changes neither.
func TestLnkInfoSetsNUDTimes(t *testing.T) {
	f := newNDPFixture(t, "tap0")
	f.plumb6("tap0")
	id, _ := f.st.NICID("tap0")
	gv := func() (time.Duration, time.Duration) {
		c, err := f.st.GVisor().NUDConfigurations(id, ipv6.ProtocolNumber)
		if err != nil {
			t.Fatal(err)
		}
		return c.BaseReachableTime, c.RetransmitTimer
	}
	f.must("SIOCSLIFLNKINFO", ctl.AF_INET6, ctl.Lifreq{Name: "tap0", Ifinfo: &ctl.Ifinfo{MaxHops: 32, ReachTime: 4321, ReachRetrans: 250}})
	if r, x := gv(); r != 4321*time.Millisecond || x != 250*time.Millisecond {
		t.Errorf("gVisor NUD times = %v, %v; want 4.321s, 250ms", r, x)
	}
	got := f.must("SIOCGLIFLNKINFO", ctl.AF_INET6, ctl.Lifreq{Name: "tap0"}).Ifinfo
	if got == nil || got.ReachTime != 4321 || got.ReachRetrans != 250 || got.MaxHops != 32 {
		t.Errorf("SIOCGLIFLNKINFO = %+v, want reachtime 4321, retrans 250, maxhops 32", got)
	}
	// Zero keeps a time as it is.
	f.must("SIOCSLIFLNKINFO", ctl.AF_INET6, ctl.Lifreq{Name: "tap0", Ifinfo: &ctl.Ifinfo{ReachRetrans: 700}})
	if r, x := gv(); r != 4321*time.Millisecond || x != 700*time.Millisecond {
		t.Errorf("gVisor NUD times after retrans only = %v, %v; want 4.321s, 700ms", r, x)
	}
	f.fails("SIOCSLIFLNKINFO", ctl.AF_INET6, ctl.Lifreq{Name: "tap0", Ifinfo: &ctl.Ifinfo{ReachTime: 3600001, ReachRetrans: 9}}, ctl.EINVAL)
	if r, x := gv(); r != 4321*time.Millisecond || x != 700*time.Millisecond {
		t.Errorf("a refused SIOCSLIFLNKINFO changed gVisor's NUD times to %v, %v", r, x)
	}
}

// drainAfterEcho pings the stack's address a from the wire and waits for
// the reply: the link delivers in order, so gVisor has processed every
// frame sent before; then it waits until the events those frames caused
// (if any) are applied.
func (w *wire) drainAfterEcho(f *fixture, a netip.Addr) {
	w.t.Helper()
	for len(w.in) > 0 {
		<-w.in
	}
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolICMPv6,
		SrcIP: net.ParseIP("fe80::1"), DstIP: net.IP(a.AsSlice())}
	w.send(net.HardwareAddr{2, 0, 0, 0, 0, 1}, ip,
		&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)},
		&layers.ICMPv6Echo{Identifier: 7, SeqNumber: 1})
	deadline := time.After(20 * time.Second)
	for {
		select {
		case b := <-w.in:
			p := gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.Default)
			if c, ok := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6); ok && c.TypeCode.Type() == layers.ICMPv6TypeEchoReply {
				f.m.ndpd.Sync()
				return
			}
		case <-deadline:
			w.t.Fatalf("no echo reply from %s", a)
		}
	}
}
