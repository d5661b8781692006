// Package ipadm is the daemon side of tapadm ipadm: address objects
// ("tap0/v4") and the interfaces, properties and addresses configured
// through them, with their persistent store.
//
// A Registry keeps two configurations: the active one (everything ipadm
// configured, temporary changes included) and the persistent one (what
// the state file holds, restored when the daemon starts). Every change
// reaches the interface layer through ifmgr's request table
// (Manager.Do) and nothing else; ifmgr does not know this package.
//
// Each change is one write of the whole state file, made atomically
// (temporary file, fsync, rename, fsync of the directory), so a daemon
// killed at any moment restarts with the configuration from before or
// after the change it was making, never a mix.
package ipadm
