//go:build !linux

package tap

import (
	"errors"
	"fmt"

	"github.com/tapstack/tapstack/link"
)

// Create fails: TAP links need Linux.
func Create(cfg Config) (*link.Link, error) {
	return nil, fmt.Errorf("tap %s: TAP links need Linux: %w", cfg.Name, errors.ErrUnsupported)
}

// FromFD fails: TAP links need Linux. It closes nothing: there are no TAP
// descriptors elsewhere.
func FromFD(fd int, cfg Config) (*link.Link, error) {
	return nil, fmt.Errorf("tap %s: TAP links need Linux: %w", cfg.Name, errors.ErrUnsupported)
}
