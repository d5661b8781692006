package vnet

import (
	"encoding/binary"
	"fmt"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// What the links built on this package tell gVisor and the kernel.
const (
	// GSOMaxSize is the largest segment handed to the kernel: gVisor's
	// TCP keeps each segment's payload under GSOMaxSize - 161, which keeps
	// the IPv4 total length and the IPv6 payload length under 64 KiB.
	GSOMaxSize = 1 << 16

	// MaxFrame is the largest frame a kernel hands over after the header:
	// an Ethernet header and a 64 KiB IPv6 payload behind its fixed
	// header (TAP devices have no BIG TCP).
	MaxFrame = header.EthernetMinimumSize + header.IPv6MinimumSize + 0xffff
)

const udpCsumOffset = 6

// ForTransmit fills f for writing pkt, whose link header (of linkLen
// bytes) has been added, to a device that accepted TCP segmentation
// offload. A host-GSO TCP packet (pkt.GSOOptions.Type GSOTCPv4/v6) carries
// the pseudo-header sum in its checksum field; it gets FlagNeedsCsum and,
// if its payload is longer than the MSS, the GSO type and size (and
// GSOECN if it has CWR set). Any other packet goes out as gVisor built it,
// checksums complete, with an empty header.
//
// Why not partial checksums for every TCP and UDP packet: gVisor skips
// transport checksums altogether on a link with
// CapabilityTXChecksumOffload, also for a UDP datagram it then fragments,
// whose checksum no one can complete afterwards (Linux computes it before
// fragmenting); IPv6 receivers drop such datagrams. TCP data, the bulk,
// is offloaded through GSO either way.
//
// pkt is borrowed and not modified.
func ForTransmit(f *Fields, pkt *stack.PacketBuffer, linkLen int) {
	*f = Fields{}
	gso := &pkt.GSOOptions
	if gso.Type != stack.GSOTCPv4 && gso.Type != stack.GSOTCPv6 {
		return
	}
	f.HdrLen = uint16(pkt.HeaderSize())
	if gso.NeedsCsum {
		f.Flags = FlagNeedsCsum
		f.CsumStart = uint16(linkLen + len(pkt.NetworkHeader().Slice()))
		f.CsumOffset = gso.CsumOffset
	}
	if pkt.Data().Size() > int(gso.MSS) && gso.MSS > 0 {
		f.GSOType = GSOTCPv4
		if gso.Type == stack.GSOTCPv6 {
			f.GSOType = GSOTCPv6
		}
		f.GSOSize = gso.MSS
		if th := header.TCP(pkt.TransportHeader().Slice()); len(th) >= header.TCPMinimumSize && th.Flags()&header.TCPFlagCwr != 0 {
			f.GSOType |= GSOECN
		}
	}
}

// pseudoSum is the (uncomplemented) sum of the TCP/UDP pseudo-header.
func pseudoSum(proto uint8, src, dst []byte, length int) uint16 {
	var tail [4]byte
	binary.BigEndian.PutUint16(tail[0:], uint16(proto))
	binary.BigEndian.PutUint16(tail[2:], uint16(length))
	xsum := checksum.Checksum(src, 0)
	xsum = checksum.Checksum(dst, xsum)
	return checksum.Checksum(tail[:], xsum)
}

// ChecksumsValid checks, in software, the checksums of a received frame
// that came without FlagNeedsCsum or FlagDataValid, for links that tell
// gVisor the device checked them (CapabilityRXChecksumOffload): the IPv4
// header checksum, and the TCP or UDP checksum of a packet that is not a
// fragment and, for IPv6, has no extension headers. What it cannot check
// (fragments, extension headers) it lets through. frame is the whole
// frame, link header first (linkLen bytes, already validated).
func ChecksumsValid(frame *buffer.Buffer, linkLen int, proto uint16) bool {
	size := int(frame.Size())
	var l4, l4Len int
	var tp uint8
	var src, dst []byte
	switch proto {
	case uint16(header.IPv4ProtocolNumber):
		hv, ok := frame.PullUp(linkLen, header.IPv4MinimumSize)
		if !ok {
			return true // malformed: gVisor drops it
		}
		ihl := int(header.IPv4(hv.AsSlice()).HeaderLength())
		if ihl < header.IPv4MinimumSize {
			return true
		}
		if hv, ok = frame.PullUp(linkLen, ihl); !ok {
			return true
		}
		ip := header.IPv4(hv.AsSlice())
		if !ip.IsChecksumValid() {
			return false
		}
		total := int(ip.TotalLength())
		if ip.More() || ip.FragmentOffset() != 0 || total < ihl || linkLen+total > size {
			return true
		}
		l4, l4Len, tp = linkLen+ihl, total-ihl, ip.Protocol()
		src, dst = ip.SourceAddressSlice(), ip.DestinationAddressSlice()
	case uint16(header.IPv6ProtocolNumber):
		hv, ok := frame.PullUp(linkLen, header.IPv6MinimumSize)
		if !ok {
			return true
		}
		ip := header.IPv6(hv.AsSlice())
		l4, l4Len, tp = linkLen+header.IPv6MinimumSize, int(ip.PayloadLength()), ip.NextHeader()
		if l4+l4Len > size {
			return true
		}
		src, dst = ip.SourceAddressSlice(), ip.DestinationAddressSlice()
	default:
		return true
	}
	switch tp {
	case uint8(header.TCPProtocolNumber):
		if l4Len < header.TCPMinimumSize {
			return true
		}
	case uint8(header.UDPProtocolNumber):
		if l4Len < header.UDPMinimumSize {
			return true
		}
		if proto == uint16(header.IPv4ProtocolNumber) {
			uv, ok := frame.PullUp(l4, header.UDPMinimumSize)
			if ok && header.UDP(uv.AsSlice()).Checksum() == 0 {
				return true // no checksum (RFC 768)
			}
		}
	default:
		return true
	}
	xsum := pseudoSum(tp, src, dst, l4Len)
	return rangeSum(frame, l4, l4Len, xsum) == 0xffff
}

// rangeSum adds the bytes [off, off+n) of b to the checksum xsum.
func rangeSum(b *buffer.Buffer, off, n int, xsum uint16) uint16 {
	var c checksum.Checksumer
	var pre [2]byte
	binary.BigEndian.PutUint16(pre[:], xsum)
	c.Add(pre[:])
	vl := b.AsViewList()
	for v := vl.Front(); v != nil && n > 0; v = v.Next() {
		s := v.AsSlice()
		if off >= len(s) {
			off -= len(s)
			continue
		}
		s = s[off:]
		off = 0
		if len(s) > n {
			s = s[:n]
		}
		c.Add(s)
		n -= len(s)
	}
	return c.Checksum()
}

// SegmentUDP splits a USO frame (GSO type GSOUDPL4) into one frame per
// datagram of f.GSOSize payload bytes, the way the kernel's
// __udp_gso_segment would, and hands each to yield, which owns it. The
// payload is shared, not copied; the Ethernet, IP and UDP headers (up to
// 8 bytes past f.CsumStart) are copied into each segment and fixed up:
// lengths, the IPv4 ID and header checksum, and the UDP checksum, which
// stays partial (pseudo-header only) as FlagNeedsCsum said. frame is
// consumed, whether SegmentUDP succeeds or not. The error says what was
// wrong with a frame that could not be split.
func SegmentUDP(frame buffer.Buffer, f *Fields, yield func(buffer.Buffer)) error {
	defer frame.Release()
	const eth = header.EthernetMinimumSize
	size := int(frame.Size())
	l4 := int(f.CsumStart)
	hdrLen := l4 + header.UDPMinimumSize
	if f.Flags&FlagNeedsCsum == 0 || f.CsumOffset != udpCsumOffset || f.GSOSize == 0 || hdrLen > size || l4 < eth+header.IPv4MinimumSize {
		return fmt.Errorf("USO frame of %d bytes with %v: bad checksum position or size", size, *f)
	}
	hv, ok := frame.PullUp(0, hdrLen)
	if !ok {
		return fmt.Errorf("USO frame of %d bytes shorter than its headers", size)
	}
	hdrs := hv.AsSlice()
	var v4 bool
	switch et := binary.BigEndian.Uint16(hdrs[12:]); et {
	case uint16(header.IPv4ProtocolNumber):
		ip := header.IPv4(hdrs[eth:])
		if int(ip.HeaderLength()) != l4-eth || ip.Protocol() != uint8(header.UDPProtocolNumber) {
			return fmt.Errorf("USO frame: IPv4 header of %d bytes, protocol %d, checksum at %d", ip.HeaderLength(), ip.Protocol(), l4)
		}
		v4 = true
	case uint16(header.IPv6ProtocolNumber):
		ip := header.IPv6(hdrs[eth:])
		if l4-eth != header.IPv6MinimumSize || ip.NextHeader() != uint8(header.UDPProtocolNumber) {
			return fmt.Errorf("USO frame: IPv6 next header %d, checksum at %d", ip.NextHeader(), l4)
		}
	default:
		return fmt.Errorf("USO frame with ethertype %#04x", et)
	}
	payload := size - hdrLen
	gso := int(f.GSOSize)
	if payload <= gso {
		yield(frame.Clone())
		return nil
	}
	var id uint16
	if v4 {
		id = header.IPv4(hdrs[eth:]).ID()
	}
	for i, off := 0, 0; off < payload; i, off = i+1, off+gso {
		n := min(gso, payload-off)
		seg := buffer.NewViewSize(hdrLen)
		seg.WriteAt(hdrs, 0)
		s := seg.AsSlice()
		udpLen := header.UDPMinimumSize + n
		if v4 {
			ip := header.IPv4(s[eth:l4])
			ip.SetTotalLength(uint16(l4 - eth + udpLen))
			ip.SetID(id + uint16(i))
			ip.SetChecksum(0)
			ip.SetChecksum(^ip.CalculateChecksum())
			u := header.UDP(s[l4:])
			u.SetLength(uint16(udpLen))
			u.SetChecksum(pseudoSum(uint8(header.UDPProtocolNumber), ip.SourceAddressSlice(), ip.DestinationAddressSlice(), udpLen))
		} else {
			ip := header.IPv6(s[eth:l4])
			ip.SetPayloadLength(uint16(udpLen))
			u := header.UDP(s[l4:])
			u.SetLength(uint16(udpLen))
			u.SetChecksum(pseudoSum(uint8(header.UDPProtocolNumber), ip.SourceAddressSlice(), ip.DestinationAddressSlice(), udpLen))
		}
		body := frame.Clone()
		body.TrimFront(int64(hdrLen + off))
		body.Truncate(int64(n))
		out := buffer.MakeWithView(seg)
		out.Merge(&body)
		yield(out)
	}
	return nil
}
