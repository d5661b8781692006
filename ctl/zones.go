package ctl

// Zones. tapstack has no operating-system zones: a zone is a named tag an
// administrator creates with "zoneadm.create"; units are moved into it
// with SIOCSLIFZONE, and control-socket clients the daemon maps to it see
// only its units (tapstackd --zone-map). Every zone shares the one IP
// stack, as illumos shared-IP zones do.

// Zone ids as illumos numbers them (lifr_zoneid).
const (
	GLOBAL_ZONEID int32 = 0
	ALL_ZONES     int32 = -1 // an address shared by every zone; labeled systems only
	MAX_ZONEID    int32 = 9999
)

// GlobalZoneName is the name of zone 0; it always exists and is running.
const GlobalZoneName = "global"

// ZONENAME_MAX bounds a zone name, terminating NUL included.
const ZONENAME_MAX = 64

// Zone states: a zone is created configured; only a ready or running
// zone may be given addresses (SIOCSLIFZONE).
const (
	ZoneConfigured = "configured"
	ZoneReady      = "ready"
	ZoneRunning    = "running"
)

// Zone is the argument of zoneadm.create, zoneadm.delete, zoneadm.ready,
// zoneadm.boot and zoneadm.halt (Name is what they read), and their
// result: the zone as it is afterwards.
type Zone struct {
	Name  string `json:"name"`
	ID    int32  `json:"id"`
	State string `json:"state,omitempty"`
}

// ZoneList is the result of zoneadm.list: the global zone first, then the
// others by id. A caller in a non-global zone sees only its own zone.
type ZoneList struct {
	Zones []Zone `json:"zones"`
}
