package daemon

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/ifmgr"
	"github.com/tapstack/tapstack/link"
	"github.com/tapstack/tapstack/link/memory"
)

// TestCreateAFPacket drives dladm.create-afpacket through the control
// socket with a fake CreateAFPacket that makes an in-memory link.
func TestCreateAFPacket(t *testing.T) {
	var got []ctl.CreateAFPacket
	sock := filepath.Join(t.TempDir(), "ctl.sock")
	d, err := New(Config{CtlPath: sock, CreateAFPacket: func(a ctl.CreateAFPacket) (*link.Link, error) {
		got = append(got, a)
		if a.Over == "nosuch0" {
			return nil, ctl.Errorf(ctl.ENODEV, "afpacket %s: no device %s", a.Name, a.Over)
		}
		l, peer := memory.NewPair(a.Name, a.Name+"-peer", 1500, net.HardwareAddr{2, 0, 0, 0, 0, 1}, nil)
		peer.Close()
		return l, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	serveInTest(t, d)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := ctl.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	want := ctl.CreateAFPacket{Name: "pkt0", Over: "veth0", Netns: "ns1", Rings: 2, MTU: 1500, RX: "recvmmsg"}
	var li ctl.LinkInfo
	if err := c.Do(ctx, "dladm.create-afpacket", "", want, &li); err != nil {
		t.Fatalf("create-afpacket: %v", err)
	}
	if len(got) != 1 || got[0] != want {
		t.Errorf("CreateAFPacket called with %+v, want %+v", got, want)
	}
	if li.Link != "pkt0" || li.MTU != 1500 {
		t.Errorf("reply %+v", li)
	}
	for _, tc := range []struct {
		args ctl.CreateAFPacket
		want ctl.Errno
	}{
		{ctl.CreateAFPacket{Name: "pkt0", Over: "veth1"}, ctl.EEXIST},
		{ctl.CreateAFPacket{Over: "veth1"}, ctl.EINVAL},
		{ctl.CreateAFPacket{Name: "pkt1"}, ctl.EINVAL},
		{ctl.CreateAFPacket{Name: "pkt1", Over: "veth1", Rings: -1}, ctl.EINVAL},
		{ctl.CreateAFPacket{Name: "pkt1", Over: "nosuch0"}, ctl.ENODEV},
	} {
		if err := c.Do(ctx, "dladm.create-afpacket", "", tc.args, nil); ctl.ErrnoOf(err) != tc.want {
			t.Errorf("create-afpacket %+v: %v, want %v", tc.args, err, tc.want)
		}
	}
	var links []ctl.LinkInfo
	if err := c.Do(ctx, "dladm.show-link", "", nil, &links); err != nil || len(links) != 1 || links[0].Link != "pkt0" {
		t.Errorf("show-link: %+v, %v", links, err)
	}
	if err := c.Do(ctx, "dladm.delete-link", "", ctl.LinkName{Name: "pkt0"}, nil); err != nil {
		t.Errorf("delete-link: %v", err)
	}
}

func TestCreateAFPacketRefused(t *testing.T) {
	d, _ := startTestDaemon(t)
	a := ctl.CreateAFPacket{Name: "pkt0", Over: "veth0"}
	if _, err := d.createAFPacket(ifmgr.Caller{}, a); ctl.ErrnoOf(err) != ctl.EPERM {
		t.Errorf("unprivileged: %v, want EPERM", err)
	}
	if _, err := d.createAFPacket(ifmgr.Caller{Privileged: true}, a); ctl.ErrnoOf(err) != ctl.ENOTSUP {
		t.Errorf("without CreateAFPacket: %v, want ENOTSUP", err)
	}
}
