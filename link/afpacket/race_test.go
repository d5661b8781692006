//go:build race

package afpacket

// raceEnabled: under the race detector sync.Pool drops a quarter of what
// is put back, so allocation counts are meaningless there.
const raceEnabled = true
