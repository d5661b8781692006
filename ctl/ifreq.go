package ctl

import "net/netip"

// Ifreq is the old struct ifreq of the IF requests (SIOCSIFADDR, …): IPv4
// only, 16-bit flags, the MTU carried in ifr_metric (if_tcp(7P)).
type Ifreq struct {
	Name      string     `json:"ifr_name"`
	Addr      netip.Addr `json:"ifr_addr,omitzero"`
	Dstaddr   netip.Addr `json:"ifr_dstaddr,omitzero"`
	Broadaddr netip.Addr `json:"ifr_broadaddr,omitzero"`
	Flags     uint16     `json:"ifr_flags,omitempty"`
	Metric    int        `json:"ifr_metric,omitempty"` // also the MTU of SIOCSIFMTU/SIOCGIFMTU
	Index     uint32     `json:"ifr_index,omitempty"`
	IPMuxID   int        `json:"ifr_ip_muxid,omitempty"`
	ARPMuxID  int        `json:"ifr_arp_muxid,omitempty"`
	// SIOCGIFHWADDR: ifr_addr.sa_family (ARP hardware type, 1 for
	// Ethernet) and the address bytes of sa_data.
	HWFamily int    `json:"ifr_hwfamily,omitempty"`
	HWAddr   string `json:"ifr_hwaddr,omitempty"`
}

// IfreqSize is sizeof(struct ifreq) on illumos; SIOCGIFCONF's ifc_len is
// counted in these units.
const IfreqSize = 32

// Ifconf is struct ifconf (SIOCGIFCONF, O_SIOCGIFCONF). Len is the buffer
// size in bytes; 0 means "as large as needed".
type Ifconf struct {
	Len int     `json:"ifc_len"`
	Req []Ifreq `json:"ifc_req"`
}

// Ifnum is the int of SIOCGIFNUM.
type Ifnum struct {
	Count int `json:"ifn_count"`
}
