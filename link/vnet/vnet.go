// Package vnet is the virtio-net header (struct virtio_net_hdr,
// <linux/virtio_net.h>): the 10 bytes a Linux TAP opened with IFF_VNET_HDR,
// or an AF_PACKET socket with PACKET_VNET_HDR, puts before every frame to
// carry checksum and segmentation offload metadata.
//
// The fields are in host byte order, which is what a TAP uses unless told
// otherwise with TUNSETVNETLE/TUNSETVNETBE (tapstack never does; gVisor's
// header.VirtioNetHeader is not used because it mixes byte orders). Header
// is a zero-copy view in the style of gVisor's header package; Fields is
// its decoded form. Everything a kernel hands over is validated before it
// is used (Fields.Validate), never trusted.
//
// Package vnet is wire format only, except packet.go, which maps gVisor
// packet buffers to and from headers for the links that use it.
package vnet

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Size is the size of struct virtio_net_hdr (without num_buffers, which a
// TAP does not use): the value TUNSETVNETHDRSZ is given.
const Size = 10

// Flags (virtio_net_hdr.flags).
const (
	// FlagNeedsCsum is VIRTIO_NET_HDR_F_NEEDS_CSUM: the checksum at
	// CsumStart+CsumOffset holds only the pseudo-header sum; whoever takes
	// the frame completes it over [CsumStart, end) (Linux CHECKSUM_PARTIAL).
	FlagNeedsCsum uint8 = 1
	// FlagDataValid is VIRTIO_NET_HDR_F_DATA_VALID: the sender has checked
	// the checksums (Linux CHECKSUM_UNNECESSARY). Receive direction only.
	FlagDataValid uint8 = 2
)

// Segmentation types (virtio_net_hdr.gso_type).
const (
	GSONone   uint8 = 0    // VIRTIO_NET_HDR_GSO_NONE
	GSOTCPv4  uint8 = 1    // VIRTIO_NET_HDR_GSO_TCPV4
	GSOUDP    uint8 = 3    // VIRTIO_NET_HDR_GSO_UDP (UFO: IP fragmentation; never negotiated)
	GSOTCPv6  uint8 = 4    // VIRTIO_NET_HDR_GSO_TCPV6
	GSOUDPL4  uint8 = 5    // VIRTIO_NET_HDR_GSO_UDP_L4 (USO: one datagram per GSOSize)
	GSOECN    uint8 = 0x80 // VIRTIO_NET_HDR_GSO_ECN: TCP with CWR set on the first segment
	gsoTypeOf uint8 = ^GSOECN
)

// Field offsets in the header.
const (
	flagsOff      = 0
	gsoTypeOff    = 1
	hdrLenOff     = 2
	gsoSizeOff    = 4
	csumStartOff  = 6
	csumOffsetOff = 8
)

// Header is a virtio-net header: a view into the first Size bytes of a
// slice. Call IsValid before any accessor.
type Header []byte

// Fields is a decoded header.
type Fields struct {
	Flags      uint8  // FlagNeedsCsum, FlagDataValid
	GSOType    uint8  // GSONone, GSOTCPv4, … possibly with GSOECN
	HdrLen     uint16 // length of the headers to keep linear (a hint)
	GSOSize    uint16 // payload bytes per segment
	CsumStart  uint16 // where checksumming starts, from the frame's first byte
	CsumOffset uint16 // where the checksum goes, from CsumStart
}

// IsValid reports whether h is long enough to be a header.
func (h Header) IsValid() bool { return len(h) >= Size }

// Flags returns the flags field.
func (h Header) Flags() uint8 { return h[flagsOff] }

// GSOType returns the gso_type field, ECN bit included.
func (h Header) GSOType() uint8 { return h[gsoTypeOff] }

// HdrLen returns the hdr_len field.
func (h Header) HdrLen() uint16 { return binary.NativeEndian.Uint16(h[hdrLenOff:]) }

// GSOSize returns the gso_size field.
func (h Header) GSOSize() uint16 { return binary.NativeEndian.Uint16(h[gsoSizeOff:]) }

// CsumStart returns the csum_start field.
func (h Header) CsumStart() uint16 { return binary.NativeEndian.Uint16(h[csumStartOff:]) }

// CsumOffset returns the csum_offset field.
func (h Header) CsumOffset() uint16 { return binary.NativeEndian.Uint16(h[csumOffsetOff:]) }

// SetFlags sets the flags field.
func (h Header) SetFlags(v uint8) { h[flagsOff] = v }

// SetGSOType sets the gso_type field.
func (h Header) SetGSOType(v uint8) { h[gsoTypeOff] = v }

// SetHdrLen sets the hdr_len field.
func (h Header) SetHdrLen(v uint16) { binary.NativeEndian.PutUint16(h[hdrLenOff:], v) }

// SetGSOSize sets the gso_size field.
func (h Header) SetGSOSize(v uint16) { binary.NativeEndian.PutUint16(h[gsoSizeOff:], v) }

// SetCsumStart sets the csum_start field.
func (h Header) SetCsumStart(v uint16) { binary.NativeEndian.PutUint16(h[csumStartOff:], v) }

// SetCsumOffset sets the csum_offset field.
func (h Header) SetCsumOffset(v uint16) { binary.NativeEndian.PutUint16(h[csumOffsetOff:], v) }

// Decode returns the fields of h. h must be valid.
func (h Header) Decode() Fields {
	return Fields{
		Flags:      h.Flags(),
		GSOType:    h.GSOType(),
		HdrLen:     h.HdrLen(),
		GSOSize:    h.GSOSize(),
		CsumStart:  h.CsumStart(),
		CsumOffset: h.CsumOffset(),
	}
}

// Encode writes f into h (every byte of the header). h must be valid.
func (h Header) Encode(f *Fields) {
	h.SetFlags(f.Flags)
	h.SetGSOType(f.GSOType)
	h.SetHdrLen(f.HdrLen)
	h.SetGSOSize(f.GSOSize)
	h.SetCsumStart(f.CsumStart)
	h.SetCsumOffset(f.CsumOffset)
}

// Errors Validate returns; they can be matched with errors.Is.
var (
	ErrUnknownFlags   = errors.New("unknown flags")
	ErrUnknownGSOType = errors.New("unknown GSO type")
	ErrGSOSize        = errors.New("GSO without a segment size")
	ErrGSOCsum        = errors.New("GSO without a partial checksum")
	ErrECN            = errors.New("ECN bit on a non-TCP GSO type")
	ErrHdrLen         = errors.New("hdr_len beyond the frame")
	ErrCsum           = errors.New("checksum position beyond the frame")
)

// Validate checks f, which came with a frame of frameLen bytes (the bytes
// after the header), and says what is wrong with it. A valid header's
// CsumStart+CsumOffset+2 and HdrLen lie within the frame, its GSO type is
// known, and a GSO frame has a segment size and a partial checksum.
func (f *Fields) Validate(frameLen int) error {
	if f.Flags&^(FlagNeedsCsum|FlagDataValid) != 0 {
		return fmt.Errorf("vnet header flags %#x: %w", f.Flags, ErrUnknownFlags)
	}
	if int(f.HdrLen) > frameLen {
		return fmt.Errorf("vnet header hdr_len %d, frame %d bytes: %w", f.HdrLen, frameLen, ErrHdrLen)
	}
	if f.Flags&FlagNeedsCsum != 0 && int(f.CsumStart)+int(f.CsumOffset)+2 > frameLen {
		return fmt.Errorf("vnet header csum_start %d + csum_offset %d, frame %d bytes: %w", f.CsumStart, f.CsumOffset, frameLen, ErrCsum)
	}
	t := f.GSOType & gsoTypeOf
	switch t {
	case GSONone:
		if f.GSOType&GSOECN != 0 {
			return fmt.Errorf("vnet header gso_type %#x: %w", f.GSOType, ErrECN)
		}
		return nil
	case GSOTCPv4, GSOTCPv6:
	case GSOUDP, GSOUDPL4:
		if f.GSOType&GSOECN != 0 {
			return fmt.Errorf("vnet header gso_type %#x: %w", f.GSOType, ErrECN)
		}
	default:
		return fmt.Errorf("vnet header gso_type %#x: %w", f.GSOType, ErrUnknownGSOType)
	}
	if f.GSOSize == 0 {
		return fmt.Errorf("vnet header gso_type %#x: %w", f.GSOType, ErrGSOSize)
	}
	if f.Flags&FlagNeedsCsum == 0 {
		return fmt.Errorf("vnet header gso_type %#x: %w", f.GSOType, ErrGSOCsum)
	}
	return nil
}

// String formats f for logs and test failures.
func (f Fields) String() string {
	return fmt.Sprintf("flags=%#x gso_type=%#x hdr_len=%d gso_size=%d csum_start=%d csum_offset=%d",
		f.Flags, f.GSOType, f.HdrLen, f.GSOSize, f.CsumStart, f.CsumOffset)
}
