package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/tapstack/tapstack/ctl"
)

const snoopUsage = `  tapadm snoop -d LINK [-o FILE] [-c COUNT]
`

// snaplen is the pcap file's snapshot length; longer frames are cut.
const snaplen = 65535

// streamer is a requester that also makes streaming requests;
// *ctl.Client is the real one.
type streamer interface {
	requester
	Stream(ctx context.Context, op string, family ctl.Family, args any, each func(json.RawMessage) error) error
}

var _ streamer = (*ctl.Client)(nil)

// snoop captures the frames crossing a link, like snoop(8) on illumos:
// `tapadm snoop -d tap0 -o cap.pcap -c 100` writes them to cap.pcap in
// pcap format (tcpdump -r, tshark -r); without -o it prints one line per
// frame. It stops after COUNT frames or at SIGINT or SIGTERM, leaving a
// complete file either way, and prints "N packets captured" on stderr.
//
// The daemon streams the frames and tapadm writes the file: the file
// belongs to whoever runs tapadm, and the daemon never opens a path a
// client chose. Capturing needs privilege (EPERM).
func (a *app) snoop(ctx context.Context, args []string) error {
	var req ctl.Snoop
	var file string
	for i := 0; i < len(args); i++ {
		opt := args[i]
		if opt != "-d" && opt != "-o" && opt != "-c" {
			return usagef("snoop", "unexpected argument %q", opt)
		}
		if i+1 >= len(args) {
			return usagef("snoop", "%s needs a value", opt)
		}
		i++
		switch v := args[i]; opt {
		case "-d":
			req.Link = v
		case "-o":
			file = v
		case "-c":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return usagef("snoop", "bad count %q", v)
			}
			req.Count = n
		}
	}
	if req.Link == "" {
		return usagef("snoop", "no link given (-d LINK)")
	}
	// From here Ctrl-C ends the capture, not tapadm: the file is completed
	// below.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := a.conn()
	if err != nil {
		return err
	}
	s, ok := r.(streamer)
	if !ok {
		return errors.New("snoop: this connection cannot stream")
	}

	var out frameSink = &summarySink{w: a.stdout}
	if file != "" {
		p, err := createPcap(file)
		if err != nil {
			return fmt.Errorf("snoop: %w", err)
		}
		out = p
	}

	n := 0
	var drops uint64
	err = s.Stream(ctx, "snoop", "", req, func(raw json.RawMessage) error {
		var f ctl.Frame
		if err := json.Unmarshal(raw, &f); err != nil {
			return fmt.Errorf("snoop: decode frame: %w", err)
		}
		if err := out.write(f); err != nil {
			return fmt.Errorf("snoop: %w", err)
		}
		n++
		drops = f.Drops
		return nil
	})
	if ctx.Err() != nil {
		err = nil // stopped by a signal (or the caller): a clean end
	}
	if cerr := out.close(); err == nil && cerr != nil {
		err = fmt.Errorf("snoop: %w", cerr)
	}
	if err != nil {
		if file != "" && n == 0 {
			os.Remove(file) // refused: leave no empty capture behind
		}
		return err
	}
	stderr := a.stderr
	if stderr == nil {
		stderr = io.Discard
	}
	fmt.Fprintf(stderr, "%d packets captured\n", n)
	if drops > 0 {
		fmt.Fprintf(stderr, "%d packets dropped by tapstackd\n", drops)
	}
	return nil
}

// frameSink is where snoop puts the frames.
type frameSink interface {
	write(ctl.Frame) error
	close() error
}

// pcapSink writes a pcap file: Ethernet link type, microsecond stamps.
type pcapSink struct {
	f *os.File
	b *bufio.Writer
	w *pcapgo.Writer
}

// createPcap creates (or truncates) path and writes the pcap file header.
func createPcap(path string) (*pcapSink, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	b := bufio.NewWriter(f)
	w := pcapgo.NewWriter(b)
	if err := w.WriteFileHeader(snaplen, layers.LinkTypeEthernet); err != nil {
		f.Close()
		return nil, err
	}
	return &pcapSink{f: f, b: b, w: w}, nil
}

func (p *pcapSink) write(fr ctl.Frame) error {
	data := fr.Data
	if len(data) > snaplen {
		data = data[:snaplen]
	}
	ci := gopacket.CaptureInfo{Timestamp: fr.Time, CaptureLength: len(data), Length: len(fr.Data)}
	return p.w.WritePacket(ci, data)
}

func (p *pcapSink) close() error {
	err := p.b.Flush()
	if cerr := p.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// summarySink prints one line per frame.
type summarySink struct{ w io.Writer }

func (s *summarySink) write(fr ctl.Frame) error {
	_, err := fmt.Fprintln(s.w, summarize(fr.Data))
	return err
}

func (s *summarySink) close() error { return nil }

// summarize describes an Ethernet frame in one line, as snoop(8) does
// without -v: "10.0.0.2 -> 10.0.0.1 ICMP Echo request (ID: 7 Sequence
// number: 1)", "10.0.0.2 -> (broadcast) ARP C Who is 10.0.0.1, 10.0.0.1 ?".
// Names are not resolved, so an address stands where snoop puts a host
// name.
func summarize(data []byte) string {
	p := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
	eth, ok := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if !ok {
		return fmt.Sprintf("ETHER truncated frame, size=%d bytes", len(data))
	}
	if arp, ok := p.Layer(layers.LayerTypeARP).(*layers.ARP); ok {
		return summarizeARP(eth, arp)
	}
	var src, dst string
	switch ip := p.NetworkLayer().(type) {
	case *layers.IPv4:
		src, dst = ip.SrcIP.String(), ip.DstIP.String()
	case *layers.IPv6:
		src, dst = ip.SrcIP.String(), ip.DstIP.String()
	default:
		name := eth.EthernetType.String()
		if strings.HasPrefix(name, "Unknown") {
			name = "Unknown"
		}
		return fmt.Sprintf("%s -> %s ETHER Type=%04X (%s), size=%d bytes",
			macString(eth.SrcMAC), ethDst(eth), uint16(eth.EthernetType), name, len(data))
	}
	return src + " -> " + dst + " " + summarizeTransport(p)
}

func summarizeARP(eth *layers.Ethernet, arp *layers.ARP) string {
	sender, target := net.IP(arp.SourceProtAddress), net.IP(arp.DstProtAddress)
	switch arp.Operation {
	case layers.ARPRequest:
		return fmt.Sprintf("%s -> %s ARP C Who is %s, %s ?", sender, ethDst(eth), target, target)
	case layers.ARPReply:
		return fmt.Sprintf("%s -> %s ARP R %s, %s is %s", sender, target, sender, sender, macString(arp.SourceHwAddress))
	}
	return fmt.Sprintf("%s -> %s ARP op %d", sender, target, arp.Operation)
}

// summarizeTransport describes what an IP packet carries.
func summarizeTransport(p gopacket.Packet) string {
	switch l := p.TransportLayer().(type) {
	case *layers.TCP:
		var b strings.Builder
		fmt.Fprintf(&b, "TCP D=%d S=%d", l.DstPort, l.SrcPort)
		for _, f := range []struct {
			on   bool
			name string
		}{{l.SYN, "Syn"}, {l.FIN, "Fin"}, {l.RST, "Rst"}, {l.PSH, "Push"}} {
			if f.on {
				b.WriteString(" " + f.name)
			}
		}
		if l.ACK {
			fmt.Fprintf(&b, " Ack=%d", l.Ack)
		}
		fmt.Fprintf(&b, " Seq=%d Len=%d Win=%d", l.Seq, len(l.Payload), l.Window)
		return b.String()
	case *layers.UDP:
		return fmt.Sprintf("UDP D=%d S=%d LEN=%d", l.DstPort, l.SrcPort, l.Length)
	}
	if ic, ok := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4); ok {
		t := ic.TypeCode.Type()
		switch t {
		case layers.ICMPv4TypeEchoRequest, layers.ICMPv4TypeEchoReply:
			kind := "request"
			if t == layers.ICMPv4TypeEchoReply {
				kind = "reply"
			}
			return fmt.Sprintf("ICMP Echo %s (ID: %d Sequence number: %d)", kind, ic.Id, ic.Seq)
		case layers.ICMPv4TypeDestinationUnreachable:
			return fmt.Sprintf("ICMP Destination unreachable (code %d)", ic.TypeCode.Code())
		case layers.ICMPv4TypeTimeExceeded:
			return "ICMP Time exceeded"
		}
		return fmt.Sprintf("ICMP type %d code %d", t, ic.TypeCode.Code())
	}
	if ic, ok := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6); ok {
		t := ic.TypeCode.Type()
		switch t {
		case layers.ICMPv6TypeEchoRequest, layers.ICMPv6TypeEchoReply:
			kind := "request"
			if t == layers.ICMPv6TypeEchoReply {
				kind = "reply"
			}
			if e, ok := p.Layer(layers.LayerTypeICMPv6Echo).(*layers.ICMPv6Echo); ok {
				return fmt.Sprintf("ICMPv6 Echo %s (ID: %d Sequence number: %d)", kind, e.Identifier, e.SeqNumber)
			}
			return "ICMPv6 Echo " + kind
		case layers.ICMPv6TypeNeighborSolicitation:
			return "ICMPv6 Neighbor solicitation"
		case layers.ICMPv6TypeNeighborAdvertisement:
			return "ICMPv6 Neighbor advertisement"
		case layers.ICMPv6TypeRouterSolicitation:
			return "ICMPv6 Router solicitation"
		case layers.ICMPv6TypeRouterAdvertisement:
			return "ICMPv6 Router advertisement"
		}
		return fmt.Sprintf("ICMPv6 type %d code %d", t, ic.TypeCode.Code())
	}
	switch ip := p.NetworkLayer().(type) {
	case *layers.IPv4:
		return fmt.Sprintf("IP proto=%d LEN=%d", ip.Protocol, ip.Length)
	case *layers.IPv6:
		return fmt.Sprintf("IPv6 next header=%d LEN=%d", ip.NextHeader, ip.Length)
	}
	return "IP"
}

// ethDst is the destination as snoop shows it: "(broadcast)" or the MAC.
func ethDst(eth *layers.Ethernet) string {
	if string(eth.DstMAC) == string(layers.EthernetBroadcast) {
		return "(broadcast)"
	}
	return macString(eth.DstMAC)
}

// macString writes a MAC the illumos way, without leading zeros:
// "2:0:0:0:0:1".
func macString(mac net.HardwareAddr) string {
	parts := make([]string, len(mac))
	for i, b := range mac {
		parts[i] = strconv.FormatUint(uint64(b), 16)
	}
	return strings.Join(parts, ":")
}
