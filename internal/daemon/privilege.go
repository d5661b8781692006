package daemon

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/user"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// privilege decides which control-socket peers may run set-requests and
// the privileged daemon operations: root, the daemon's own user, and
// members of the groups named at start (tapstackd --group). Everyone may
// connect (the socket is mode 0666) and run get-requests.
//
// It is read-only after newPrivilege, so connections share it unlocked.
type privilege struct {
	uid  uint32
	gids map[uint32]string // privileged group ids, to their names for logs
}

// newPrivilege resolves the group names (or numeric gids) once, at start:
// an unknown group is an error, not a silently powerless option.
func newPrivilege(groups []string) (*privilege, error) {
	p := &privilege{uid: uint32(os.Getuid()), gids: map[uint32]string{}}
	for _, g := range groups {
		gid, err := lookupGroup(g)
		if err != nil {
			return nil, err
		}
		p.gids[gid] = g
	}
	return p, nil
}

// lookupGroup returns the id of a group given by name or number.
func lookupGroup(g string) (uint32, error) {
	if n, err := strconv.ParseUint(g, 10, 32); err == nil {
		return uint32(n), nil
	}
	grp, err := user.LookupGroup(g)
	if err != nil {
		return 0, fmt.Errorf("privilege group %q: %w", g, err)
	}
	n, err := strconv.ParseUint(grp.Gid, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("privilege group %q has a non-numeric id %q", g, grp.Gid)
	}
	return uint32(n), nil
}

// peerCred returns the credentials the kernel recorded for the peer of c
// when it connected (SO_PEERCRED: pid, effective uid and gid).
func peerCred(c *net.UnixConn) (*unix.Ucred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	return cred, credErr
}

// allows reports whether a peer with these credentials is privileged.
// Supplementary groups are not in SO_PEERCRED; they are read from
// /proc/PID/status, and only if that process still has the peer's uid,
// so a pid reused by another user's process cannot lend its groups.
func (p *privilege) allows(cred *unix.Ucred) bool {
	if cred.Uid == 0 || cred.Uid == p.uid {
		return true
	}
	if len(p.gids) == 0 {
		return false
	}
	if _, ok := p.gids[cred.Gid]; ok {
		return true
	}
	groups, err := procGroups(int(cred.Pid), cred.Uid)
	if err != nil {
		return false
	}
	for _, g := range groups {
		if _, ok := p.gids[g]; ok {
			return true
		}
	}
	return false
}

// procGroups reads the supplementary groups of process pid from
// /proc/PID/status, after checking that its effective uid is uid.
func procGroups(pid int, uid uint32) ([]uint32, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseStatusGroups(bufio.NewScanner(f), uid)
}

// parseStatusGroups takes the Groups: line of a /proc/PID/status, if its
// Uid: line (real, effective, saved, fs) has effective uid uid.
func parseStatusGroups(sc *bufio.Scanner, uid uint32) ([]uint32, error) {
	var groups []uint32
	uidOK, sawGroups := false, false
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(val)
		switch key {
		case "Uid":
			uidOK = len(fields) >= 2 && fields[1] == strconv.FormatUint(uint64(uid), 10)
		case "Groups":
			sawGroups = true
			for _, s := range fields {
				n, err := strconv.ParseUint(s, 10, 32)
				if err != nil {
					return nil, fmt.Errorf("bad group %q in Groups: line", s)
				}
				groups = append(groups, uint32(n))
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !uidOK || !sawGroups {
		return nil, fmt.Errorf("process status lacks the peer's uid %d or a Groups: line", uid)
	}
	return groups, nil
}
