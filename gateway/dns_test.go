package gateway

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"

	"github.com/tapstack/tapstack/stack"
)

// inbResolver is a DNS server on host loopback that the tests start, with
// miekg/dns, on UDP and TCP at one address. Its zone:
//
//	example.test.       A 192.0.2.7 (or Answer, if set)
//	big.example.test.   over UDP: an empty truncated answer; over TCP: A 192.0.2.8
//	many.example.test.  over UDP: an empty truncated answer; over TCP: 60 A records
//	fail.example.test.  SERVFAIL
//	anything else       NXDOMAIN
type inbResolver struct {
	addr     netip.AddrPort
	answer   netip.Addr
	udp, tcp atomic.Int32 // queries seen
}

// startInbResolver starts a resolver on addr ("127.0.0.1:0" picks a port
// free for both UDP and TCP). It stops when the test ends.
func startInbResolver(t *testing.T, addr string, answer netip.Addr) (*inbResolver, error) {
	t.Helper()
	r := &inbResolver{answer: answer}
	var (
		pc  net.PacketConn
		l   net.Listener
		err error
	)
	for range 10 {
		if pc, err = net.ListenPacket("udp", addr); err != nil {
			return nil, err
		}
		if l, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
	}
	if err != nil {
		return nil, err
	}
	r.addr = pc.LocalAddr().(*net.UDPAddr).AddrPort()
	for _, srv := range []*dns.Server{
		{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, m *dns.Msg) { r.serve(w, m, false) })},
		{Listener: l, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, m *dns.Msg) { r.serve(w, m, true) })},
	} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		t.Cleanup(func() { srv.Shutdown() })
	}
	return r, nil
}

func (r *inbResolver) serve(w dns.ResponseWriter, q *dns.Msg, overTCP bool) {
	if overTCP {
		r.tcp.Add(1)
	} else {
		r.udp.Add(1)
	}
	m := new(dns.Msg)
	m.SetReply(q)
	m.RecursionAvailable = true
	a := func(name, ip string) dns.RR {
		rr, err := dns.NewRR(name + " 60 IN A " + ip)
		if err != nil {
			panic(err)
		}
		return rr
	}
	name := ""
	if len(q.Question) == 1 {
		name = q.Question[0].Name
	}
	switch name {
	case "example.test.":
		ip := "192.0.2.7"
		if r.answer.IsValid() {
			ip = r.answer.String()
		}
		m.Answer = []dns.RR{a(name, ip)}
	case "big.example.test.", "many.example.test.":
		if !overTCP {
			m.Truncated = true
			break
		}
		m.Answer = []dns.RR{a(name, "192.0.2.8")}
		if name == "many.example.test." {
			m.Answer = nil
			for i := range 60 {
				m.Answer = append(m.Answer, a(name, fmt.Sprintf("198.51.100.%d", i+1)))
			}
		}
	case "fail.example.test.":
		m.Rcode = dns.RcodeServerFailure
	default:
		m.Rcode = dns.RcodeNameError
	}
	w.WriteMsg(m)
}

// inbQuery asks the gateway's DNS forwarder at server:53 from the guest
// over network ("udp" or "tcp").
func inbQuery(t *testing.T, guest *stack.Stack, server netip.Addr, network string, m *dns.Msg) (*dns.Msg, error) {
	t.Helper()
	to := tcpip.FullAddress{Addr: tcpip.AddrFromSlice(server.AsSlice()), Port: 53}
	var c net.Conn
	var err error
	if network == "udp" {
		c, err = gonet.DialUDP(guest.GVisor(), nil, &to, fwdNetProto(server))
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err = gonet.DialContextTCP(ctx, guest.GVisor(), to, fwdNetProto(server))
	}
	if err != nil {
		return nil, err
	}
	defer c.Close()
	cl := &dns.Client{Net: network, Timeout: 10 * time.Second}
	resp, _, err := cl.ExchangeWithConn(m, &dns.Conn{Conn: c})
	return resp, err
}

func inbQuestion(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = 0xbeef
	return m
}

// inbAddrs returns the A records of m.
func inbAddrs(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	return out
}

// inbLoopbackResolver53 starts a resolver on port 53 of a random 127/8
// address, as a resolv.conf nameserver line needs (it has no port). That
// needs root; without it the test is skipped (failed under CI=true).
func inbLoopbackResolver53(t *testing.T, answer netip.Addr) *inbResolver {
	t.Helper()
	for range 5 {
		a := netip.AddrFrom4([4]byte{127, 53, byte(rand.IntN(254) + 1), byte(rand.IntN(254) + 1)})
		r, err := startInbResolver(t, netip.AddrPortFrom(a, 53).String(), answer)
		if err == nil {
			return r
		}
		if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
			if os.Getenv("CI") == "true" {
				t.Fatalf("resolver on %s:53: %v (CI=true needs root)", a, err)
			}
			t.Skipf("resolver on %s:53 needs root (%v); run as root to enable", a, err)
		}
	}
	t.Fatal("no free 127.53.x.y:53 after 5 tries")
	return nil
}

func inbWriteResolvConf(t *testing.T, path string, servers ...netip.AddrPort) {
	t.Helper()
	data := "# written by the test\nsearch example.test\noptions ndots:1\n"
	for _, s := range servers {
		data += "nameserver " + s.Addr().String() + "\n"
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDNSForward resolves example.test from the guest through the
// forwarder, over UDP and TCP, to both DNS addresses, with the resolver
// from Config.Resolvers or from a resolv.conf.
func TestDNSForward(t *testing.T) {
	type source struct {
		name  string
		setup func(t *testing.T) func(*Config)
	}
	sources := []source{
		{"Resolvers", func(t *testing.T) func(*Config) {
			r, err := startInbResolver(t, "127.0.0.1:0", netip.Addr{})
			if err != nil {
				t.Fatal(err)
			}
			return func(c *Config) { c.Resolvers = []netip.AddrPort{r.addr} }
		}},
		{"ResolvConf", func(t *testing.T) func(*Config) {
			r := inbLoopbackResolver53(t, netip.Addr{})
			path := filepath.Join(t.TempDir(), "resolv.conf")
			inbWriteResolvConf(t, path, r.addr)
			return func(c *Config) { c.ResolvConf = path }
		}},
	}
	for _, src := range sources {
		t.Run(src.name, func(t *testing.T) {
			e := newInbEnv(t, src.setup(t))
			for _, server := range []netip.Addr{DefaultDNSV4, DefaultDNSV6} {
				for _, network := range []string{"udp", "tcp"} {
					t.Run(fmt.Sprintf("%s/%s", network, server), func(t *testing.T) {
						resp, err := inbQuery(t, e.guest, server, network, inbQuestion("example.test.", dns.TypeA))
						if err != nil {
							t.Fatal(err)
						}
						if resp.Id != 0xbeef || resp.Rcode != dns.RcodeSuccess || !resp.Response {
							t.Errorf("answer header %+v, want id 0xbeef, NOERROR", resp.MsgHdr)
						}
						if diff := cmp.Diff([]string{"192.0.2.7"}, inbAddrs(resp)); diff != "" {
							t.Errorf("answer (-want +got):\n%s", diff)
						}
					})
				}
			}
			t.Run("NXDOMAIN", func(t *testing.T) {
				resp, err := inbQuery(t, e.guest, DefaultDNSV4, "udp", inbQuestion("nope.example.test.", dns.TypeA))
				if err != nil {
					t.Fatal(err)
				}
				if resp.Rcode != dns.RcodeNameError {
					t.Errorf("rcode %s, want NXDOMAIN", dns.RcodeToString[resp.Rcode])
				}
			})
		})
	}
}

// TestDNSResolvConfReload changes resolv.conf between queries: the next
// query uses the new nameserver. A resolv.conf without nameservers means
// 127.0.0.1:53.
func TestDNSResolvConfReload(t *testing.T) {
	r1 := inbLoopbackResolver53(t, netip.MustParseAddr("192.0.2.7"))
	r2 := inbLoopbackResolver53(t, netip.MustParseAddr("192.0.2.9"))
	path := filepath.Join(t.TempDir(), "resolv.conf")
	inbWriteResolvConf(t, path, r1.addr)
	e := newInbEnv(t, func(c *Config) { c.ResolvConf = path })
	ask := func() []string {
		t.Helper()
		resp, err := inbQuery(t, e.guest, DefaultDNSV4, "udp", inbQuestion("example.test.", dns.TypeA))
		if err != nil {
			t.Fatal(err)
		}
		return inbAddrs(resp)
	}
	if diff := cmp.Diff([]string{"192.0.2.7"}, ask()); diff != "" {
		t.Errorf("first resolv.conf (-want +got):\n%s", diff)
	}
	inbWriteResolvConf(t, path, r2.addr)
	if diff := cmp.Diff([]string{"192.0.2.9"}, ask()); diff != "" {
		t.Errorf("after rewriting resolv.conf (-want +got):\n%s", diff)
	}
	// Replaced by rename, as resolvconf and NetworkManager do.
	tmp := path + ".new"
	inbWriteResolvConf(t, tmp, r1.addr)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"192.0.2.7"}, ask()); diff != "" {
		t.Errorf("after renaming a new resolv.conf into place (-want +got):\n%s", diff)
	}
	if r1.udp.Load() != 2 || r2.udp.Load() != 1 {
		t.Errorf("resolvers saw %d and %d UDP queries, want 2 and 1", r1.udp.Load(), r2.udp.Load())
	}
}

// TestDNSServfail: when no resolver answers, the client gets SERVFAIL
// with its own ID, over UDP and TCP.
func TestDNSServfail(t *testing.T) {
	old := dnsTryTimeout
	dnsTryTimeout = 300 * time.Millisecond
	t.Cleanup(func() { dnsTryTimeout = old })

	// A port where nothing listens (refused at once) and a UDP socket
	// that never answers (times out).
	down := netip.MustParseAddrPort(fmt.Sprintf("127.0.0.1:%d", inbFreePort(t, "udp4", "127.0.0.1")))
	silent, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	silentAddr := silent.LocalAddr().(*net.UDPAddr).AddrPort()
	fail, err := startInbResolver(t, "127.0.0.1:0", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name      string
		resolvers []netip.AddrPort
		qname     string
	}{
		{"refused", []netip.AddrPort{down}, "example.test."},
		{"silent", []netip.AddrPort{silentAddr}, "example.test."},
		{"both", []netip.AddrPort{down, silentAddr}, "example.test."},
		{"upstream SERVFAIL", []netip.AddrPort{fail.addr}, "fail.example.test."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newInbEnv(t, func(c *Config) { c.Resolvers = tc.resolvers })
			for _, network := range []string{"udp", "tcp"} {
				start := time.Now()
				resp, err := inbQuery(t, e.guest, DefaultDNSV4, network, inbQuestion(tc.qname, dns.TypeA))
				if err != nil {
					t.Fatalf("%s: %v", network, err)
				}
				if resp.Rcode != dns.RcodeServerFailure || resp.Id != 0xbeef {
					t.Errorf("%s: rcode %s id %#x, want SERVFAIL id 0xbeef", network, dns.RcodeToString[resp.Rcode], resp.Id)
				}
				if len(resp.Question) != 1 || resp.Question[0].Name != tc.qname {
					t.Errorf("%s: question %v, want %s", network, resp.Question, tc.qname)
				}
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("%s: SERVFAIL took %v", network, d)
				}
			}
		})
	}
}

// TestDNSNextResolver: a resolver that is down or answers SERVFAIL is
// passed over for the next.
func TestDNSNextResolver(t *testing.T) {
	old := dnsTryTimeout
	dnsTryTimeout = 300 * time.Millisecond
	t.Cleanup(func() { dnsTryTimeout = old })
	down := netip.MustParseAddrPort(fmt.Sprintf("127.0.0.1:%d", inbFreePort(t, "udp4", "127.0.0.1")))
	bad, err := startInbResolver(t, "127.0.0.1:0", netip.MustParseAddr("192.0.2.66"))
	if err != nil {
		t.Fatal(err)
	}
	good, err := startInbResolver(t, "127.0.0.1:0", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	// bad answers SERVFAIL for fail.example.test only; ask good for it too.
	e := newInbEnv(t, func(c *Config) { c.Resolvers = []netip.AddrPort{down, bad.addr, good.addr} })
	resp, err := inbQuery(t, e.guest, DefaultDNSV4, "udp", inbQuestion("fail.example.test.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Rcode != dns.RcodeServerFailure || bad.udp.Load() != 1 || good.udp.Load() != 1 {
		t.Errorf("fail.example.test: rcode %s, bad saw %d, good saw %d; want SERVFAIL after asking both once",
			dns.RcodeToString[resp.Rcode], bad.udp.Load(), good.udp.Load())
	}
	resp, err = inbQuery(t, e.guest, DefaultDNSV4, "udp", inbQuestion("example.test.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	// The first resolver that answers (bad, with 192.0.2.66) wins.
	if diff := cmp.Diff([]string{"192.0.2.66"}, inbAddrs(resp)); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
}

// TestDNSTruncation: a truncated UDP answer is retried over TCP; an answer
// too big for the client's UDP size reaches it truncated (TC set) over UDP
// and whole over TCP.
func TestDNSTruncation(t *testing.T) {
	r, err := startInbResolver(t, "127.0.0.1:0", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	e := newInbEnv(t, func(c *Config) { c.Resolvers = []netip.AddrPort{r.addr} })

	resp, err := inbQuery(t, e.guest, DefaultDNSV4, "udp", inbQuestion("big.example.test.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Truncated {
		t.Errorf("big.example.test over UDP: TC set, want the TCP retry's whole answer")
	}
	if diff := cmp.Diff([]string{"192.0.2.8"}, inbAddrs(resp)); diff != "" {
		t.Errorf("big.example.test (-want +got):\n%s", diff)
	}
	if r.udp.Load() != 1 || r.tcp.Load() != 1 {
		t.Errorf("resolver saw %d UDP and %d TCP queries, want 1 and 1", r.udp.Load(), r.tcp.Load())
	}

	// 60 A records do not fit 512 bytes.
	resp, err = inbQuery(t, e.guest, DefaultDNSV4, "udp", inbQuestion("many.example.test.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Truncated || len(resp.Answer) >= 60 {
		t.Errorf("many.example.test over UDP: TC %v with %d records, want TC and fewer than 60", resp.Truncated, len(resp.Answer))
	}
	resp.Compress = true // as it came on the wire
	if packed, _ := resp.Pack(); len(packed) > 512 {
		t.Errorf("UDP answer of %d bytes to a client without EDNS0", len(packed))
	}
	// With EDNS0 and 4096 bytes, it fits.
	q := inbQuestion("many.example.test.", dns.TypeA)
	q.SetEdns0(4096, false)
	resp, err = inbQuery(t, e.guest, DefaultDNSV4, "udp", q)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Truncated || len(resp.Answer) != 60 {
		t.Errorf("many.example.test over UDP with EDNS0 4096: TC %v with %d records, want 60", resp.Truncated, len(resp.Answer))
	}
	resp, err = inbQuery(t, e.guest, DefaultDNSV6, "tcp", inbQuestion("many.example.test.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Truncated || len(resp.Answer) != 60 {
		t.Errorf("many.example.test over TCP: TC %v with %d records, want 60", resp.Truncated, len(resp.Answer))
	}
}

// TestDNSMalformed: garbage gets FORMERR with its ID; a response is not
// answered; the forwarder keeps serving.
func TestDNSMalformed(t *testing.T) {
	r, err := startInbResolver(t, "127.0.0.1:0", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	e := newInbEnv(t, func(c *Config) { c.Resolvers = []netip.AddrPort{r.addr} })
	to := tcpip.FullAddress{Addr: tcpip.AddrFromSlice(DefaultDNSV4.AsSlice()), Port: 53}
	c, err := gonet.DialUDP(e.guest.GVisor(), nil, &to, fwdNetProto(DefaultDNSV4))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 512)

	// A response (QR set): no answer.
	resp := inbQuestion("example.test.", dns.TypeA)
	resp.Response = true
	packed, _ := resp.Pack()
	c.Write(packed)

	// Garbage after a header with ID 0x1234 and RD.
	junk := []byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xff, 0xff}
	c.Write(junk)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	var got dns.Msg
	if err := got.Unpack(buf[:n]); err != nil {
		t.Fatalf("answer to garbage does not parse: %v", err)
	}
	if got.Id != 0x1234 || got.Rcode != dns.RcodeFormatError || !got.Response || !got.RecursionDesired {
		t.Errorf("answer to garbage: %+v, want id 0x1234 FORMERR RD", got.MsgHdr)
	}
	// Nothing else arrives (the response was dropped).
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := c.Read(buf); err == nil {
		t.Errorf("unexpected second answer of %d bytes (%#x)", n, binary.BigEndian.Uint16(buf))
	}
	if r.udp.Load() != 0 {
		t.Errorf("resolver saw %d queries, want 0", r.udp.Load())
	}
}

// TestDNSDisabled: with DisableDNS nothing answers on the DNS address.
func TestDNSDisabled(t *testing.T) {
	e := newInbEnv(t, func(c *Config) { c.DisableDNS = true })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := gonet.DialContextTCP(ctx, e.guest.GVisor(), tcpip.FullAddress{Addr: tcpip.AddrFromSlice(DefaultDNSV4.AsSlice()), Port: 53}, fwdNetProto(DefaultDNSV4))
	if err == nil {
		c.Close()
		t.Fatal("TCP connect to the DNS address succeeded with DisableDNS")
	}
}

func TestParseResolvConf(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		want       []netip.AddrPort
	}{
		{"empty", "", nil},
		{"systemd-resolved stub", "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n",
			[]netip.AddrPort{netip.MustParseAddrPort("127.0.0.53:53")}},
		{"both families, comments", "# comment\n; comment\nnameserver 192.0.2.1 # trailing\nnameserver 2001:db8::1\n\tnameserver   ::1\n",
			[]netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:53"), netip.MustParseAddrPort("[2001:db8::1]:53"), netip.MustParseAddrPort("[::1]:53")}},
		{"at most three", "nameserver 192.0.2.1\nnameserver 192.0.2.2\nnameserver 192.0.2.3\nnameserver 192.0.2.4\n",
			[]netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:53"), netip.MustParseAddrPort("192.0.2.2:53"), netip.MustParseAddrPort("192.0.2.3:53")}},
		{"junk skipped", "nameserver\nnameserver bogus\nNameserver 192.0.2.9\nnameserverx 192.0.2.8\nnameserver ::ffff:192.0.2.5\nnameserver fe80::1%eth0\n",
			[]netip.AddrPort{netip.MustParseAddrPort("192.0.2.5:53"), netip.MustParseAddrPort("[fe80::1%eth0]:53")}},
		{"no trailing newline", "nameserver 10.255.255.53", []netip.AddrPort{netip.MustParseAddrPort("10.255.255.53:53")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, parseResolvConf([]byte(tc.data)), inbCmp); diff != "" {
				t.Errorf("parseResolvConf (-want +got):\n%s", diff)
			}
		})
	}
}

func TestResolvConfFallback(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "resolv.conf")
	rc := newResolvConf(path)
	want := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:53")}
	if diff := cmp.Diff(want, rc.Servers(), inbCmp); diff != "" {
		t.Errorf("missing file (-want +got):\n%s", diff)
	}
	os.WriteFile(path, []byte("search example.test\n"), 0o644)
	if diff := cmp.Diff(want, rc.Servers(), inbCmp); diff != "" {
		t.Errorf("no nameserver lines (-want +got):\n%s", diff)
	}
	os.WriteFile(path, []byte("nameserver 192.0.2.1\n"), 0o644)
	// Same size as before would not matter: the racy-mtime rule re-reads.
	if diff := cmp.Diff([]netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:53")}, rc.Servers(), inbCmp); diff != "" {
		t.Errorf("after adding a nameserver (-want +got):\n%s", diff)
	}
	os.Remove(path)
	if diff := cmp.Diff(want, rc.Servers(), inbCmp); diff != "" {
		t.Errorf("after removing the file (-want +got):\n%s", diff)
	}
}

func FuzzParseResolvConf(f *testing.F) {
	f.Add([]byte("nameserver 127.0.0.53\n"))
	f.Add([]byte("nameserver [::1]\nnameserver fe80::1%lo\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got := parseResolvConf(data)
		if len(got) > resolvConfMaxNS {
			t.Fatalf("%d nameservers", len(got))
		}
		for _, ap := range got {
			if !ap.Addr().IsValid() || ap.Port() != 53 || ap.Addr().Is4In6() {
				t.Fatalf("bad nameserver %v", ap)
			}
		}
	})
}

// FuzzDNSAnswer feeds arbitrary bytes from the namespace to the query
// path (with no resolvers, so every query ends in SERVFAIL): it never
// panics, never answers a response, and answers with the query's ID in a
// message that parses and fits the client's UDP size.
func FuzzDNSAnswer(f *testing.F) {
	q := inbQuestion("example.test.", dns.TypeA)
	packed, _ := q.Pack()
	f.Add(packed, false)
	q.SetEdns0(1232, true)
	packed, _ = q.Pack()
	f.Add(packed, true)
	f.Add([]byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0xff}, false)
	d := &dnsForwarder{log: slog.New(slog.DiscardHandler), servers: func() []netip.AddrPort { return nil }}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	f.Fuzz(func(t *testing.T, q []byte, overTCP bool) {
		out := d.answer(q, overTCP)
		if out == nil {
			if len(q) >= dnsHeaderLen && q[2]&0x80 == 0 {
				t.Fatalf("no answer to a query of %d bytes", len(q))
			}
			return
		}
		var m dns.Msg
		if err := m.Unpack(out); err != nil {
			t.Fatalf("answer does not parse: %v", err)
		}
		if !m.Response || m.Id != binary.BigEndian.Uint16(q) {
			t.Fatalf("answer header %+v to a query with id %#x", m.MsgHdr, binary.BigEndian.Uint16(q))
		}
		size := dns.MinMsgSize
		var req dns.Msg
		if req.Unpack(q) == nil {
			size = dnsUDPSize(&req)
		}
		if !overTCP && len(out) > size {
			t.Fatalf("UDP answer of %d bytes to a client that takes %d", len(out), size)
		}
	})
}
