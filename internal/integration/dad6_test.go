package integration

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/internal/netnstest"
)

// IPv6 DAD (gVisor's, driven by ifmgr) with the Linux kernel as the
// other node (spec §6, RFC 4862 §5.4).

// newDAD6Pair is newDADPair with tap0 plumbed for IPv6 and its
// link-local unit up (past DAD).
func newDAD6Pair(t *testing.T, subnet byte) (*dadPair, string) {
	t.Helper()
	p := newDADPair(t, subnet)
	p.tapadm("ifconfig", p.tap, "inet6", "plumb")
	p.tapadm("ifconfig", p.tap, "inet6", "up")
	return p, fmt.Sprintf("2001:db8:%d::", subnet)
}

func (p *dadPair) flags6(name string) ctl.Flags {
	p.t.Helper()
	r := ctl.Lifreq{Name: name}
	if err := p.do("SIOCGLIFFLAGS", ctl.AF_INET6, &r, &r); err != nil {
		p.t.Fatal(err)
	}
	return r.Flags
}

// The namespace kernel owns the address (without DAD of its own):
// tapstack's solicitation is answered, ifconfig reports EADDRINUSE, and
// the unit is DUPLICATE, not UP, so the address is not used.
func TestDAD6KernelHoldsAddress(t *testing.T) {
	p, prefix := newDAD6Pair(t, 61)
	a := prefix + "1"
	p.nsExec("ip", "-6", "addr", "add", a+"/64", "dev", p.tap, "nodad")
	out, err := p.tryTapadm("ifconfig", p.tap, "inet6", "addif", a+"/64", "up")
	if err == nil || !strings.Contains(out, "EADDRINUSE") {
		t.Fatalf("ifconfig up of an address the kernel holds: %v, want EADDRINUSE:\n%s", err, out)
	}
	f := p.flags6(p.tap + ":1")
	if f&ctl.IFF_DUPLICATE == 0 || f&ctl.IFF_UP != 0 {
		t.Fatalf("flags %s, want DUPLICATE and not UP", f)
	}
	if ifc := p.tapadm("ifconfig", p.tap+":1", "inet6"); !strings.Contains(ifc, "DUPLICATE") {
		t.Errorf("ifconfig does not show DUPLICATE:\n%s", ifc)
	}
	// The kernel's copy is untouched.
	if show, _ := netnstest.Exec(t, p.ns, "ip", "-6", "addr", "show", "dev", p.tap); strings.Contains(show, "dadfailed") {
		t.Errorf("the kernel lost its address:\n%s", show)
	}
}

// tapstack owns the address first: the kernel's own DAD for it is
// answered, and the kernel marks its copy dadfailed.
func TestDAD6KernelFindsOurAddress(t *testing.T) {
	p, prefix := newDAD6Pair(t, 62)
	a := prefix + "2"
	p.tapadm("ifconfig", p.tap, "inet6", "addif", a+"/64", "up")
	if f := p.flags6(p.tap + ":1"); f&ctl.IFF_UP == 0 || p.dadState6(p.tap+":1") != 2 {
		t.Fatalf("after ifconfig: flags %s, want UP with DAD done", f)
	}
	p.nsExec("ip", "-6", "addr", "add", a+"/64", "dev", p.tap)
	waitUntil(t, "the kernel's copy dadfailed", 15*time.Second, func() bool {
		show, _ := netnstest.Exec(t, p.ns, "ip", "-6", "addr", "show", "dev", p.tap)
		return strings.Contains(show, a) && strings.Contains(show, "dadfailed")
	})
	if f := p.flags6(p.tap + ":1"); f&ctl.IFF_DUPLICATE != 0 || f&ctl.IFF_UP == 0 {
		t.Errorf("the kernel's probe cost us the address: %s", f)
	}
}

func (p *dadPair) dadState6(name string) int {
	p.t.Helper()
	r := ctl.Lifreq{Name: name}
	if err := p.do("SIOCGLIFDADSTATE", ctl.AF_INET6, &r, &r); err != nil {
		p.t.Fatal(err)
	}
	return r.DADState
}

// On the wire: _ndp_dad_transmits neighbour solicitations for the
// address, from ::, to its solicited-node group.
func TestDAD6ProbesOnTheWire(t *testing.T) {
	p, prefix := newDAD6Pair(t, 63)
	a := net.ParseIP(prefix + "3")
	tcpdump, err := netnstest.LookCmd("tcpdump")
	if err != nil {
		t.Fatalf("%v: run make deps", err)
	}
	p.tapadm("ipadm", "set-prop", "-p", "_ndp_dad_transmits=2", "ip")
	pcap := filepath.Join(t.TempDir(), "dad6.pcap")
	stop := startInNetns(t, p.ns, tcpdump, "-i", p.tap, "-U", "-w", pcap, "icmp6")
	time.Sleep(time.Second) // tcpdump has no ready signal; give it time to open the device
	p.tapadm("ifconfig", p.tap, "inet6", "addif", a.String()+"/64", "up")
	stop()

	r := openPcap(t, pcap)
	snm := net.IP{0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, a[13], a[14], a[15]}
	probes := 0
	for {
		data, _, err := r.ReadPacketData()
		if err != nil {
			break
		}
		pkt := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
		ip, _ := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		ns, _ := pkt.Layer(layers.LayerTypeICMPv6NeighborSolicitation).(*layers.ICMPv6NeighborSolicitation)
		if ip == nil || ns == nil || !ns.TargetAddress.Equal(a) {
			continue
		}
		if !ip.SrcIP.IsUnspecified() || !ip.DstIP.Equal(snm) {
			t.Errorf("solicitation for %s from %s to %s, want from :: to %s", a, ip.SrcIP, ip.DstIP, snm)
			continue
		}
		probes++
	}
	if probes != 2 {
		t.Errorf("%d DAD solicitations on the wire, want _ndp_dad_transmits=2", probes)
	}
}
