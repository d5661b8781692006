package main

import (
	"net"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/link"
	"github.com/tapstack/tapstack/link/afpacket"
)

// createAFPacket creates an AF_PACKET link for dladm create-afpacket.
func createAFPacket(a ctl.CreateAFPacket) (*link.Link, error) {
	var mac net.HardwareAddr
	if a.MAC != "" {
		m, err := net.ParseMAC(a.MAC)
		if err != nil {
			return nil, ctl.Errorf(ctl.EINVAL, "bad MAC address %q: %v", a.MAC, err)
		}
		mac = m
	}
	l, err := afpacket.Create(afpacket.Config{
		Name: a.Name, Over: a.Over, Netns: a.Netns, Rings: a.Rings, MTU: a.MTU, MAC: mac,
		RX: afpacket.RXMode(a.RX),
	})
	if err != nil {
		e := ctl.ErrnoOf(err)
		if e == 0 {
			e = ctl.EINVAL
		}
		return nil, ctl.Errorf(e, "%v", err)
	}
	return l, nil
}
