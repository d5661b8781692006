package link_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tapstack/tapstack/link"
	"github.com/tapstack/tapstack/link/memory"
)

func names(ls []*link.Link) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Name())
	}
	return out
}

func TestRegistry(t *testing.T) {
	var r link.Registry
	a, b := memory.NewPair("net1", "net0", 1500, nil, nil)
	t.Cleanup(func() { a.Close(); b.Close() })

	for _, l := range []*link.Link{a, b} {
		if err := r.Add(l); err != nil {
			t.Fatalf("Add(%s): %v", l.Name(), err)
		}
	}
	if err := r.Add(a); !errors.Is(err, link.ErrExist) {
		t.Errorf("Add(duplicate) = %v, want ErrExist", err)
	}
	if got, ok := r.Get("net1"); !ok || got != a {
		t.Errorf("Get(net1) = %v, %v", got, ok)
	}
	if _, ok := r.Get("net9"); ok {
		t.Errorf("Get(net9) found a link")
	}
	if diff := cmp.Diff([]string{"net0", "net1"}, names(r.List())); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}

	got, err := r.Remove("net0")
	if err != nil || got != b {
		t.Fatalf("Remove(net0) = %v, %v", got, err)
	}
	if _, err := r.Remove("net0"); !errors.Is(err, link.ErrNotExist) {
		t.Errorf("Remove(missing) = %v, want ErrNotExist", err)
	}
	// Remove does not close: the caller owns the link again.
	if _, err := b.Open(); err != nil {
		t.Errorf("removed link was closed: %v", err)
	}

	if err := r.CloseAll(); err != nil {
		t.Fatalf("CloseAll: %v", err)
	}
	if n := len(r.List()); n != 0 {
		t.Errorf("after CloseAll, %d links remain", n)
	}
	if _, err := a.Open(); err == nil {
		t.Errorf("CloseAll did not close net1")
	}
	if err := r.Add(a); err != nil {
		t.Errorf("Add after CloseAll: %v", err)
	}
}
