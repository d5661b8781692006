package gateway

// ICMP echo proxy: pings from the namespace to other hosts are sent from
// host ICMP sockets, and their replies come back to the namespace from
// the address that was pinged.
//
// On a promiscuous NIC gVisor would answer every echo request itself, for
// any destination, which would lie about reachability. So the proxy sits
// in front of the stack, as the link's diverter (link.Link.SetDiverter):
// it takes IPv4 ICMP and IPv6 ICMPv6 echo requests whose destination is
// not one of the gateway's own addresses (the gateway and DNS addresses,
// IPv6 link-local addresses, multicast and broadcast addresses stay with
// gVisor, which answers them as the host it is) and leaves everything
// else (ARP, NDP, TCP, UDP, ICMP errors, echo replies) alone. Fragments of
// ICMP messages for other hosts are taken and dropped: the proxy does not
// reassemble, and a reply from gVisor would be a lie.
//
// Buffer ownership: the diverter runs on the link's receive goroutine and
// borrows the packet for the call; it copies the ICMP message it takes
// into a slice of its own and never keeps, IncRefs or DecRefs the packet
// (the link releases it after the call, taken or not). The copy goes to a
// worker goroutine over a bounded queue (icmpQueueLen; full: dropped), so
// the diverter never blocks on a socket.
//
// The worker sends each request from a host ICMP socket (one per address
// family and binding: outbound, or host loopback without the outbound
// binding), created on first use through Config.Dialer: a datagram
// socket when net.ipv4.ping_group_range allows one, else a raw socket
// (see ICMPConn). The kernel rewrites the echo identifier of a datagram
// socket, and a raw socket shares the host's replies with every other
// pinger, so each socket numbers the requests it sends itself: the
// sequence number on the wire is the socket's own (identifying a pending
// request), the identifier is the kernel's (datagram) or a random one of
// the socket's (raw). A reader goroutine per socket matches each echo
// reply to its pending request (sequence number, identifier on a raw
// socket, and the address it came from) and injects an echo reply with
// the namespace's identifier, sequence number and the returned data.
// Pending requests expire after icmpEchoTimeout.
//
// The reply is injected through a gVisor route from the pinged address
// (the NIC spoofs) to the namespace's address on the NIC: gVisor builds
// the IP header, fragments if needed, resolves the namespace's link
// address (ARP/NDP) and frames it, exactly as for its own traffic. No
// frame is written to the link directly.
//
// Not proxied: the request's TTL and IP options (the host's defaults
// apply, so traceroute by ICMP sees one hop), and ICMP errors from the
// path (an unreachable destination is silence). (UDP flows do relay port
// unreachable: udp.go.)

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

const (
	// icmpEchoTimeout is how long a proxied request waits for its reply.
	icmpEchoTimeout = 10 * time.Second
	// icmpMaxPending bounds the requests waiting for replies, per host
	// socket; more are dropped.
	icmpMaxPending = 1024
	// icmpQueueLen bounds the requests between the diverter and the
	// worker.
	icmpQueueLen = 256
	// icmpSweep is how often the worker expires pending requests.
	icmpSweep = time.Second
)

// echoRequest is one echo request taken from the namespace.
type echoRequest struct {
	src, dst netip.Addr // as the namespace sent it
	to       target     // where it is sent on the host
	id, seq  uint16
	data     []byte // the echo data, after the 8-byte header; owned
}

// echoKey names a host ICMP socket: its family and whether it reaches the
// host loopback (unbound) or the outside (outbound binding).
type echoKey struct {
	v6, loopback bool
}

// icmpProxy is the ICMP echo path of one gateway.
//
// Locking: socks is owned by the worker goroutine (run), which creates the
// sockets and closes them when it ends; each socket's reader has its own
// pointer. An echoSocket's mu guards its pending table.
type icmpProxy struct {
	g    *Gateway
	s    *gstack.Stack
	nic  tcpip.NICID
	pol  policy
	reqs chan echoRequest
	done chan struct{} // closed by stop
	wg   sync.WaitGroup

	socks map[echoKey]*echoSocket // worker only
}

// startICMP proxies ICMP echo through host ICMP sockets. Without a Link
// there is nothing to divert from, and the proxy does not run.
func (g *Gateway) startICMP() (func(), error) {
	if g.cfg.Link == nil {
		return nil, nil
	}
	nic, ok := g.stack.NICID(g.cfg.NIC)
	if !ok {
		return nil, errNoNIC(g.cfg.NIC)
	}
	p := &icmpProxy{
		g: g, s: g.stack.GVisor(), nic: nic, pol: newPolicy(g.cfg),
		reqs:  make(chan echoRequest, icmpQueueLen),
		done:  make(chan struct{}),
		socks: map[echoKey]*echoSocket{},
	}
	p.wg.Go(p.run)
	g.cfg.Link.SetDiverter(p.divert)
	return func() {
		g.cfg.Link.SetDiverter(nil)
		close(p.done)
		p.wg.Wait()
	}, nil
}

// divert is the link's diverter (see the file comment). It reports
// whether it took pkt; it never keeps it.
func (p *icmpProxy) divert(proto tcpip.NetworkProtocolNumber, pkt *gstack.PacketBuffer) bool {
	var (
		req echoRequest
		a   action
	)
	switch proto {
	case header.IPv4ProtocolNumber:
		req, a = p.parse4(pkt)
	case header.IPv6ProtocolNumber:
		req, a = p.parse6(pkt)
	default:
		return false
	}
	switch a {
	case leave:
		return false
	case discard:
		return true
	}
	select {
	case <-p.done:
	case p.reqs <- req:
	default: // queue full: lost, as on a congested link
	}
	return true
}

// action is what the diverter does with a packet.
type action uint8

const (
	leave   action = iota // not ours: the stack has it
	discard               // take it and drop it
	proxy                 // take it and proxy the echo request
)

// takeFor says what to do with an echo request (or a fragment of an ICMP
// message) for dst: leave those for the gateway's own addresses to the
// stack, proxy those the policy forwards, drop the rest.
func (p *icmpProxy) takeFor(dst netip.Addr, fragment bool) (target, action) {
	if !dst.IsValid() || dst.IsUnspecified() || p.pol.own(dst) || dst.IsMulticast() ||
		dst.Is6() && dst.IsLinkLocalUnicast() ||
		dst.Is4() && (dst == p.pol.bcast4 || dst == netip.AddrFrom4([4]byte{255, 255, 255, 255})) {
		return target{}, leave
	}
	if fragment {
		return target{}, discard
	}
	t, v := p.pol.decide(dst)
	if v != forward {
		return target{}, discard // no reply, as from an unreachable host
	}
	return t, proxy
}

func (p *icmpProxy) parse4(pkt *gstack.PacketBuffer) (echoRequest, action) {
	b, ok := pkt.Data().PullUp(header.IPv4MinimumSize)
	if !ok || b[0]>>4 != 4 || b[9] != uint8(header.ICMPv4ProtocolNumber) {
		return echoRequest{}, leave
	}
	ip := header.IPv4(b)
	ihl, total := int(ip.HeaderLength()), int(ip.TotalLength())
	if ihl < header.IPv4MinimumSize || total < ihl || total > pkt.Data().Size() {
		return echoRequest{}, leave // malformed: the stack drops it
	}
	dst := netip.AddrFrom4([4]byte(b[16:20]))
	src := netip.AddrFrom4([4]byte(b[12:16]))
	fragment := ip.More() || ip.FragmentOffset() != 0
	t, a := p.takeFor(dst, fragment)
	if a != proxy {
		return echoRequest{}, a
	}
	if total < ihl+header.ICMPv4MinimumSize {
		return echoRequest{}, leave
	}
	b, ok = pkt.Data().PullUp(total)
	if !ok {
		return echoRequest{}, leave
	}
	msg := header.ICMPv4(b[ihl:total])
	if msg.Type() != header.ICMPv4Echo {
		return echoRequest{}, leave
	}
	if checksum.Checksum(msg, 0) != 0xffff {
		return echoRequest{}, discard // the stack would drop it too
	}
	return echoRequest{
		src: src, dst: dst, to: t,
		id: msg.Ident(), seq: msg.Sequence(),
		data: append([]byte(nil), msg[header.ICMPv4MinimumSize:]...),
	}, proxy
}

// IPv6 extension headers the parser walks over.
const (
	ipv6HopByHop = 0
	ipv6Routing  = 43
	ipv6Fragment = 44
	ipv6DestOpts = 60
	ipv6ICMP     = 58
)

func (p *icmpProxy) parse6(pkt *gstack.PacketBuffer) (echoRequest, action) {
	b, ok := pkt.Data().PullUp(header.IPv6MinimumSize)
	if !ok || b[0]>>4 != 6 {
		return echoRequest{}, leave
	}
	ip := header.IPv6(b)
	end := header.IPv6MinimumSize + int(ip.PayloadLength())
	if end > pkt.Data().Size() {
		return echoRequest{}, leave
	}
	src := netip.AddrFrom16([16]byte(b[8:24]))
	dst := netip.AddrFrom16([16]byte(b[24:40]))
	nh, off := ip.NextHeader(), header.IPv6MinimumSize
	fragment := false
walk:
	for range 8 {
		switch nh {
		case ipv6ICMP:
			break walk
		case ipv6HopByHop, ipv6Routing, ipv6DestOpts:
			h, ok := pkt.Data().PullUp(off + 2)
			if !ok {
				return echoRequest{}, leave
			}
			nh, off = h[off], off+(int(h[off+1])+1)*8
		case ipv6Fragment:
			h, ok := pkt.Data().PullUp(off + 8)
			if !ok {
				return echoRequest{}, leave
			}
			fragment = true
			nh, off = h[off], off+8
		default:
			return echoRequest{}, leave
		}
	}
	if nh != ipv6ICMP || off > end {
		return echoRequest{}, leave
	}
	if !fragment && end-off < header.ICMPv6EchoMinimumSize {
		return echoRequest{}, leave
	}
	if !fragment {
		h, ok := pkt.Data().PullUp(off + 1)
		if !ok || header.ICMPv6Type(h[off]) != header.ICMPv6EchoRequest {
			return echoRequest{}, leave // NDP, errors, replies: the stack's
		}
	}
	t, a := p.takeFor(dst, fragment)
	if a != proxy {
		return echoRequest{}, a
	}
	b, ok = pkt.Data().PullUp(end)
	if !ok {
		return echoRequest{}, leave
	}
	msg := header.ICMPv6(b[off:end])
	xsum := checksum.Combine(
		header.PseudoHeaderChecksum(header.ICMPv6ProtocolNumber, toTCPIP(src), toTCPIP(dst), uint16(len(msg))),
		checksum.Checksum(msg, 0))
	if xsum != 0xffff {
		return echoRequest{}, discard
	}
	return echoRequest{
		src: src, dst: dst, to: t,
		id: msg.Ident(), seq: msg.Sequence(),
		data: append([]byte(nil), msg[header.ICMPv6EchoMinimumSize:]...),
	}, proxy
}

// run is the worker: it sends requests and expires pending ones until
// stop, then closes the host sockets (ending their readers).
func (p *icmpProxy) run() {
	tick := time.NewTicker(icmpSweep)
	defer tick.Stop()
	defer func() {
		for _, s := range p.socks {
			s.conn.Close()
		}
	}()
	for {
		select {
		case <-p.done:
			return
		case req := <-p.reqs:
			p.send(req)
		case now := <-tick.C:
			for _, s := range p.socks {
				s.expire(now)
			}
		}
	}
}

// socket returns the host socket for key, opening it on first use.
func (p *icmpProxy) socket(key echoKey, t target) *echoSocket {
	if s := p.socks[key]; s != nil {
		return s
	}
	network := "ip4"
	if key.v6 {
		network = "ip6"
	}
	laddr, dev := p.pol.binding(t)
	conn, err := p.g.dialer().ListenICMP(network, laddr, dev)
	if err != nil {
		p.g.log.Debug("gateway: ICMP echo socket failed", "network", network, "err", err)
		return nil
	}
	s := &echoSocket{p: p, conn: conn, v6: key.v6, pending: map[uint16]pendingEcho{}, nextSeq: uint16(rand.Uint32())}
	if !conn.Datagram() {
		s.ident = uint16(rand.Uint32())
	}
	p.socks[key] = s
	p.wg.Go(s.read)
	return s
}

// send sends req from the host socket for its destination.
func (p *icmpProxy) send(req echoRequest) {
	s := p.socket(echoKey{v6: req.dst.Is6(), loopback: req.to.loopback}, req.to)
	if s == nil {
		return
	}
	seq, ok := s.add(pendingEcho{
		src: req.src, dst: req.dst, host: req.to.addr, id: req.id, seq: req.seq,
		expires: time.Now().Add(icmpEchoTimeout),
	})
	if !ok {
		return // too many outstanding
	}
	msg := make([]byte, header.ICMPv4MinimumSize+len(req.data))
	copy(msg[header.ICMPv4MinimumSize:], req.data)
	if s.v6 {
		h := header.ICMPv6(msg)
		h.SetType(header.ICMPv6EchoRequest)
		h.SetIdent(s.ident)
		h.SetSequence(seq)
		// The kernel computes the ICMPv6 checksum.
	} else {
		h := header.ICMPv4(msg)
		h.SetType(header.ICMPv4Echo)
		h.SetIdent(s.ident)
		h.SetSequence(seq)
		h.SetChecksum(^checksum.Checksum(msg, 0))
	}
	if err := s.conn.WriteTo(msg, req.to.addr); err != nil {
		s.take(seq, req.to.addr)
		p.g.log.Debug("gateway: ICMP echo send failed", "dst", req.to.addr, "err", err)
	}
}

// pendingEcho is a proxied request waiting for its reply.
type pendingEcho struct {
	src, dst netip.Addr // the namespace's request: reply from dst to src
	host     netip.Addr // where it was sent (the reply comes from there)
	id, seq  uint16     // the namespace's identifier and sequence number
	expires  time.Time
}

// echoSocket is one host ICMP socket and its pending requests.
type echoSocket struct {
	p     *icmpProxy
	conn  ICMPConn
	v6    bool
	ident uint16 // the identifier sent on a raw socket (zero on a datagram socket)

	mu sync.Mutex
	// +checklocks:mu
	pending map[uint16]pendingEcho // by the sequence number sent
	// +checklocks:mu
	nextSeq uint16
}

// add records e under a free sequence number, which it returns; false
// when icmpMaxPending requests are outstanding.
func (s *echoSocket) add(e pendingEcho) (uint16, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) >= icmpMaxPending {
		return 0, false
	}
	for {
		seq := s.nextSeq
		s.nextSeq++
		if _, used := s.pending[seq]; !used {
			s.pending[seq] = e
			return seq, true
		}
	}
}

// take removes and returns the request sent with seq if from is where it
// went.
func (s *echoSocket) take(seq uint16, from netip.Addr) (pendingEcho, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.pending[seq]
	if !ok || e.host != from.Unmap() {
		return pendingEcho{}, false
	}
	delete(s.pending, seq)
	return e, true
}

func (s *echoSocket) expire(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for seq, e := range s.pending {
		if now.After(e.expires) {
			delete(s.pending, seq)
		}
	}
}

// read matches echo replies to pending requests until the socket is
// closed.
func (s *echoSocket) read() {
	buf := make([]byte, 1<<16)
	replyType := uint8(header.ICMPv4EchoReply)
	if s.v6 {
		replyType = uint8(header.ICMPv6EchoReply)
	}
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			return // closed (ReadFrom reports nothing else)
		}
		if n < header.ICMPv4MinimumSize || buf[0] != replyType || buf[1] != 0 {
			continue
		}
		msg := header.ICMPv4(buf[:n]) // the echo layout is the same in ICMPv6
		if !s.conn.Datagram() && msg.Ident() != s.ident {
			continue // another pinger's
		}
		e, ok := s.take(msg.Sequence(), from)
		if !ok {
			continue
		}
		s.p.reply(e, buf[header.ICMPv4MinimumSize:n])
	}
}

// reply injects the echo reply for e, carrying data, into the namespace
// (see the file comment). A reply that cannot be routed is lost.
func (p *icmpProxy) reply(e pendingEcho, data []byte) {
	proto := header.IPv4ProtocolNumber
	if e.src.Is6() {
		proto = header.IPv6ProtocolNumber
	}
	if e.dst.IsLoopback() {
		// Link resolution would solicit from the route's source, and the
		// namespace cannot answer a loopback address (its neighbour
		// advertisement would come back as a martian): solicit from the
		// gateway's own address first, and let the reply wait on that.
		own := p.pol.gw4
		if e.src.Is6() {
			own = p.pol.gw6
		}
		if own.IsValid() {
			p.s.GetLinkAddress(p.nic, toTCPIP(e.src), toTCPIP(own), proto, func(gstack.LinkResolutionResult) {})
		}
	}
	m := icmpMessage{typ: uint8(header.ICMPv4EchoReply), body: data}
	if e.src.Is6() {
		m.typ = uint8(header.ICMPv6EchoReply)
	}
	binary.BigEndian.PutUint16(m.rest[0:], e.id)
	binary.BigEndian.PutUint16(m.rest[2:], e.seq)
	writeICMP(p.s, p.nic, e.dst, e.src, m)
}
