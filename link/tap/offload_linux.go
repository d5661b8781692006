package tap

import (
	"errors"
	"fmt"
	"math"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/tapstack/tapstack/link/vnet"

	"github.com/tapstack/tapstack/link/internal/host"
)

// TUNSETOFFLOAD flags (<linux/if_tun.h>; not in x/sys).
const (
	tunFCsum = 0x01 // TUN_F_CSUM
	tunFTSO4 = 0x02 // TUN_F_TSO4
	tunFTSO6 = 0x04 // TUN_F_TSO6
	tunFUSO4 = 0x20 // TUN_F_USO4 (Linux 6.2)
	tunFUSO6 = 0x40 // TUN_F_USO6 (Linux 6.2)
)

// offloadTries are the TUNSETOFFLOAD sets asked for, best first: a kernel
// refuses a set with a flag it does not know (EINVAL), so the next one is
// tried.
var offloadTries = []struct {
	flags int
	off   Offloads
}{
	{tunFCsum | tunFTSO4 | tunFTSO6 | tunFUSO4 | tunFUSO6, OffloadCsum | OffloadTSO4 | OffloadTSO6 | OffloadUSO4 | OffloadUSO6},
	{tunFCsum | tunFTSO4 | tunFTSO6, OffloadCsum | OffloadTSO4 | OffloadTSO6},
	{tunFCsum, OffloadCsum},
}

// txQueueLen is the kernel side's txqueuelen, which for a TAP is also the
// length of each queue's ring of frames waiting for us (500 by default):
// long enough that a burst of small frames, or a reader descheduled for a
// millisecond, does not drop.
const txQueueLen = 4096

// setUpQueues configures a TAP's queue descriptors: the largest send
// buffer (so writes never block) and, if vnetHdr, the virtio-net header
// size and the best offloads the kernel takes (when offload). It returns
// what was negotiated. Equivalent, for the header and offloads, to what
// QEMU does for a TAP backend.
func setUpQueues(fds []int, vnetHdr, offload bool) (Offloads, error) {
	for i, fd := range fds {
		if err := unix.IoctlSetPointerInt(fd, unix.TUNSETSNDBUF, math.MaxInt32); err != nil {
			return 0, fmt.Errorf("queue %d: TUNSETSNDBUF: %w", i, err)
		}
	}
	if !vnetHdr {
		return 0, nil
	}
	// Both are the device's, not the queue's: once is enough.
	if err := unix.IoctlSetPointerInt(fds[0], unix.TUNSETVNETHDRSZ, vnet.Size); err != nil {
		return 0, fmt.Errorf("TUNSETVNETHDRSZ %d: %w", vnet.Size, err)
	}
	off := OffloadVnetHdr
	if !offload {
		if err := unix.IoctlSetInt(fds[0], unix.TUNSETOFFLOAD, 0); err != nil {
			return 0, fmt.Errorf("TUNSETOFFLOAD 0: %w", err)
		}
		return off, nil
	}
	for _, try := range offloadTries {
		err := unix.IoctlSetInt(fds[0], unix.TUNSETOFFLOAD, try.flags)
		if err == nil {
			return off | try.off, nil
		}
		if !errors.Is(err, unix.EINVAL) {
			return 0, fmt.Errorf("TUNSETOFFLOAD %#x: %w", try.flags, err)
		}
	}
	// No offload at all: the header stays, empty.
	if err := unix.IoctlSetInt(fds[0], unix.TUNSETOFFLOAD, 0); err != nil {
		return 0, fmt.Errorf("TUNSETOFFLOAD 0: %w", err)
	}
	return off, nil
}

// queueCount applies Config.Queues' default and limits.
func queueCount(n int) (int, error) {
	switch {
	case n == 0:
		return min(runtime.NumCPU(), 4), nil
	case n < 0 || n > MaxQueues:
		return 0, host.Errorf(unix.EINVAL, "tap queues %d out of range 1..%d", n, MaxQueues)
	}
	return n, nil
}

// pinRings says whether queue readers are pinned to CPUs (tests turn it
// off to compare).
var pinRings = true

// ringCPUs lists the CPUs the calling thread may run on: ring i is pinned
// to the i-th, modulo their number. nil (no pinning) if they cannot be
// read.
func ringCPUs() []int {
	if !pinRings {
		return nil
	}
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil
	}
	var cpus []int
	for c := 0; c < len(set)*64 && len(cpus) < set.Count(); c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus
}
