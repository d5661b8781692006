package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/ifmgr"
)

// startTestDaemon runs a daemon with no TAP support on a temporary socket.
func startTestDaemon(t testing.TB) (*Daemon, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "ctl.sock")
	d, err := New(Config{CtlPath: sock})
	if err != nil {
		t.Fatal(err)
	}
	serveInTest(t, d)
	return d, sock
}

func TestProtocol(t *testing.T) {
	_, sock := startTestDaemon(t)
	c, err := ctl.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	var lc ctl.Lifconf
	if err := c.Do(ctx, "SIOCGLIFCONF", ctl.AF_UNSPEC, ctl.Lifconf{}, &lc); err != nil || len(lc.Req) != 2 {
		t.Fatalf("SIOCGLIFCONF: %+v, %v", lc, err)
	}
	for _, tc := range []struct {
		op   string
		args any
		want ctl.Errno
	}{
		{"SIOCNOSUCH", nil, ctl.EINVAL},
		{"dladm.create-tap", ctl.CreateTap{Name: "tap0"}, ctl.ENOTSUP},
		{"dladm.delete-link", ctl.LinkName{Name: "tap0"}, ctl.ENXIO},
		{"SIOCSLIFNAME", ctl.Lifreq{Name: "tap0", Flags: ctl.IFF_IPV4}, ctl.ENXIO},
		{"SIOCGLIFFLAGS", ctl.Lifreq{Name: "nosuch0"}, ctl.ENXIO},
		{"SIOCGLIFFLAGS", map[string]any{"lifr_name": 7}, ctl.EINVAL},
		{"ping", ctl.Ping{}, ctl.EINVAL},
	} {
		err := c.Do(ctx, tc.op, ctl.AF_INET, tc.args, nil)
		if ctl.ErrnoOf(err) != tc.want {
			t.Errorf("%s %+v: %v, want %v", tc.op, tc.args, err, tc.want)
		}
	}
	var links []ctl.LinkInfo
	if err := c.Do(ctx, "dladm.show-link", "", nil, &links); err != nil || len(links) != 0 {
		t.Errorf("show-link: %v, %v", links, err)
	}
	var routes []ctl.RouteEntry
	if err := c.Do(ctx, "netstat.routes", ctl.AF_INET6, nil, &routes); err != nil || len(routes) != 1 || routes[0].Type != "LOOPBACK" {
		t.Errorf("netstat.routes inet6: %+v, %v", routes, err)
	}
}

// TestMalformedLine: garbage gets an EINVAL reply and the connection stays
// usable.
func TestMalformedLine(t *testing.T) {
	_, sock := startTestDaemon(t)
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	for _, line := range []string{"{not json\n", `{"op":"SIOCGLIFNUM","args":{"lifn_family":"inet"}}` + "\n"} {
		if _, err := conn.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
		reply, err := r.ReadBytes('\n')
		if err != nil {
			t.Fatal(err)
		}
		var resp ctl.Response
		if err := json.Unmarshal(reply, &resp); err != nil {
			t.Fatalf("reply %q: %v", reply, err)
		}
		if line[0] == '{' && line[1] == 'n' {
			if resp.Errno != "EINVAL" || resp.Message == "" {
				t.Errorf("garbage got %+v", resp)
			}
			continue
		}
		var n ctl.Lifnum
		json.Unmarshal(resp.Result, &n)
		if resp.Errno != "" || n.Count != 1 {
			t.Errorf("after garbage: %+v (count %d)", resp, n.Count)
		}
	}
}

// FuzzHandle feeds arbitrary request lines to the dispatcher: it must
// answer every one with a well-formed response and never panic.
func FuzzHandle(f *testing.F) {
	for _, seed := range []string{
		`{"op":"SIOCGLIFCONF","family":"unspec","args":{}}`,
		`{"op":"SIOCSLIFADDR","args":{"lifr_name":"lo0:1","lifr_addr":"127.0.0.2"}}`,
		`{"op":"SIOCLIFADDIF","args":{"lifr_name":"lo0"}}`,
		`{"op":"SIOCSLIFFLAGS","args":{"lifr_name":"lo0","lifr_flags":2}}`,
		`{"op":"SIOCSLIFNETMASK","family":"inet6","args":{"lifr_name":"lo0","lifr_addr":"ffff::"}}`,
		`{"op":"SIOCLIFREMOVEIF","args":{"lifr_name":"lo0"}}`,
		`{"op":"netstat.routes"}`,
		`{"op":"dladm.delete-link","args":{"name":""}}`,
		`{"op":`, `[]`, `null`,
	} {
		f.Add([]byte(seed), true)
	}
	d, _ := startTestDaemon(f)
	f.Fuzz(func(t *testing.T, line []byte, priv bool) {
		resp, _ := d.handle(ifmgr.Caller{Privileged: priv}, line)
		if resp.Errno != "" && resp.Message == "" {
			t.Errorf("error reply without a message: %+v", resp)
		}
		if _, err := json.Marshal(resp); err != nil {
			t.Errorf("reply does not encode: %v", err)
		}
	})
}

// serveInTest runs d.Serve until the returned stop is called or the test
// ends; stop waits for Serve to return and closes d, once.
func serveInTest(t testing.TB, d *Daemon) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		d.Serve(ctx)
		close(done)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
			d.Close()
		})
	}
	t.Cleanup(stop)
	return stop
}
