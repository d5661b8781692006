package tap

// Unit tests of the endpoint's descriptor I/O over SOCK_SEQPACKET socket
// pairs, which keep message boundaries as a TAP does: no root needed.

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/refs"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/tapstack/tapstack/link/busypoll"
	"github.com/tapstack/tapstack/link/vnet"
)

// TestMain checks packet buffers for leaks, except when benchmarking:
// leak tracking costs a map operation per buffer.
func TestMain(m *testing.M) {
	flag.Parse()
	if os.Getenv("TAPSTACK_BENCH_NOPIN") != "" {
		SetPinning(false)
	}
	bench := flag.Lookup("test.bench").Value.String() != ""
	if !bench {
		refs.SetLeakMode(refs.LeaksPanic)
	}
	code := m.Run()
	if !bench {
		refs.DoLeakCheck()
	}
	os.Exit(code)
}

var (
	ourMAC   = tcpip.LinkAddress("\x02\x54\x53\x00\x00\x02")
	theirMAC = tcpip.LinkAddress("\x02\x54\x53\x00\x00\x01")
	ourV4    = tcpip.AddrFrom4([4]byte{192, 0, 2, 2})
	theirV4  = tcpip.AddrFrom4([4]byte{192, 0, 2, 1})
	ourV6    = tcpip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 2})
	theirV6  = tcpip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1})
)

// testReaders is the reader mode testEndpoint gives its endpoints;
// TestPolledReaders switches it to run tests again with polled readers.
var testReaders = ReadersPinned

const allOffloads = OffloadVnetHdr | OffloadCsum | OffloadTSO4 | OffloadTSO6 | OffloadUSO4 | OffloadUSO6

// testEndpoint is an endpoint over socket pairs: peers[i] is the far end
// of queue i, where a test reads what the endpoint wrote and writes what
// it should read.
func testEndpoint(t testing.TB, queues int, off Offloads) (*endpoint, []int) {
	t.Helper()
	var ours, peers []int
	for range queues {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		ours = append(ours, fds[0])
		peers = append(peers, fds[1])
		t.Cleanup(func() { unix.Close(fds[1]) })
	}
	e, err := newEndpoint(endpointOptions{fds: ours, mtu: 1500, mac: []byte(ourMAC), off: off, readers: testReaders})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.release()
		e.Attach(nil)
	})
	return e, peers
}

// got is one delivered packet, copied.
type got struct {
	proto tcpip.NetworkProtocolNumber
	eth   []byte
	data  []byte
	views int
}

// sink is a dispatcher that keeps copies of what it is given.
type sink struct {
	ch chan got
	n  atomic.Int64 // packets seen; with ch nil, all it keeps
}

func newSink() *sink { return &sink{ch: make(chan got, 256)} }

func (s *sink) DeliverNetworkPacket(proto tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	s.n.Add(1)
	if s.ch == nil {
		return
	}
	vl, _ := pkt.AsViewList()
	s.ch <- got{proto: proto, eth: bytes.Clone(pkt.LinkHeader().Slice()), data: pkt.Data().AsRange().ToSlice(), views: vl.Len()}
}

func (*sink) DeliverLinkPacket(tcpip.NetworkProtocolNumber, *stack.PacketBuffer) {}

func (s *sink) take(t *testing.T) []got {
	t.Helper()
	var out []got
	for {
		select {
		case g := <-s.ch:
			out = append(out, g)
		default:
			return out
		}
	}
}

// packet describes an outbound packet for buildPacket.
type packet struct {
	v6      bool
	proto   tcpip.TransportProtocolNumber // TCP, UDP or ICMPv4/v6
	payload int
	gso     stack.GSO
	hash    uint32
	cwr     bool
}

// buildPacket builds pkt as gVisor does for the endpoint: headers pushed,
// the transport checksum complete, or the pseudo-header sum for host GSO,
// link header added by e.
func buildPacket(e *endpoint, p packet) *stack.PacketBuffer {
	payload := make([]byte, p.payload)
	for i := range payload {
		payload[i] = byte(i*7 + 3)
	}
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{
		ReserveHeaderBytes: header.EthernetMinimumSize + header.IPv6MinimumSize + header.TCPMinimumSize,
		Payload:            buffer.MakeWithData(payload),
	})
	src, dst := ourV4, theirV4
	if p.v6 {
		src, dst = ourV6, theirV6
	}
	var l4 int
	switch p.proto {
	case header.TCPProtocolNumber:
		l4 = header.TCPMinimumSize
		tcp := header.TCP(pkt.TransportHeader().Push(l4))
		flags := header.TCPFlagAck
		if p.cwr {
			flags |= header.TCPFlagCwr
		}
		tcp.Encode(&header.TCPFields{SrcPort: 5001, DstPort: 40000, SeqNum: 1, AckNum: 1, DataOffset: uint8(l4), Flags: flags, WindowSize: 1000})
		xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, src, dst, uint16(l4+p.payload))
		if p.gso.NeedsCsum {
			tcp.SetChecksum(xsum)
		} else {
			tcp.SetChecksum(^tcp.CalculateChecksum(checksum.Checksum(payload, xsum)))
		}
	case header.UDPProtocolNumber:
		l4 = header.UDPMinimumSize
		udp := header.UDP(pkt.TransportHeader().Push(l4))
		udp.Encode(&header.UDPFields{SrcPort: 53, DstPort: 40000, Length: uint16(l4 + p.payload)})
		xsum := header.PseudoHeaderChecksum(header.UDPProtocolNumber, src, dst, uint16(l4+p.payload))
		udp.SetChecksum(^udp.CalculateChecksum(checksum.Checksum(payload, xsum)))
	default:
		// ICMP echo: gVisor always checksums it.
		l4 = header.ICMPv4MinimumSize
		icmp := header.ICMPv4(pkt.TransportHeader().Push(l4))
		icmp.SetType(header.ICMPv4Echo)
		icmp.SetChecksum(^checksum.Checksum(icmp, checksum.Checksum(payload, 0)))
	}
	pkt.TransportProtocolNumber = p.proto
	if p.v6 {
		ip := header.IPv6(pkt.NetworkHeader().Push(header.IPv6MinimumSize))
		ip.Encode(&header.IPv6Fields{PayloadLength: uint16(l4 + p.payload), TransportProtocol: p.proto, HopLimit: 64, SrcAddr: src, DstAddr: dst})
		pkt.NetworkProtocolNumber = header.IPv6ProtocolNumber
	} else {
		ip := header.IPv4(pkt.NetworkHeader().Push(header.IPv4MinimumSize))
		ip.Encode(&header.IPv4Fields{TotalLength: uint16(header.IPv4MinimumSize + l4 + p.payload), Protocol: uint8(p.proto), TTL: 64, SrcAddr: src, DstAddr: dst})
		ip.SetChecksum(^ip.CalculateChecksum())
		pkt.NetworkProtocolNumber = header.IPv4ProtocolNumber
	}
	pkt.GSOOptions = p.gso
	pkt.Hash = p.hash
	pkt.EgressRoute.LocalLinkAddress = ourMAC
	pkt.EgressRoute.RemoteLinkAddress = theirMAC
	e.AddHeader(pkt)
	return pkt
}

func write(t testing.TB, e *endpoint, pkt *stack.PacketBuffer) {
	t.Helper()
	var pkts stack.PacketBufferList
	pkts.PushBack(pkt)
	if n, err := e.WritePackets(pkts); n != 1 || err != nil {
		t.Fatalf("WritePackets = %d, %v", n, err)
	}
}

// readFrame reads one message from fd: the virtio-net header (if vnetHdr)
// and the frame.
func readFrame(t *testing.T, fd int, vnetHdr bool) (vnet.Fields, []byte) {
	t.Helper()
	b := make([]byte, 1<<17)
	n, err := unix.Read(fd, b)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	b = b[:n]
	if !vnetHdr {
		return vnet.Fields{}, b
	}
	if n < vnet.Size {
		t.Fatalf("message of %d bytes has no virtio-net header", n)
	}
	return vnet.Header(b).Decode(), b[vnet.Size:]
}

// complete does what the kernel does with FlagNeedsCsum: sums the frame
// from CsumStart and puts the complement at CsumStart+CsumOffset.
func complete(f vnet.Fields, frame []byte) {
	if f.Flags&vnet.FlagNeedsCsum == 0 {
		return
	}
	at := int(f.CsumStart) + int(f.CsumOffset)
	sum := checksum.Checksum(frame[f.CsumStart:], 0)
	binary.BigEndian.PutUint16(frame[at:], ^sum)
}

// transportValid checks the TCP or UDP checksum of an Ethernet frame.
func transportValid(t *testing.T, frame []byte) bool {
	t.Helper()
	var src, dst tcpip.Address
	var l4 []byte
	var proto tcpip.TransportProtocolNumber
	switch header.Ethernet(frame).Type() {
	case header.IPv4ProtocolNumber:
		ip := header.IPv4(frame[header.EthernetMinimumSize:])
		src, dst, proto = ip.SourceAddress(), ip.DestinationAddress(), ip.TransportProtocol()
		l4 = ip[ip.HeaderLength():ip.TotalLength()]
	case header.IPv6ProtocolNumber:
		ip := header.IPv6(frame[header.EthernetMinimumSize:])
		src, dst, proto = ip.SourceAddress(), ip.DestinationAddress(), ip.TransportProtocol()
		l4 = ip[header.IPv6MinimumSize:]
	}
	xsum := header.PseudoHeaderChecksum(proto, src, dst, uint16(len(l4)))
	return checksum.Checksum(l4, xsum) == 0xffff
}

func TestTransmit(t *testing.T) {
	tso4 := stack.GSO{Type: stack.GSOTCPv4, NeedsCsum: true, CsumOffset: 16, MSS: 1000, L3HdrLen: 20, MaxSize: 1 << 16}
	tso6 := stack.GSO{Type: stack.GSOTCPv6, NeedsCsum: true, CsumOffset: 16, MSS: 1000, L3HdrLen: 40, MaxSize: 1 << 16}
	tests := []struct {
		name string
		p    packet
		want vnet.Fields
		// valid: the frame's transport checksum is right once the
		// kernel has completed it.
		valid bool
	}{
		{"tso4", packet{proto: header.TCPProtocolNumber, payload: 3000, gso: tso4},
			vnet.Fields{Flags: vnet.FlagNeedsCsum, GSOType: vnet.GSOTCPv4, HdrLen: 54, GSOSize: 1000, CsumStart: 34, CsumOffset: 16}, true},
		{"tso4 cwr", packet{proto: header.TCPProtocolNumber, payload: 3000, gso: tso4, cwr: true},
			vnet.Fields{Flags: vnet.FlagNeedsCsum, GSOType: vnet.GSOTCPv4 | vnet.GSOECN, HdrLen: 54, GSOSize: 1000, CsumStart: 34, CsumOffset: 16}, true},
		{"tso6", packet{v6: true, proto: header.TCPProtocolNumber, payload: 60000, gso: tso6},
			vnet.Fields{Flags: vnet.FlagNeedsCsum, GSOType: vnet.GSOTCPv6, HdrLen: 74, GSOSize: 1000, CsumStart: 54, CsumOffset: 16}, true},
		{"gso segment within the mss", packet{proto: header.TCPProtocolNumber, payload: 1000, gso: tso4},
			vnet.Fields{Flags: vnet.FlagNeedsCsum, HdrLen: 54, CsumStart: 34, CsumOffset: 16}, true},
		// Not host GSO: as gVisor built them, checksums complete.
		{"pure ack", packet{proto: header.TCPProtocolNumber}, vnet.Fields{}, true},
		{"udp4", packet{proto: header.UDPProtocolNumber, payload: 1200}, vnet.Fields{}, true},
		{"udp6", packet{v6: true, proto: header.UDPProtocolNumber, payload: 1201}, vnet.Fields{}, true},
		{"icmp", packet{proto: header.ICMPv4ProtocolNumber, payload: 56}, vnet.Fields{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, peers := testEndpoint(t, 1, allOffloads)
			pkt := buildPacket(e, tc.p)
			defer pkt.DecRef()
			wantFrame := pkt.ToView()
			defer wantFrame.Release()
			write(t, e, pkt)
			f, frame := readFrame(t, peers[0], true)
			if diff := cmp.Diff(tc.want, f); diff != "" {
				t.Errorf("virtio-net header (-want +got):\n%s", diff)
			}
			if err := f.Validate(len(frame)); err != nil {
				t.Errorf("the header we sent does not validate: %v", err)
			}
			// The frame is the packet, with the pseudo-header sum in an
			// empty checksum.
			if len(frame) != wantFrame.Size() {
				t.Fatalf("frame of %d bytes, packet of %d", len(frame), wantFrame.Size())
			}
			complete(f, frame)
			if tc.valid && !transportValid(t, frame) {
				t.Errorf("transport checksum wrong after completion")
			}
			if s := e.stats(); s.TXFrames != 1 || s.TXBytes != uint64(len(frame)) || s.Copies != 0 {
				t.Errorf("stats %+v, want 1 frame of %d bytes, no copies", s, len(frame))
			}
		})
	}
}

// TestTransmitNoOffload: without the header, frames go as gVisor built
// them, checksums untouched.
func TestTransmitNoOffload(t *testing.T) {
	e, peers := testEndpoint(t, 1, 0)
	if e.SupportedGSO() != stack.GSONotSupported || e.Capabilities() != stack.CapabilityResolutionRequired {
		t.Errorf("GSO %v caps %#x: want none", e.SupportedGSO(), e.Capabilities())
	}
	pkt := buildPacket(e, packet{proto: header.UDPProtocolNumber, payload: 100})
	defer pkt.DecRef()
	want := pkt.ToView()
	defer want.Release()
	write(t, e, pkt)
	if _, frame := readFrame(t, peers[0], false); !bytes.Equal(frame, want.AsSlice()) {
		t.Errorf("frame\n% x\nwant\n% x", frame, want.AsSlice())
	}
}

// TestTransmitQueueByHash: a packet goes to the queue its flow hash
// picks, so a flow keeps its queue.
func TestTransmitQueueByHash(t *testing.T) {
	e, peers := testEndpoint(t, 3, allOffloads)
	for _, hash := range []uint32{0, 1, 2, 3, 4, 0xffffffff} {
		pkt := buildPacket(e, packet{proto: header.UDPProtocolNumber, payload: 10, hash: hash})
		write(t, e, pkt)
		pkt.DecRef()
		want := int(hash % 3)
		for q, fd := range peers {
			var b [2048]byte
			n, _, err := unix.Recvfrom(fd, b[:], unix.MSG_DONTWAIT)
			if got := err == nil && n > 0; got != (q == want) {
				t.Errorf("hash %#x: queue %d got a frame: %v, want on queue %d only", hash, q, got, want)
			}
		}
	}
}

// TestTransmitManyViews: a packet of more views than one writev takes is
// written whole, with a copy counted.
func TestTransmitManyViews(t *testing.T) {
	e, peers := testEndpoint(t, 1, allOffloads)
	for _, views := range []int{txIovecs + 5, maxIovecs + 5} {
		// Views of the end of a 64-byte chunk each: full, so never
		// merged.
		const size = 32
		var payload buffer.Buffer
		for i := range views {
			v := buffer.NewViewWithData(bytes.Repeat([]byte{byte(i)}, 64))
			v.TrimFront(64 - size)
			payload.Append(v)
		}
		if vl := payload.AsViewList(); vl.Len() != views {
			t.Fatalf("payload of %d views, want %d", vl.Len(), views)
		}
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{ReserveHeaderBytes: 64, Payload: payload})
		udp := header.UDP(pkt.TransportHeader().Push(header.UDPMinimumSize))
		udp.Encode(&header.UDPFields{SrcPort: 1, DstPort: 2, Length: uint16(8 + size*views)})
		xsum := header.PseudoHeaderChecksum(header.UDPProtocolNumber, ourV4, theirV4, uint16(8+size*views))
		udp.SetChecksum(^udp.CalculateChecksum(checksum.Combine(xsum, pkt.Data().Checksum())))
		pkt.TransportProtocolNumber = header.UDPProtocolNumber
		ip := header.IPv4(pkt.NetworkHeader().Push(header.IPv4MinimumSize))
		ip.Encode(&header.IPv4Fields{TotalLength: uint16(28 + size*views), Protocol: uint8(header.UDPProtocolNumber), TTL: 64, SrcAddr: ourV4, DstAddr: theirV4})
		ip.SetChecksum(^ip.CalculateChecksum())
		pkt.NetworkProtocolNumber = header.IPv4ProtocolNumber
		pkt.EgressRoute.LocalLinkAddress, pkt.EgressRoute.RemoteLinkAddress = ourMAC, theirMAC
		e.AddHeader(pkt)
		write(t, e, pkt)
		f, frame := readFrame(t, peers[0], true)
		pkt.DecRef()
		if len(frame) != 14+28+size*views {
			t.Errorf("%d views: frame of %d bytes, want %d", views, len(frame), 14+28+size*views)
		}
		complete(f, frame)
		if !transportValid(t, frame) {
			t.Errorf("%d views: bad checksum", views)
		}
	}
	if c := e.stats().Copies; c != 1 {
		t.Errorf("copies = %d, want 1 (the packet over UIO_MAXIOV views)", c)
	}
}

// frameOf builds an inbound Ethernet frame to us carrying an IPv4 or IPv6
// packet with a transport header of the given protocol and payload bytes,
// checksums right, and returns it.
func frameOf(v6 bool, proto tcpip.TransportProtocolNumber, payload int, dst tcpip.LinkAddress) []byte {
	l4 := header.UDPMinimumSize
	if proto == header.TCPProtocolNumber {
		l4 = header.TCPMinimumSize
	}
	l3 := header.IPv4MinimumSize
	etype := header.IPv4ProtocolNumber
	src, dstIP := theirV4, ourV4
	if v6 {
		l3, etype, src, dstIP = header.IPv6MinimumSize, header.IPv6ProtocolNumber, theirV6, ourV6
	}
	b := make([]byte, header.EthernetMinimumSize+l3+l4+payload)
	header.Ethernet(b).Encode(&header.EthernetFields{SrcAddr: theirMAC, DstAddr: dst, Type: etype})
	ipb := b[header.EthernetMinimumSize:]
	if v6 {
		header.IPv6(ipb).Encode(&header.IPv6Fields{PayloadLength: uint16(l4 + payload), TransportProtocol: proto, HopLimit: 64, SrcAddr: src, DstAddr: dstIP})
	} else {
		ip := header.IPv4(ipb)
		ip.Encode(&header.IPv4Fields{TotalLength: uint16(l3 + l4 + payload), Protocol: uint8(proto), TTL: 64, ID: 100, SrcAddr: src, DstAddr: dstIP})
		ip.SetChecksum(^ip.CalculateChecksum())
	}
	seg := ipb[l3:]
	for i := l4; i < len(seg); i++ {
		seg[i] = byte(i * 13)
	}
	if proto == header.TCPProtocolNumber {
		header.TCP(seg).Encode(&header.TCPFields{SrcPort: 40000, DstPort: 5001, SeqNum: 1, DataOffset: uint8(l4), Flags: header.TCPFlagAck, WindowSize: 1000})
	} else {
		header.UDP(seg).Encode(&header.UDPFields{SrcPort: 40000, DstPort: 5001, Length: uint16(l4 + payload)})
	}
	xsum := header.PseudoHeaderChecksum(proto, src, dstIP, uint16(len(seg)))
	off := 16
	if proto == header.UDPProtocolNumber {
		off = 6
	}
	binary.BigEndian.PutUint16(seg[off:], ^checksum.Checksum(seg, xsum))
	return b
}

// partial turns a frame's transport checksum into the pseudo-header sum,
// as a kernel sending with CHECKSUM_PARTIAL leaves it.
func partial(frame []byte, v6 bool, off int) {
	l4 := header.EthernetMinimumSize + header.IPv4MinimumSize
	src, dst := theirV4, ourV4
	if v6 {
		l4, src, dst = header.EthernetMinimumSize+header.IPv6MinimumSize, theirV6, ourV6
	}
	proto := header.TCPProtocolNumber
	if off == 6 {
		proto = header.UDPProtocolNumber
	}
	binary.BigEndian.PutUint16(frame[l4+off:], header.PseudoHeaderChecksum(proto, src, dst, uint16(len(frame)-l4)))
}

// send writes a virtio-net header and frame to fd as one message.
func send(t testing.TB, fd int, f vnet.Fields, frame []byte) {
	t.Helper()
	var h [vnet.Size]byte
	vnet.Header(h[:]).Encode(&f)
	if _, err := unix.Writev(fd, [][]byte{h[:], frame}); err != nil {
		t.Fatalf("writev: %v", err)
	}
}

func TestReceive(t *testing.T) {
	needs := func(start, off uint16) vnet.Fields {
		return vnet.Fields{Flags: vnet.FlagNeedsCsum, CsumStart: start, CsumOffset: off}
	}
	corrupt := func(at int) func([]byte) { return func(b []byte) { b[at] ^= 0xff } }
	tests := []struct {
		name    string
		f       vnet.Fields
		frame   []byte
		mangle  func([]byte)
		deliver bool
		badCsum bool
	}{
		{"udp4 no flags", vnet.Fields{}, frameOf(false, header.UDPProtocolNumber, 100, ourMAC), nil, true, false},
		{"udp6 no flags", vnet.Fields{}, frameOf(true, header.UDPProtocolNumber, 101, ourMAC), nil, true, false},
		{"tcp4 no flags", vnet.Fields{}, frameOf(false, header.TCPProtocolNumber, 1000, ourMAC), nil, true, false},
		{"udp4 bad checksum", vnet.Fields{}, frameOf(false, header.UDPProtocolNumber, 100, ourMAC), corrupt(60), false, true},
		{"tcp6 bad checksum", vnet.Fields{}, frameOf(true, header.TCPProtocolNumber, 100, ourMAC), corrupt(100), false, true},
		{"ipv4 header bad checksum", vnet.Fields{}, frameOf(false, header.UDPProtocolNumber, 100, ourMAC), corrupt(22), false, true},
		{"bad checksum but data valid", vnet.Fields{Flags: vnet.FlagDataValid}, frameOf(false, header.UDPProtocolNumber, 100, ourMAC), corrupt(60), true, false},
		{"partial tcp4", needs(34, 16), frameOf(false, header.TCPProtocolNumber, 1000, ourMAC), func(b []byte) { partial(b, false, 16) }, true, false},
		{"partial udp6", needs(54, 6), frameOf(true, header.UDPProtocolNumber, 1000, ourMAC), func(b []byte) { partial(b, true, 6) }, true, false},
		{"tso4 frame", vnet.Fields{Flags: 1, GSOType: vnet.GSOTCPv4, GSOSize: 1448, CsumStart: 34, CsumOffset: 16, HdrLen: 54}, frameOf(false, header.TCPProtocolNumber, 60000, ourMAC), func(b []byte) { partial(b, false, 16) }, true, false},
		{"tso6 frame", vnet.Fields{Flags: 1, GSOType: vnet.GSOTCPv6, GSOSize: 1428, CsumStart: 54, CsumOffset: 16, HdrLen: 74}, frameOf(true, header.TCPProtocolNumber, 65535-20, ourMAC), func(b []byte) { partial(b, true, 16) }, true, false},
		{"broadcast", vnet.Fields{}, frameOf(false, header.UDPProtocolNumber, 10, header.EthernetBroadcastAddress), nil, true, false},
		{"unicast to another", vnet.Fields{}, frameOf(false, header.UDPProtocolNumber, 10, theirMAC), nil, false, false},
		{"csum past the end", needs(34, 0xfff0), frameOf(false, header.TCPProtocolNumber, 10, ourMAC), nil, false, false},
		{"ufo", vnet.Fields{Flags: 1, GSOType: vnet.GSOUDP, GSOSize: 1000, CsumStart: 34, CsumOffset: 6}, frameOf(false, header.UDPProtocolNumber, 3000, ourMAC), nil, false, false},
		{"runt", vnet.Fields{}, make([]byte, 13), nil, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, peers := testEndpoint(t, 1, allOffloads)
			if tc.mangle != nil {
				tc.mangle(tc.frame)
			}
			send(t, peers[0], tc.f, tc.frame)
			s := newSink()
			if !e.rings[0].receiveInto(s) {
				t.Fatal("receive stopped")
			}
			gotPkts := s.take(t)
			st := e.stats()
			if !tc.deliver {
				if len(gotPkts) != 0 || st.RXDropped != 1 {
					t.Errorf("delivered %d, dropped %d; want it dropped", len(gotPkts), st.RXDropped)
				}
				if tc.badCsum != (st.RXBadCsum == 1) {
					t.Errorf("RXBadCsum = %d", st.RXBadCsum)
				}
				return
			}
			if len(gotPkts) != 1 {
				t.Fatalf("delivered %d packets, want 1 (stats %+v)", len(gotPkts), st)
			}
			g := gotPkts[0]
			if !bytes.Equal(g.eth, tc.frame[:14]) || !bytes.Equal(g.data, tc.frame[14:]) || g.proto != header.Ethernet(tc.frame).Type() {
				t.Errorf("delivered proto %#x, %d+%d bytes, not the frame", g.proto, len(g.eth), len(g.data))
			}
			if st.RXFrames != 1 || st.RXBytes != uint64(len(tc.frame)) {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestReceiveViews: a frame becomes a packet over the views it was read
// into, not a copy: a 64 KiB frame spans the doubling views, a small one
// sits in the first.
func TestReceiveViews(t *testing.T) {
	e, peers := testEndpoint(t, 1, allOffloads)
	s := newSink()
	for _, tc := range []struct{ payload, views int }{{100, 1}, {1400, 1}, {3000, 2}, {65000, 6}} {
		send(t, peers[0], vnet.Fields{Flags: vnet.FlagDataValid}, frameOf(false, header.UDPProtocolNumber, tc.payload, ourMAC))
		e.rings[0].receiveInto(s)
		g := <-s.ch
		if g.views != tc.views {
			t.Errorf("%d-byte payload: packet over %d views, want %d", tc.payload, g.views, tc.views)
		}
	}
}

// TestReceiveUSO: a UDP GSO frame becomes one datagram per GSOSize, each
// a valid packet once its partial checksum is completed.
func TestReceiveUSO(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(fmt.Sprintf("v6=%v", v6), func(t *testing.T) {
			e, peers := testEndpoint(t, 1, allOffloads)
			frame := frameOf(v6, header.UDPProtocolNumber, 2500, ourMAC)
			start := uint16(34)
			if v6 {
				start = 54
			}
			partial(frame, v6, 6)
			send(t, peers[0], vnet.Fields{Flags: 1, GSOType: vnet.GSOUDPL4, GSOSize: 1000, CsumStart: start, CsumOffset: 6, HdrLen: start + 8}, frame)
			s := newSink()
			e.rings[0].receiveInto(s)
			segs := s.take(t)
			if len(segs) != 3 {
				t.Fatalf("%d datagrams, want 3", len(segs))
			}
			payload := frame[start+8:]
			for i, g := range segs {
				n := min(1000, len(payload)-i*1000)
				full := append(bytes.Clone(g.eth), g.data...)
				complete(vnet.Fields{Flags: 1, CsumStart: start, CsumOffset: 6}, full)
				if !transportValid(t, full) {
					t.Errorf("datagram %d: bad checksum", i)
				}
				if v6 {
					if ip := header.IPv6(g.data); int(ip.PayloadLength()) != 8+n {
						t.Errorf("datagram %d: payload length %d", i, ip.PayloadLength())
					}
				} else {
					ip := header.IPv4(g.data)
					if int(ip.TotalLength()) != 28+n || !ip.IsChecksumValid() || ip.ID() != 100+uint16(i) {
						t.Errorf("datagram %d: total length %d, id %d, header checksum valid %v", i, ip.TotalLength(), ip.ID(), ip.IsChecksumValid())
					}
				}
				if !bytes.Equal(g.data[start-14+8:], payload[i*1000:i*1000+n]) {
					t.Errorf("datagram %d: wrong payload", i)
				}
			}
			if st := e.stats(); st.RXSegments != 3 || st.HeaderCopies != 3 || st.Copies != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestAttach: the first attach starts a reader per queue that delivers
// frames; detaching never waits for them (gVisor detaches with its stack
// lock held) but makes them drop frames; attaching again reuses them; and
// release stops them.
func TestAttach(t *testing.T) {
	e, peers := testEndpoint(t, 2, allOffloads)
	goroutines := runtime.NumGoroutine()
	var running int
	for round := range 2 {
		s := newSink()
		e.Attach(s)
		if !e.IsAttached() {
			t.Fatal("not attached")
		}
		for q := range peers {
			send(t, peers[q], vnet.Fields{}, frameOf(false, header.UDPProtocolNumber, 10+q, ourMAC))
		}
		for range peers {
			select {
			case <-s.ch:
			case <-time.After(5 * time.Second):
				t.Fatalf("round %d: no frame delivered", round)
			}
		}
		if round == 0 {
			running = runtime.NumGoroutine()
		} else if n := runtime.NumGoroutine(); n > running {
			t.Errorf("round %d: %d goroutines, %d in round 0: re-attach started more readers", round, n, running)
		}
		e.Attach(nil)
		if e.IsAttached() {
			t.Fatal("still attached")
		}
		// A frame arriving while detached goes nowhere.
		send(t, peers[0], vnet.Fields{}, frameOf(false, header.UDPProtocolNumber, 10, ourMAC))
		select {
		case <-s.ch:
			t.Fatalf("round %d: frame delivered to a detached dispatcher", round)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := e.release(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > goroutines && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > goroutines {
		t.Errorf("%d goroutines after release, %d before attach", n, goroutines)
	}
}

// TestReleaseAttached: releasing an attached endpoint stops its readers
// and lets go of the descriptors (the peer sees the far end close), while
// writes keep succeeding into the placeholder until the stack detaches.
func TestReleaseAttached(t *testing.T) {
	e, peers := testEndpoint(t, 2, allOffloads)
	e.Attach(newSink())
	if err := e.release(); err != nil {
		t.Fatalf("release: %v", err)
	}
	for q, fd := range peers {
		var b [16]byte
		if n, err := unix.Read(fd, b[:]); n != 0 || err != nil {
			t.Errorf("queue %d: peer read %d, %v; want EOF", q, n, err)
		}
	}
	pkt := buildPacket(e, packet{proto: header.UDPProtocolNumber, payload: 10})
	write(t, e, pkt)
	pkt.DecRef()
	e.Attach(nil)
}

// TestDescriptorFailure: a reader whose descriptor fails stops by itself.
func TestDescriptorFailure(t *testing.T) {
	e, _ := testEndpoint(t, 1, allOffloads)
	// Replace the socket with a directory: readv fails with EISDIR.
	dir, err := unix.Open(t.TempDir(), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dir)
	if err := unix.Dup3(dir, e.rings[0].fd, unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	e.Attach(newSink())
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("reader still running")
	}
	if s := e.stats(); s.RXErrors != 1 {
		t.Errorf("RXErrors = %d", s.RXErrors)
	}
}

// TestCapabilities: what the stack is told follows what was negotiated.
func TestCapabilities(t *testing.T) {
	for _, tc := range []struct {
		off  Offloads
		caps stack.LinkEndpointCapabilities
		gso  bool
	}{
		{0, stack.CapabilityResolutionRequired, false},
		{OffloadVnetHdr, stack.CapabilityResolutionRequired | stack.CapabilityRXChecksumOffload, false},
		{OffloadVnetHdr | OffloadCsum, stack.CapabilityResolutionRequired | stack.CapabilityRXChecksumOffload, false},
		{OffloadVnetHdr | OffloadCsum | OffloadTSO4, stack.CapabilityResolutionRequired | stack.CapabilityRXChecksumOffload, false},
		{allOffloads, stack.CapabilityResolutionRequired | stack.CapabilityRXChecksumOffload, true},
	} {
		e, _ := testEndpoint(t, 1, tc.off)
		if e.Capabilities() != tc.caps || (e.SupportedGSO() == stack.HostGSOSupported) != tc.gso || (e.GSOMaxSize() == vnet.GSOMaxSize) != tc.gso {
			t.Errorf("%v: caps %#x gso %v/%d, want %#x gso %v", tc.off, e.Capabilities(), e.SupportedGSO(), e.GSOMaxSize(), tc.caps, tc.gso)
		}
	}
}

func TestRXCapacity(t *testing.T) {
	sum := 0
	for _, s := range rxSizes {
		sum += s
	}
	if sum != rxCapacity || rxCapacity <= vnet.MaxFrame || rxSizes[0] < 1514 {
		t.Errorf("rxSizes add up to %d, rxCapacity %d, max frame %d", sum, rxCapacity, vnet.MaxFrame)
	}
}

// TestPolledReaders runs the receive, attach and release tests again with
// polled readers (ReadersPolled).
func TestPolledReaders(t *testing.T) {
	testReaders = ReadersPolled
	defer func() { testReaders = ReadersPinned }()
	for _, tc := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"Receive", TestReceive},
		{"ReceiveViews", TestReceiveViews},
		{"ReceiveUSO", TestReceiveUSO},
		{"Attach", TestAttach},
		{"ReleaseAttached", TestReleaseAttached},
		{"DescriptorFailure", TestDescriptorFailure},
	} {
		t.Run(tc.name, tc.f)
	}
}

// A reader hands a frame to the dispatcher the endpoint has once the frame
// is read: after a detach the frame is dropped, not delivered to the
// dispatcher that was current when the reader last looked (a reader that
// loaded it before a blocking read did so in a CI run).
func TestReadOneTakesCurrentDispatcher(t *testing.T) {
	e, peers := testEndpoint(t, 1, allOffloads)
	s := newSink()
	r := e.rings[0]
	defer e.disp.Store(nil)
	read := func(what string) {
		t.Helper()
		send(t, peers[0], vnet.Fields{}, frameOf(false, header.UDPProtocolNumber, 10, ourMAC))
		if res := r.readOne(nil); res != readDone {
			t.Fatalf("%s: readOne = %v, want a frame read", what, res)
		}
	}
	e.disp.Store(&dispatcherBox{s}) // attached ...
	e.disp.Store(nil)               // ... and detached before the frame is read
	read("detached")
	if n := s.n.Load(); n != 0 {
		t.Fatalf("a frame read after the detach reached the old dispatcher (%d)", n)
	}
	e.disp.Store(&dispatcherBox{s})
	read("attached")
	if n := s.n.Load(); n != 1 {
		t.Errorf("attached: %d frames delivered, want 1", n)
	}
}

// In the loop a polled reader's queue is in the busy-poller's set (a frame
// waiting there ends a round), and a reader that delivered frames kicks a
// round.
func TestPolledReadersBusyPoll(t *testing.T) {
	testReaders = ReadersPolled
	defer func() { testReaders = ReadersPinned }()
	p, err := busypoll.New(time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	busypoll.SetDefault(p)
	defer func() { busypoll.SetDefault(nil); p.Close() }()
	waitStats := func(what string, rounds, hits uint64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for r, h := p.Stats(); r < rounds || h < hits; r, h = p.Stats() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: rounds %d hits %d, want %d and %d", what, r, h, rounds, hits)
			}
			time.Sleep(time.Millisecond)
		}
	}
	e, peers := testEndpoint(t, 1, allOffloads)
	// Not attached: no reader takes the frame, so it is still queued when
	// the round polls.
	send(t, peers[0], vnet.Fields{}, frameOf(false, header.UDPProtocolNumber, 10, ourMAC))
	p.Kick()
	waitStats("a frame queued", 1, 1)

	s := newSink()
	e.Attach(s)
	select {
	case <-s.ch:
	case <-time.After(5 * time.Second):
		t.Fatal("queued frame not delivered")
	}
	waitStats("after a delivery", 2, 1)

	// A stream's frame (64 KiB of TSO) kicks no round: its next frame
	// comes without one.
	tso := frameOf(false, header.TCPProtocolNumber, 60000, ourMAC)
	partial(tso, false, 16)
	send(t, peers[0], vnet.Fields{Flags: 1, GSOType: vnet.GSOTCPv4, GSOSize: 1448, CsumStart: 34, CsumOffset: 16, HdrLen: 54}, tso)
	select {
	case <-s.ch:
	case <-time.After(5 * time.Second):
		t.Fatal("TSO frame not delivered")
	}
	time.Sleep(20 * time.Millisecond) // a round would have ended by now
	if rounds, _ := p.Stats(); rounds != 2 {
		t.Errorf("%d rounds after a 60000-byte frame, want still 2", rounds)
	}
}
