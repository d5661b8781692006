package iperf

// udpRecvStats accounts the datagrams of one receiving UDP stream the way
// iperf3 does, so that its client prints the same loss and jitter figures
// it would against iperf3's own server:
//
//   - highest is the largest sequence number seen (iperf3's "packets");
//   - a jump forward counts the skipped numbers as lost;
//   - a datagram at or below highest is out of order, and takes one back
//     from lost (it was counted lost when the jump skipped it);
//   - jitter is RFC 3550's interarrival jitter (§6.4.1, A.8): a running
//     mean, gain 1/16, of the change in transit time between consecutive
//     datagrams. The clocks of the two hosts need not agree: only
//     differences of transit times count.
//
// It has no locking: one goroutine owns it.
type udpRecvStats struct {
	highest    uint64
	lost       int64
	outOfOrder uint64
	jitter     float64 // seconds
	// prevTransit is the transit time of the previous datagram; valid
	// when seen.
	prevTransit float64
	seen        bool
}

// add accounts one datagram with sequence number seq whose transit time
// (arrival by our clock minus departure by the sender's) is transit
// seconds.
func (u *udpRecvStats) add(seq uint64, transit float64) {
	if seq > u.highest {
		if seq > u.highest+1 {
			u.lost += int64(seq - u.highest - 1)
		}
		u.highest = seq
	} else {
		u.outOfOrder++
		if u.lost > 0 {
			u.lost--
		}
	}
	if !u.seen {
		u.prevTransit = transit
		u.seen = true
	}
	d := transit - u.prevTransit
	if d < 0 {
		d = -d
	}
	u.prevTransit = transit
	u.jitter += (d - u.jitter) / 16
}
