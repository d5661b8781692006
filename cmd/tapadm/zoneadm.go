package main

// The zoneadm verb: the daemon's zones, which are named tags for sets of
// addresses (ctl/zones.go). Interfaces join a zone with
// `ifconfig IF:N zone NAME`.

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/tapstack/tapstack/ctl"
)

const zoneadmUsage = `  tapadm zoneadm create|delete|ready|boot|halt NAME
  tapadm zoneadm list [-o json]
`

func zoneadmUsagef(format string, args ...any) error {
	return usagef("zoneadm", format, args...)
}

// zoneadmOps are the subcommands that act on one zone, each a request.
var zoneadmOps = map[string]bool{"create": true, "delete": true, "ready": true, "boot": true, "halt": true}

// zoneadm runs the zoneadm verb.
func (a *app) zoneadm(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return zoneadmUsagef("missing subcommand")
	}
	sub, rest := args[0], args[1:]
	if zoneadmOps[sub] {
		if len(rest) != 1 || strings.HasPrefix(rest[0], "-") {
			return zoneadmUsagef("%s takes exactly one zone name", sub)
		}
		r, err := a.conn()
		if err != nil {
			return err
		}
		var z ctl.Zone
		return r.Do(ctx, "zoneadm."+sub, "", ctl.Zone{Name: rest[0]}, &z)
	}
	if sub != "list" {
		return zoneadmUsagef("unknown subcommand %q", sub)
	}
	rest, json, err := stripJSON("zoneadm", rest)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return zoneadmUsagef("list takes only -o json")
	}
	r, err := a.conn()
	if err != nil {
		return err
	}
	var l ctl.ZoneList
	if err := r.Do(ctx, "zoneadm.list", "", nil, &l); err != nil {
		return err
	}
	if json {
		if l.Zones == nil {
			l.Zones = []ctl.Zone{}
		}
		return writeJSON(a.stdout, l.Zones)
	}
	return writeZones(a.stdout, l.Zones)
}

// writeZones prints zones as `zoneadm list -cv` does, without the PATH
// and BRAND columns, which tapstack's zones lack. Every zone shares the
// one IP stack, so IP is always "shared".
func writeZones(w io.Writer, zones []ctl.Zone) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%4s %-16s %-10s %s\n", "ID", "NAME", "STATUS", "IP")
	for _, z := range zones {
		fmt.Fprintf(&b, "%4d %-16s %-10s %s\n", z.ID, z.Name, z.State, "shared")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// zoneIDByName returns the id the daemon gave zone name, for
// SIOCSLIFZONE's lifr_zoneid; "global" is always 0.
func zoneIDByName(ctx context.Context, r requester, name string) (int32, error) {
	if name == ctl.GlobalZoneName {
		return ctl.GLOBAL_ZONEID, nil
	}
	var l ctl.ZoneList
	if err := r.Do(ctx, "zoneadm.list", "", nil, &l); err != nil {
		return 0, err
	}
	for _, z := range l.Zones {
		if z.Name == name {
			return z.ID, nil
		}
	}
	return 0, fmt.Errorf("zone %s: no such zone (see tapadm zoneadm list)", name)
}
