package ifmgr

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// v4 converts an IPv4 address to its 32-bit value (0 for anything else).
func v4(a netip.Addr) uint32 {
	if !a.Is4() {
		return 0
	}
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func fromV4(x uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], x)
	return netip.AddrFrom4(b)
}

// classMask is the classful mask of an IPv4 address (ip_net_mask): 0 for
// 0.0.0.0, A/B/C by the first octet, 240.0.0.0 for class D and all ones
// for class E.
func classMask(a uint32) uint32 {
	switch {
	case a == 0:
		return 0
	case a>>31 == 0:
		return 0xff000000
	case a>>30 == 0b10:
		return 0xffff0000
	case a>>29 == 0b110:
		return 0xffffff00
	case a>>28 == 0b1110:
		return 0xf0000000
	}
	return 0xffffffff
}

// addrOKv4 is ip_addr_ok_v4 (spec §4.1): may a be used with mask m?
func addrOKv4(a, m uint32) bool {
	n := classMask(a)
	if n == 0 {
		return false
	}
	if m != 0 {
		n = m
	}
	if n != 0xffffffff {
		host := a &^ n
		if host == 0 || host == ^n {
			return false
		}
	}
	if a == 0xffffffff {
		return false
	}
	if a>>28 == 0b1110 {
		return false
	}
	return true
}

// contiguous reports whether an IPv4 mask has no holes.
func contiguous(m uint32) bool {
	return m == 0 || bits.LeadingZeros32(^m)+bits.TrailingZeros32(m) >= 32
}

// prefixLen returns the number of leading one bits of a mask address.
func prefixLen(m netip.Addr) int {
	if !m.IsValid() {
		return 0
	}
	n := 0
	for _, b := range m.AsSlice() {
		if b == 0xff {
			n += 8
			continue
		}
		n += bits.LeadingZeros8(^b)
		break
	}
	return n
}

// maskOf returns the mask of n leading ones in the family of like.
func maskOf(like netip.Addr, n int) netip.Addr {
	if like.Is4() {
		if n == 0 {
			return netip.IPv4Unspecified()
		}
		return fromV4(^uint32(0) << (32 - n))
	}
	var b [16]byte
	for i := 0; i < n; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom16(b)
}

// and masks a with m bytewise.
func and(a, m netip.Addr) netip.Addr {
	if a.Is4() {
		return fromV4(v4(a) & v4(m))
	}
	x, y := a.As16(), m.As16()
	for i := range x {
		x[i] &= y[i]
	}
	return netip.AddrFrom16(x)
}

// localAddrOKv6 is ip_local_addr_ok_v6 (spec §4.2).
func localAddrOKv6(a, m netip.Addr) bool {
	if a.IsUnspecified() {
		return true
	}
	if a.Is4In6() || a.IsMulticast() {
		return false
	}
	if prefixLen(m) != 128 && prefixLen(m) != 0 && and(a, m) == a {
		return false // the subnet-router anycast address
	}
	b := a.As16()
	if isZero(b[:12]) && b[12]>>4 == 0b1110 {
		return false // v4-compatible with an embedded class-D address
	}
	return true
}

func isZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}
