package route

import (
	"encoding/binary"
	"net/netip"
	"unsafe"
)

// A netip.Addr holds its address as a 128-bit number (IPv4 in its
// IPv4-mapped form) in its first two words, high word first, then its zone
// handle. The lookup path reads and writes those words directly: going
// through As16 stores the halves to a byte array and reads them back with
// one 16-byte load, which stalls store forwarding and cost about 9 ns a
// lookup, a tenth of the target. netip's layout is not an API, so
// addrLayoutOK checks it once at start (a test asserts it holds), and
// the portable path takes over if a Go release changes it.
var addrLayoutOK = checkAddrLayout()

func checkAddrLayout() bool {
	if unsafe.Sizeof(netip.Addr{}) != 2*8+unsafe.Sizeof(uintptr(0)) {
		return false
	}
	for _, s := range []string{"192.0.2.1", "0.0.0.0", "2001:db8:1:2:3:4:5:6", "fe80::1%eth0", "::ffff:192.0.2.1", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"} {
		a := netip.MustParseAddr(s)
		k := u128As16(a)
		if *(*u128)(unsafe.Pointer(&a)) != k {
			return false
		}
		// Writing a masked number back must give the masked address.
		for _, bits := range []int{0, 1, 17, 31, 64, 65, 128} {
			if bits > a.BitLen() {
				continue
			}
			eff := bits
			if a.Is4() {
				eff += 96
			}
			b := a
			*(*u128)(unsafe.Pointer(&b)) = k.masked(eff)
			if want, _ := a.Prefix(bits); netip.PrefixFrom(b, bits) != want {
				return false
			}
		}
	}
	return true
}

// u128Of returns a as a number.
func u128Of(a netip.Addr) u128 {
	if addrLayoutOK {
		return *(*u128)(unsafe.Pointer(&a))
	}
	return u128As16(a)
}

// u128As16 is u128Of through netip's API.
func u128As16(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// prefixOf returns the prefix of length bits holding a, whose number u128Of
// returned k; v6 tells a's family. Small enough to inline.
func prefixOf(a netip.Addr, k u128, bits int, v6 bool) netip.Prefix {
	if !addrLayoutOK {
		return prefixPortable(a, bits)
	}
	eff := bits
	if !v6 {
		eff += 96
	}
	*(*u128)(unsafe.Pointer(&a)) = k.masked(eff)
	return netip.PrefixFrom(a, bits) // drops a's zone, as Addr.Prefix does
}

func prefixPortable(a netip.Addr, bits int) netip.Prefix {
	p, _ := a.Prefix(bits)
	return p
}

// masked returns k with all but its first bits (0 to 128) cleared. Go
// shifts of a word's width or more give zero, which is the mask wanted at
// either end: no branch.
func (k u128) masked(bits int) u128 {
	return u128{k.hi &^ (^uint64(0) >> uint(bits)), k.lo & (^uint64(0) << uint(128-bits))}
}
