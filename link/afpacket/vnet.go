package afpacket

// The virtio-net header (struct virtio_net_hdr, <linux/virtio_net.h>)
// that precedes every frame on a socket with PACKET_VNET_HDR. Packet
// sockets use the legacy layout in host byte order (vio_le() is the host's
// endianness), 10 bytes.
//
// This is a small codec of our own; it can be replaced by the shared
// link/vnet codec once that exists.

import (
	"encoding/binary"
	"fmt"
)

// vnetHdrLen is sizeof(struct virtio_net_hdr).
const vnetHdrLen = 10

// Header flags.
const (
	vnetFlagNeedsCsum = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM: checksum is partial
	vnetFlagDataValid = 2 // VIRTIO_NET_HDR_F_DATA_VALID: checksum validated
)

// GSO types.
const (
	vnetGSONone  = 0    // VIRTIO_NET_HDR_GSO_NONE
	vnetGSOTCPv4 = 1    // VIRTIO_NET_HDR_GSO_TCPV4
	vnetGSOUDP   = 3    // VIRTIO_NET_HDR_GSO_UDP (UFO)
	vnetGSOTCPv6 = 4    // VIRTIO_NET_HDR_GSO_TCPV6
	vnetGSOUDPL4 = 5    // VIRTIO_NET_HDR_GSO_UDP_L4 (USO)
	vnetGSOECN   = 0x80 // VIRTIO_NET_HDR_GSO_ECN, or'ed into the type
)

// vnetHdr is a decoded virtio-net header.
type vnetHdr struct {
	Flags      uint8
	GSOType    uint8
	HdrLen     uint16 // Ethernet + IP + transport headers, for GSO
	GSOSize    uint16 // the MSS, for GSO
	CsumStart  uint16 // where checksumming starts, from the Ethernet header
	CsumOffset uint16 // where the checksum goes, from CsumStart
}

// decodeVnetHdr reads a header from the first vnetHdrLen bytes of b, which
// the caller guarantees are there.
func decodeVnetHdr(b []byte) vnetHdr {
	_ = b[vnetHdrLen-1]
	return vnetHdr{
		Flags:      b[0],
		GSOType:    b[1],
		HdrLen:     binary.NativeEndian.Uint16(b[2:]),
		GSOSize:    binary.NativeEndian.Uint16(b[4:]),
		CsumStart:  binary.NativeEndian.Uint16(b[6:]),
		CsumOffset: binary.NativeEndian.Uint16(b[8:]),
	}
}

// encode writes h into the first vnetHdrLen bytes of b.
func (h vnetHdr) encode(b []byte) {
	_ = b[vnetHdrLen-1]
	b[0] = h.Flags
	b[1] = h.GSOType
	binary.NativeEndian.PutUint16(b[2:], h.HdrLen)
	binary.NativeEndian.PutUint16(b[4:], h.GSOSize)
	binary.NativeEndian.PutUint16(b[6:], h.CsumStart)
	binary.NativeEndian.PutUint16(b[8:], h.CsumOffset)
}

// gso returns the GSO type without the ECN bit.
func (h vnetHdr) gso() uint8 { return h.GSOType &^ vnetGSOECN }

// validate checks a header the kernel supplied against the frame it
// precedes (frameLen bytes, Ethernet header included): a partial checksum
// must lie inside the frame, and a GSO frame must have a known type, a
// non-zero segment size and headers inside the frame. The kernel is not
// trusted to have done so.
func (h vnetHdr) validate(frameLen int) error {
	if h.Flags&vnetFlagNeedsCsum != 0 && int(h.CsumStart)+int(h.CsumOffset)+2 > frameLen {
		return fmt.Errorf("partial checksum at %d+%d outside a %d-byte frame", h.CsumStart, h.CsumOffset, frameLen)
	}
	switch h.gso() {
	case vnetGSONone:
		return nil
	case vnetGSOTCPv4, vnetGSOTCPv6, vnetGSOUDP, vnetGSOUDPL4:
	default:
		return fmt.Errorf("unknown GSO type %#x", h.GSOType)
	}
	if h.GSOSize == 0 {
		return fmt.Errorf("GSO frame with segment size 0")
	}
	if int(h.HdrLen) > frameLen {
		return fmt.Errorf("GSO header length %d beyond a %d-byte frame", h.HdrLen, frameLen)
	}
	return nil
}
