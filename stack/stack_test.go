package stack

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

func TestPingLoopback(t *testing.T) {
	s := New()
	defer s.Close()
	if err := s.AddLoopbackNIC("lo0"); err != nil {
		t.Fatal(err)
	}
	if err := s.EnableNIC("lo0"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"127.0.0.1/8", "::1/128"} {
		if err := s.AddAddress("lo0", netip.MustParsePrefix(p)); err != nil {
			t.Fatal(err)
		}
	}
	s.SetRoutes([]Route{
		{Dest: netip.MustParsePrefix("127.0.0.0/8"), NIC: "lo0"},
		{Dest: netip.MustParsePrefix("::1/128"), NIC: "lo0"},
	})
	for _, a := range []string{"127.0.0.1", "::1"} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		rtt, err := s.Ping(ctx, netip.MustParseAddr(a), 1)
		cancel()
		if err != nil || rtt <= 0 {
			t.Errorf("ping %s: rtt %v, %v", a, rtt, err)
		}
	}
	// Without a route there is no answer.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := s.Ping(ctx, netip.MustParseAddr("192.0.2.1"), 1); err == nil {
		t.Error("ping without a route succeeded")
	}
}

func TestNICErrors(t *testing.T) {
	s := New()
	defer s.Close()
	if err := s.AddLoopbackNIC("lo0"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddLoopbackNIC("lo0"); err == nil {
		t.Error("second NIC with the same name accepted")
	}
	for name, err := range map[string]error{
		"enable":  s.EnableNIC("nope"),
		"disable": s.DisableNIC("nope"),
		"remove":  s.RemoveNIC("nope"),
		"address": s.AddAddress("nope", netip.MustParsePrefix("10.0.0.1/8")),
	} {
		if err == nil {
			t.Errorf("%s on an unknown NIC succeeded", name)
		}
	}
}
