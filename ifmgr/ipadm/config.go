package ipadm

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/tapstack/tapstack/ctl"
)

// configVersion is the format of the state file.
const configVersion = 1

// Config is one ipadm configuration: the state file's content, and the
// shape of the active configuration too.
type Config struct {
	Version    int         `json:"version"`
	Props      []Prop      `json:"props,omitempty"`      // protocol properties (set-prop)
	Interfaces []Interface `json:"interfaces,omitempty"` // sorted by name
}

// Prop is one property value set away from its default. Proto is the
// protocol of a protocol property and the family (ipv4, ipv6) of an
// interface property; empty for an address property.
type Prop struct {
	Proto string `json:"proto,omitempty"`
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Interface is one IP interface created by ipadm (create-ip, or
// implicitly by create-addr).
type Interface struct {
	Name     string `json:"name"`
	IPv4     bool   `json:"ipv4,omitempty"`
	IPv6     bool   `json:"ipv6,omitempty"`
	Disabled bool   `json:"disabled,omitempty"`
	Props    []Prop `json:"props,omitempty"`
	Addrs    []Addr `json:"addrs,omitempty"` // in order of creation
}

// Addr is one address object.
type Addr struct {
	Obj      string       `json:"addrobj"` // "tap0/v4"
	Type     string       `json:"type"`    // ctl.AddrStatic, ctl.AddrAddrconf
	Local    netip.Prefix `json:"local,omitzero"`
	Remote   netip.Addr   `json:"remote,omitzero"`
	Disabled bool         `json:"disabled,omitempty"`
	Props    []Prop       `json:"props,omitempty"`
}

// family is the address family of the object's logical interface.
func (a *Addr) family() ctl.Family {
	if a.Type == ctl.AddrAddrconf || a.Local.Addr().Is6() {
		return ctl.AF_INET6
	}
	return ctl.AF_INET
}

// ifname is the interface part of the object's name.
func (a *Addr) ifname() string {
	name, _, _ := strings.Cut(a.Obj, "/")
	return name
}

func (i *Interface) hasFamily(f ctl.Family) bool {
	if f == ctl.AF_INET6 {
		return i.IPv6
	}
	return i.IPv4
}

func (i *Interface) setFamily(f ctl.Family) {
	if f == ctl.AF_INET6 {
		i.IPv6 = true
	} else {
		i.IPv4 = true
	}
}

// families lists the families the interface is configured for.
func (i *Interface) families() []ctl.Family {
	var out []ctl.Family
	if i.IPv4 {
		out = append(out, ctl.AF_INET)
	}
	if i.IPv6 {
		out = append(out, ctl.AF_INET6)
	}
	return out
}

func (i *Interface) addr(obj string) *Addr {
	for k := range i.Addrs {
		if i.Addrs[k].Obj == obj {
			return &i.Addrs[k]
		}
	}
	return nil
}

// clone returns a deep copy.
func (c *Config) clone() *Config {
	out := &Config{Version: c.Version, Props: slices.Clone(c.Props)}
	for _, i := range c.Interfaces {
		i.Props = slices.Clone(i.Props)
		addrs := make([]Addr, 0, len(i.Addrs))
		for _, a := range i.Addrs {
			a.Props = slices.Clone(a.Props)
			addrs = append(addrs, a)
		}
		i.Addrs = addrs
		out.Interfaces = append(out.Interfaces, i)
	}
	return out
}

// iface returns the interface called name, or nil.
func (c *Config) iface(name string) *Interface {
	for k := range c.Interfaces {
		if c.Interfaces[k].Name == name {
			return &c.Interfaces[k]
		}
	}
	return nil
}

// ensureIface returns the interface called name, adding it if missing.
func (c *Config) ensureIface(name string) *Interface {
	if i := c.iface(name); i != nil {
		return i
	}
	c.Interfaces = append(c.Interfaces, Interface{Name: name})
	slices.SortFunc(c.Interfaces, func(a, b Interface) int { return strings.Compare(a.Name, b.Name) })
	return c.iface(name)
}

func (c *Config) removeIface(name string) {
	c.Interfaces = slices.DeleteFunc(c.Interfaces, func(i Interface) bool { return i.Name == name })
}

// addr returns the address object obj and its interface, or nils.
func (c *Config) addr(obj string) (*Interface, *Addr) {
	for k := range c.Interfaces {
		if a := c.Interfaces[k].addr(obj); a != nil {
			return &c.Interfaces[k], a
		}
	}
	return nil, nil
}

func (c *Config) removeAddr(obj string) {
	for k := range c.Interfaces {
		i := &c.Interfaces[k]
		i.Addrs = slices.DeleteFunc(i.Addrs, func(a Addr) bool { return a.Obj == obj })
	}
}

// putAddr records a (replacing an object of the same name), creating its
// interface with the object's family if needed.
func (c *Config) putAddr(a Addr) {
	i := c.ensureIface(a.ifname())
	i.setFamily(a.family())
	if p := i.addr(a.Obj); p != nil {
		*p = a
		return
	}
	i.Addrs = append(i.Addrs, a)
}

// setProp sets (value != "") or removes (value == "") one property in a
// list.
func setProp(list []Prop, p Prop) []Prop {
	list = slices.DeleteFunc(list, func(q Prop) bool { return q.Proto == p.Proto && q.Name == p.Name })
	if p.Value == "" {
		return list
	}
	list = append(list, p)
	slices.SortFunc(list, func(a, b Prop) int {
		if c := strings.Compare(a.Proto, b.Proto); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return list
}

func getProp(list []Prop, proto, name string) (string, bool) {
	for _, p := range list {
		if p.Proto == proto && p.Name == name {
			return p.Value, true
		}
	}
	return "", false
}
