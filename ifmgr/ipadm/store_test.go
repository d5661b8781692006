package ipadm

import (
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var cmpAddrs = cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})

func sampleConfig() *Config {
	return &Config{
		Version: configVersion,
		Props:   []Prop{{Proto: "ip", Name: "_arp_probe_count", Value: "5"}},
		Interfaces: []Interface{{
			Name: "tap0", IPv4: true, IPv6: true,
			Props: []Prop{{Proto: "ipv4", Name: "mtu", Value: "1400"}},
			Addrs: []Addr{
				{Obj: "tap0/v4", Type: "static", Local: netip.MustParsePrefix("10.0.0.1/24")},
				{Obj: "tap0/p2p", Type: "static", Local: netip.MustParsePrefix("10.9.0.1/32"),
					Remote: netip.MustParseAddr("10.9.0.2"), Disabled: true,
					Props: []Prop{{Name: "deprecated", Value: "on"}}},
				{Obj: "tap0/ll", Type: "addrconf"},
			},
		}},
	}
}

func TestStoreRoundTrip(t *testing.T) {
	s := NewStore(filepath.Join(t.TempDir(), "sub", "state.json"))
	empty, err := s.Load()
	if err != nil {
		t.Fatalf("Load of a missing file: %v", err)
	}
	if d := cmp.Diff(&Config{Version: configVersion}, empty, cmpAddrs); d != "" {
		t.Errorf("missing file (-want +got):\n%s", d)
	}
	want := sampleConfig()
	if err := s.Save(want); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got, cmpAddrs); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}
	assertNoTemps(t, s)
}

// TestStoreTornWrite: a Save that dies half-way through writing (the
// process killed, the disk full) never replaces the good file, and the
// partial temporary file is neither read nor left behind.
func TestStoreTornWrite(t *testing.T) {
	s := NewStore(filepath.Join(t.TempDir(), "state.json"))
	good := sampleConfig()
	if err := s.Save(good); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	errTorn := errors.New("torn")
	s.write = func(w io.Writer, data []byte) error {
		w.Write(data[:len(data)/2])
		return errTorn
	}
	next := sampleConfig()
	next.Interfaces[0].Addrs = nil
	if err := s.Save(next); !errors.Is(err, errTorn) {
		t.Fatalf("Save with a torn write: %v, want %v", err, errTorn)
	}
	after, err := os.ReadFile(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Errorf("state file changed by a failed save:\n%s", after)
	}
	assertNoTemps(t, s)

	// A crash leaves the partial temporary file: Load ignores and removes it.
	stale := filepath.Join(filepath.Dir(s.Path()), s.tempPrefix()+"123")
	if err := os.WriteFile(stale, before[:len(before)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(good, got, cmpAddrs); d != "" {
		t.Errorf("after a crash mid-save (-want +got):\n%s", d)
	}
	assertNoTemps(t, s)
}

func TestStoreRejectsForeignFile(t *testing.T) {
	for name, content := range map[string]string{
		"truncated":     `{"version":1,"interfaces":[{"name":"tap0"`,
		"unknown field": `{"version":1,"bogus":true}`,
		"version":       `{"version":99}`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := NewStore(path).Load(); err == nil || !strings.Contains(err.Error(), path) {
				t.Errorf("Load: %v, want an error naming %s", err, path)
			}
		})
	}
}

func assertNoTemps(t *testing.T, s *Store) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Dir(s.Path()))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), s.tempPrefix()) {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}
