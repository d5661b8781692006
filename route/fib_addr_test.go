package route

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestAddrLayout checks that the lookup path's direct reads and writes of
// netip.Addr agree with netip's API for random addresses of both families
// (zoned too) at every prefix length. If a Go release changes netip's
// layout, addrLayoutOK turns false and lookups take the portable path; this
// test then fails so that the layout code gets revisited.
func TestAddrLayout(t *testing.T) {
	if !addrLayoutOK {
		t.Fatal("netip.Addr's layout is not what fib_addr.go expects: lookups take the slower portable path")
	}
	rng := rand.New(rand.NewPCG(5, 5))
	for range 2000 {
		v6 := rng.IntN(2) == 1
		a := randomAddr(rng, v6)
		if v6 && rng.IntN(4) == 0 {
			a = a.WithZone("net0")
		}
		k := u128Of(a)
		if want := u128As16(a); k != want {
			t.Fatalf("u128Of(%s) = %x, As16 gives %x", a, k, want)
		}
		for bits := range a.BitLen() + 1 {
			want, _ := a.Prefix(bits)
			if got := prefixOf(a, k, bits, v6); got != want {
				t.Fatalf("prefixOf(%s, %d) = %s, want %s", a, bits, got, want)
			}
		}
	}
}

// TestMasked checks masked against netip's own masking at every length.
func TestMasked(t *testing.T) {
	a := netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
	for bits := range 129 {
		want, _ := a.Prefix(bits)
		if got := u128Of(a).masked(bits); got != u128As16(want.Addr()) {
			t.Fatalf("masked(%d) = %x, want %s", bits, got, want.Addr())
		}
	}
}
