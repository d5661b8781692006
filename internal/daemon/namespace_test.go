package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/gateway"
	"github.com/tapstack/tapstack/ifmgr"
	"github.com/tapstack/tapstack/link"
	"github.com/tapstack/tapstack/link/memory"
	"github.com/tapstack/tapstack/link/tap"
)

// memoryTap is an OpenTap that makes one end of an in-memory pair instead
// of a TAP, so that sessions need no root; the other end is closed with
// the test.
func memoryTap(t *testing.T) func(tap.Config) (*link.Link, error) {
	return func(c tap.Config) (*link.Link, error) {
		a, b := memory.NewPair(c.Name, c.Name+"-peer", c.MTU, nil, nil)
		t.Cleanup(func() { b.Close() })
		return a, nil
	}
}

// selfNetns is a namespace every process can open: its own.
const selfNetns = "/proc/self/ns/net"

// lifAddrs lists "name addr/prefix" for every logical interface of a
// family but lo0.
func lifAddrs(t *testing.T, d *Daemon, fam ctl.Family) []string {
	t.Helper()
	lc := ctl.Lifconf{Family: fam}
	if err := d.Manager().Do(ifmgr.Caller{}, "SIOCGLIFCONF", fam, &lc); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range lc.Req {
		if strings.HasPrefix(r.Name, "lo0") {
			continue
		}
		m := ctl.Lifreq{Name: r.Name}
		if err := d.Manager().Do(ifmgr.Caller{}, "SIOCGLIFNETMASK", fam, &m); err != nil {
			t.Fatal(err)
		}
		f := ctl.Lifreq{Name: r.Name}
		if err := d.Manager().Do(ifmgr.Caller{}, "SIOCGLIFFLAGS", fam, &f); err != nil {
			t.Fatal(err)
		}
		bits, _ := m.Addr.MarshalBinary()
		n := 0
		for _, b := range bits {
			for ; b&0x80 != 0; b <<= 1 {
				n++
			}
		}
		up := ""
		if f.Flags&ctl.IFF_UP != 0 {
			up = " UP"
		}
		out = append(out, r.Name+" "+r.Addr.String()+"/"+strconv.Itoa(n)+up)
	}
	return out
}

// assertNothingLeft checks that no link, interface or session remains.
func assertNothingLeft(t *testing.T, d *Daemon) {
	t.Helper()
	if ls := d.showLinks(); len(ls) != 0 {
		t.Errorf("links left: %+v", ls)
	}
	for _, fam := range []ctl.Family{ctl.AF_INET, ctl.AF_INET6} {
		if got := lifAddrs(t, d, fam); len(got) != 0 {
			t.Errorf("%s interfaces left: %v", fam, got)
		}
	}
	if ns := d.Namespaces(); len(ns) != 0 {
		t.Errorf("sessions left: %d", len(ns))
	}
}

func TestConnectNamespacePlumbs(t *testing.T) {
	d, _ := startTestDaemon(t)
	n, err := d.ConnectNamespace(NamespaceConfig{Netns: selfNetns, IPv6: true, OpenTap: memoryTap(t)})
	if err != nil {
		t.Fatal(err)
	}
	want4 := []string{"tap0 10.0.2.2/24 UP", "tap0:1 10.0.2.3/24 UP"}
	if diff := cmp.Diff(want4, lifAddrs(t, d, ctl.AF_INET)); diff != "" {
		t.Errorf("IPv4 interfaces (-want +got):\n%s", diff)
	}
	want6 := []string{"tap0 fe80::2/64 UP", "tap0:1 fd00::2/64 UP", "tap0:2 fd00::3/64 UP"}
	if diff := cmp.Diff(want6, lifAddrs(t, d, ctl.AF_INET6)); diff != "" {
		t.Errorf("IPv6 interfaces (-want +got):\n%s", diff)
	}
	if ls := d.showLinks(); len(ls) != 1 || ls[0].Link != "tap0" {
		t.Errorf("links: %+v", ls)
	}
	cfg := n.Gateway().Config()
	wantV4 := gateway.Addrs{Gateway: gateway.DefaultGatewayV4, DNS: gateway.DefaultDNSV4, Guest: gateway.DefaultGuestV4, Prefix: 24}
	wantV6 := gateway.Addrs{Gateway: gateway.DefaultGatewayV6, DNS: gateway.DefaultDNSV6, Guest: gateway.DefaultGuestV6, Prefix: 64}
	if cfg.NIC != "tap0" || cfg.V4 != wantV4 || cfg.V6 != wantV6 || cfg.Link == nil {
		t.Errorf("gateway config: NIC %q V4 %+v V6 %+v link %v", cfg.NIC, cfg.V4, cfg.V6, cfg.Link)
	}
	if err := d.deleteLink(ifmgr.Caller{Privileged: true}, "tap0"); ctl.ErrnoOf(err) != ctl.EBUSY {
		t.Errorf("delete-link of the session's link: %v, want EBUSY", err)
	}
	select {
	case <-n.Done():
		t.Fatal("Done closed while the namespace exists")
	case <-time.After(3 * pollInterval):
	}
	n.Close()
	n.Close()
	select {
	case <-n.Done():
	default:
		t.Error("Done not closed by Close")
	}
	assertNothingLeft(t, d)
}

func TestConnectNamespaceCIDR(t *testing.T) {
	d, _ := startTestDaemon(t)
	n, err := d.ConnectNamespace(NamespaceConfig{
		Netns: selfNetns, TapName: "tap7", CIDR: netip.MustParsePrefix("192.168.50.77/25"), OpenTap: memoryTap(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	want := []string{"tap7 192.168.50.2/25 UP", "tap7:1 192.168.50.3/25 UP"}
	if diff := cmp.Diff(want, lifAddrs(t, d, ctl.AF_INET)); diff != "" {
		t.Errorf("IPv4 interfaces (-want +got):\n%s", diff)
	}
	if got := lifAddrs(t, d, ctl.AF_INET6); len(got) != 0 {
		t.Errorf("IPv6 plumbed without IPv6: %v", got)
	}
	if g := n.Gateway().Config().V4.Guest; g != netip.MustParseAddr("192.168.50.100") {
		t.Errorf("guest %v", g)
	}
}

func TestConnectNamespaceErrors(t *testing.T) {
	d, _ := startTestDaemon(t)
	// A link of the same name, made the usual way.
	a, b := memory.NewPair("busy0", "busy0-peer", 1500, nil, nil)
	defer b.Close()
	if err := d.AddLink(a); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		cfg   NamespaceConfig
		errno ctl.Errno
		msg   string
	}{
		{"no such netns", NamespaceConfig{Netns: "tapstack-no-such-ns"}, ctl.ENOENT, "netns tapstack-no-such-ns: no such network namespace"},
		{"no such path", NamespaceConfig{Netns: "/nonexistent/ns"}, ctl.ENOENT, "no such network namespace"},
		{"no such process", NamespaceConfig{Netns: "999999999"}, ctl.ENOENT, "no such process"},
		{"relative path", NamespaceConfig{Netns: "a/b"}, ctl.EINVAL, "not a name under /run/netns"},
		{"empty", NamespaceConfig{}, ctl.EINVAL, "no network namespace"},
		{"not a netns", NamespaceConfig{Netns: "/proc/self/ns/uts"}, ctl.EINVAL, "not a network namespace"},
		{"IPv6 CIDR", NamespaceConfig{Netns: selfNetns, CIDR: netip.MustParsePrefix("fd00::/64")}, ctl.EINVAL, "not an IPv4 prefix"},
		{"CIDR too long", NamespaceConfig{Netns: selfNetns, CIDR: netip.MustParsePrefix("10.0.2.0/26")}, ctl.EINVAL, "/25"},
		{"MTU too big", NamespaceConfig{Netns: selfNetns, MTU: MaxMTU + 1}, ctl.EINVAL, "MTU"},
		{"MTU too small for IPv6", NamespaceConfig{Netns: selfNetns, MTU: 1000, IPv6: true}, ctl.EINVAL, "MTU"},
		{"MAC without configure", NamespaceConfig{Netns: selfNetns, MAC: []byte{2, 0, 0, 0, 0, 1}}, ctl.EINVAL, "Configure"},
		{"link exists", NamespaceConfig{Netns: selfNetns, TapName: "busy0"}, ctl.EEXIST, "busy0"},
		{"forward fails", NamespaceConfig{Netns: selfNetns, Forwards: []ctl.Forward{{Proto: "sctp", HostPort: 1, GuestPort: 1}}}, ctl.EINVAL, "port forward"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.cfg.OpenTap == nil {
				tc.cfg.OpenTap = memoryTap(t)
			}
			n, err := d.ConnectNamespace(tc.cfg)
			if err == nil {
				n.Close()
				t.Fatal("no error")
			}
			if tc.errno != 0 && ctl.ErrnoOf(err) != tc.errno {
				t.Errorf("errno %v, want %v (%v)", ctl.ErrnoOf(err), tc.errno, err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
			if ls := d.showLinks(); len(ls) != 1 || ls[0].Link != "busy0" {
				t.Errorf("links after the failure: %+v", ls)
			}
			for _, fam := range []ctl.Family{ctl.AF_INET, ctl.AF_INET6} {
				if got := lifAddrs(t, d, fam); len(got) != 0 {
					t.Errorf("%s interfaces left: %v", fam, got)
				}
			}
			if len(d.Namespaces()) != 0 {
				t.Error("a session was left")
			}
		})
	}
}

// TestNamespaceDoneWhenProcessExits: a namespace named by PID ends with
// its process.
func TestNamespaceDoneWhenProcessExits(t *testing.T) {
	d, _ := startTestDaemon(t)
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal("no sleep command:", err)
	}
	waited := make(chan struct{})
	go func() { cmd.Wait(); close(waited) }()
	defer func() { cmd.Process.Kill(); <-waited }()
	n, err := d.ConnectNamespace(NamespaceConfig{Netns: strconv.Itoa(cmd.Process.Pid), OpenTap: memoryTap(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	select {
	case <-n.Done():
		t.Fatal("Done closed while the process runs")
	case <-time.After(2 * pollInterval):
	}
	cmd.Process.Kill()
	<-waited
	select {
	case <-n.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after the process exited")
	}
	n.Close()
	assertNothingLeft(t, d)
}

// nsRequest sends one request line through dispatch as a caller.
func nsRequest(d *Daemon, priv bool, op string, args any) (json.RawMessage, error) {
	req := ctl.Request{Op: op}
	if args != nil {
		raw, err := json.Marshal(args)
		if err != nil {
			return nil, err
		}
		req.Args = raw
	}
	res, err := d.dispatch(ifmgr.Caller{Privileged: priv}, &req)
	if err != nil {
		return nil, err
	}
	return json.Marshal(res)
}

func TestForwardOpsWithoutSession(t *testing.T) {
	d, _ := startTestDaemon(t)
	for _, tc := range []struct {
		op   string
		args any
	}{
		{"gateway.add-forward", map[string]string{"spec": "8080:80"}},
		{"gateway.list-forwards", nil},
		{"gateway.remove-forward", ctl.ForwardID{ID: 1}},
	} {
		_, err := nsRequest(d, true, tc.op, tc.args)
		if ctl.ErrnoOf(err) != ctl.ENXIO || !strings.Contains(err.Error(), "no namespace gateway is running") {
			t.Errorf("%s: %v, want ENXIO no namespace gateway is running", tc.op, err)
		}
	}
}

func TestForwardOps(t *testing.T) {
	d, sock := startTestDaemon(t)
	n, err := d.ConnectNamespace(NamespaceConfig{Netns: selfNetns, OpenTap: memoryTap(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	c, err := ctl.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	var list []ctl.Forward
	if err := c.Do(ctx, "gateway.list-forwards", "", nil, &list); err != nil || list == nil || len(list) != 0 {
		t.Fatalf("list-forwards with none: %v, %v (want [])", list, err)
	}
	// Refusals that do not depend on the gateway.
	if _, err := nsRequest(d, false, "gateway.add-forward", map[string]string{"spec": "8080:80"}); ctl.ErrnoOf(err) != ctl.EPERM {
		t.Errorf("unprivileged add-forward: %v, want EPERM", err)
	}
	if _, err := nsRequest(d, false, "gateway.remove-forward", ctl.ForwardID{ID: 1}); ctl.ErrnoOf(err) != ctl.EPERM {
		t.Errorf("unprivileged remove-forward: %v, want EPERM", err)
	}
	if _, err := nsRequest(d, true, "gateway.add-forward", map[string]any{"spec": "8080:80", "host_port": 8080}); ctl.ErrnoOf(err) != ctl.EINVAL {
		t.Errorf("spec and fields: %v, want EINVAL", err)
	}
	for _, spec := range []string{"nonsense", "8080", "70000:80", "8080:80/sctp"} {
		err := c.Do(ctx, "gateway.add-forward", "", map[string]string{"spec": spec}, nil)
		if e := ctl.ErrnoOf(err); e != ctl.EINVAL && e != ctl.ENOTSUP {
			t.Errorf("add-forward %q: %v, want EINVAL", spec, err)
		}
	}
	if err := c.Do(ctx, "gateway.list-forwards", "", nil, &list); err != nil || len(list) != 0 {
		t.Errorf("list-forwards after refused adds: %v, %v", list, err)
	}

	// What follows needs the gateway's forwards.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	var added ctl.Forward
	err = c.Do(ctx, "gateway.add-forward", "", map[string]string{"spec": fmt.Sprintf("127.0.0.1:%d:80/tcp", port)}, &added)
	if err != nil {
		t.Fatalf("add-forward: %v", err)
	}
	if added.ID == 0 || added.Proto != "tcp" || added.GuestPort != 80 {
		t.Errorf("added %+v", added)
	}
	if err := c.Do(ctx, "gateway.list-forwards", "", nil, &list); err != nil || !slices.ContainsFunc(list, func(f ctl.Forward) bool { return f.ID == added.ID }) {
		t.Errorf("list-forwards: %+v, %v; want ID %d", list, err, added.ID)
	}
	if err := c.Do(ctx, "gateway.remove-forward", "", ctl.ForwardID{ID: added.ID + 1000}, nil); !errors.Is(err, ctl.ENOENT) {
		t.Errorf("remove unknown forward: %v, want ENOENT", err)
	}
	if err := c.Do(ctx, "gateway.remove-forward", "", ctl.ForwardID{ID: added.ID}, nil); err != nil {
		t.Errorf("remove-forward: %v", err)
	}
	if err := c.Do(ctx, "gateway.list-forwards", "", nil, &list); err != nil || len(list) != 0 {
		t.Errorf("list-forwards after remove: %+v, %v", list, err)
	}
}
