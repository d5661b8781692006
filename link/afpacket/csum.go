package afpacket

import (
	"encoding/binary"

	"gvisor.dev/gvisor/pkg/tcpip/checksum"
)

// IP protocol numbers and EtherTypes verifyChecksums knows.
const (
	ipProtoICMP   = 1
	ipProtoTCP    = 6
	ipProtoUDP    = 17
	ipProtoICMPv6 = 58

	etherTypeIPv4 = 0x0800
	etherTypeIPv6 = 0x86dd
)

// verifyChecksums checks, in software, the checksums of a packet that
// arrived without a checksum flag: p is the Ethernet payload (padding
// included) of EtherType ethType. It returns false only for a packet whose
// checksum is wrong. Packets it cannot judge (not IP, malformed, IP
// fragments, IPv6 extension headers, other transports) pass: gVisor rejects
// malformed ones itself.
//
// It is needed because the link declares stack.CapabilityRXChecksumOffload
// for the partial checksums of locally generated frames, and gVisor then
// skips verification for every packet.
func verifyChecksums(ethType uint16, p []byte) bool {
	switch ethType {
	case etherTypeIPv4:
		return verifyIPv4(p)
	case etherTypeIPv6:
		return verifyIPv6(p)
	}
	return true
}

func verifyIPv4(p []byte) bool {
	if len(p) < 20 || p[0]>>4 != 4 {
		return true
	}
	ihl := int(p[0]&0x0f) * 4
	if ihl < 20 || len(p) < ihl {
		return true
	}
	if checksum.Checksum(p[:ihl], 0) != 0xffff {
		return false
	}
	total := int(binary.BigEndian.Uint16(p[2:]))
	if total < ihl || total > len(p) {
		return true
	}
	if binary.BigEndian.Uint16(p[6:])&0x3fff != 0 { // MF or an offset: a fragment
		return true
	}
	proto := p[9]
	payload := p[ihl:total]
	switch proto {
	case ipProtoICMP:
		return checksum.Checksum(payload, 0) == 0xffff
	case ipProtoUDP:
		if len(payload) >= 8 && binary.BigEndian.Uint16(payload[6:]) == 0 {
			return true // no checksum (allowed over IPv4)
		}
	case ipProtoTCP:
	default:
		return true
	}
	return transportSum(p[12:20], proto, payload) == 0xffff
}

func verifyIPv6(p []byte) bool {
	if len(p) < 40 || p[0]>>4 != 6 {
		return true
	}
	plen := int(binary.BigEndian.Uint16(p[4:]))
	if 40+plen > len(p) {
		return true
	}
	proto := p[6]
	switch proto {
	case ipProtoTCP, ipProtoUDP, ipProtoICMPv6:
	default:
		return true // extension headers, other transports
	}
	return transportSum(p[8:40], proto, p[40:40+plen]) == 0xffff
}

// transportSum is the one's complement sum of the pseudo-header (addrs:
// source and destination addresses back to back; proto; the payload
// length) and the payload: 0xffff for a correct checksum.
func transportSum(addrs []byte, proto uint8, payload []byte) uint16 {
	sum := checksum.Checksum(addrs, 0)
	sum = checksum.Combine(sum, uint16(proto))
	sum = checksum.Combine(sum, uint16(len(payload)))
	return checksum.Checksum(payload, sum)
}
