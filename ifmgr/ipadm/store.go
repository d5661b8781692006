package ipadm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Store is the state file. Save replaces it atomically: the new content
// goes to a temporary file in the same directory, which is synced and
// renamed over the old one, and the directory is synced so the rename
// itself survives a crash. A reader therefore always finds either the old
// or the new file whole; a temporary file left by a crash is never read
// and is removed by the next Load.
//
// A Store is not safe for concurrent use; the Registry serialises it.
type Store struct {
	path string
	// write copies data to the temporary file; tests replace it to tear
	// a write half-way.
	write func(w io.Writer, data []byte) error
}

// tempPrefix starts the names of temporary files, derived from the state
// file's name so two stores in one directory do not collide.
func (s *Store) tempPrefix() string { return "." + filepath.Base(s.path) + ".tmp-" }

// NewStore returns the store at path.
func NewStore(path string) *Store {
	return &Store{path: path, write: func(w io.Writer, data []byte) error {
		_, err := w.Write(data)
		return err
	}}
}

// Path returns the state file's path.
func (s *Store) Path() string { return s.path }

// Load reads the configuration; a missing file is an empty one. It removes
// temporary files a crashed Save left behind.
func (s *Store) Load() (*Config, error) {
	s.removeStaleTemps()
	data, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Config{Version: configVersion}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state file %s: %w", s.path, err)
	}
	var c Config
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("state file %s is not a tapstack configuration (fix or remove it): %w", s.path, err)
	}
	if c.Version != configVersion {
		return nil, fmt.Errorf("state file %s has version %d; this tapstackd reads version %d", s.path, c.Version, configVersion)
	}
	return &c, nil
}

func (s *Store) removeStaleTemps() {
	dir := filepath.Dir(s.path)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), s.tempPrefix()) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// Save writes c as the new state file, atomically. On error the old file
// is untouched and no temporary file is left.
func (s *Store) Save(c *Config) (err error) {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	data = append(data, '\n')
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	f, err := os.CreateTemp(dir, s.tempPrefix())
	if err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := s.write(f, data); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("replace %s: %w", s.path, err)
	}
	// The rename is the commit point: the new file is what any reader
	// sees now, so a failed directory sync cannot be undone by reporting
	// failure. It only weakens durability across a power loss.
	syncDir(dir)
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
