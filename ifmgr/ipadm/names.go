package ipadm

import (
	"strings"

	"github.com/tapstack/tapstack/ctl"
)

// maxObjName is the longest NAME of an address object "IF/NAME".
const maxObjName = 32

// maxIfName is the longest interface name (LIFNAMSIZ - 1).
const maxIfName = 31

// checkIfName checks an interface name as ipadm takes it: a physical
// interface, never a logical unit ("tap0:1"). The rest of the syntax is
// ifmgr's to check when the interface is plumbed.
func checkIfName(name string) error {
	switch {
	case name == "":
		return ctl.Errorf(ctl.EINVAL, "missing interface name")
	case len(name) > maxIfName:
		return ctl.Errorf(ctl.EINVAL, "interface name %q is longer than %d characters", name, maxIfName)
	case strings.ContainsAny(name, ":/"):
		return ctl.Errorf(ctl.EINVAL, "%q is not an interface name (no logical unit or '/')", name)
	case !isLetter(name[0]):
		return ctl.Errorf(ctl.EINVAL, "interface name %q must start with a letter", name)
	}
	return nil
}

// parseObj checks an address object name "IF/NAME" and returns its
// interface: NAME is alphanumeric, starts with a letter and has at most 32
// characters.
func parseObj(obj string) (ifname string, err error) {
	ifname, name, ok := strings.Cut(obj, "/")
	if !ok {
		return "", ctl.Errorf(ctl.EINVAL, "address object %q is not of the form IF/NAME", obj)
	}
	if err := checkIfName(ifname); err != nil {
		return "", ctl.Errorf(ctl.EINVAL, "address object %q: %s", obj, err.(*ctl.Error).Msg)
	}
	switch {
	case name == "":
		return "", ctl.Errorf(ctl.EINVAL, "address object %q has an empty name after '/'", obj)
	case len(name) > maxObjName:
		return "", ctl.Errorf(ctl.EINVAL, "address object name %q is longer than %d characters", name, maxObjName)
	case !isLetter(name[0]):
		return "", ctl.Errorf(ctl.EINVAL, "address object name %q must start with a letter", name)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !isLetter(c) && !(c >= '0' && c <= '9') {
			return "", ctl.Errorf(ctl.EINVAL, "address object name %q has %q; only letters and digits are allowed", name, c)
		}
	}
	return ifname, nil
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// lifIll returns the interface part of a logical interface name.
func lifIll(lif string) string {
	name, _, _ := strings.Cut(lif, ":")
	return name
}

// famProto is the ipadm protocol name of a family.
func famProto(f ctl.Family) string {
	if f == ctl.AF_INET6 {
		return "ipv6"
	}
	return "ipv4"
}

// protoFam is the family of an ipadm protocol name ("ipv4", "ipv6").
func protoFam(proto string) (ctl.Family, error) {
	switch proto {
	case "ipv4":
		return ctl.AF_INET, nil
	case "ipv6":
		return ctl.AF_INET6, nil
	}
	return "", ctl.Errorf(ctl.EINVAL, "protocol %q is not ipv4 or ipv6", proto)
}
