package tap

// SetPinning turns the pinning of queue readers to CPUs on or off for
// links created afterwards (benchmarks compare both).
func SetPinning(on bool) { pinRings = on }
