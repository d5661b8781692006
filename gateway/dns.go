package gateway

// The DNS forwarder: the namespace's resolver at Config.V4.DNS and
// Config.V6.DNS, port 53, UDP and TCP, inside the stack. Each query is
// parsed (github.com/miekg/dns) and relayed to the host's resolvers:
// Config.Resolvers if set, else the nameservers of Config.ResolvConf
// (/etc/resolv.conf), re-read when it changes, 127.0.0.1:53 if it lists
// none. The daemon runs on the host, so a loopback resolver there (the
// systemd-resolved stub 127.0.0.53, a local dnsmasq) works.
//
// Per query: the resolvers are tried in order, each for at most
// dnsTryTimeout, over UDP for a UDP client (then over TCP if the answer is
// truncated) and over TCP for a TCP client. An answer with SERVFAIL,
// REFUSED or NOTIMP moves on to the next resolver, as the glibc resolver
// does; if every resolver fails the client gets the last such answer, or
// SERVFAIL. Upstream queries carry a fresh random ID (the client's own may
// be predictable); the answer goes back with the client's ID, truncated
// to the client's UDP size (512 bytes or its EDNS0 size) with TC set if
// it does not fit. A message that does not parse gets FORMERR; a
// response (QR set) is never answered.
//
// At most dnsMaxInflight queries are relayed at once: further UDP queries
// are dropped (the client retries), TCP queries wait. At most
// dnsMaxTCPConns TCP connections are served; each is closed after
// dnsTCPIdle without a query.
//
// Not supported: caching, DNSSEC validation (the bits pass through), DNS
// over TLS/HTTPS upstream, resolv.conf options (timeout, attempts,
// rotate), search domains (the namespace's own resolver applies those).
//
// The DNS addresses must be assigned to the NIC (the daemon adds them as
// logical interfaces) for the namespace to resolve them with ARP/NDP.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
)

const (
	dnsPort = 53
	// dnsMaxInflight bounds the queries being relayed at once.
	dnsMaxInflight = 256
	// dnsMaxTCPConns bounds the TCP connections served at once.
	dnsMaxTCPConns = 64
	// dnsTCPIdle closes a TCP connection without a query for this long.
	dnsTCPIdle = 10 * time.Second
	// dnsHeaderLen is the length of a DNS message header.
	dnsHeaderLen = 12
)

// dnsTryTimeout bounds one exchange with one resolver. A variable so
// tests can shorten it; a forwarder reads it once, when it starts.
var dnsTryTimeout = 2 * time.Second

// dnsForwarder is the running DNS forwarder.
//
// Locking: mu guards closed and conns. The socket slices are written only
// before the goroutines start.
type dnsForwarder struct {
	log     *slog.Logger
	servers func() []netip.AddrPort
	sem     chan struct{} // one token per query in flight
	tryTime time.Duration // dnsTryTimeout when started

	udp []*gonet.UDPConn
	tcp []*gonet.TCPListener

	ctx    context.Context // cancelled by stop: ends upstream exchanges
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	mu sync.Mutex
	// +checklocks:mu
	closed bool
	// +checklocks:mu
	conns map[net.Conn]struct{}
}

// startDNS runs the DNS forwarder on the DNS addresses (unless DisableDNS
// or there are none) and returns its stop function.
func (g *Gateway) startDNS() (func(), error) {
	if g.cfg.DisableDNS || (!g.cfg.V4.DNS.IsValid() && !g.cfg.V6.DNS.IsValid()) {
		return nil, nil
	}
	nic, ok := g.stack.NICID(g.cfg.NIC)
	if !ok {
		return nil, fmt.Errorf("no NIC %s", g.cfg.NIC)
	}
	d := &dnsForwarder{
		log:     g.log,
		sem:     make(chan struct{}, dnsMaxInflight),
		tryTime: dnsTryTimeout,
		conns:   map[net.Conn]struct{}{},
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	if len(g.cfg.Resolvers) > 0 {
		fixed := make([]netip.AddrPort, 0, len(g.cfg.Resolvers))
		for _, r := range g.cfg.Resolvers {
			port := r.Port()
			if port == 0 {
				port = dnsPort
			}
			fixed = append(fixed, netip.AddrPortFrom(r.Addr().Unmap(), port))
		}
		d.servers = func() []netip.AddrPort { return fixed }
	} else {
		d.servers = newResolvConf(g.cfg.ResolvConf).Servers
	}

	s := g.stack.GVisor()
	for _, a := range []netip.Addr{g.cfg.V4.DNS, g.cfg.V6.DNS} {
		if !a.IsValid() {
			continue
		}
		laddr := fwdFullAddr(nic, netip.AddrPortFrom(a.Unmap(), dnsPort))
		u, err := gonet.DialUDP(s, &laddr, nil, fwdNetProto(a.Unmap()))
		if err != nil {
			d.stop()
			return nil, fmt.Errorf("DNS on udp %s: %w", netip.AddrPortFrom(a, dnsPort), err)
		}
		d.udp = append(d.udp, u)
		l, err := gonet.ListenTCP(s, laddr, fwdNetProto(a.Unmap()))
		if err != nil {
			d.stop()
			return nil, fmt.Errorf("DNS on tcp %s: %w", netip.AddrPortFrom(a, dnsPort), err)
		}
		d.tcp = append(d.tcp, l)
	}
	for _, u := range d.udp {
		d.wg.Go(func() { d.serveUDP(u) })
	}
	for _, l := range d.tcp {
		d.wg.Go(func() { d.acceptTCP(l) })
	}
	return d.stop, nil
}

// stop closes the sockets and connections, ends the exchanges in flight
// and waits for every goroutine.
func (d *dnsForwarder) stop() {
	d.once.Do(func() {
		d.mu.Lock()
		d.closed = true
		conns := make([]net.Conn, 0, len(d.conns))
		for c := range d.conns {
			conns = append(conns, c)
		}
		d.mu.Unlock()
		d.cancel()
		for _, l := range d.tcp {
			l.Shutdown() // wakes a blocked Accept
			l.Close()
		}
		for _, u := range d.udp {
			u.Close()
		}
		for _, c := range conns {
			c.Close()
		}
	})
	d.wg.Wait()
}

// serveUDP answers the queries arriving on u, each on its own goroutine,
// until u is closed.
func (d *dnsForwarder) serveUDP(u *gonet.UDPConn) {
	buf := make([]byte, dns.MaxMsgSize)
	for {
		n, from, err := u.ReadFrom(buf)
		if err != nil {
			return // closed by stop; gVisor reports nothing else here
		}
		if n < dnsHeaderLen {
			continue
		}
		select {
		case d.sem <- struct{}{}:
		default:
			continue // overloaded: drop, the client retries
		}
		q := append([]byte(nil), buf[:n]...)
		d.wg.Go(func() {
			defer func() { <-d.sem }()
			if out := d.answer(q, false); out != nil {
				u.WriteTo(out, from)
			}
		})
	}
}

// acceptTCP serves the connections accepted on l until it is closed.
func (d *dnsForwarder) acceptTCP(l *gonet.TCPListener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		d.mu.Lock()
		ok := !d.closed && len(d.conns) < dnsMaxTCPConns
		if ok {
			d.conns[c] = struct{}{}
		}
		d.mu.Unlock()
		if !ok {
			c.Close()
			continue
		}
		d.wg.Go(func() {
			defer func() {
				d.mu.Lock()
				delete(d.conns, c)
				d.mu.Unlock()
				c.Close()
			}()
			d.serveTCP(c)
		})
	}
}

// serveTCP answers the queries of one TCP connection (RFC 7766 framing:
// a two-byte length before each message), in order, until the client
// closes it, is idle for dnsTCPIdle, or sends something that is not a
// query.
func (d *dnsForwarder) serveTCP(c net.Conn) {
	var hdr [2]byte
	for {
		c.SetDeadline(time.Now().Add(dnsTCPIdle))
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint16(hdr[:])
		if n < dnsHeaderLen {
			return
		}
		q := make([]byte, n)
		if _, err := io.ReadFull(c, q); err != nil {
			return
		}
		select {
		case d.sem <- struct{}{}:
		case <-d.ctx.Done():
			return
		}
		out := d.answer(q, true)
		<-d.sem
		if out == nil {
			return
		}
		msg := make([]byte, 2+len(out))
		binary.BigEndian.PutUint16(msg, uint16(len(out)))
		copy(msg[2:], out)
		c.SetDeadline(time.Now().Add(dnsTCPIdle))
		if _, err := c.Write(msg); err != nil {
			return
		}
	}
}

// answer returns the packed answer to the query q, or nil if q must not
// be answered.
func (d *dnsForwarder) answer(q []byte, overTCP bool) []byte {
	if len(q) < dnsHeaderLen || q[2]&0x80 != 0 { // too short, or a response
		return nil
	}
	req := new(dns.Msg)
	if err := req.Unpack(q); err != nil {
		return dnsFormErr(q)
	}
	resp := d.relay(req, overTCP)
	if resp == nil {
		resp = new(dns.Msg)
		resp.SetRcode(req, dns.RcodeServerFailure)
	}
	resp.Id = req.Id
	if overTCP {
		resp.Compress = true
	} else {
		resp.Truncate(dnsUDPSize(req))
	}
	out, err := resp.Pack()
	if err != nil {
		fail := new(dns.Msg)
		fail.SetRcode(req, dns.RcodeServerFailure)
		out, _ = fail.Pack()
	}
	return out
}

// dnsUDPSize is the largest UDP answer the client of req accepts.
func dnsUDPSize(req *dns.Msg) int {
	if opt := req.IsEdns0(); opt != nil {
		return max(int(opt.UDPSize()), dns.MinMsgSize)
	}
	return dns.MinMsgSize
}

// dnsFormErr answers a query that does not parse: its header with
// FORMERR.
func dnsFormErr(q []byte) []byte {
	m := new(dns.Msg)
	m.Id = binary.BigEndian.Uint16(q)
	m.Response = true
	m.Opcode = int(q[2]>>3) & 0xf
	m.RecursionDesired = q[2]&0x01 != 0
	m.Rcode = dns.RcodeFormatError
	out, err := m.Pack()
	if err != nil {
		return nil
	}
	return out
}

// relay asks the resolvers in order (see the file comment) and returns
// the answer, or nil if none gave one.
func (d *dnsForwarder) relay(req *dns.Msg, overTCP bool) *dns.Msg {
	up := req.Copy()
	up.Id = dns.Id()
	var failed *dns.Msg // the last SERVFAIL / REFUSED / NOTIMP
	for _, srv := range d.servers() {
		if d.ctx.Err() != nil {
			return nil
		}
		network := "udp"
		if overTCP {
			network = "tcp"
		}
		resp, err := d.exchange(up, srv, network)
		if err != nil {
			d.log.Debug("DNS: resolver failed", "resolver", srv, "net", network, "err", err)
			continue
		}
		if resp.Truncated && network == "udp" {
			// A UDP client gets the truncated answer (and retries over
			// TCP itself) only if TCP fails here too.
			if full, err := d.exchange(up, srv, "tcp"); err == nil {
				resp = full
			}
		}
		switch resp.Rcode {
		case dns.RcodeServerFailure, dns.RcodeRefused, dns.RcodeNotImplemented:
			failed = resp
			continue
		}
		return resp
	}
	return failed
}

// errDNSMismatch is an answer to another question.
var errDNSMismatch = errors.New("answer does not match the question")

// exchange sends m to srv over network and returns the answer. It gives
// up after the try timeout or when the forwarder stops.
func (d *dnsForwarder) exchange(m *dns.Msg, srv netip.AddrPort, network string) (*dns.Msg, error) {
	ctx, cancel := context.WithTimeout(d.ctx, d.tryTime)
	defer cancel()
	var dialer net.Dialer
	c, err := dialer.DialContext(ctx, network, srv.String())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	// The client obeys ctx's deadline, not its cancellation: closing the
	// connection wakes it when the forwarder stops.
	defer context.AfterFunc(ctx, func() { c.Close() })()
	cl := &dns.Client{Net: network, Timeout: d.tryTime, UDPSize: dns.MaxMsgSize}
	resp, _, err := cl.ExchangeWithConnContext(ctx, m, &dns.Conn{Conn: c})
	if err != nil {
		return nil, err
	}
	if !sameQuestion(resp.Question, m.Question) {
		return nil, errDNSMismatch
	}
	return resp, nil
}

// sameQuestion compares question sections, names without regard to case.
func sameQuestion(a, b []dns.Question) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !strings.EqualFold(a[i].Name, b[i].Name) || a[i].Qtype != b[i].Qtype || a[i].Qclass != b[i].Qclass {
			return false
		}
	}
	return true
}
