package ctl

import "net/netip"

// ATF_* flags of an ARP entry (arp_flags, xarp_flags), as in illumos
// <net/if_arp.h>.
const (
	ATF_INUSE     = 0x01 // entry in use (set on every reply)
	ATF_COM       = 0x02 // completed: the hardware address is known
	ATF_PERM      = 0x04 // permanent: never aged
	ATF_PUBL      = 0x08 // published: answered for others (proxy ARP)
	ATF_AUTHORITY = 0x20 // we are authoritative for it (one of ours, or set so)
)

// AF_LINK is the family of a link-level address (sdl_family).
const AF_LINK Family = "link"

// Arpreq is struct arpreq: SIOCSARP, SIOCGARP and SIOCDARP. The hardware
// address is always Ethernet (6 bytes), written "2:0:0:0:0:1".
type Arpreq struct {
	PA    netip.Addr `json:"arp_pa"`
	HA    string     `json:"arp_ha,omitempty"`
	Flags int        `json:"arp_flags,omitempty"`
}

// SdlDataSize is the size of sockaddr_dl's sdl_data: the interface name
// and the hardware address must fit in it together.
const SdlDataSize = 244

// SockaddrDL is struct sockaddr_dl: a link-level address. Data holds the
// interface name (Nlen bytes, no NUL) followed by the address (Alen
// bytes); base64 on the wire, as JSON carries bytes.
type SockaddrDL struct {
	Family Family `json:"sdl_family"`
	Index  uint32 `json:"sdl_index,omitempty"`
	Type   int    `json:"sdl_type,omitempty"` // IFT_*
	Nlen   int    `json:"sdl_nlen,omitempty"`
	Alen   int    `json:"sdl_alen,omitempty"`
	Slen   int    `json:"sdl_slen,omitempty"`
	Data   []byte `json:"sdl_data,omitempty"`
}

// Xarpreq is struct xarpreq: SIOCSXARP, SIOCGXARP and SIOCDXARP. Its
// protocol address carries its family (only AF_INET is valid) and the
// hardware address names the interface, so the target need not be found
// from the protocol address.
type Xarpreq struct {
	PAFamily Family     `json:"xarp_pa_family,omitempty"` // default AF_INET
	PA       netip.Addr `json:"xarp_pa"`
	HA       SockaddrDL `json:"xarp_ha"`
	Flags    int        `json:"xarp_flags,omitempty"`
}

// ArpEntry is one line of the ARP table (the ipNetToMediaTable of MIB-II,
// which illumos arp -a reads).
type ArpEntry struct {
	Ifname string     `json:"ifname"`
	Addr   netip.Addr `json:"addr"`
	Mask   netip.Addr `json:"mask"`
	HWAddr string     `json:"hwaddr,omitempty"` // empty while unresolved
	Flags  int        `json:"flags"`            // ATF_*
}

// ArpTable is the argument and result of MIB2_IP_MEDIA: every ARP entry
// of every IPv4 interface, or of Ifname only.
type ArpTable struct {
	Ifname  string     `json:"ifname,omitempty"`
	Entries []ArpEntry `json:"entries"`
}

// WaitDAD is the argument of the "wait-dad" operation: wait until
// duplicate address detection of logical interface Name (in the request's
// family) is over, as illumos ifconfig does after bringing an address up.
// The reply is empty; a duplicate is EADDRINUSE naming the holder.
type WaitDAD struct {
	Name      string `json:"name"`
	TimeoutMS int    `json:"timeout_ms,omitempty"` // 0: the daemon's default (10 s)
}
