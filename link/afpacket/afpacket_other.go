//go:build !linux

package afpacket

import (
	"errors"
	"fmt"

	"github.com/tapstack/tapstack/link"
)

// Create fails: AF_PACKET links need Linux.
func Create(cfg Config) (*link.Link, error) {
	return nil, fmt.Errorf("afpacket %s: AF_PACKET links need Linux: %w", cfg.Name, errors.ErrUnsupported)
}
