package arp

import (
	"bytes"
	"net"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"
	gstack "gvisor.dev/gvisor/pkg/tcpip/stack"
)

// stackNeighbor returns gVisor's entry for a, if any.
func (b *bench) stackNeighbor(a string) (gstack.NeighborEntry, bool) {
	id, _ := b.st.NICID("tap0")
	ns, err := b.st.GVisor().Neighbors(id, header.IPv4ProtocolNumber)
	if err != nil {
		b.t.Fatal(err)
	}
	for _, n := range ns {
		if n.Addr == addrOf(addr(a)) {
			return n, true
		}
	}
	return gstack.NeighborEntry{}, false
}

func TestCacheSetGetDelete(t *testing.T) {
	b := newBench(t)
	hw := net.HardwareAddr{2, 0, 0, 0, 0, 0x99}
	if err := b.ifc.Set(Entry{Addr: addr("10.0.0.9"), HW: hw, Permanent: true}); err != nil {
		t.Fatal(err)
	}
	if n, ok := b.stackNeighbor("10.0.0.9"); !ok || n.State != gstack.Static || n.LinkAddr != "\x02\x00\x00\x00\x00\x99" {
		t.Fatalf("stack neighbour %+v (present %v), want static %v", n, ok, hw)
	}
	e, ok := b.ifc.Get(addr("10.0.0.9"))
	if !ok || !e.Static || !e.Permanent || e.Published || !bytes.Equal(e.HW, hw) {
		t.Fatalf("Get = %+v, %v", e, ok)
	}
	if got := b.ifc.Entries(); len(got) != 1 || got[0].Addr != addr("10.0.0.9") {
		t.Errorf("Entries = %+v", got)
	}
	if !b.ifc.Delete(addr("10.0.0.9")) {
		t.Fatal("Delete found nothing")
	}
	if _, ok := b.stackNeighbor("10.0.0.9"); ok {
		t.Error("stack still has the deleted entry")
	}
	if _, ok := b.ifc.Get(addr("10.0.0.9")); ok || b.ifc.Delete(addr("10.0.0.9")) {
		t.Error("entry still there after Delete")
	}
	if err := b.ifc.Set(Entry{Addr: addr("fe80::1"), HW: hw}); err == nil {
		t.Error("Set accepted an IPv6 address")
	}
}

func TestCacheTemporaryEntriesAge(t *testing.T) {
	b := newBench(t)
	hw := net.HardwareAddr{2, 0, 0, 0, 0, 0x98}
	if err := b.ifc.Set(Entry{Addr: addr("10.0.0.8"), HW: hw}); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(TempLifetime - time.Second)
	if _, ok := b.ifc.Get(addr("10.0.0.8")); !ok {
		t.Fatal("temporary entry gone before its lifetime")
	}
	b.clock.Advance(time.Second)
	if _, ok := b.ifc.Get(addr("10.0.0.8")); ok {
		t.Error("temporary entry outlived its lifetime")
	}
	if _, ok := b.stackNeighbor("10.0.0.8"); ok {
		t.Error("stack kept the expired entry")
	}
}

// A published entry is answered for (proxy ARP) with its own hardware
// address, to the asker; an unpublished one is not.
func TestProxyARP(t *testing.T) {
	b := newBench(t)
	pub := net.HardwareAddr{2, 0, 0, 0, 0, 0x77}
	b.ifc.Set(Entry{Addr: addr("10.0.0.7"), HW: pub, Permanent: true, Published: true})
	b.ifc.Set(Entry{Addr: addr("10.0.0.6"), HW: pub, Permanent: true})
	ask := func(target string) Packet {
		return Packet{Op: OpRequest, SenderHW: peerMAC, SenderAddr: addr("10.0.0.2"), TargetAddr: addr(target)}
	}
	b.inject(peerMAC, broadcastHW, ask("10.0.0.6"))
	b.inject(peerMAC, broadcastHW, ask("10.0.0.7"))
	f := b.wait(1)[0]
	want := Packet{Op: OpReply, SenderHW: pub, SenderAddr: addr("10.0.0.7"), TargetHW: peerMAC, TargetAddr: addr("10.0.0.2")}
	if f.Op != want.Op || !bytes.Equal(f.SenderHW, pub) || f.SenderAddr != want.SenderAddr ||
		!bytes.Equal(f.TargetHW, peerMAC) || f.TargetAddr != want.TargetAddr || !bytes.Equal(f.dst, peerMAC) {
		t.Errorf("proxy reply %+v, want %+v to %v", f, want, peerMAC)
	}
	// The counter follows the send, which the peer may see first.
	for deadline := time.Now().Add(5 * time.Second); b.ifc.Stats().ProxyReplies == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if n := b.ifc.Stats().ProxyReplies; n != 1 {
		t.Errorf("%d proxy replies, want 1 (only the published entry)", n)
	}
}

// Close flushes the administrative entries from the stack.
func TestCloseFlushes(t *testing.T) {
	b := newBench(t)
	b.ifc.Set(Entry{Addr: addr("10.0.0.9"), HW: peerMAC, Permanent: true})
	b.ifc.Close()
	if _, ok := b.stackNeighbor("10.0.0.9"); ok {
		t.Error("entry survived Close")
	}
	if err := b.ifc.Set(Entry{Addr: addr("10.0.0.9"), HW: peerMAC}); err == nil {
		t.Error("Set after Close succeeded")
	}
}
