// Package afpacket provides links over AF_PACKET sockets bound to an
// existing Ethernet device, typically one end of a veth pair whose other
// end the kernel (a container, a test namespace) uses. The stack has its
// own MAC address on the wire; the device is put in promiscuous mode so
// that frames for that address are received, and a classic BPF filter on
// every socket keeps out frames for anyone else (and VLAN-tagged ones).
//
// # Data path
//
// A link has N rings (Config.Rings). Each ring is one AF_PACKET socket,
// created in the device's namespace and bound to the device, with:
//
//   - PACKET_FANOUT (PACKET_FANOUT_HASH, a kernel-assigned unique group
//     id) joining every ring of the link in one group, so that the kernel
//     spreads flows over the rings by flow hash;
//   - PACKET_IGNORE_OUTGOING, so a ring never reads the link's own
//     transmissions;
//   - PACKET_VNET_HDR: every frame, both ways, is preceded by a
//     virtio-net header, which carries the checksum state (partial,
//     validated) and GSO information. This is what lets 64 KiB TCP
//     segments cross the device in one frame (LSO on transmit; the
//     kernel's unsegmented TSO/GRO super-frames on receive).
//
// Receive: one goroutine per ring, locked to its OS thread and pinned to
// one CPU (ring i on the i-th CPU the process may use, modulo their
// number), reads a batch and delivers every frame of it inline to the
// stack. Two receive modes (Config.RX):
//
//   - RXRecvmmsg, the default: recvmmsg(2) of up to 64 frames straight
//     into pooled gVisor views (a chain of 128 B … 32 KiB views per slot,
//     of which a frame takes only what it fills), which become the packet
//     buffers: no userspace copy, and no added latency, for one system
//     call per batch.
//   - RXRing: a TPACKET_V3 ring (PACKET_RX_RING) of ringBlocks blocks of
//     ringBlockSize bytes, mmap'd; a batch is a block the kernel retired
//     (full, or ringBlockTimeout after its first frame), and costs at most
//     one poll(2). Each frame is copied once, from the block into a pooled
//     gVisor view of its size, before the block goes back to the kernel.
//     A block cannot back a packet buffer itself: gVisor's buffer package
//     builds views only over its own pooled chunks (buffer.chunk is
//     unexported, with no release hook), so there is no way to learn when
//     gVisor is done with ring memory; and TCP's receive queue would pin
//     ring blocks for as long as the application does not read, starving
//     the ring.
//
// The ring saves system calls, but on a veth it loses on both counts that
// matter: one more copy per frame, and up to 1 ms before a lone frame is
// seen, which bounds ACK-clocked transmit. Measured on a 2-CPU VM
// (BenchmarkTransfer, BenchmarkPingRTT; medians, runs vary by ±30%), one
// TCP flow over a veth, kernel to stack / stack to kernel: RXRecvmmsg
// about 7.5 / 11 Gbit/s, RXRing about 6.5 / 4 Gbit/s; ping RTT 240 µs /
// 1 ms (kernel to kernel over the same kind of veth: 10.5 Gbit/s, 54 µs).
// Hence the default.
//
// RingStats.RxCopies counts the userspace copies either way.
//
// Transmit: WritePackets, on the caller's goroutine (no hand-off), sends
// up to 64 frames per sendmmsg(2) on the ring the packet's hash selects,
// each frame a scatter-gather list of the packet's views behind its own
// virtio-net header: no userspace copy (the kernel copies into the skb).
// A TX ring (PACKET_TX_RING) would need a userspace copy into the ring
// instead, and 64 KiB frames for GSO: as many copies, more memory, so it
// is not used. gVisor's NIC hands the link one packet per call unless the
// NIC has a queueing discipline, so batches are as large as callers make
// them.
//
// Zero allocations per packet in steady state, both ways and in both
// receive modes (tests enforce it with testing.AllocsPerRun).
//
// The receive goroutines start at the first Attach and stop only at
// Device.Close: gVisor calls Attach(nil) and Wait with its stack lock
// held, and a goroutine delivering a packet inline may be waiting for that
// lock, so stopping them there could deadlock. While detached they drop
// what they read.
//
// # Checksums and GSO
//
// The kernel hands over locally generated TCP/UDP frames with a partial
// checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM) and frames it validated with
// VIRTIO_NET_HDR_F_DATA_VALID; the link declares
// stack.CapabilityRXChecksumOffload so gVisor does not reject the former.
// Because gVisor applies that capability to every packet, frames with
// neither flag (from a NIC that did not validate them, …) are verified
// here, in software: the IPv4 header and the TCP, UDP, ICMP and ICMPv6
// checksums of unfragmented packets. TCP GSO frames go to gVisor whole (one
// large segment); UDP GSO frames (a sender's UDP_SEGMENT) are split into
// datagrams by link/vnet's SegmentUDP. On transmit, gVisor computes every
// checksum except TCP's, which it leaves partial for the kernel
// (NEEDS_CSUM), as with GSO.
//
// # Not supported
//
//   - **No zero-copy receive from the TPACKET_V3 ring** (see above): one
//     copy per frame in RXRing mode (RXRecvmmsg has none).
//   - **UDP GSO frames without a partial checksum** (GRO'd by a NIC) are
//     dropped and counted.
//   - **Transport checksums of IP fragments** and of IPv6 packets with
//     extension headers arriving without a checksum flag are not verified
//     (gVisor does not verify them either once the capability is set).
//   - **BIG TCP** (GSO frames over 64 KiB): the GSO size is capped at the
//     device's gso_max_size and 64 KiB.
//   - **Latency in RXRing mode**: a block is handed to userspace when it
//     is full or ringBlockTimeout (1 ms, the kernel's minimum) after its
//     first frame, so a lone frame (a ping, a handshake, an ACK) waits up
//     to 1 ms, and ACK-clocked bulk transmit is bounded by window/latency.
//
// The virtio-net header codec (vnet.go) is internal to this package: it
// predates link/vnet, whose Fields.Validate refuses GSO frames without a
// partial checksum, which AF_PACKET legitimately delivers (GRO'd frames
// from a NIC carry DATA_VALID). It can be swapped once that is relaxed.
package afpacket

import "net"

// Config describes an AF_PACKET link to create.
type Config struct {
	// Name is the link name ("pkt0"): 1 to 31 bytes, without '/', ':' or
	// white space. It is not a kernel device name.
	Name string
	// Over is the existing Ethernet device the link binds to ("vethA").
	Over string
	// Netns is where Over lives: a name under /run/netns (as made by `ip
	// netns add`), an absolute path to a namespace file, or "" for the
	// calling thread's namespace. The sockets are created there and keep
	// that namespace.
	Netns string
	// Rings is the number of rings (sockets, receive goroutines). 0 means
	// min(NumCPU, 4).
	Rings int
	// MTU is the largest IP packet. 0 means the device's MTU (followed
	// when it changes); otherwise it must not exceed the device's.
	MTU uint32
	// MAC is the stack's address on the link (the device keeps its own).
	// nil means a random locally administered unicast address.
	MAC net.HardwareAddr
	// RX is how the rings receive; "" means RXRecvmmsg.
	RX RXMode
}

// RXMode is how a link's rings receive frames.
type RXMode string

// Receive modes.
const (
	// RXRecvmmsg, the default, reads up to 64 frames per recvmmsg(2)
	// straight into pooled gVisor views: no userspace copy, no added
	// latency, one system call per batch.
	RXRecvmmsg RXMode = "recvmmsg"
	// RXRing is a TPACKET_V3 ring per socket: one poll per block of
	// frames, one userspace copy per frame, up to ringBlockTimeout of
	// added latency.
	RXRing RXMode = "ring"
)

// MaxRings bounds Config.Rings.
const MaxRings = 64

// RingStats are the counters of one ring. Packet counts are frames;
// receive counts are frames delivered to the stack or dropped by the link.
type RingStats struct {
	Ring int // index, 0..Rings-1
	CPU  int // the CPU the receive goroutine is pinned to; -1 if not running

	RxPackets uint64 // frames delivered to the stack
	RxBytes   uint64 // their bytes, Ethernet header included
	RxBatches uint64 // receive batches: ring blocks walked, or recvmmsg calls that returned frames
	RxCopies  uint64 // userspace payload copies on receive: RXRing, one per frame; RXRecvmmsg, only to verify a checksum-less frame of several views
	RxGSO     uint64 // delivered frames that were GSO super-frames
	RxDropped uint64 // frames the link dropped (detached, not for us, truncated, bad checksum, unsupported GSO)
	RxBadCsum uint64 // of which: bad checksum

	TxPackets  uint64 // frames the kernel accepted
	TxBytes    uint64 // their bytes, Ethernet header included (not the virtio-net header)
	TxSyscalls uint64 // sendmmsg calls
	TxGSO      uint64 // frames sent as GSO super-frames
	TxCopies   uint64 // userspace payload copies on transmit (only for packets of more than 1023 views)
	TxErrors   uint64 // frames dropped by a failed send

	KernelPackets uint64 // PACKET_STATISTICS: frames the kernel passed to the ring
	KernelDrops   uint64 // PACKET_STATISTICS: frames dropped because the ring was full
}
