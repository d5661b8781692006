package afpacket

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// Unit tests of the data path without root: the receive side walks
// blocks laid out as the kernel lays out TPACKET_V3 blocks; the transmit
// side writes to a unix socket pair instead of a packet socket.

// testFrame is one frame of a test block.
type testFrame struct {
	frame  []byte
	vnet   vnetHdr
	status uint32 // tp_status bits
	short  int    // tp_snaplen shorter than tp_len by this
}

// buildBlock lays frames out in a block as tpacket_rcv does: a block
// descriptor, then each frame's struct tpacket3_hdr, its virtio-net header
// right before the MAC header, the frame, aligned to 16.
func buildBlock(frames []testFrame) []byte {
	blk := make([]byte, ringBlockSize)
	const macOff = 80 // from the frame header; >= 48 + vnetHdrLen
	off := blkHdrLen
	binary.NativeEndian.PutUint32(blk[blkStatusOff:], unix.TP_STATUS_USER)
	binary.NativeEndian.PutUint32(blk[blkNumPktsOff:], uint32(len(frames)))
	binary.NativeEndian.PutUint32(blk[blkFirstPktOff:], uint32(off))
	for i, f := range frames {
		h := blk[off:]
		snap := len(f.frame) - f.short
		binary.NativeEndian.PutUint32(h[tpSnaplenOff:], uint32(snap))
		binary.NativeEndian.PutUint32(h[tpLenOff:], uint32(len(f.frame)))
		binary.NativeEndian.PutUint32(h[tpStatusOff:], unix.TP_STATUS_USER|f.status)
		binary.NativeEndian.PutUint16(h[tpMacOff:], macOff)
		f.vnet.encode(h[macOff-vnetHdrLen:])
		copy(h[macOff:], f.frame[:snap])
		next := (macOff + snap + 15) &^ 15
		if i < len(frames)-1 {
			binary.NativeEndian.PutUint32(h[tpNextOff:], uint32(next))
		}
		off += next
	}
	return blk
}

// counter is a stack.NetworkDispatcher that counts and, if keep is set,
// records the packets it is given (copies).
type counter struct {
	n     int
	keep  bool
	got   [][]byte
	proto []tcpip.NetworkProtocolNumber
}

func (c *counter) DeliverNetworkPacket(proto tcpip.NetworkProtocolNumber, pkt *stack.PacketBuffer) {
	c.n++
	if c.keep {
		var b []byte
		b = append(b, pkt.LinkHeader().Slice()...)
		b = append(b, pkt.Data().AsRange().ToSlice()...)
		c.got = append(c.got, b)
		c.proto = append(c.proto, proto)
	}
}

func (c *counter) DeliverLinkPacket(tcpip.NetworkProtocolNumber, *stack.PacketBuffer) {}

// testRing is a ring with no socket, for walkBlock and send.
func testRing(t testing.TB, fd int) *ring {
	t.Helper()
	e := &endpoint{gsoMax: maxGSO}
	e.addr.Store(&testMAC)
	e.mtu.Store(1500)
	r := &ring{fd: fd, ep: e}
	r.cpu.Store(-1)
	e.rings = []*ring{r}
	return r
}

func TestWalkBlock(t *testing.T) {
	partial := vnetHdr{Flags: vnetFlagNeedsCsum, CsumStart: 34, CsumOffset: 16}
	good := ipv4Frame(testMAC, ipProtoTCP, 100)
	bad := ipv4Frame(testMAC, ipProtoTCP, 100)
	bad[60] ^= 1
	gso := ipv4Frame(testMAC, ipProtoTCP, 70000) // over buffer.MaxChunkSize: two views
	broadcast := ipv4Frame(header.EthernetBroadcastAddress, ipProtoUDP, 10)
	frames := []testFrame{
		{frame: good},               // verified in software: delivered
		{frame: bad},                // verified in software: bad checksum
		{frame: bad, vnet: partial}, // partial: trusted
		{frame: bad, vnet: vnetHdr{Flags: vnetFlagDataValid}}, // validated: trusted
		{frame: ipv4Frame(peerMAC, ipProtoTCP, 10)},           // for someone else
		{frame: broadcast},                               // a group address: delivered
		{frame: good, short: 10},                         // truncated
		{frame: good, status: unix.TP_STATUS_VLAN_VALID}, // tagged
		{frame: gso, vnet: vnetHdr{Flags: vnetFlagNeedsCsum, CsumStart: 34, CsumOffset: 16, GSOType: vnetGSOTCPv4, GSOSize: 1448, HdrLen: 54}},
		{frame: ipv4Frame(testMAC, ipProtoUDP, 3000), vnet: vnetHdr{GSOType: vnetGSOUDPL4, GSOSize: 1000, HdrLen: 42}}, // USO: dropped
		{frame: good, vnet: vnetHdr{Flags: vnetFlagNeedsCsum, CsumStart: 200}},                                         // lying header
		{frame: ipv6Frame(testMAC, ipProtoICMPv6, 8)},
	}
	r := testRing(t, -1)
	c := &counter{keep: true}
	r.walkBlock(buildBlock(frames), c)

	want := [][]byte{good, bad, bad, broadcast, gso, ipv6Frame(testMAC, ipProtoICMPv6, 8)}
	if d := cmp.Diff(want, c.got); d != "" {
		t.Errorf("delivered frames (-want +got):\n%s", d)
	}
	wantProto := []tcpip.NetworkProtocolNumber{4: header.IPv4ProtocolNumber, 5: header.IPv6ProtocolNumber}
	for i := range 4 {
		wantProto[i] = header.IPv4ProtocolNumber
	}
	if d := cmp.Diff(wantProto, c.proto); d != "" {
		t.Errorf("protocols (-want +got):\n%s", d)
	}
	st := r.stats()
	st.KernelPackets, st.KernelDrops = 0, 0
	var bytes uint64
	for _, f := range want {
		bytes += uint64(len(f))
	}
	wantSt := RingStats{CPU: -1, RxPackets: 6, RxBytes: bytes, RxBatches: 1, RxCopies: 6, RxGSO: 1, RxDropped: 6, RxBadCsum: 1}
	if d := cmp.Diff(wantSt, st); d != "" {
		t.Errorf("stats (-want +got):\n%s", d)
	}
}

// TestWalkBlockHostile walks blocks whose offsets lie: nothing panics,
// and what cannot be read is counted as dropped.
func TestWalkBlockHostile(t *testing.T) {
	good := ipv4Frame(testMAC, ipProtoTCP, 10)
	for _, tt := range []struct {
		name string
		edit func(blk []byte)
	}{
		{"first packet beyond the block", func(blk []byte) { binary.NativeEndian.PutUint32(blk[blkFirstPktOff:], ringBlockSize-10) }},
		{"first packet inside the descriptor", func(blk []byte) { binary.NativeEndian.PutUint32(blk[blkFirstPktOff:], 8) }},
		{"more packets than there are", func(blk []byte) { binary.NativeEndian.PutUint32(blk[blkNumPktsOff:], 1000) }},
		{"mac beyond the block", func(blk []byte) { binary.NativeEndian.PutUint16(blk[blkHdrLen+tpMacOff:], 0xffff) }},
		{"snaplen beyond the block", func(blk []byte) {
			binary.NativeEndian.PutUint32(blk[blkHdrLen+tpSnaplenOff:], ringBlockSize)
			binary.NativeEndian.PutUint32(blk[blkHdrLen+tpLenOff:], ringBlockSize)
		}},
		{"next offset beyond the block", func(blk []byte) { binary.NativeEndian.PutUint32(blk[blkHdrLen+tpNextOff:], ringBlockSize) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			blk := buildBlock([]testFrame{{frame: good}, {frame: good}})
			tt.edit(blk)
			r := testRing(t, -1)
			r.walkBlock(blk, &counter{})
		})
	}
}

// testPacket is an outbound packet as gVisor's IP layer hands it to the
// link: headers pushed, link header added, GSO options set.
func testPacket(ep *endpoint, payload int, gso bool) *stack.PacketBuffer {
	data := make([]byte, payload)
	fill(data)
	pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{
		ReserveHeaderBytes: int(ep.MaxHeaderLength()) + header.IPv4MinimumSize + header.TCPMinimumSize,
		Payload:            buffer.MakeWithData(data),
	})
	header.TCP(pkt.TransportHeader().Push(header.TCPMinimumSize)).Encode(&header.TCPFields{
		SrcPort: 80, DstPort: 40000, DataOffset: header.TCPMinimumSize, Flags: header.TCPFlagAck,
	})
	pkt.TransportProtocolNumber = header.TCPProtocolNumber
	ip := header.IPv4(pkt.NetworkHeader().Push(header.IPv4MinimumSize))
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(pkt.Size()), TTL: 64, Protocol: ipProtoTCP, SrcAddr: dst4, DstAddr: src4})
	pkt.NetworkProtocolNumber = header.IPv4ProtocolNumber
	pkt.EgressRoute.RemoteLinkAddress = peerMAC
	if gso {
		pkt.GSOOptions = stack.GSO{Type: stack.GSOTCPv4, NeedsCsum: true, CsumOffset: header.TCPChecksumOffset, MSS: 1448, L3HdrLen: header.IPv4MinimumSize, MaxSize: maxGSO}
	}
	ep.AddHeader(pkt)
	return pkt
}

// socketPair returns a SOCK_SEQPACKET pair: message boundaries like a
// packet socket, no datagram queue limit.
func socketPair(t testing.TB) (int, int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unix.Close(fds[0])
		unix.Close(fds[1])
	})
	for _, fd := range fds {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 8<<20)
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
	}
	return fds[0], fds[1]
}

func TestSend(t *testing.T) {
	tx, rx := socketPair(t)
	r := testRing(t, tx)
	ep := r.ep
	pkts := []*stack.PacketBuffer{testPacket(ep, 100, false), testPacket(ep, 1000, true), testPacket(ep, 20000, true)}
	var list stack.PacketBufferList
	for _, p := range pkts {
		list.PushBack(p)
		defer p.DecRef()
	}
	n, err := ep.WritePackets(list)
	if n != 3 || err != nil {
		t.Fatalf("WritePackets = %d, %v", n, err)
	}
	wantVnet := []vnetHdr{
		{},
		{Flags: vnetFlagNeedsCsum, HdrLen: 54, CsumStart: 34, CsumOffset: 16},
		{Flags: vnetFlagNeedsCsum, HdrLen: 54, CsumStart: 34, CsumOffset: 16, GSOType: vnetGSOTCPv4, GSOSize: 1448},
	}
	buf := make([]byte, 1<<17)
	for i, p := range pkts {
		m, err := unix.Read(rx, buf)
		if err != nil {
			t.Fatal(err)
		}
		got := buf[:m]
		if d := cmp.Diff(wantVnet[i], decodeVnetHdr(got)); d != "" {
			t.Errorf("packet %d: virtio-net header (-want +got):\n%s", i, d)
		}
		var want []byte
		for _, s := range p.AsSlices() {
			want = append(want, s...)
		}
		if !bytes.Equal(got[vnetHdrLen:], want) {
			t.Errorf("packet %d: frame differs (%d bytes, want %d)", i, len(got)-vnetHdrLen, len(want))
		}
	}
	st := r.stats()
	if st.TxPackets != 3 || st.TxGSO != 1 || st.TxSyscalls != 1 || st.TxCopies != 0 {
		t.Errorf("stats: %+v", st)
	}
}

// TestWalkBlockUSO: a UDP GSO super-frame (a sender's UDP_SEGMENT) is
// split into datagrams of GSOSize payload bytes, as the kernel would.
func TestWalkBlockUSO(t *testing.T) {
	const payload, segSize = 2500, 1000
	frame := ipv4Frame(testMAC, ipProtoUDP, payload)
	l4 := header.EthernetMinimumSize + header.IPv4MinimumSize
	vh := vnetHdr{Flags: vnetFlagNeedsCsum, CsumStart: uint16(l4), CsumOffset: 6, GSOType: vnetGSOUDPL4, GSOSize: segSize, HdrLen: uint16(l4 + 8)}
	r := testRing(t, -1)
	c := &counter{keep: true}
	r.walkBlock(buildBlock([]testFrame{{frame: frame, vnet: vh}}), c)
	if len(c.got) != 3 {
		t.Fatalf("%d datagrams delivered, want 3", len(c.got))
	}
	body := frame[l4+8:]
	for i, got := range c.got {
		n := min(segSize, payload-i*segSize)
		ip := header.IPv4(got[header.EthernetMinimumSize:])
		udp := header.UDP(got[l4:])
		if int(ip.TotalLength()) != header.IPv4MinimumSize+8+n || int(udp.Length()) != 8+n || !ip.IsChecksumValid() {
			t.Errorf("datagram %d: IP length %d, UDP length %d, IP checksum valid %v", i, ip.TotalLength(), udp.Length(), ip.IsChecksumValid())
		}
		if !bytes.Equal(got[l4+8:], body[i*segSize:i*segSize+n]) {
			t.Errorf("datagram %d: payload differs", i)
		}
	}
	if st := r.stats(); st.RxPackets != 1 || st.RxGSO != 1 || st.RxDropped != 0 {
		t.Errorf("stats %+v", st)
	}
}

// mmsgRing is a ring in recvmmsg mode reading from a socket pair; the
// returned fd is the kernel's end: write a virtio-net header and a frame
// per message.
func mmsgRing(t testing.TB) (*ring, int) {
	t.Helper()
	rx, peer := socketPair(t)
	r := testRing(t, rx)
	r.mode = RXRecvmmsg
	r.rx = new(mmsgRX)
	for k := range r.rx.hdrs {
		r.rx.refill(k)
	}
	t.Cleanup(r.rx.release)
	return r, peer
}

func message(vh vnetHdr, frame []byte) []byte {
	m := make([]byte, vnetHdrLen+len(frame))
	vh.encode(m)
	copy(m[vnetHdrLen:], frame)
	return m
}

func TestReadBatch(t *testing.T) {
	partial := vnetHdr{Flags: vnetFlagNeedsCsum, CsumStart: 34, CsumOffset: 16}
	small := ipv4Frame(testMAC, ipProtoTCP, 0)
	big := ipv4Frame(testMAC, ipProtoTCP, 60000)
	bad := ipv4Frame(testMAC, ipProtoTCP, 1000) // several views, verified
	bad[600] ^= 1
	good := ipv4Frame(testMAC, ipProtoUDP, 3000)
	r, peer := mmsgRing(t)
	for _, m := range [][]byte{
		message(vnetHdr{}, small),
		message(vnetHdr{Flags: vnetFlagNeedsCsum, CsumStart: 34, CsumOffset: 16, GSOType: vnetGSOTCPv4, GSOSize: 1448, HdrLen: 54}, big),
		message(vnetHdr{}, bad),
		message(vnetHdr{}, good),
		message(partial, ipv4Frame(peerMAC, ipProtoTCP, 10)),
		message(vnetHdr{Flags: vnetFlagNeedsCsum, CsumStart: 300}, small),
	} {
		if _, err := unix.Write(peer, m); err != nil {
			t.Fatal(err)
		}
	}
	c := &counter{keep: true}
	if errno := r.readBatch(c); errno != 0 {
		t.Fatalf("readBatch: %v", errno)
	}
	if d := cmp.Diff([][]byte{small, big, good}, c.got); d != "" {
		t.Errorf("delivered (-want +got):\n%s", d)
	}
	st := r.stats()
	// Two frames of several views verified in software: two copies.
	if st.RxPackets != 3 || st.RxGSO != 1 || st.RxDropped != 3 || st.RxBadCsum != 1 || st.RxCopies != 2 || st.RxBatches != 1 {
		t.Errorf("stats %+v", st)
	}
	if errno := r.readBatch(c); errno != unix.EAGAIN {
		t.Errorf("readBatch on an empty socket: %v, want EAGAIN", errno)
	}
}
