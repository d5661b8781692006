package ctl

import "net/netip"

// ND_* neighbour cache entry states (illumos net/if.h), used in the
// lnr_state_* fields of LifNdReq and in NdEntry.State.
const (
	ND_UNCHANGED   = 0 // SIOCLIFSETND: keep the current state
	ND_INCOMPLETE  = 1 // resolution in progress, no link address yet
	ND_REACHABLE   = 2
	ND_STALE       = 3
	ND_DELAY       = 4
	ND_PROBE       = 5
	ND_UNREACHABLE = 6
	ND_INITIAL     = 7
)

// NDStateNames maps an ND_* state to the word netstat and ndp print.
var NDStateNames = map[int]string{
	ND_UNCHANGED: "UNCHANGED", ND_INCOMPLETE: "INCOMPLETE", ND_REACHABLE: "REACHABLE",
	ND_STALE: "STALE", ND_DELAY: "DELAY", ND_PROBE: "PROBE",
	ND_UNREACHABLE: "UNREACHABLE", ND_INITIAL: "INITIAL",
}

// NDF_* flags of LifNdReq.Flags (illumos net/if.h). The ON/OFF pairs of
// SIOCLIFSETND say what to change; setting both halves of a pair is EINVAL.
const (
	NDF_ISROUTER_ON  = 0x1
	NDF_ISROUTER_OFF = 0x2
	NDF_ANYCAST_ON   = 0x4
	NDF_ANYCAST_OFF  = 0x8
	NDF_PROXY_ON     = 0x10
	NDF_PROXY_OFF    = 0x20
	NDF_STATIC       = 0x40
)

// ND_MAX_HDW_LEN is the size of lnr_hdw_addr.
const ND_MAX_HDW_LEN = 64

// LifNdReq is struct lif_nd_req, the lifr_nd member of the lifreq union
// that SIOCLIFGETND, SIOCLIFSETND and SIOCLIFDELND take. The hardware
// address travels as text ("2:0:0:0:0:1"); HdwLen is its length in bytes.
type LifNdReq struct {
	Addr         netip.Addr `json:"lnr_addr,omitzero"`
	StateCreate  int        `json:"lnr_state_create,omitempty"`
	StateSameLLA int        `json:"lnr_state_same_lla,omitempty"`
	StateDiffLLA int        `json:"lnr_state_diff_lla,omitempty"`
	HdwLen       int        `json:"lnr_hdw_len,omitempty"`
	Flags        int        `json:"lnr_flags,omitempty"`
	HdwAddr      string     `json:"lnr_hdw_addr,omitempty"`
}

// Ndreq is the lifreq of the ND requests: the interface (unit 0 of an
// IPv6 interface) and lifr_nd.
type Ndreq struct {
	Name string   `json:"lifr_name"`
	ND   LifNdReq `json:"lifr_nd"`
}

// NdEntry is one row of the IPv6 neighbour table ("Net to Media Table:
// IPv6" of netstat -p, which ndp -a prints).
type NdEntry struct {
	Ifname  string     `json:"ifname"`
	HdwAddr string     `json:"hdw_addr"` // "" while unresolved
	Type    string     `json:"type"`     // local, static, dynamic, other
	State   string     `json:"state"`    // REACHABLE, STALE, ...
	Addr    netip.Addr `json:"addr"`
	Router  bool       `json:"router,omitempty"`
	Anycast bool       `json:"anycast,omitempty"`
}

// NdList is the argument and reply of "ndp.list": every neighbour entry
// of the IPv6 interfaces (Ifname, if set, limits it to one).
type NdList struct {
	Ifname  string    `json:"ifname,omitempty"`
	Entries []NdEntry `json:"entries"`
}

// NdpConf is the in.ndpd per-interface configuration (ndpd.conf "if"
// lines) that "ndp.set-conf" changes and "ndp.get-conf" reads. A nil
// field in set-conf leaves the setting as it is.
type NdpConf struct {
	Name              string `json:"lifr_name"`
	StatelessAddrConf *bool  `json:"StatelessAddrConf,omitempty"` // SLAAC from router advertisements (default on)
	TmpAddrsEnabled   *bool  `json:"TmpAddrsEnabled,omitempty"`   // RFC 4941 temporary addresses (default off)
}
