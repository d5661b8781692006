package gateway

// startICMP proxies ICMP echo through host ICMP sockets. (Stub.)
func (g *Gateway) startICMP() (func(), error) { return nil, nil }
