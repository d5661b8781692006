package ctl

// PropNames are the protocol properties tapstackd implements (SIOCGETPROP,
// SIOCSETPROP), sorted: the underscore-prefixed private tunables (protocol
// ip; the ARP ones also under ipv4, the NDP ones under ipv6), "forwarding"
// (ipv4, ipv6; also per interface) and "mtu" (per interface, read-only).
// The daemon cannot be asked for the list, so tapadm ipadm show-prop uses
// this one. It mirrors the table of ifmgr/props.go; ifmgr's tests assert
// that ifmgr.Props() equals it, so adding a tunable there means adding it
// here.
var PropNames = []string{
	"_addrs_per_if",
	"_arp_defend_interval",
	"_arp_defend_period",
	"_arp_defend_rate",
	"_arp_fastprobe_count",
	"_arp_fastprobe_delay",
	"_arp_fastprobe_interval",
	"_arp_no_defense",
	"_arp_probe_count",
	"_arp_probe_delay",
	"_arp_probe_interval",
	"_arp_publish_count",
	"_arp_publish_interval",
	"_broadcast_ttl",
	"_dad_announce_interval",
	"_defend_interval",
	"_dup_recovery",
	"_max_defend",
	"_max_temp_defend",
	"_ndp_dad_transmits",
	"_ndp_defend_interval",
	"_ndp_defend_period",
	"_ndp_defend_rate",
	"_ndp_unsolicit_count",
	"_ndp_unsolicit_interval",
	"_respond_to_address_mask_broadcast",
	"forwarding",
	"mtu",
}
