package main

import (
	"strconv"
	"strings"

	"github.com/tapstack/tapstack/ctl"
)

// parseCreateAFPacket parses `create-afpacket NAME --over DEV [--netns NS]
// [--rings N] [--mtu N] [--mac MAC] [--rx recvmmsg|ring]`; options may come
// before or after NAME, as --opt VALUE or --opt=VALUE.
func parseCreateAFPacket(args []string) (ctl.CreateAFPacket, error) {
	var ca ctl.CreateAFPacket
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if !strings.HasPrefix(arg, "-") {
			if ca.Name != "" {
				return ca, dladmUsagef("create-afpacket: unexpected argument %q", arg)
			}
			if err := checkLinkName(arg); err != nil {
				return ca, err
			}
			ca.Name = arg
			continue
		}
		opt, val, hasVal := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		if !hasVal {
			if i+1 >= len(args) {
				return ca, dladmUsagef("create-afpacket: %s needs an argument", arg)
			}
			i++
			val = args[i]
		}
		switch opt {
		case "over":
			if val == "" || len(val) > 15 || strings.ContainsAny(val, " \t\n/:") {
				return ca, dladmUsagef("create-afpacket: bad --over %q", val)
			}
			ca.Over = val
		case "netns":
			if val == "" {
				return ca, dladmUsagef("create-afpacket: empty --netns")
			}
			ca.Netns = val
		case "rings":
			n, err := strconv.ParseUint(val, 10, 8)
			if err != nil || n == 0 {
				return ca, dladmUsagef("create-afpacket: bad --rings %q", val)
			}
			ca.Rings = int(n)
		case "mtu":
			n, err := strconv.ParseUint(val, 10, 32)
			if err != nil || n == 0 {
				return ca, dladmUsagef("create-afpacket: bad --mtu %q", val)
			}
			ca.MTU = uint32(n)
		case "mac":
			mac, err := parseMAC(val)
			if err != nil {
				return ca, err
			}
			ca.MAC = mac
		case "rx":
			if val != "ring" && val != "recvmmsg" {
				return ca, dladmUsagef("create-afpacket: bad --rx %q (recvmmsg or ring)", val)
			}
			ca.RX = val
		default:
			return ca, dladmUsagef("create-afpacket: unknown option %q", arg)
		}
	}
	if ca.Name == "" {
		return ca, dladmUsagef("create-afpacket: missing link name")
	}
	if ca.Over == "" {
		return ca, dladmUsagef("create-afpacket: missing --over DEV")
	}
	return ca, nil
}
