package daemon

import (
	"fmt"
	"net"
	"os/user"
	"strconv"
	"strings"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/ifmgr"
)

// The caller's zone. A control-socket client is in the global zone unless
// the daemon was started with --zone-map UID=ZONE for its user: then it
// sees only ZONE's units (and lists, address tests and netstat.routes
// answer for ZONE), and, like a shared-IP zone in illumos, it may change
// nothing whatever its credentials. The zone is chosen by the daemon from
// the peer's uid, never by the client, so a client cannot widen its view.

// ParseZoneMap parses one --zone-map argument, UID=ZONE, where UID is a
// number or a user name. Root cannot be mapped: it administers the zones.
// ZONE "global" is the global zone (no mapping).
func ParseZoneMap(s string) (uid uint32, zone string, err error) {
	who, zone, ok := strings.Cut(s, "=")
	if !ok || who == "" || zone == "" {
		return 0, "", fmt.Errorf("zone map %q: want UID=ZONE", s)
	}
	if n, perr := strconv.ParseUint(who, 10, 32); perr == nil {
		uid = uint32(n)
	} else {
		u, lerr := user.Lookup(who)
		if lerr != nil {
			return 0, "", fmt.Errorf("zone map %q: %w", s, lerr)
		}
		n, perr := strconv.ParseUint(u.Uid, 10, 32)
		if perr != nil {
			return 0, "", fmt.Errorf("zone map %q: user %s has a non-numeric uid %q", s, who, u.Uid)
		}
		uid = uint32(n)
	}
	if uid == 0 {
		return 0, "", fmt.Errorf("zone map %q: root is always in the global zone", s)
	}
	if len(zone) >= ctl.ZONENAME_MAX || strings.ContainsAny(zone, " \t*/") {
		return 0, "", fmt.Errorf("zone map %q: %q is not a zone name", s, zone)
	}
	if zone == ctl.GlobalZoneName {
		zone = ""
	}
	return uid, zone, nil
}

// callerOf is who the peer on c is for ifmgr: its zone from the zone map,
// and privileged only in the global zone. A peer whose credentials cannot
// be read is unprivileged.
func (d *Daemon) callerOf(c *net.UnixConn) ifmgr.Caller {
	cred, err := peerCred(c)
	if err != nil {
		d.log.Warn("control socket peer credentials", "err", err)
		return ifmgr.Caller{}
	}
	zone := d.cfg.ZoneMap[cred.Uid]
	return ifmgr.Caller{Privileged: zone == "" && d.priv.allows(cred), Zone: zone}
}

// zoneRoutes filters netstat.routes for the caller: a non-global zone
// sees only its own IREs, as netstat -r does inside an illumos zone; the
// global zone sees the whole table.
func zoneRoutes(caller ifmgr.Caller, rs []ctl.RouteEntry) []ctl.RouteEntry {
	if caller.Zone == "" {
		return rs
	}
	var out []ctl.RouteEntry
	for _, r := range rs {
		if r.Zone == caller.Zone {
			out = append(out, r)
		}
	}
	return out
}
