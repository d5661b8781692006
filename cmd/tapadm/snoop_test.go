package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/tapstack/tapstack/ctl"
)

// fakeStreamer is a fakeDaemon that also answers streaming requests: it
// sends frames, then ends the stream with end (nil: the end line). With
// hang set it then waits for ctx instead, like a capture without a count.
type fakeStreamer struct {
	fakeDaemon
	frames []ctl.Frame
	end    error
	hang   bool
}

var _ streamer = (*fakeStreamer)(nil)

func (f *fakeStreamer) Stream(ctx context.Context, op string, family ctl.Family, args any, each func(json.RawMessage) error) error {
	f.calls = append(f.calls, call{Op: op, Family: family, Args: args})
	for _, fr := range f.frames {
		raw, err := json.Marshal(fr)
		if err != nil {
			return err
		}
		if err := each(raw); err != nil {
			return err
		}
	}
	if f.hang {
		<-ctx.Done()
		return fmt.Errorf("%s: %w", op, context.Cause(ctx))
	}
	return f.end
}

var (
	stackMAC  = net.HardwareAddr{2, 0, 0, 0, 0, 1}
	kernelMAC = net.HardwareAddr{0x0a, 0x1b, 0, 0, 0, 2}
	stackIP   = net.IP{10, 0, 0, 1}
	kernelIP  = net.IP{10, 0, 0, 2}
)

// serialize builds a frame from layers, lengths and checksums computed.
func serialize(t *testing.T, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func arpFrame(t *testing.T, op uint16) []byte {
	eth := &layers.Ethernet{SrcMAC: kernelMAC, DstMAC: layers.EthernetBroadcast, EthernetType: layers.EthernetTypeARP}
	arp := &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: op, SourceHwAddress: kernelMAC, SourceProtAddress: kernelIP, DstHwAddress: make([]byte, 6), DstProtAddress: stackIP}
	if op == layers.ARPReply {
		eth.SrcMAC, eth.DstMAC = stackMAC, kernelMAC
		arp.SourceHwAddress, arp.SourceProtAddress, arp.DstHwAddress, arp.DstProtAddress = stackMAC, stackIP, kernelMAC, kernelIP
	}
	return serialize(t, eth, arp)
}

func icmpFrame(t *testing.T, typ uint8) []byte {
	eth := &layers.Ethernet{SrcMAC: kernelMAC, DstMAC: stackMAC, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: kernelIP, DstIP: stackIP}
	if typ == layers.ICMPv4TypeEchoReply {
		eth.SrcMAC, eth.DstMAC = stackMAC, kernelMAC
		ip.SrcIP, ip.DstIP = stackIP, kernelIP
	}
	icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, 0), Id: 7, Seq: 1}
	return serialize(t, eth, ip, icmp, gopacket.Payload("ping payload"))
}

func udpFrame(t *testing.T) []byte {
	eth := &layers.Ethernet{SrcMAC: kernelMAC, DstMAC: stackMAC, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: kernelIP, DstIP: stackIP}
	udp := &layers.UDP{SrcPort: 40000, DstPort: 7}
	udp.SetNetworkLayerForChecksum(ip)
	return serialize(t, eth, ip, udp, gopacket.Payload("hello"))
}

func tcpFrame(t *testing.T) []byte {
	eth := &layers.Ethernet{SrcMAC: kernelMAC, DstMAC: stackMAC, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: kernelIP, DstIP: stackIP}
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 7, Seq: 1000, SYN: true, Window: 64240}
	tcp.SetNetworkLayerForChecksum(ip)
	return serialize(t, eth, ip, tcp)
}

// pingCapture is what `snoop -c 4` sees of the kernel pinging the stack.
func pingCapture(t *testing.T, start time.Time) []ctl.Frame {
	return []ctl.Frame{
		{Time: start, Dir: ctl.DirIn, Data: arpFrame(t, layers.ARPRequest)},
		{Time: start.Add(10 * time.Microsecond), Dir: ctl.DirOut, Data: arpFrame(t, layers.ARPReply)},
		{Time: start.Add(250 * time.Microsecond), Dir: ctl.DirIn, Data: icmpFrame(t, layers.ICMPv4TypeEchoRequest)},
		{Time: start.Add(300 * time.Microsecond), Dir: ctl.DirOut, Data: icmpFrame(t, layers.ICMPv4TypeEchoReply)},
	}
}

// snoopApp returns an app on d with stdout and stderr captured.
func snoopApp(d requester) (a *app, stdout, stderr *bytes.Buffer, dials *int) {
	a, stdout, dials = testApp(d)
	stderr = new(bytes.Buffer)
	a.stderr = stderr
	return a, stdout, stderr, dials
}

// readPcap parses a pcap file with gopacket.
func readPcap(t *testing.T, path string) (*pcapgo.Reader, []gopacket.Packet, []gopacket.CaptureInfo) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatalf("pcapgo.NewReader: %v", err)
	}
	var pkts []gopacket.Packet
	var cis []gopacket.CaptureInfo
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("packet %d: %v", len(pkts), err)
		}
		pkts = append(pkts, gopacket.NewPacket(data, r.LinkType(), gopacket.Default))
		cis = append(cis, ci)
	}
	return r, pkts, cis
}

func TestSnoopWritesPcap(t *testing.T) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)
	frames := pingCapture(t, start)
	d := &fakeStreamer{frames: frames}
	a, stdout, stderr, _ := snoopApp(d)
	path := filepath.Join(t.TempDir(), "cap.pcap")
	if err := a.dispatch(context.Background(), []string{"snoop", "-d", "tap0", "-o", path, "-c", "4"}); err != nil {
		t.Fatal(err)
	}
	if diff := diff([]call{{Op: "snoop", Args: ctl.Snoop{Link: "tap0", Count: 4}}}, d.calls); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout %q, want nothing with -o", stdout)
	}
	if got := stderr.String(); got != "4 packets captured\n" {
		t.Errorf("stderr %q", got)
	}

	r, pkts, cis := readPcap(t, path)
	if r.LinkType() != layers.LinkTypeEthernet || r.Snaplen() != 65535 {
		t.Errorf("file header: link type %v, snaplen %d", r.LinkType(), r.Snaplen())
	}
	if len(pkts) != len(frames) {
		t.Fatalf("%d packets in the file, want %d", len(pkts), len(frames))
	}
	var got []string
	for i, p := range pkts {
		if !bytes.Equal(p.Data(), frames[i].Data) || cis[i].Length != len(frames[i].Data) {
			t.Errorf("packet %d: %d bytes (length %d), want the %d bytes sent", i, len(p.Data()), cis[i].Length, len(frames[i].Data))
		}
		if !cis[i].Timestamp.Equal(frames[i].Time) {
			t.Errorf("packet %d stamped %v, want %v", i, cis[i].Timestamp, frames[i].Time)
		}
		if e := p.ErrorLayer(); e != nil {
			t.Errorf("packet %d does not decode: %v", i, e.Error())
		}
		switch {
		case p.Layer(layers.LayerTypeARP) != nil:
			got = append(got, fmt.Sprintf("ARP op %d", p.Layer(layers.LayerTypeARP).(*layers.ARP).Operation))
		case p.Layer(layers.LayerTypeICMPv4) != nil:
			ic := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
			got = append(got, fmt.Sprintf("ICMPv4 %v id=%d seq=%d", ic.TypeCode, ic.Id, ic.Seq))
		default:
			got = append(got, p.String())
		}
	}
	want := []string{"ARP op 1", "ARP op 2", "ICMPv4 EchoRequest id=7 seq=1", "ICMPv4 EchoReply id=7 seq=1"}
	if d := diff(want, got); d != "" {
		t.Errorf("packets (-want +got):\n%s", d)
	}
}

// TestSnoopInterrupted: Ctrl-C (the context ending) stops a capture
// without a count cleanly: no error, a complete file, the count printed.
func TestSnoopInterrupted(t *testing.T) {
	frames := pingCapture(t, time.Now())[:2]
	d := &fakeStreamer{frames: frames, hang: true}
	a, _, stderr, _ := snoopApp(d)
	path := filepath.Join(t.TempDir(), "cap.pcap")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.dispatch(ctx, []string{"snoop", "-d", "tap0", "-o", path}) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("interrupted snoop: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("snoop did not stop when its context ended")
	}
	if _, pkts, _ := readPcap(t, path); len(pkts) != 2 {
		t.Errorf("%d packets in the file, want 2", len(pkts))
	}
	if got := stderr.String(); got != "2 packets captured\n" {
		t.Errorf("stderr %q", got)
	}
}

func TestSnoopSummary(t *testing.T) {
	frames := append(pingCapture(t, time.Now()),
		ctl.Frame{Dir: ctl.DirIn, Data: udpFrame(t)},
		ctl.Frame{Dir: ctl.DirIn, Data: tcpFrame(t)},
		ctl.Frame{Dir: ctl.DirIn, Data: serialize(t,
			&layers.Ethernet{SrcMAC: kernelMAC, DstMAC: stackMAC, EthernetType: 0x88b5}, gopacket.Payload("xx"))},
		ctl.Frame{Dir: ctl.DirIn, Data: []byte{1, 2, 3}, Drops: 3},
	)
	d := &fakeStreamer{frames: frames}
	a, stdout, stderr, _ := snoopApp(d)
	if err := a.dispatch(context.Background(), []string{"snoop", "-d", "tap0"}); err != nil {
		t.Fatal(err)
	}
	want := `10.0.0.2 -> (broadcast) ARP C Who is 10.0.0.1, 10.0.0.1 ?
10.0.0.1 -> 10.0.0.2 ARP R 10.0.0.1, 10.0.0.1 is 2:0:0:0:0:1
10.0.0.2 -> 10.0.0.1 ICMP Echo request (ID: 7 Sequence number: 1)
10.0.0.1 -> 10.0.0.2 ICMP Echo reply (ID: 7 Sequence number: 1)
10.0.0.2 -> 10.0.0.1 UDP D=7 S=40000 LEN=13
10.0.0.2 -> 10.0.0.1 TCP D=7 S=40000 Syn Seq=1000 Len=0 Win=64240
a:1b:0:0:0:2 -> 2:0:0:0:0:1 ETHER Type=88B5 (Unknown), size=60 bytes
ETHER truncated frame, size=3 bytes
`
	if d := diff(want, stdout.String()); d != "" {
		t.Errorf("summary (-want +got):\n%s", d)
	}
	if got := stderr.String(); got != "8 packets captured\n3 packets dropped by tapstackd\n" {
		t.Errorf("stderr %q", got)
	}
}

// TestSnoopSnaplen: a frame longer than the snapshot length is cut, and
// the file records its real length.
func TestSnoopSnaplen(t *testing.T) {
	big := make([]byte, 70000)
	copy(big, icmpFrame(t, layers.ICMPv4TypeEchoRequest))
	d := &fakeStreamer{frames: []ctl.Frame{{Time: time.Now(), Dir: ctl.DirIn, Data: big}}}
	a, _, _, _ := snoopApp(d)
	path := filepath.Join(t.TempDir(), "cap.pcap")
	if err := a.dispatch(context.Background(), []string{"snoop", "-d", "tap0", "-o", path}); err != nil {
		t.Fatal(err)
	}
	_, pkts, cis := readPcap(t, path)
	if len(pkts) != 1 || cis[0].CaptureLength != 65535 || cis[0].Length != 70000 {
		t.Errorf("got %d packets, %+v", len(pkts), cis)
	}
}

func TestSnoopErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		args    []string
		end     error
		wantErr string
		noDial  bool
	}{
		{name: "no link", args: []string{"-o", "x.pcap"}, wantErr: "snoop: no link given (-d LINK)", noDial: true},
		{name: "bad count", args: []string{"-d", "tap0", "-c", "0"}, wantErr: `snoop: bad count "0"`, noDial: true},
		{name: "missing value", args: []string{"-d", "tap0", "-o"}, wantErr: "snoop: -o needs a value", noDial: true},
		{name: "stray argument", args: []string{"-d", "tap0", "tap1"}, wantErr: `snoop: unexpected argument "tap1"`, noDial: true},
		{name: "refused", args: []string{"-d", "tap0", "-o", filepath.Join(dir, "refused.pcap")},
			end: refuse("snoop", ctl.EPERM, "capturing traffic needs privilege"), wantErr: "snoop: EPERM: capturing traffic needs privilege"},
		{name: "unwritable file", args: []string{"-d", "tap0", "-o", filepath.Join(dir, "no", "such", "dir.pcap")},
			wantErr: "no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &fakeStreamer{end: tc.end}
			a, _, _, dials := snoopApp(d)
			err := a.dispatch(context.Background(), append([]string{"snoop"}, tc.args...))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err %v, want %q", err, tc.wantErr)
			}
			var ue *usageError
			if errors.As(err, &ue) != tc.noDial || (*dials == 0) != tc.noDial {
				t.Errorf("usage error %v, dials %d", errors.As(err, &ue), *dials)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "refused.pcap")); !os.IsNotExist(err) {
		t.Errorf("a refused capture left its file behind: %v", err)
	}
}

func TestSnoopNeedsStreamer(t *testing.T) {
	a, _, _, _ := snoopApp(&fakeDaemon{})
	if err := a.dispatch(context.Background(), []string{"snoop", "-d", "tap0"}); err == nil {
		t.Error("snoop over a connection that cannot stream succeeded")
	}
}
