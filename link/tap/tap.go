// Package tap provides links over Linux TAP devices: the kernel side of
// the TAP lives in a network namespace (a container's, usually) and sees
// tapstack as the host at the other end of an Ethernet cable.
//
// The data path is tapstack's own endpoint (endpoint_linux.go), not
// gVisor's fdbased: one goroutine per TAP queue, locked to its OS thread
// and pinned to a CPU, reads a frame per readv into pooled views that
// become the gVisor packet buffer without a copy and delivers it inline;
// transmit is one writev per frame, scatter-gather over the packet's
// views. A TAP has no batched read or write (no recvmmsg/sendmmsg); with
// segmentation offload a frame is up to 64 KiB, which is what batching
// would buy.
//
// Offloads are the DLPI capabilities made real: the TAP is opened with
// IFF_VNET_HDR (a virtio-net header before every frame, package
// link/vnet) and TUNSETOFFLOAD is asked for checksum offload, TSO for
// IPv4 and IPv6 and, where the kernel has it, USO, falling back to what
// the kernel accepts. gVisor then sends TCP segments of up to 64 KiB with
// partial checksums (host GSO), and the kernel hands over coalesced
// frames of up to 64 KiB with partial checksums.
//
// Not supported: BIG TCP (frames over 64 KiB), UFO (IP-fragmenting UDP
// offload), IPv6 extension headers under USO; see also the README.
package tap

import (
	"net"
	"strings"
)

// Config describes a TAP link to create.
type Config struct {
	// Name is the device name, in the namespace and as the link name
	// ("tap0"): 1 to 15 bytes, without '/', ':', '%' or white space.
	Name string
	// Netns is where the device is created: a name under /run/netns (as
	// made by `ip netns add`), an absolute path to a namespace file, or ""
	// for the calling thread's namespace.
	Netns string
	// MTU is the largest IP packet, on both sides. 0 means 1500.
	MTU uint32
	// MAC is the stack's address on the link (the kernel side keeps its
	// own). nil means a random locally administered unicast address.
	MAC net.HardwareAddr
	// Queues is the number of TAP queues (IFF_MULTI_QUEUE when more than
	// one), each with its own reader. 0 means
	// min(runtime.NumCPU(), 4); at most MaxQueues.
	Queues int
	// NoOffload opens the TAP without the virtio-net header: no checksum
	// or segmentation offload, one MTU-sized frame per packet. For
	// comparison; offloads are on by default.
	NoOffload bool
	// Readers is how the queue readers wait and run (see ReaderMode).
	Readers ReaderMode
}

// MaxQueues is the most queues a TAP can have (the kernel's
// MAX_TAP_QUEUES).
const MaxQueues = 256

// Offloads is what a TAP negotiated with the kernel.
type Offloads uint8

// Offloads a TAP can have.
const (
	// OffloadVnetHdr: frames carry the virtio-net header (IFF_VNET_HDR).
	// The others need it.
	OffloadVnetHdr Offloads = 1 << iota
	OffloadCsum             // TUN_F_CSUM: partial checksums both ways
	OffloadTSO4             // TUN_F_TSO4: TCP/IPv4 segments up to 64 KiB
	OffloadTSO6             // TUN_F_TSO6: TCP/IPv6 segments up to 64 KiB
	OffloadUSO4             // TUN_F_USO4: UDP/IPv4 GSO frames from the kernel
	OffloadUSO6             // TUN_F_USO6: UDP/IPv6 GSO frames from the kernel
)

var offloadNames = []struct {
	o    Offloads
	name string
}{
	{OffloadVnetHdr, "vnet_hdr"},
	{OffloadCsum, "csum"},
	{OffloadTSO4, "tso4"},
	{OffloadTSO6, "tso6"},
	{OffloadUSO4, "uso4"},
	{OffloadUSO6, "uso6"},
}

// Names lists the offloads ("vnet_hdr", "csum", "tso4", …).
func (o Offloads) Names() []string {
	out := []string{}
	for _, n := range offloadNames {
		if o&n.o != 0 {
			out = append(out, n.name)
		}
	}
	return out
}

// String is Names joined with commas, or "none".
func (o Offloads) String() string {
	if o == 0 {
		return "none"
	}
	return strings.Join(o.Names(), ",")
}

// TSO reports whether TCP segmentation offload works for both IP
// versions, which is when the stack is told to send 64 KiB segments.
func (o Offloads) TSO() bool {
	return o&(OffloadCsum|OffloadTSO4|OffloadTSO6) == OffloadCsum|OffloadTSO4|OffloadTSO6
}

// Stats counts a TAP link's frames and the frames it dropped, over all
// queues.
type Stats struct {
	RXFrames     uint64 // frames read from the TAP and delivered
	RXBytes      uint64 // their bytes, virtio-net headers excluded
	RXSegments   uint64 // datagrams made by splitting USO frames
	RXDropped    uint64 // frames dropped: not for us, truncated, bad header or checksum
	RXBadCsum    uint64 // of which: checksum checked in software and wrong
	RXErrors     uint64 // failed reads (a read error stops that queue's reader)
	TXFrames     uint64 // frames written
	TXBytes      uint64 // their bytes, virtio-net headers excluded
	TXErrors     uint64 // failed writes
	Copies       uint64 // packets whose payload was copied in userspace (0 on the fast path)
	HeaderCopies uint64 // header copies (one per USO segment)
}
