package ctl

import "net/netip"

// IfStatsReq is the argument and reply of the MIB2_IP_TRAFFIC_STATS get
// request (what illumos netstat reads through the MIB2 get of ip_snmp_get:
// the ipIfStatsTable, and the ipv6IfIcmpTable for IPv6). Name selects one
// interface ("tap0"; statistics are kept per interface, not per logical
// unit); empty means every interface of the socket's family, or of both
// families for AF_UNSPEC. The daemon's netstat.interfaces op takes and
// returns the same structure, with the link devices' own error counts
// added.
type IfStatsReq struct {
	Name       string    `json:"name,omitempty"`
	Interfaces []IfStats `json:"interfaces"`
	// Totals are the stack-wide MIBs per family: every interface plumbed
	// now plus everything counted by interfaces since unplumbed.
	Totals []IPTotals `json:"totals"`
}

// IfStats is one interface (ill) of one family: what netstat -i shows of
// it, its IP MIB since it was plumbed, and its link's counters.
type IfStats struct {
	Name   string       `json:"name"`
	Family Family       `json:"family"`
	Index  uint32       `json:"ifindex"`
	MTU    uint32       `json:"mtu"`
	Flags  Flags        `json:"flags"`
	Addr   netip.Addr   `json:"addr"`         // unit 0's address
	Subnet netip.Prefix `json:"subnet"`       // unit 0's subnet
	Dst    netip.Addr   `json:"dst,omitzero"` // unit 0's point-to-point destination
	Link   string       `json:"link,omitempty"`
	IP     IPIfStats    `json:"ip"`
	// ICMP6 is the interface's ipv6IfIcmpTable entry (IPv6 only).
	ICMP6 *ICMP6IfStats `json:"icmp6,omitempty"`
	// LinkStats are the link's counters, shared by both families.
	LinkStats LinkStats `json:"linkStats"`
}

// IPTotals is one family's stack-wide MIB.
type IPTotals struct {
	Family Family        `json:"family"`
	IP     IPIfStats     `json:"ip"`
	ICMP6  *ICMP6IfStats `json:"icmp6,omitempty"`
}

// IPIfStats are the ipIfStats counters tapstack keeps (RFC 4293 names
// without the ipIfStats prefix; all 64-bit). ReasmReqds and ReasmOKs are
// absent: the engine keeps no count of them.
type IPIfStats struct {
	InReceives    uint64 `json:"inReceives"`    // datagrams received, errors included
	InOctets      uint64 `json:"inOctets"`      // their octets (HCInOctets)
	InHdrErrors   uint64 `json:"inHdrErrors"`   // discarded: bad header
	InAddrErrors  uint64 `json:"inAddrErrors"`  // discarded: bad source, or no such local address or group
	InDiscards    uint64 `json:"inDiscards"`    // discarded otherwise (filters, IP disabled, forwarding failures)
	InDelivers    uint64 `json:"inDelivers"`    // delivered to transport protocols and ICMP
	InMcastPkts   uint64 `json:"inMcastPkts"`   // received in link-layer multicast
	InBcastPkts   uint64 `json:"inBcastPkts"`   // received in link-layer broadcast
	OutRequests   uint64 `json:"outRequests"`   // datagrams local protocols handed to IP
	OutTransmits  uint64 `json:"outTransmits"`  // datagrams handed to the link, forwarded included
	OutOctets     uint64 `json:"outOctets"`     // their octets (HCOutOctets)
	OutDiscards   uint64 `json:"outDiscards"`   // discarded on the way out (filters, link errors)
	OutNoRoutes   uint64 `json:"outNoRoutes"`   // received for forwarding with no route
	OutMcastPkts  uint64 `json:"outMcastPkts"`  // sent in link-layer multicast
	OutBcastPkts  uint64 `json:"outBcastPkts"`  // sent in link-layer broadcast
	ForwDatagrams uint64 `json:"forwDatagrams"` // forwarded out of this interface (HCOutForwDatagrams)
	ForwProhibits uint64 `json:"forwProhibits"` // received for elsewhere while forwarding was off
	ReasmFails    uint64 `json:"reasmFails"`    // fragments discarded as malformed
}

// ICMP6IfStats are the ipv6IfIcmp counters of one interface.
type ICMP6IfStats struct {
	InMsgs                    uint64 `json:"inMsgs"`
	InErrors                  uint64 `json:"inErrors"`
	InDestUnreachs            uint64 `json:"inDestUnreachs"`
	InPktTooBigs              uint64 `json:"inPktTooBigs"`
	InTimeExcds               uint64 `json:"inTimeExcds"`
	InParmProblems            uint64 `json:"inParmProblems"`
	InEchos                   uint64 `json:"inEchos"`
	InEchoReplies             uint64 `json:"inEchoReplies"`
	InRouterSolicits          uint64 `json:"inRouterSolicits"`
	InRouterAdvertisements    uint64 `json:"inRouterAdvertisements"`
	InNeighborSolicits        uint64 `json:"inNeighborSolicits"`
	InNeighborAdvertisements  uint64 `json:"inNeighborAdvertisements"`
	InRedirects               uint64 `json:"inRedirects"`
	InGroupMembQueries        uint64 `json:"inGroupMembQueries"`
	InGroupMembResponses      uint64 `json:"inGroupMembResponses"`
	InGroupMembReductions     uint64 `json:"inGroupMembReductions"`
	OutMsgs                   uint64 `json:"outMsgs"`
	OutErrors                 uint64 `json:"outErrors"`
	OutDestUnreachs           uint64 `json:"outDestUnreachs"`
	OutPktTooBigs             uint64 `json:"outPktTooBigs"`
	OutTimeExcds              uint64 `json:"outTimeExcds"`
	OutParmProblems           uint64 `json:"outParmProblems"`
	OutEchos                  uint64 `json:"outEchos"`
	OutEchoReplies            uint64 `json:"outEchoReplies"`
	OutRouterSolicits         uint64 `json:"outRouterSolicits"`
	OutRouterAdvertisements   uint64 `json:"outRouterAdvertisements"`
	OutNeighborSolicits       uint64 `json:"outNeighborSolicits"`
	OutNeighborAdvertisements uint64 `json:"outNeighborAdvertisements"`
	OutRedirects              uint64 `json:"outRedirects"`
	OutGroupMembQueries       uint64 `json:"outGroupMembQueries"`
	OutGroupMembResponses     uint64 `json:"outGroupMembResponses"`
	OutGroupMembReductions    uint64 `json:"outGroupMembReductions"`
}

// LinkStats are a link's frame counters as netstat -i shows them (the
// illumos link kstats). Packets and bytes count every frame the stack
// exchanged with the link since the interface was plumbed; the error
// counts add what the link device itself counts since the link was made.
// A point-to-point virtual cable has no collisions; the field is there
// for the netstat -i column.
type LinkStats struct {
	IPackets   uint64 `json:"ipackets"`
	IErrors    uint64 `json:"ierrors"`
	OPackets   uint64 `json:"opackets"`
	OErrors    uint64 `json:"oerrors"`
	RBytes     uint64 `json:"rbytes"`
	OBytes     uint64 `json:"obytes"`
	Collisions uint64 `json:"collisions"`
}
