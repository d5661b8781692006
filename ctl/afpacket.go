package ctl

// CreateAFPacket is the argument of "dladm.create-afpacket": a link of
// class "afpacket" named Name, made of AF_PACKET sockets bound to the
// existing Ethernet device Over (one end of a veth pair, say) in Netns.
// Equivalent to `tapadm dladm create-afpacket NAME --over DEV [--netns NS]
// [--rings N] [--mtu N] [--mac MAC] [--rx recvmmsg|ring]`. It needs
// privilege (EPERM); a name in use is EEXIST; a missing device ENODEV.
type CreateAFPacket struct {
	Name  string `json:"name"`
	Over  string `json:"over"`            // the device, in Netns
	Netns string `json:"netns,omitempty"` // name under /run/netns, or a path; "" for the daemon's
	Rings int    `json:"rings,omitempty"` // 0: min(CPUs, 4)
	MTU   uint32 `json:"mtu,omitempty"`   // 0: the device's
	MAC   string `json:"mac,omitempty"`   // the stack's MAC; "": random, locally administered
	RX    string `json:"rx,omitempty"`    // receive mode: "recvmmsg" (the default) or "ring" (TPACKET_V3)
}
