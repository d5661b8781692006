package ctl

import (
	"encoding/json"
	"net/netip"
)

// Family is the address family of the socket a request is issued on: it
// selects which ill list (IPv4 or IPv6) names are looked up in, as an
// AF_INET or AF_INET6 socket does in illumos.
type Family string

// Families. The zero value means AF_INET, the default of ifconfig.
const (
	AF_UNSPEC Family = "unspec"
	AF_INET   Family = "inet"
	AF_INET6  Family = "inet6"
)

// FamilyOf returns the family of an address (AF_UNSPEC for the zero Addr).
func FamilyOf(a netip.Addr) Family {
	switch {
	case !a.IsValid():
		return AF_UNSPEC
	case a.Is4():
		return AF_INET
	default:
		return AF_INET6
	}
}

// LifreqSize is sizeof(struct lifreq) on illumos; SIOCGLIFCONF's lifc_len
// and SIOCGLIFSRCOF's lifs_len are counted in these units, as in the
// reference, so buffer-size arithmetic in scripts carries over.
const LifreqSize = 376

// PPAAny is lifr_ppa = UINT_MAX: "choose the lowest free PPA for me".
const PPAAny = ^uint32(0)

// Lifreq is struct lifreq: the argument and result of the LIF requests.
// Field names on the wire are those of the if_tcp(7P) man page. An address
// field left empty is AF_UNSPEC. As in illumos, SIOCSLIFNETMASK and
// SIOCGLIFNETMASK carry the mask in lifr_addr.
type Lifreq struct {
	Name      string     `json:"lifr_name"`
	Link      string     `json:"lifr_link,omitempty"` // SIOCSLIFNAME: the device ("stream") to plumb; default lifr_name
	PPA       uint32     `json:"lifr_ppa,omitempty"`
	Addr      netip.Addr `json:"lifr_addr,omitzero"`
	Addrlen   int        `json:"lifr_addrlen,omitempty"`
	Dstaddr   netip.Addr `json:"lifr_dstaddr,omitzero"`
	Broadaddr netip.Addr `json:"lifr_broadaddr,omitzero"`
	Flags     Flags      `json:"lifr_flags,omitempty"`
	MTU       int64      `json:"lifr_mtu,omitempty"`
	Metric    int        `json:"lifr_metric,omitempty"`
	Index     uint32     `json:"lifr_index,omitempty"`
	Type      int        `json:"lifr_type,omitempty"`     // IFT_* of the ill
	Zone      string     `json:"lifr_zone,omitempty"`     // SIOCGLIFZONE: the zone's name, for display; "" is the global zone
	ZoneID    int32      `json:"lifr_zoneid,omitempty"`   // SIOCSLIFZONE/SIOCGLIFZONE: GLOBAL_ZONEID, a zone's id, or ALL_ZONES
	HWAddr    string     `json:"lifr_hwaddr,omitempty"`   // SIOCGLIFHWADDR: "2:0:0:0:0:1"
	DADState  int        `json:"lifr_dadstate,omitempty"` // SIOCGLIFDADSTATE

	Subnet    netip.Addr `json:"lifr_subnet,omitzero"` // SIOCSLIFSUBNET/SIOCGLIFSUBNET (with lifr_addrlen)
	Token     netip.Addr `json:"lifr_token,omitzero"`  // SIOCSLIFTOKEN/SIOCGLIFTOKEN (with lifr_addrlen)
	IPMuxID   int        `json:"lifr_ip_muxid,omitempty"`
	ARPMuxID  int        `json:"lifr_arp_muxid,omitempty"`
	Ifinfo    *Ifinfo    `json:"lifr_ifinfo,omitempty"` // SIOCSLIFLNKINFO/SIOCGLIFLNKINFO
	Cflags    *Cflags    `json:"lifr_cflags,omitempty"` // SIOCCLIFFLAGS
	Groupname string     `json:"lifr_groupname,omitempty"`
}

// Ifinfo is struct lif_ifinfo_req (SIOCSLIFLNKINFO): zero means
// "unspecified" for the last three fields.
type Ifinfo struct {
	MaxHops      uint8  `json:"lir_maxhops"`
	ReachTime    uint32 `json:"lir_reachtime"`    // ms
	ReachRetrans uint32 `json:"lir_reachretrans"` // ms
	MaxMTU       uint32 `json:"lir_maxmtu"`
}

// Cflags is struct lif_cflags_req (SIOCCLIFFLAGS): an atomic
// compare-and-modify of the interface flags.
type Cflags struct {
	ModFlags  Flags `json:"modflags"`
	ModMask   Flags `json:"modmask"`
	OrigFlags Flags `json:"origflags"`
	OrigMask  Flags `json:"origmask"`
}

// AddrReq is struct sioc_addrreq (SIOCTMYADDR, SIOCTONLINK, SIOCTMYSITE).
type AddrReq struct {
	Addr netip.Addr `json:"sa_addr"`
	Res  int        `json:"sa_res"`
}

// Lifsrcof is struct lifsrcof (SIOCGLIFSRCOF). Maxlen and Len are in
// bytes (LifreqSize per record), as the sizing protocol of the man page.
type Lifsrcof struct {
	Ifindex uint32   `json:"lifs_ifindex"`
	Maxlen  int      `json:"lifs_maxlen"`
	Len     int      `json:"lifs_len"`
	Req     []Lifreq `json:"lifs_req"`
}

// IFT_* interface types reported in lifr_type.
const (
	IFT_OTHER = 0x01
	IFT_ETHER = 0x06
	IFT_LOOP  = 0x18 // as illumos reports lo0 (IFT_OTHER on some releases)
)

// LIFC_* flags of SIOCGLIFCONF / SIOCGLIFNUM.
const (
	LIFC_NOXMIT          = 0x01
	LIFC_EXTERNAL_SOURCE = 0x02
	LIFC_TEMPORARY       = 0x04
	LIFC_ALLZONES        = 0x08
	LIFC_UNDER_IPMP      = 0x10
	LIFC_ENABLED         = 0x20
)

// Lifnum is struct lifnum (SIOCGLIFNUM).
type Lifnum struct {
	Family Family `json:"lifn_family"`
	Flags  int    `json:"lifn_flags,omitempty"`
	Count  int    `json:"lifn_count"`
}

// Lifconf is struct lifconf (SIOCGLIFCONF). Len is the buffer size in bytes
// (LifreqSize per record); 0 means "as large as needed", a convenience the
// C interface lacks.
type Lifconf struct {
	Family Family   `json:"lifc_family"`
	Flags  int      `json:"lifc_flags,omitempty"`
	Len    int      `json:"lifc_len"`
	Req    []Lifreq `json:"lifc_req"`
}

// Request is one line on the control socket. Op is an if_tcp(7P) request
// name ("SIOCSLIFADDR") or a daemon operation ("dladm.create-tap").
type Request struct {
	ID     uint64          `json:"id,omitempty"`
	Op     string          `json:"op"`
	Family Family          `json:"family,omitempty"`
	Args   json.RawMessage `json:"args,omitempty"`
}

// Response answers one Request. On failure Errno is set ("EINVAL") and
// Message says what was wrong; nothing was changed. A streaming request
// ("snoop") is answered by many Responses, one item in each Result, and
// ends with one whose End is set, or with an error (Client.Stream).
type Response struct {
	ID      uint64          `json:"id,omitempty"`
	Errno   string          `json:"errno,omitempty"`
	Message string          `json:"message,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	End     bool            `json:"end,omitempty"`
}

// CreateTap is the argument of "dladm.create-tap".
type CreateTap struct {
	Name      string `json:"name"`
	Netns     string `json:"netns,omitempty"` // name under /run/netns, or a path
	MTU       uint32 `json:"mtu,omitempty"`
	MAC       string `json:"mac,omitempty"`
	Queues    int    `json:"queues,omitempty"`     // TAP queues; 0: min(CPUs, 4)
	NoOffload bool   `json:"no_offload,omitempty"` // no virtio-net header, no offloads
}

// LinkName is the argument of "dladm.delete-link".
type LinkName struct {
	Name string `json:"name"`
}

// LinkInfo is one row of "dladm.show-link".
type LinkInfo struct {
	Link         string   `json:"link"`
	Class        string   `json:"class"` // "tap", "afpacket", "loopback"
	MTU          uint32   `json:"mtu"`
	State        string   `json:"state"` // "up", "down", "unknown"
	Over         string   `json:"over"`  // netns the device lives in, or the device an AF_PACKET link is over
	MAC          string   `json:"mac,omitempty"`
	DLPIState    string   `json:"dlpi_state"` // UNATTACHED, UNBOUND, IDLE
	Capabilities []string `json:"capabilities"`
	Queues       int      `json:"queues,omitempty"` // rings (TAP queues); 0 if the link does not say
}

// RouteEntry is one IRE as "netstat.routes" returns it.
type RouteEntry struct {
	Destination netip.Prefix `json:"destination"`
	Gateway     netip.Addr   `json:"gateway,omitzero"`
	Type        string       `json:"type"`  // LOCAL, LOOPBACK, BROADCAST, IF_RESOLVER, IF_NORESOLVER, PREFIX, HOST, DEFAULT
	Flags       string       `json:"flags"` // netstat style: U, G, H, D, L, B, ...
	Interface   string       `json:"interface"`
	Refs        int          `json:"refs"` // broadcast share count, else 1
	Zone        string       `json:"zone,omitempty"`
}

// Ping is the argument of "ping": ICMP echo from the stack itself.
type Ping struct {
	Dst       netip.Addr `json:"dst"`
	Count     int        `json:"count,omitempty"`      // default 1
	TimeoutMS int        `json:"timeout_ms,omitempty"` // per probe; default 1000
}

// PingResult answers "ping".
type PingResult struct {
	Transmitted int     `json:"transmitted"`
	Received    int     `json:"received"`
	RTTMicros   []int64 `json:"rtt_us"`
	Error       string  `json:"error,omitempty"` // why the last probe failed
}

// Forward is one inbound port forward of the gateway: connections to
// HostAddr:HostPort on the host are carried to GuestAddr:GuestPort in the
// namespace. Spec syntax: [HOSTADDR:]HOSTPORT:GUESTPORT[/tcp|/udp]
// (IPv6 host addresses in brackets).
type Forward struct {
	ID        int        `json:"id"`
	Proto     string     `json:"proto"`              // "tcp" or "udp"
	HostAddr  netip.Addr `json:"host_addr,omitzero"` // zero: every host address, IPv4 and IPv6
	HostPort  uint16     `json:"host_port"`
	GuestAddr netip.Addr `json:"guest_addr,omitzero"` // zero: the namespace's address of the client's family
	GuestPort uint16     `json:"guest_port"`
}

// ForwardID is the argument of "gateway.remove-forward".
type ForwardID struct {
	ID int `json:"id"`
}

// Rtentry is struct rtentry (SIOCADDRT, SIOCDELRT) extended to IPv6, and
// the reply of RTM_GET. Genmask is the netmask (zero: derived, spec
// §14.7); Ifp names the outgoing interface (optional).
type Rtentry struct {
	Dst     netip.Addr `json:"rt_dst"`
	Gateway netip.Addr `json:"rt_gateway,omitzero"`
	Genmask netip.Addr `json:"rt_genmask,omitzero"`
	Flags   int        `json:"rt_flags,omitempty"`
	Ifp     string     `json:"rt_ifp,omitempty"`
	Type    string     `json:"rt_type,omitempty"` // RTM_GET reply: IRE type
}

// Route flags of Rtentry (illumos values).
const (
	RTF_UP        = 0x1
	RTF_GATEWAY   = 0x2
	RTF_HOST      = 0x4
	RTF_REJECT    = 0x8
	RTF_STATIC    = 0x800
	RTF_BLACKHOLE = 0x1000
	RTF_PRIVATE   = 0x2000
	RTF_MULTIRT   = 0x10000
	RTF_SETSRC    = 0x20000
	RTF_INDIRECT  = 0x40000
	RTF_KERNEL    = 0x80000
)

// Prop is mod_ioc_prop_t (SIOCGETPROP, SIOCSETPROP): a protocol tunable,
// optionally of one interface.
type Prop struct {
	Proto  string `json:"mpr_proto"`            // ip, ipv4, ipv6, tcp, udp, ...
	Name   string `json:"mpr_name"`             // "forwarding", "_arp_probe_count", ...
	Ifname string `json:"mpr_ifname,omitempty"` // per-interface properties
	Flags  int    `json:"mpr_flags"`            // MOD_PROP_*
	Val    string `json:"mpr_val,omitempty"`
}

// MOD_PROP_* flags of Prop.
const (
	MOD_PROP_ACTIVE   = 0x01
	MOD_PROP_DEFAULT  = 0x02
	MOD_PROP_POSSIBLE = 0x04
	MOD_PROP_PERM     = 0x08
	MOD_PROP_APPEND   = 0x10
	MOD_PROP_REMOVE   = 0x20
)
