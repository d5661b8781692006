package main

// The dladm verb: the data links the daemon owns.

import (
	"context"
	"strconv"
	"strings"

	"github.com/tapstack/tapstack/ctl"
)

const dladmUsage = `  tapadm dladm create-tap NAME [--netns NS] [--mtu N] [--mac MAC] [--queues N] [--no-offload]
  tapadm dladm create-afpacket NAME --over DEV [--netns NS] [--rings N] [--mtu N] [--mac MAC] [--rx recvmmsg|ring]
  tapadm dladm delete-link NAME
  tapadm dladm show-link [-o json] [LINK]
  tapadm dladm show-linkprop [LINK]
`

func dladmUsagef(format string, args ...any) error {
	return usagef("dladm", format, args...)
}

// dladm runs the dladm verb.
func (a *app) dladm(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return dladmUsagef("missing subcommand")
	}
	switch sub, rest := args[0], args[1:]; sub {
	case "create-tap":
		ct, err := parseCreateTap(rest)
		if err != nil {
			return err
		}
		r, err := a.conn()
		if err != nil {
			return err
		}
		var li ctl.LinkInfo
		return r.Do(ctx, "dladm.create-tap", "", ct, &li)
	case "create-afpacket":
		ca, err := parseCreateAFPacket(rest)
		if err != nil {
			return err
		}
		r, err := a.conn()
		if err != nil {
			return err
		}
		var li ctl.LinkInfo
		return r.Do(ctx, "dladm.create-afpacket", "", ca, &li)
	case "delete-link":
		if len(rest) != 1 {
			return dladmUsagef("delete-link takes exactly one link name")
		}
		if err := checkLinkName(rest[0]); err != nil {
			return err
		}
		r, err := a.conn()
		if err != nil {
			return err
		}
		return r.Do(ctx, "dladm.delete-link", "", ctl.LinkName{Name: rest[0]}, nil)
	case "show-link", "show-linkprop":
		rest, json, err := stripJSON("dladm", rest)
		if err != nil {
			return err
		}
		if len(rest) > 1 || (len(rest) == 1 && strings.HasPrefix(rest[0], "-")) {
			return dladmUsagef("%s takes at most one link name and -o json", sub)
		}
		r, err := a.conn()
		if err != nil {
			return err
		}
		var links []ctl.LinkInfo
		if err := r.Do(ctx, "dladm.show-link", "", nil, &links); err != nil {
			return err
		}
		if len(rest) == 1 {
			links, err = selectLink(links, rest[0])
			if err != nil {
				return err
			}
		}
		switch {
		case sub == "show-linkprop":
			if json {
				return dladmUsagef("show-linkprop has no -o json; use show-link -o json")
			}
			return writeLinkProps(a.stdout, links)
		case json:
			return writeLinksJSON(a.stdout, links)
		}
		return writeLinks(a.stdout, links)
	default:
		return dladmUsagef("unknown subcommand %q", sub)
	}
}

// selectLink returns the one link named name, as `dladm show-link LINK`.
func selectLink(links []ctl.LinkInfo, name string) ([]ctl.LinkInfo, error) {
	for _, l := range links {
		if l.Link == name {
			return []ctl.LinkInfo{l}, nil
		}
	}
	return nil, &ctl.Error{Request: "dladm.show-link", Errno: ctl.ENOENT, Msg: "no link named " + strconv.Quote(name)}
}

// parseCreateTap parses `create-tap NAME [--netns NS] [--mtu N] [--mac MAC]
// [--queues N] [--no-offload]`; options may come before or after NAME, as
// --opt VALUE or --opt=VALUE (--no-offload takes no value).
func parseCreateTap(args []string) (ctl.CreateTap, error) {
	var ct ctl.CreateTap
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if !strings.HasPrefix(arg, "-") {
			if ct.Name != "" {
				return ct, dladmUsagef("create-tap: unexpected argument %q", arg)
			}
			if err := checkLinkName(arg); err != nil {
				return ct, err
			}
			ct.Name = arg
			continue
		}
		opt, val, hasVal := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		if opt == "no-offload" {
			if hasVal {
				return ct, dladmUsagef("create-tap: --no-offload takes no value")
			}
			ct.NoOffload = true
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return ct, dladmUsagef("create-tap: %s needs an argument", arg)
			}
			i++
			val = args[i]
		}
		switch opt {
		case "netns":
			if val == "" {
				return ct, dladmUsagef("create-tap: empty --netns")
			}
			ct.Netns = val
		case "mtu":
			n, err := strconv.ParseUint(val, 10, 32)
			if err != nil || n == 0 {
				return ct, dladmUsagef("create-tap: bad --mtu %q", val)
			}
			ct.MTU = uint32(n)
		case "mac":
			mac, err := parseMAC(val)
			if err != nil {
				return ct, err
			}
			ct.MAC = mac
		case "queues":
			n, err := strconv.ParseUint(val, 10, 16)
			if err != nil || n == 0 {
				return ct, dladmUsagef("create-tap: bad --queues %q", val)
			}
			ct.Queues = int(n)
		default:
			return ct, dladmUsagef("create-tap: unknown option %q", arg)
		}
	}
	if ct.Name == "" {
		return ct, dladmUsagef("create-tap: missing link name")
	}
	return ct, nil
}

// parseMAC accepts a 6-octet MAC address with one or two hex digits per
// octet ("2:0:0:0:0:1", "02:00:00:00:00:01", "02-00-...") and returns it in
// the canonical two-digit form every parser accepts.
func parseMAC(s string) (string, error) {
	octets, ok := parseMACOctets(s)
	if !ok || len(octets) != 6 {
		return "", dladmUsagef("bad MAC address %q", s)
	}
	parts := make([]string, len(octets))
	for i, o := range octets {
		parts[i] = strconv.FormatUint(uint64(o)|0x100, 16)[1:]
	}
	return strings.Join(parts, ":"), nil
}

// checkLinkName rejects what cannot be a link name (MAXLINKNAMELEN is 32
// with the NUL); the daemon checks the rest.
func checkLinkName(name string) error {
	if name == "" || len(name) > 31 || strings.HasPrefix(name, "-") || strings.ContainsAny(name, " \t\n/:") {
		return dladmUsagef("bad link name %q", name)
	}
	return nil
}
