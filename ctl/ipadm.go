package ctl

import "net/netip"

// The ipadm daemon operations ("ipadm.create-addr", ...) and their wire
// types. ipadm works on address objects ("tap0/v4") and interfaces the
// daemon records; unless Temporary is set, a change is also written to the
// daemon's state file and restored when it starts again.

// Address object types.
const (
	AddrStatic   = "static"
	AddrAddrconf = "addrconf"
)

// Address object states (ipadm show-addr STATE).
const (
	AddrOK           = "ok"
	AddrTentative    = "tentative"    // DAD running
	AddrDuplicate    = "duplicate"    // DAD found the address in use
	AddrDown         = "down"         // configured, not up
	AddrDisabled     = "disabled"     // disable-addr or disable-if
	AddrInaccessible = "inaccessible" // its interface cannot be configured (no link)
)

// IpadmIf names an interface: create-ip, delete-ip, enable-if, disable-if
// and show-if (Name "" shows every interface).
type IpadmIf struct {
	Name      string `json:"ifname,omitempty"`
	Temporary bool   `json:"temporary,omitempty"` // -t: not written to the state file
}

// IpadmAddr is the argument of create-addr. Obj is "IF/NAME"; Local is the
// static address with its prefix length, Remote the optional
// point-to-point destination; addrconf objects take neither.
type IpadmAddr struct {
	Obj       string       `json:"addrobj"`
	Type      string       `json:"type"` // AddrStatic or AddrAddrconf
	Local     netip.Prefix `json:"local,omitzero"`
	Remote    netip.Addr   `json:"remote,omitzero"`
	Temporary bool         `json:"temporary,omitempty"`
}

// IpadmAddrObj names an address object: delete-addr, up-addr, down-addr,
// enable-addr, disable-addr, refresh-addr, and show-addr, where Obj may
// also be "IF/" (the objects of one interface) or "" (all).
type IpadmAddrObj struct {
	Obj       string `json:"addrobj,omitempty"`
	Temporary bool   `json:"temporary,omitempty"`
}

// AddrInfo is one row of show-addr.
type AddrInfo struct {
	Obj   string `json:"addrobj"` // "IF/?" for an address no object names
	Type  string `json:"type"`
	State string `json:"state"`
	// Addr is "A/P", or "A->D" for a point-to-point address; "" when the
	// object is not configured and has no static address (addrconf).
	Addr string `json:"addr"`
	// Lifname is the logical interface carrying it ("tap0:1"), if any.
	Lifname    string `json:"lifname,omitempty"`
	Persistent bool   `json:"persistent"` // recorded in the state file
}

// IfInfo is one row of show-if. Current holds the letters bmpvIsiVaZ46
// ('-' where unset), Persistent the letters s46 of the persistent
// configuration.
type IfInfo struct {
	Name       string `json:"ifname"`
	Class      string `json:"class"` // ip, loopback, ipmp
	State      string `json:"state"` // ok, down, disabled, failed, offline
	Current    string `json:"current"`
	Persistent string `json:"persistent"`
}

// IpadmProp sets or resets one property: of the protocol Proto
// (set-prop), of interface Ifname in family Proto ("ipv4", "ipv6";
// set-ifprop), or of address object Obj (set-addrprop). Flags may add
// MOD_PROP_APPEND or MOD_PROP_REMOVE for set-prop.
type IpadmProp struct {
	Ifname    string `json:"ifname,omitempty"`
	Obj       string `json:"addrobj,omitempty"`
	Proto     string `json:"proto,omitempty"`
	Name      string `json:"property"`
	Value     string `json:"value,omitempty"`
	Flags     int    `json:"flags,omitempty"`
	Temporary bool   `json:"temporary,omitempty"`
}

// IpadmShowProps asks for properties of interface Ifname (show-ifprop,
// Proto "" for both families) or of address object Obj (show-addrprop, ""
// for all objects). Names "" lists every property.
type IpadmShowProps struct {
	Ifname string   `json:"ifname,omitempty"`
	Obj    string   `json:"addrobj,omitempty"`
	Proto  string   `json:"proto,omitempty"`
	Names  []string `json:"names,omitempty"`
}

// PropInfo is one row of show-prop, show-ifprop or show-addrprop.
type PropInfo struct {
	Ifname     string `json:"ifname,omitempty"`
	Obj        string `json:"addrobj,omitempty"`
	Proto      string `json:"proto,omitempty"`
	Property   string `json:"property"`
	Perm       string `json:"perm"`
	Current    string `json:"current"`
	Persistent string `json:"persistent"`
	Default    string `json:"default"`
	Possible   string `json:"possible"`
}

// IfProps are the per-interface properties of set-ifprop and show-ifprop,
// AddrProps those of set-addrprop and show-addrprop.
var (
	IfProps   = []string{"arp", "exchange_routes", "forwarding", "metric", "mtu", "nud", "standby", "usesrc"}
	AddrProps = []string{"deprecated", "prefixlen", "private", "transmit", "zone"}
)
