package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/tapstack/tapstack/internal/netnstest"
)

// snoopCmd is a `tapadm snoop` running in the background.
type snoopCmd struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	done   chan error
}

func (d *daemon) startSnoop(args ...string) *snoopCmd {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	d.t.Cleanup(cancel)
	sc := &snoopCmd{done: make(chan error, 1)}
	sc.cmd = exec.CommandContext(ctx, filepath.Join(binDir, "tapadm"), append([]string{"--ctl", d.sock, "snoop"}, args...)...)
	sc.cmd.Stderr = &sc.stderr
	if err := sc.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	go func() { sc.done <- sc.cmd.Wait() }()
	return sc
}

// pcapPackets reads a pcap file with gopacket.
func pcapPackets(t *testing.T, path string) []gopacket.Packet {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if r.LinkType() != layers.LinkTypeEthernet {
		t.Errorf("%s: link type %v, want Ethernet", path, r.LinkType())
	}
	var pkts []gopacket.Packet
	for {
		data, _, err := r.ReadPacketData()
		if err == io.EOF {
			return pkts
		}
		if err != nil {
			t.Fatalf("%s: packet %d: %v", path, len(pkts), err)
		}
		pkts = append(pkts, gopacket.NewPacket(data, layers.LinkTypeEthernet, gopacket.Default))
	}
}

// TestSnoopPcap: `tapadm snoop -o FILE -c 4` during pings from the
// namespace writes a pcap file that gopacket and tcpdump read, with the
// echo request and the reply; without -c, SIGINT ends it with a complete
// file.
func TestSnoopPcap(t *testing.T) {
	s := newSetup(t, 77)
	// Only the pings may cross the link: no IPv6 chatter from the kernel.
	s.nsExec("sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/"+s.tap+"/disable_ipv6")
	path := filepath.Join(t.TempDir(), "cap.pcap")

	sc := s.startSnoop("-d", s.tap, "-o", path, "-c", "4")
	// Ping until the capture is full: whenever its tap went in, the next
	// four frames hold a request and a reply.
	deadline := time.After(30 * time.Second)
wait:
	for {
		select {
		case err := <-sc.done:
			if err != nil {
				t.Fatalf("tapadm snoop: %v\n%s", err, sc.stderr.String())
			}
			break wait
		case <-deadline:
			t.Fatal("tapadm snoop -c 4 did not finish within 30s")
		default:
			s.nsPing(s.stackIP)
		}
	}
	if got := sc.stderr.String(); got != "4 packets captured\n" {
		t.Errorf("snoop stderr %q, want the count", got)
	}
	pkts := pcapPackets(t, path)
	if len(pkts) != 4 {
		t.Fatalf("%d packets in %s, want 4", len(pkts), path)
	}
	kernel, stack := net.ParseIP(s.kernelIP).To4(), net.ParseIP(s.stackIP).To4()
	var request, reply bool
	for i, p := range pkts {
		if e := p.ErrorLayer(); e != nil {
			t.Errorf("packet %d does not decode: %v", i, e.Error())
		}
		ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		ic, _ := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
		if ip == nil || ic == nil {
			if p.Layer(layers.LayerTypeARP) == nil {
				t.Errorf("packet %d is neither ICMP nor ARP: %v", i, p)
			}
			continue
		}
		switch ic.TypeCode.Type() {
		case layers.ICMPv4TypeEchoRequest:
			request = request || ip.SrcIP.Equal(kernel) && ip.DstIP.Equal(stack)
		case layers.ICMPv4TypeEchoReply:
			reply = reply || ip.SrcIP.Equal(stack) && ip.DstIP.Equal(kernel)
		}
	}
	if !request || !reply {
		t.Errorf("capture has echo request %v, echo reply %v; want both:\n%v", request, reply, pkts)
	}

	if tcpdump, err := netnstest.LookCmd("tcpdump"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Errorf("%v (make deps installs it)", err)
		} else {
			t.Logf("not checking the file with tcpdump: %v", err)
		}
	} else {
		out, err := exec.Command(tcpdump, "-n", "-r", path).CombinedOutput()
		if err != nil {
			t.Errorf("tcpdump -r %s: %v\n%s", path, err, out)
		}
		for _, want := range []string{"ICMP echo request", "ICMP echo reply"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("tcpdump -r does not show %q:\n%s", want, out)
			}
		}
	}

	// Without a count: SIGINT (Ctrl-C) ends the capture cleanly.
	path2 := filepath.Join(t.TempDir(), "cap2.pcap")
	sc = s.startSnoop("-d", s.tap, "-o", path2)
	// tapadm creates the file once it handles SIGINT.
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(path2); err == nil {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("tapadm snoop did not create its file within 10s")
		}
	}
	for range 3 {
		time.Sleep(100 * time.Millisecond)
		s.nsPing(s.stackIP)
	}
	sc.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-sc.done:
		if err != nil {
			t.Fatalf("tapadm snoop after SIGINT: %v\n%s", err, sc.stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tapadm snoop did not stop on SIGINT")
	}
	n := len(pcapPackets(t, path2))
	if got, want := sc.stderr.String(), fmt.Sprintf("%d packets captured\n", n); got != want {
		t.Errorf("snoop stderr %q, want %q", got, want)
	}
	// The daemon dropped the capture: the link still works and serves a
	// new one.
	if !s.nsPing(s.stackIP) {
		t.Error("ping after an interrupted capture failed")
	}
}
