package gateway

import "github.com/tapstack/tapstack/ctl"

// forwarder is one inbound port forward. (Stub: helper fills in.)
type forwarder struct {
	spec ctl.Forward
}

func (f *forwarder) close() {}

// ParseForward parses [HOSTADDR:]HOSTPORT:GUESTPORT[/tcp|/udp]. (Stub.)
func ParseForward(spec string) (ctl.Forward, error) {
	return ctl.Forward{}, ctl.Errorf(ctl.ENOTSUP, "port forwards are not implemented yet")
}

// AddForward starts a forward and returns it with its ID. (Stub.)
func (g *Gateway) AddForward(f ctl.Forward) (ctl.Forward, error) {
	return ctl.Forward{}, ctl.Errorf(ctl.ENOTSUP, "port forwards are not implemented yet")
}

// RemoveForward stops forward id. (Stub.)
func (g *Gateway) RemoveForward(id int) error {
	return ctl.Errorf(ctl.ENOTSUP, "port forwards are not implemented yet")
}

// Forwards lists the forwards, by ID. (Stub.)
func (g *Gateway) Forwards() []ctl.Forward { return nil }
