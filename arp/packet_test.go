package arp

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// A probe from 2:0:0:0:0:1 for 10.0.0.1, byte by byte (RFC 826 layout).
var probeBytes = []byte{
	0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01, // Ethernet, IPv4, request
	2, 0, 0, 0, 0, 1, 0, 0, 0, 0, // sender: our MAC, 0.0.0.0
	0, 0, 0, 0, 0, 0, 10, 0, 0, 1, // target: unknown MAC, 10.0.0.1
}

var cmpAddr = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

func TestPacketParseAndMarshal(t *testing.T) {
	want := probe(ourMAC, addr("10.0.0.1"))
	want.TargetHW = make([]byte, 6)
	got, ok := Parse(probeBytes)
	if !ok {
		t.Fatal("Parse refused a valid probe")
	}
	if diff := cmp.Diff(want, got, cmpAddr); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
	if !got.IsProbe() {
		t.Error("IsProbe false for a probe")
	}
	if b := want.Marshal(); !bytes.Equal(b, probeBytes) {
		t.Errorf("Marshal = % x, want % x", b, probeBytes)
	}
	a := announcement(ourMAC, addr("10.0.0.1"))
	if back, _ := Parse(a.Marshal()); back.IsProbe() || back.SenderAddr != back.TargetAddr {
		t.Errorf("announcement round trip: %+v", back)
	}
}

func TestParseRefusesOthers(t *testing.T) {
	for name, b := range map[string][]byte{
		"short":        probeBytes[:27],
		"op 3":         append(append([]byte{}, probeBytes[:7]...), append([]byte{3}, probeBytes[8:]...)...),
		"not IPv4":     append([]byte{0, 1, 0x86, 0xdd}, probeBytes[4:]...),
		"not Ethernet": append([]byte{0, 6}, probeBytes[2:]...),
	} {
		if _, ok := Parse(b); ok {
			t.Errorf("%s: Parse accepted % x", name, b)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(probeBytes)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, ok := Parse(b)
		if !ok {
			return
		}
		back, ok := Parse(p.Marshal())
		if !ok || !cmp.Equal(p, back, cmpAddr) {
			t.Fatalf("round trip of %+v gave %+v (ok %v)", p, back, ok)
		}
	})
}
