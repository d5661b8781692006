package ipadm

import (
	"errors"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/ifmgr"
)

// Registry holds the address objects and the ipadm configuration of one
// daemon, and applies them through the interface layer's request table.
//
// Locking: mu serialises every ipadm operation, reads included, and is
// held across the Manager.Do calls an operation makes, so the active
// configuration, the state file and the interface layer change together.
// LOCK ORDERING: Registry.mu before the Manager's own lock (taken inside
// Do).
type Registry struct {
	m     *ifmgr.Manager
	store *Store // nil: persistence disabled
	log   *slog.Logger

	mu sync.Mutex
	// active is the configuration in force, temporary changes included.
	// +checklocks:mu
	active *Config
	// persist is what the state file holds.
	// +checklocks:mu
	persist *Config
	// lifs remembers the logical interface each applied address object
	// was put on; it is checked against the interface layer before use.
	// +checklocks:mu
	lifs map[string]string
}

// system is the caller for the daemon's own changes (restore, undo).
var system = ifmgr.Caller{Privileged: true}

// New returns the registry of manager m, reading the state file at
// statePath ("" disables persistence). Nothing is applied until Restore.
// A state file that cannot be read or parsed is an error: starting
// without it would overwrite it at the first change.
func New(m *ifmgr.Manager, statePath string, log *slog.Logger) (*Registry, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Registry{m: m, log: log, lifs: map[string]string{}, persist: &Config{Version: configVersion}}
	if statePath != "" {
		r.store = NewStore(statePath)
		c, err := r.store.Load()
		if err != nil {
			return nil, err
		}
		r.persist = c
	}
	r.active = r.persist.clone()
	return r, nil
}

// Persistent returns a copy of the configuration the state file holds.
func (r *Registry) Persistent() *Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.persist.clone()
}

// Active returns a copy of the active configuration.
func (r *Registry) Active() *Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.active.clone()
}

// undo collects the inverse steps of a change being applied, run in
// reverse order when a later step fails.
type undo []func()

func (u *undo) add(f func()) { *u = append(*u, f) }

func (u undo) run() {
	for i := len(u) - 1; i >= 0; i-- {
		u[i]()
	}
}

// commitLocked records a change that has been applied: mut edits a
// configuration. Unless temp, it first writes the state file with the
// change; if that fails, back (the change's inverse) is run and the error
// returned, so the active configuration, the file and the interface layer
// stay in step.
func (r *Registry) commitLocked(temp bool, mut func(*Config), back undo) error {
	if !temp && r.store != nil {
		next := r.persist.clone()
		mut(next)
		if err := r.store.Save(next); err != nil {
			back.run()
			return saveError(r.store, err)
		}
		r.persist = next
	}
	mut(r.active)
	return nil
}

// commitFirstLocked records a change that cannot be undone exactly once
// applied (an unplumb loses settings made outside ipadm; an MTU set marks
// the interface FIXEDMTU): the state file is written first, then apply
// runs, and if it fails the old file is written back.
func (r *Registry) commitFirstLocked(temp bool, mut func(*Config), apply func() error) error {
	old := r.persist
	saved := false
	if !temp && r.store != nil {
		next := old.clone()
		mut(next)
		if err := r.store.Save(next); err != nil {
			return saveError(r.store, err)
		}
		r.persist, saved = next, true
	}
	if err := apply(); err != nil {
		if saved {
			if serr := r.store.Save(old); serr != nil {
				r.log.Error("ipadm: could not take back a recorded change that failed", "state", r.store.Path(), "err", serr)
			} else {
				r.persist = old
			}
		}
		return err
	}
	mut(r.active)
	return nil
}

func saveError(s *Store, err error) error {
	e := ctl.ErrnoOf(err)
	if e == 0 {
		e = ctl.ENOSPC
	}
	return ctl.Errorf(e, "could not record the change in %s: %v", s.Path(), err)
}

// lifreq runs one LIF request and returns its reply.
func (r *Registry) lifreq(c ifmgr.Caller, op string, fam ctl.Family, lr ctl.Lifreq) (ctl.Lifreq, error) {
	err := r.m.Do(c, op, fam, &lr)
	return lr, err
}

// plumbed reports whether ifname is plumbed in family fam.
func (r *Registry) plumbed(ifname string, fam ctl.Family) bool {
	_, err := r.lifreq(system, "SIOCGLIFFLAGS", fam, ctl.Lifreq{Name: ifname})
	return err == nil
}

// flags returns the flags of a logical interface.
func (r *Registry) flags(lif string, fam ctl.Family) (ctl.Flags, error) {
	lr, err := r.lifreq(system, "SIOCGLIFFLAGS", fam, ctl.Lifreq{Name: lif})
	return lr.Flags, err
}

// setFlags sets and clears flags of a logical interface and returns a
// step that restores the old flags.
func (r *Registry) setFlags(c ifmgr.Caller, lif string, fam ctl.Family, set, clear ctl.Flags) (func(), error) {
	old, err := r.flags(lif, fam)
	if err != nil {
		return nil, err
	}
	next := (old | set) &^ clear
	if next == old {
		return func() {}, nil
	}
	if _, err := r.lifreq(c, "SIOCSLIFFLAGS", fam, ctl.Lifreq{Name: lif, Flags: next}); err != nil {
		return nil, err
	}
	return func() { r.lifreq(system, "SIOCSLIFFLAGS", fam, ctl.Lifreq{Name: lif, Flags: old}) }, nil
}

// lifs lists the logical interfaces of one family with their addresses,
// in the interface layer's order.
func (r *Registry) lifList(fam ctl.Family) []ctl.Lifreq {
	lc := ctl.Lifconf{Family: fam, Flags: ctl.LIFC_NOXMIT | ctl.LIFC_TEMPORARY | ctl.LIFC_ALLZONES | ctl.LIFC_UNDER_IPMP}
	if err := r.m.Do(system, "SIOCGLIFCONF", fam, &lc); err != nil {
		r.log.Warn("ipadm: SIOCGLIFCONF", "err", err)
		return nil
	}
	return lc.Req
}

// needPriv refuses a change from an unprivileged caller before anything is
// looked at, as the request table does.
func needPriv(c ifmgr.Caller, what string) error {
	if !c.Privileged {
		return ctl.Errorf(ctl.EPERM, "%s needs network configuration privilege", what)
	}
	return nil
}

// isErrno reports whether err carries errno e.
func isErrno(err error, e ctl.Errno) bool { return errors.Is(err, e) }

func zeroAddr(f ctl.Family) netip.Addr {
	if f == ctl.AF_INET6 {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}

// changeIface runs f under the registry lock on the interface ipadm
// configured as name, after the checks every interface change begins
// with: privilege, then the name's syntax, then that it exists (ENXIO).
func (r *Registry) changeIface(c ifmgr.Caller, what, name string, f func(*Interface) error) error {
	if err := needPriv(c, what); err != nil {
		return err
	}
	if err := checkIfName(name); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	i := r.active.iface(name)
	if i == nil {
		return ctl.Errorf(ctl.ENXIO, "no interface %s configured through ipadm", name)
	}
	return f(i)
}

// changeAddr runs f under the registry lock on address object obj and its
// interface, after the privilege check.
func (r *Registry) changeAddr(c ifmgr.Caller, what, obj string, f func(*Interface, *Addr) error) error {
	if err := needPriv(c, what); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	i, o, err := r.resolveLocked(obj)
	if err != nil {
		return err
	}
	return f(i, o)
}
