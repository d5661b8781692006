package gateway

// startTCP terminates TCP from the namespace and re-originates it from
// host sockets. (Stub: helper fills in.)
func (g *Gateway) startTCP() (func(), error) { return nil, nil }
