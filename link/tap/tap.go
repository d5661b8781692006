// Package tap provides links over Linux TAP devices: the kernel side of
// the TAP lives in a network namespace (a container's, usually) and sees
// tapstack as the host at the other end of an Ethernet cable.
//
// The data path is gVisor's fdbased endpoint over the TAP descriptor, one
// readv/writev per frame. Not supported yet: the virtio-net header, and so
// no checksum or segmentation offloads, and one queue only.
package tap

import "net"

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
}
