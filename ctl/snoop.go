package ctl

import "time"

// Snoop is the argument of "snoop", a streaming request (Client.Stream):
// the daemon sends every frame crossing Link, both ways, as a Frame item,
// until Count frames have been sent (then the end line) or, with Count 0,
// until the client closes the connection. It needs privilege (EPERM): a
// capture exposes other users' traffic. An unknown link is ENXIO.
type Snoop struct {
	Link  string `json:"link"`
	Count int    `json:"count,omitempty"`
}

// Frame directions.
const (
	DirIn  = "in"  // from the wire to the stack
	DirOut = "out" // from the stack to the wire
)

// Frame is one item of a "snoop" stream: a whole frame, link header
// included (Ethernet on TAP links), as it crossed the link.
type Frame struct {
	Time time.Time `json:"time"`
	Dir  string    `json:"dir"`  // DirIn or DirOut
	Data []byte    `json:"data"` // base64 on the wire
	// Drops counts the frames of this capture the daemon has dropped so
	// far because the client did not read them fast enough.
	Drops uint64 `json:"drops,omitempty"`
}
