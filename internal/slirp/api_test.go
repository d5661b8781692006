package slirp

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tapstack/tapstack/ctl"
)

// fakeForwarder is a forward table in memory. A host port of 1 fails to
// add (as a port in use would).
type fakeForwarder struct {
	mu     sync.Mutex
	fws    []ctl.Forward
	nextID int
}

func (f *fakeForwarder) AddForward(fw ctl.Forward) (ctl.Forward, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fw.HostPort == 1 {
		return ctl.Forward{}, ctl.Errorf(ctl.EADDRINUSE, "listen tcp 0.0.0.0:1: address already in use")
	}
	f.nextID++
	fw.ID = f.nextID
	f.fws = append(f.fws, fw)
	return fw, nil
}

func (f *fakeForwarder) RemoveForward(id int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := slices.IndexFunc(f.fws, func(x ctl.Forward) bool { return x.ID == id })
	if i < 0 {
		return ctl.Errorf(ctl.ENOENT, "no forward %d", id)
	}
	f.fws = slices.Delete(f.fws, i, i+1)
	return nil
}

func (f *fakeForwarder) Forwards() []ctl.Forward {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.fws)
}

var guest = netip.MustParseAddr("10.0.2.100")

// TestAPIHandle runs a sequence of requests, each answered exactly as
// slirp4netns words it.
func TestAPIHandle(t *testing.T) {
	fw := &fakeForwarder{}
	a := &API{fw: fw, guest: guest, log: discard()}
	steps := []struct {
		name, req, want string
	}{
		{"not JSON", `badjson`, `{"error":{"desc":"bad request: cannot parse JSON"}}`},
		{"not an object", `[1,2]`, `{"error":{"desc":"bad request: json_object() failed"}}`},
		{"no execute", `{"unexpectedjson": 42}`, `{"error":{"desc":"bad request: no execute found"}}`},
		{"execute not a string", `{"execute": 42}`, `{"error":{"desc":"bad request: no execute found"}}`},
		{"unknown execute", `{"execute": "bad"}`, `{"error":{"desc":"bad request: unknown execute"}}`},
		{"empty list", `{"execute": "list_hostfwd"}`, `{"return":{"entries":[]},"entries":[]}`},
		{"bad proto", `{"execute": "add_hostfwd", "arguments":{"proto": "bad"}}`,
			`{"error":{"desc":"bad request: add_hostfwd: bad arguments.proto"}}`},
		{"no arguments", `{"execute": "add_hostfwd"}`, `{"error":{"desc":"bad request: add_hostfwd: bad arguments.proto"}}`},
		{"bad host_addr", `{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_addr":"::1","host_port":8080,"guest_port":80}}`,
			`{"error":{"desc":"bad request: add_hostfwd: bad arguments.host_addr"}}`},
		{"missing host_port", `{"execute":"add_hostfwd","arguments":{"proto":"tcp","guest_port":80}}`,
			`{"error":{"desc":"bad request: add_hostfwd: bad arguments.host_port"}}`},
		{"host_port a string", `{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_port":"8080","guest_port":80}}`,
			`{"error":{"desc":"bad request: add_hostfwd: bad arguments.host_port"}}`},
		{"host_port too big", `{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_port":65536,"guest_port":80}}`,
			`{"error":{"desc":"bad request: add_hostfwd: bad arguments.host_port"}}`},
		{"bad guest_addr", `{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_port":8080,"guest_addr":"x","guest_port":80}}`,
			`{"error":{"desc":"bad request: add_hostfwd: bad arguments.guest_addr"}}`},
		{"missing guest_port", `{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_port":8080}}`,
			`{"error":{"desc":"bad request: add_hostfwd: bad arguments.guest_port"}}`},
		{"add fails", `{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_port":1,"guest_port":80}}`,
			`{"error":{"desc":"bad request: add_hostfwd: slirp_add_hostfwd failed: listen tcp 0.0.0.0:1: address already in use"}}`},
		{"add defaults", `{"execute": "add_hostfwd", "arguments":{"proto": "tcp","host_port":8080,"guest_port":80}}`,
			`{"return":{"id":1}}`},
		{"add everything", `{"execute":"add_hostfwd","arguments":{"proto":"udp","host_addr":"127.0.0.1","host_port":5353,"guest_addr":"10.0.2.5","guest_port":53}}`,
			`{"return":{"id":2}}`},
		{"empty addresses are defaults", `{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_addr":"","host_port":8443.0,"guest_addr":"","guest_port":443}}`,
			`{"return":{"id":3}}`},
		{"list", `{"execute": "list_hostfwd"}`, `{"return":{"entries":[` + entries3 + `]},"entries":[` + entries3 + `]}`},
		{"remove", `{"execute": "remove_hostfwd", "arguments":{"id": 2}}`, `{"return":{}}`},
		{"remove again", `{"execute": "remove_hostfwd", "arguments":{"id": 2}}`,
			`{"error":{"desc":"bad request: remove_hostfwd: bad arguments.id"}}`},
		{"remove without id", `{"execute": "remove_hostfwd"}`,
			`{"error":{"desc":"bad request: remove_hostfwd: bad arguments.id"}}`},
		{"remove unknown id", `{"execute": "remove_hostfwd", "arguments":{"id": 42}}`,
			`{"error":{"desc":"bad request: remove_hostfwd: bad arguments.id"}}`},
		{"list after remove", `{"execute":"list_hostfwd"}`,
			`{"return":{"entries":[` + entry1 + `,` + entry3 + `]},"entries":[` + entry1 + `,` + entry3 + `]}`},
	}
	for _, s := range steps {
		if got := string(a.Handle([]byte(s.req))); got != s.want {
			t.Errorf("%s: %s\n got %s\nwant %s", s.name, s.req, got, s.want)
		}
	}
	want := []ctl.Forward{
		{ID: 1, Proto: "tcp", HostAddr: netip.IPv4Unspecified(), HostPort: 8080, GuestAddr: guest, GuestPort: 80},
		{ID: 3, Proto: "tcp", HostAddr: netip.IPv4Unspecified(), HostPort: 8443, GuestAddr: guest, GuestPort: 443},
	}
	if diff := cmp.Diff(want, fw.Forwards(), cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("forwards (-want +got):\n%s", diff)
	}
}

const (
	entry1   = `{"id":1,"proto":"tcp","host_addr":"0.0.0.0","host_port":8080,"guest_addr":"10.0.2.100","guest_port":80}`
	entry2   = `{"id":2,"proto":"udp","host_addr":"127.0.0.1","host_port":5353,"guest_addr":"10.0.2.5","guest_port":53}`
	entry3   = `{"id":3,"proto":"tcp","host_addr":"0.0.0.0","host_port":8443,"guest_addr":"10.0.2.100","guest_port":443}`
	entries3 = entry1 + "," + entry2 + "," + entry3
)

// TestAPISocket drives the socket as clients do: with and without
// shutting down the write side, in pieces, too large, silent.
func TestAPISocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "api.sock")
	a, err := ListenAPI(path, &fakeForwarder{}, guest, discard())
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- a.Serve() }()
	t.Cleanup(func() {
		a.Close()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	const list = `{"execute":"list_hostfwd"}`
	const empty = `{"return":{"entries":[]},"entries":[]}`
	tests := []struct {
		name   string
		pieces []string
		shut   bool // shut down the write side after the pieces
		want   string
	}{
		{name: "with shutdown", pieces: []string{list}, shut: true, want: empty},
		{name: "without shutdown", pieces: []string{list + "\n"}, want: empty},
		{name: "in pieces", pieces: []string{`{"execute":`, ` "list_hostfwd"}`}, want: empty},
		{name: "bad JSON without shutdown", pieces: []string{"badjson\n"}, want: `{"error":{"desc":"bad request: cannot parse JSON"}}`},
		{name: "truncated then shutdown", pieces: []string{`{"execute":`}, shut: true, want: `{"error":{"desc":"bad request: cannot parse JSON"}}`},
		{name: "too large", pieces: []string{`{"execute":"` + strings.Repeat("x", MaxRequest)}, want: `{"error":{"desc":"bad request: too large message"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			for _, p := range tt.pieces {
				if _, err := c.Write([]byte(p)); err != nil {
					t.Fatal(err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if tt.shut {
				c.CloseWrite()
			}
			got, err := io.ReadAll(c)
			if err != nil && len(got) == 0 {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("reply %s, want %s", got, tt.want)
			}
			if !json.Valid(got) {
				t.Errorf("reply %q is not JSON", got)
			}
		})
	}
	t.Run("silent client", func(t *testing.T) {
		// Closing without a request gets no reply and disturbs nothing.
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		c2, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		c2.Write([]byte(list))
		buf := make([]byte, 256)
		c2.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _ := io.ReadFull(c2, buf[:len(empty)])
		if !bytes.Equal(buf[:n], []byte(empty)) {
			t.Errorf("reply %q after a silent client", buf[:n])
		}
	})
}

// TestAPIListenReplacesAndRemoves: a stale file at the path is replaced,
// and Close removes the socket.
func TestAPIListenReplacesAndRemoves(t *testing.T) {
	path := filepath.Join(t.TempDir(), "api.sock")
	a1, err := ListenAPI(path, &fakeForwarder{}, guest, discard())
	if err != nil {
		t.Fatal(err)
	}
	a1.ln.Close() // a dead instance's leftover file
	a2, err := ListenAPI(path, &fakeForwarder{}, guest, discard())
	if err != nil {
		t.Fatalf("listen over a stale socket: %v", err)
	}
	go a2.Serve()
	if err := a2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := net.Dial("unix", path); err == nil {
		t.Error("socket still answers after Close")
	}
	if _, err := ListenAPI("/"+strings.Repeat("a", 120), &fakeForwarder{}, guest, discard()); err == nil ||
		!strings.Contains(err.Error(), "too long") {
		t.Errorf("long path: %v", err)
	}
}
