package link

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Sentinel errors of Registry, for callers to map to errnos (EEXIST,
// ENXIO) with errors.Is.
var (
	ErrExist    = errors.New("link already exists")
	ErrNotExist = errors.New("no such link")
)

// Registry is the daemon's set of links, by name. It is safe for
// concurrent use; it never calls into a Link while holding its lock, except
// that CloseAll closes links after taking them out of the set.
type Registry struct {
	mu sync.Mutex
	// +checklocks:mu
	links map[string]*Link
}

// Add registers l under l.Name(). It fails with an error wrapping ErrExist
// if the name is taken.
func (r *Registry) Add(l *Link) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.links[l.Name()]; ok {
		return fmt.Errorf("link %s: %w", l.Name(), ErrExist)
	}
	if r.links == nil {
		r.links = make(map[string]*Link)
	}
	r.links[l.Name()] = l
	return nil
}

// Get returns the link named name.
func (r *Registry) Get(name string) (*Link, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l, ok := r.links[name]
	return l, ok
}

// Remove takes the link named name out of the registry and returns it; the
// caller owns it and closes it. It fails with an error wrapping
// ErrNotExist if there is no such link.
func (r *Registry) Remove(name string) (*Link, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l, ok := r.links[name]
	if !ok {
		return nil, fmt.Errorf("link %s: %w", name, ErrNotExist)
	}
	delete(r.links, name)
	return l, nil
}

// List returns the links sorted by name.
func (r *Registry) List() []*Link {
	r.mu.Lock()
	defer r.mu.Unlock()
	return sortedLinks(r.links)
}

func sortedLinks(m map[string]*Link) []*Link {
	out := make([]*Link, 0, len(m))
	for _, l := range m {
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b *Link) int { return strings.Compare(a.Name(), b.Name()) })
	return out
}

// CloseAll removes every link and closes it, in name order (daemon
// shutdown). It returns the close errors joined.
func (r *Registry) CloseAll() error {
	r.mu.Lock()
	links := sortedLinks(r.links)
	r.links = nil
	r.mu.Unlock()

	var errs []error
	for _, l := range links {
		if err := l.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close link %s: %w", l.Name(), err))
		}
	}
	return errors.Join(errs...)
}
