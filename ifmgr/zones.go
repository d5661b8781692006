package ifmgr

import (
	"slices"

	"github.com/tapstack/tapstack/ctl"
)

// Zones (spec §2.12, §11). tapstack runs one shared IP stack, so a zone is
// only a tag: which units (and so which IREs) belong to whom. The registry
// holds the zones an administrator created; the global zone is implicit
// (id 0, name "" inside ifmgr, always running).

// zoneAll is the stored zone of a unit shared by every zone (ALL_ZONES).
// It cannot collide with a zone name: '*' is not a name character. Only a
// labeled system creates such units, so today nothing does, but the
// visibility rules keep the case.
const zoneAll = "*"

// zone is one administrator-made zone.
type zone struct {
	name  string
	id    int32
	state string // ctl.ZoneConfigured, ctl.ZoneReady or ctl.ZoneRunning
}

// zoneTable is the zone registry. It lives in Manager and is guarded by
// Manager.mu, like the units that refer to its zones by name.
type zoneTable struct {
	byName map[string]*zone
	lastID int32 // ids are handed out after it and not reused until they wrap
}

// zoneVisible reports whether a unit in unitZone is visible to a caller in
// callerZone for name lookups and per-unit requests (spec §11): a zone sees
// its own units and the shared ones; the global zone sees every zone.
func zoneVisible(unitZone, callerZone string) bool {
	return callerZone == "" || unitZone == callerZone || unitZone == zoneAll
}

// zoneListed reports whether a unit in unitZone is listed to a caller in
// callerZone (spec §2.3): its own zone and shared units; the global zone
// sees other zones only when it asks for them (LIFC_ALLZONES). allZones is
// false for SIOCGIFCONF and SIOCGIFNUM, which never show other zones.
func zoneListed(unitZone, callerZone string, allZones bool) bool {
	return unitZone == callerZone || unitZone == zoneAll || (callerZone == "" && allZones)
}

// lookupVisibleLocked is lookupLocked with the caller's zone applied: a
// unit of another zone does not exist for the caller (ENXIO).
func (m *Manager) lookupVisibleLocked(name string, fam ctl.Family, callerZone string) (*ipif, error) {
	u, err := m.lookupLocked(name, fam)
	if err != nil {
		return nil, err
	}
	if !zoneVisible(u.zone, callerZone) {
		return nil, ctl.Errorf(ctl.ENXIO, "no %s interface named %q in zone %s", famWord(fam), truncName(name), callerZone)
	}
	return u, nil
}

// zoneIDLocked returns the id of the zone called name ("" is global).
func (m *Manager) zoneIDLocked(name string) int32 {
	switch name {
	case "":
		return ctl.GLOBAL_ZONEID
	case zoneAll:
		return ctl.ALL_ZONES
	}
	if z := m.zones.byName[name]; z != nil {
		return z.id
	}
	return ctl.GLOBAL_ZONEID // unreachable: a zone in use cannot be deleted
}

// zoneByIDLocked finds a created zone by id.
func (m *Manager) zoneByIDLocked(id int32) *zone {
	for _, z := range m.zones.byName {
		if z.id == id {
			return z
		}
	}
	return nil
}

// zoneUserLocked returns a unit (of either family) in zone name, or nil.
func (m *Manager) zoneUserLocked(name string) *ipif {
	for _, v6 := range []bool{false, true} {
		for _, il := range m.illListLocked(v6) {
			for _, u := range il.ipifs {
				if u.zone == name {
					return u
				}
			}
		}
	}
	return nil
}

// SIOCSLIFZONE (spec §11): move a unit to another zone, in the spec's order
// of checks. An UP unit goes down, changes zone and comes back up, so its
// IREs are re-made in the new zone; if it cannot come back up there it is
// restored to its old zone, up, and the request fails.
func (m *Manager) sioSLifZone(c *call) error {
	u := c.target
	id := c.lifr.ZoneID
	if id == ctl.ALL_ZONES {
		return ctl.Errorf(ctl.ENOTSUP, "ALL_ZONES (an address shared by every zone) needs a labeled system; tapstack is not one")
	}
	if u.id == 0 && id != ctl.GLOBAL_ZONEID {
		return ctl.Errorf(ctl.ENOTSUP, "%s is unit 0: the physical interface's address belongs to the global zone", u.name())
	}
	name := ""
	if id != ctl.GLOBAL_ZONEID {
		z := m.zoneByIDLocked(id)
		if z == nil {
			return ctl.Errorf(ctl.EINVAL, "no zone with id %d", id)
		}
		if z.state != ctl.ZoneReady && z.state != ctl.ZoneRunning {
			return ctl.Errorf(ctl.EINVAL, "zone %s (id %d) is %s, not ready or running", z.name, id, z.state)
		}
		name = z.name
	}
	// Step 5 (an exclusive-IP stack refuses non-global zones) cannot
	// happen: tapstack's one stack is the shared one.
	old := u.zone
	wasUp := u.up()
	if wasUp {
		m.downLocked(u, true)
	}
	u.zone = name
	if !wasUp {
		return nil
	}
	err := m.upLocked(u)
	if err == nil {
		return nil
	}
	u.zone = old
	if rerr := m.upLocked(u); rerr != nil {
		m.log.Warn("unit could not come back up in its old zone", "interface", u.name(), "err", rerr)
	}
	return err
}

// validZoneName checks a name for zoneadm.create, as zonecfg does: a letter
// or digit first, then letters, digits, '-', '_' and '.', shorter than
// ZONENAME_MAX; names starting with "SUNW" are reserved.
func validZoneName(name string) error {
	if name == "" || len(name) >= ctl.ZONENAME_MAX {
		return ctl.Errorf(ctl.EINVAL, "zone name %q must have 1 to %d characters", name, ctl.ZONENAME_MAX-1)
	}
	for i, r := range name {
		alnum := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !alnum && (i == 0 || r != '-' && r != '_' && r != '.') {
			return ctl.Errorf(ctl.EINVAL, "zone name %q: a letter or digit first, then letters, digits, '-', '_' or '.'", name)
		}
	}
	if len(name) >= 4 && name[:4] == "SUNW" {
		return ctl.Errorf(ctl.EINVAL, "zone name %q: names starting with SUNW are reserved", name)
	}
	return nil
}

// zoneNamedLocked finds a created zone by name for the zoneadm requests.
func (m *Manager) zoneNamedLocked(name string) (*zone, error) {
	if name == ctl.GlobalZoneName {
		return nil, ctl.Errorf(ctl.EINVAL, "the global zone cannot be changed")
	}
	z := m.zones.byName[name]
	if z == nil {
		return nil, ctl.Errorf(ctl.EINVAL, "no zone named %q", name)
	}
	return z, nil
}

func (z *zone) info() ctl.Zone { return ctl.Zone{Name: z.name, ID: z.id, State: z.state} }

// zoneadm.create: a new zone, configured, with the next free id.
func (m *Manager) zoneCreate(c *call) error {
	name := c.zone.Name
	if err := validZoneName(name); err != nil {
		return err
	}
	if name == ctl.GlobalZoneName || m.zones.byName[name] != nil {
		return ctl.Errorf(ctl.EEXIST, "zone %s already exists", name)
	}
	id, ok := m.nextZoneIDLocked()
	if !ok {
		return ctl.Errorf(ctl.ENOSPC, "all %d zone ids are in use", ctl.MAX_ZONEID)
	}
	if m.zones.byName == nil {
		m.zones.byName = map[string]*zone{}
	}
	z := &zone{name: name, id: id, state: ctl.ZoneConfigured}
	m.zones.byName[name] = z
	m.zones.lastID = id
	*c.zone = z.info()
	return nil
}

// nextZoneIDLocked finds the first id after the last one handed out that
// no zone holds, wrapping after MAX_ZONEID.
func (m *Manager) nextZoneIDLocked() (int32, bool) {
	id := m.zones.lastID
	for range ctl.MAX_ZONEID {
		id = id%ctl.MAX_ZONEID + 1
		if m.zoneByIDLocked(id) == nil {
			return id, true
		}
	}
	return 0, false
}

// zoneDelete: a zone still holding units cannot go (EBUSY).
func (m *Manager) zoneDelete(c *call) error {
	z, err := m.zoneNamedLocked(c.zone.Name)
	if err != nil {
		return err
	}
	if u := m.zoneUserLocked(z.name); u != nil {
		return ctl.Errorf(ctl.EBUSY, "zone %s is in use by %s", z.name, u.name())
	}
	delete(m.zones.byName, z.name)
	*c.zone = z.info()
	return nil
}

// zoneadm.ready: configured → ready.
func (m *Manager) zoneReady(c *call) error {
	return m.zoneMove(c, ctl.ZoneReady, ctl.ZoneConfigured)
}

// zoneadm.boot: configured or ready → running.
func (m *Manager) zoneBoot(c *call) error {
	return m.zoneMove(c, ctl.ZoneRunning, ctl.ZoneConfigured, ctl.ZoneReady)
}

// zoneadm.halt: ready or running → configured. illumos takes the zone's
// addresses away when it halts; tapstack refuses instead (EBUSY), so an
// address never changes zone behind the administrator's back.
func (m *Manager) zoneHalt(c *call) error {
	z, err := m.zoneNamedLocked(c.zone.Name)
	if err != nil {
		return err
	}
	if z.state != ctl.ZoneConfigured {
		if u := m.zoneUserLocked(z.name); u != nil {
			return ctl.Errorf(ctl.EBUSY, "zone %s is in use by %s", z.name, u.name())
		}
	}
	return m.zoneMove(c, ctl.ZoneConfigured, ctl.ZoneReady, ctl.ZoneRunning)
}

// zoneMove changes a zone's state to to, from one of the states from;
// any other state is EALREADY (it is there, or past it).
func (m *Manager) zoneMove(c *call, to string, from ...string) error {
	z, err := m.zoneNamedLocked(c.zone.Name)
	if err != nil {
		return err
	}
	if !slices.Contains(from, z.state) {
		return ctl.Errorf(ctl.EALREADY, "zone %s is %s; it cannot become %s", z.name, z.state, to)
	}
	z.state = to
	*c.zone = z.info()
	return nil
}

// zoneadm.list: the global zone, then the created zones by id; a caller in
// a non-global zone sees only its own zone, as in illumos.
func (m *Manager) zoneList(c *call) error {
	var out []ctl.Zone
	if c.caller.Zone == "" {
		out = append(out, ctl.Zone{Name: ctl.GlobalZoneName, ID: ctl.GLOBAL_ZONEID, State: ctl.ZoneRunning})
	}
	for _, z := range m.zones.byName {
		if c.caller.Zone == "" || z.name == c.caller.Zone {
			out = append(out, z.info())
		}
	}
	slices.SortFunc(out, func(a, b ctl.Zone) int { return int(a.ID - b.ID) })
	c.zones.Zones = out
	return nil
}
