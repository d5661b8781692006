package integration

// Privilege groups and zones end to end: real users and groups made with
// groupadd/useradd, tapadm run under their credentials, the daemon
// deciding from SO_PEERCRED and /proc what each may do and see.

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/internal/netnstest"
)

// testUser is a throwaway local account.
type testUser struct {
	name   string
	uid    uint32
	gid    uint32
	groups []uint32 // every group, as login would set them
}

// requireAccountTools skips (fails under CI) without the shadow tools.
func requireAccountTools(t *testing.T) {
	t.Helper()
	netnstest.Require(t)
	for _, c := range []string{"groupadd", "groupdel", "useradd", "userdel"} {
		if _, err := netnstest.LookCmd(c); err != nil {
			netnstest.Unavailable(t, "privilege tests need root and %s: %v", c, err)
		}
	}
}

// runTool runs an account tool and fails the test if it fails.
func runTool(t *testing.T, name string, args ...string) {
	t.Helper()
	path, err := netnstest.LookCmd(name)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(path, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// newGroup makes a group with a unique name, deleted when the test ends.
func newGroup(t *testing.T) string {
	t.Helper()
	name := netnstest.UniqueName("tsgrp")
	runTool(t, "groupadd", name)
	t.Cleanup(func() { runTool(t, "groupdel", name) })
	return name
}

// newUser makes a user with a unique name, no home and no login shell,
// in the extra groups given; it is deleted when the test ends.
func newUser(t *testing.T, groups ...string) *testUser {
	t.Helper()
	name := netnstest.UniqueName("tsusr")
	args := []string{"-M", "-N", "-s", "/usr/sbin/nologin"}
	if len(groups) > 0 {
		args = append(args, "-G", strings.Join(groups, ","))
	}
	runTool(t, "useradd", append(args, name)...)
	t.Cleanup(func() { runTool(t, "userdel", name) })
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	tu := &testUser{name: name, uid: atou32(t, u.Uid), gid: atou32(t, u.Gid)}
	gids, err := u.GroupIds()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range gids {
		tu.groups = append(tu.groups, atou32(t, g))
	}
	return tu
}

func atou32(t *testing.T, s string) uint32 {
	t.Helper()
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		t.Fatalf("id %q: %v", s, err)
	}
	return uint32(n)
}

// userTapadm makes the daemon's socket and a copy of tapadm reachable by
// other users: the test's temporary directories are mode 0700, while a
// real installation keeps the socket in a 0755 directory (the daemon
// makes /run/tapstack so); the socket itself is 0666. It returns the path
// of the tapadm copy.
func userTapadm(t *testing.T, d *daemon) string {
	t.Helper()
	dir := t.TempDir()
	for _, p := range []string{filepath.Dir(dir), dir, filepath.Dir(d.sock), filepath.Dir(filepath.Dir(d.sock))} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	src, err := os.Open(filepath.Join(binDir, "tapadm"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	bin := filepath.Join(dir, "tapadm")
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return bin
}

// tapadmAs runs tapadm with u's uid, gid and groups and returns its
// combined output.
func tapadmAs(d *daemon, bin string, u *testUser, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--ctl", d.sock}, args...)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: u.uid, Gid: u.gid, Groups: u.groups}}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestPrivilegeGroups: a member of a --group may run set-requests and the
// privileged daemon operations; another user gets EPERM and changes
// nothing; both may run get-requests.
func TestPrivilegeGroups(t *testing.T) {
	requireAccountTools(t)
	grp := newGroup(t)
	member := newUser(t, grp)
	outsider := newUser(t)
	d := startDaemon(t, "--group", grp)
	bin := userTapadm(t, d)

	for _, u := range []*testUser{member, outsider} {
		out, err := tapadmAs(d, bin, u, "ifconfig", "-a")
		if err != nil || !strings.Contains(out, "lo0: flags=") {
			t.Errorf("ifconfig -a as %s: %v\n%s", u.name, err, out)
		}
		if out, err := tapadmAs(d, bin, u, "zoneadm", "list"); err != nil || !strings.Contains(out, "global") {
			t.Errorf("zoneadm list as %s: %v\n%s", u.name, err, out)
		}
	}

	before := d.tapadm("ifconfig", "-a")
	for _, args := range [][]string{
		{"ifconfig", "lo0", "addif", "127.0.0.9/8", "up"},
		{"ifconfig", "lo0", "mtu", "8000"},
		{"zoneadm", "create", "web"},
		{"dladm", "delete-link", "nosuch0"},
		{"dladm", "create-tap", netnstest.UniqueName("tsperm")},
	} {
		out, err := tapadmAs(d, bin, outsider, args...)
		if err == nil || !strings.Contains(out, "EPERM") {
			t.Errorf("%s as a user outside %s: %v, want EPERM\n%s", strings.Join(args, " "), grp, err, out)
		}
	}
	if after := d.tapadm("ifconfig", "-a"); after != before {
		t.Errorf("refused requests changed the interfaces:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	var zones []ctl.Zone
	d.jsonOut(&zones, "zoneadm", "list")
	if len(zones) != 1 {
		t.Errorf("a refused zoneadm create made a zone: %+v", zones)
	}

	if out, err := tapadmAs(d, bin, member, "ifconfig", "lo0", "addif", "127.0.0.9/8", "up"); err != nil {
		t.Fatalf("addif as a member of %s: %v\n%s", grp, err, out)
	}
	if out, err := tapadmAs(d, bin, member, "dladm", "delete-link", "nosuch0"); strings.Contains(out, "EPERM") {
		t.Errorf("dladm delete-link as a member: %v\n%s (want a refusal other than EPERM)", err, out)
	}
	out, err := tapadmAs(d, bin, outsider, "ifconfig", "lo0:1")
	if err != nil || !strings.Contains(out, "inet 127.0.0.9 ") || !strings.Contains(out, "UP") {
		t.Errorf("the member's unit as the outsider sees it: %v\n%s", err, out)
	}
}

// TestPrivilegeUnknownGroup: a --group that does not exist stops the
// daemon at start instead of silently granting nothing.
func TestPrivilegeUnknownGroup(t *testing.T) {
	requireAccountTools(t)
	grp := netnstest.UniqueName("tsnogrp")
	cmd := daemonCommand(t, "", "--ctl", filepath.Join(t.TempDir(), "s.sock"), "--group", grp)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), grp) {
		t.Errorf("tapstackd --group %s: %v\n%s (want a failure naming the group)", grp, err, out)
	}
}

// TestZones: a unit moved into a zone keeps answering, carries its zone in
// ifconfig and netstat, and is all a client mapped to that zone sees; that
// client may change nothing.
func TestZones(t *testing.T) {
	requireAccountTools(t)
	zoned := newUser(t)
	s := newSetup(t, 85, "--zone-map", fmt.Sprintf("%s=web", zoned.name))
	bin := userTapadm(t, s.daemon)
	second := "10.85.0.3"

	s.tapadm("zoneadm", "create", "web")
	if out, err := s.tryTapadm("ifconfig", "tap0", "addif", second+"/24", "zone", "web", "up"); err == nil || !strings.Contains(out, "EINVAL") {
		t.Errorf("zone change into a configured zone: %v\n%s (want EINVAL)", err, out)
	}
	s.tapadm("zoneadm", "boot", "web")
	s.tapadm("ifconfig", "tap0:1", "zone", "web", "up")
	out := s.tapadm("ifconfig", "tap0:1")
	if !strings.Contains(out, "\n\tzone web\n\tinet "+second+" ") {
		t.Errorf("ifconfig tap0:1 does not show zone web:\n%s", out)
	}
	if !s.nsPing(second) {
		t.Error("the unit stopped answering after moving to zone web")
	}
	found := false
	for _, r := range s.routes(ctl.AF_INET) {
		if r.Type == "LOCAL" && r.Destination.Addr().String() == second {
			found = true
			if r.Zone != "web" {
				t.Errorf("LOCAL IRE of %s in zone %q, want web", second, r.Zone)
			}
		}
	}
	if !found {
		t.Errorf("no LOCAL IRE for %s", second)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"ifconfig", "tap0", "zone", "web"}, "ENOTSUP"},
		{[]string{"ifconfig", "tap0:1", "all-zones"}, "ENOTSUP"},
		{[]string{"ifconfig", "tap0:1", "zone", "nosuch"}, "no such zone"},
		{[]string{"zoneadm", "delete", "web"}, "EBUSY"},
		{[]string{"zoneadm", "halt", "web"}, "EBUSY"},
	} {
		if out, err := s.tryTapadm(c.args...); err == nil || !strings.Contains(out, c.want) {
			t.Errorf("tapadm %s: %v\n%s (want %s)", strings.Join(c.args, " "), err, out, c.want)
		}
	}

	// The zone's client sees only the zone's unit, and changes nothing.
	out, err := tapadmAs(s.daemon, bin, zoned, "ifconfig", "-a")
	if err != nil || !strings.Contains(out, "tap0:1: flags=") || strings.Contains(out, "tap0: ") || strings.Contains(out, "lo0") {
		t.Errorf("ifconfig -a in zone web: %v\n%s", err, out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"ifconfig", "tap0"}, "ENXIO"},
		{[]string{"ifconfig", "tap0:1", "down"}, "EPERM"},
		{[]string{"zoneadm", "create", "db"}, "EPERM"},
	} {
		if out, err := tapadmAs(s.daemon, bin, zoned, c.args...); err == nil || !strings.Contains(out, c.want) {
			t.Errorf("tapadm %s in zone web: %v\n%s (want %s)", strings.Join(c.args, " "), err, out, c.want)
		}
	}
	if !s.nsPing(second) {
		t.Error("a refused down from the zone took the unit down")
	}
	if out, err := tapadmAs(s.daemon, bin, zoned, "zoneadm", "list"); err != nil || strings.Contains(out, "global") || !strings.Contains(out, "web") {
		t.Errorf("zoneadm list in zone web: %v\n%s", err, out)
	}

	// Back to the global zone: the zone's client loses sight of it.
	s.tapadm("ifconfig", "tap0:1", "-zone")
	if out := s.tapadm("ifconfig", "tap0:1"); strings.Contains(out, "zone") {
		t.Errorf("after -zone:\n%s", out)
	}
	if !s.nsPing(second) {
		t.Errorf("the unit stopped answering after returning to the global zone:\n%s", s.tapadm("ifconfig", "-a"))
	}
	if out, err := tapadmAs(s.daemon, bin, zoned, "ifconfig", "tap0:1"); err == nil || !strings.Contains(out, "ENXIO") {
		t.Errorf("ifconfig tap0:1 in zone web after -zone: %v\n%s (want ENXIO)", err, out)
	}
	s.tapadm("zoneadm", "halt", "web")
	s.tapadm("zoneadm", "delete", "web")
}
