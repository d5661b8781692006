package afpacket

import (
	"encoding/binary"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip/header"
)

func TestVerifyChecksums(t *testing.T) {
	corrupt := func(at int) func([]byte) {
		return func(b []byte) { b[at] ^= 0x40 }
	}
	eth := header.EthernetMinimumSize
	l4v4 := eth + header.IPv4MinimumSize
	l4v6 := eth + header.IPv6MinimumSize
	tests := []struct {
		name  string
		frame []byte
		edit  func([]byte)
		ok    bool
	}{
		{"IPv4 TCP", ipv4Frame(testMAC, ipProtoTCP, 1000), nil, true},
		{"IPv4 TCP, payload corrupted", ipv4Frame(testMAC, ipProtoTCP, 1000), corrupt(l4v4 + 30), false},
		{"IPv4 TCP, odd length", ipv4Frame(testMAC, ipProtoTCP, 999), nil, true},
		{"IPv4 header corrupted", ipv4Frame(testMAC, ipProtoTCP, 10), corrupt(eth + 8), false},
		{"IPv4 UDP", ipv4Frame(testMAC, ipProtoUDP, 100), nil, true},
		{"IPv4 UDP, corrupted", ipv4Frame(testMAC, ipProtoUDP, 100), corrupt(l4v4 + 20), false},
		{"IPv4 UDP without a checksum", ipv4Frame(testMAC, ipProtoUDP, 100), func(b []byte) {
			binary.BigEndian.PutUint16(b[l4v4+6:], 0)
			b[l4v4+20] ^= 1
		}, true},
		{"IPv4 ICMP", ipv4Frame(testMAC, ipProtoICMP, 56), nil, true},
		{"IPv4 ICMP, corrupted", ipv4Frame(testMAC, ipProtoICMP, 56), corrupt(l4v4 + 9), false},
		{"IPv4 with Ethernet padding", append(ipv4Frame(testMAC, ipProtoICMP, 0), 0xaa, 0xbb, 0xcc), nil, true},
		{"IPv4 fragment: transport not judged", ipv4Frame(testMAC, ipProtoTCP, 100), func(b []byte) {
			ip := header.IPv4(b[eth:])
			ip.SetFlagsFragmentOffset(header.IPv4FlagMoreFragments, 0)
			ip.SetChecksum(0)
			ip.SetChecksum(^ip.CalculateChecksum())
			b[l4v4+30] ^= 1
		}, true},
		{"IPv6 TCP", ipv6Frame(testMAC, ipProtoTCP, 1400), nil, true},
		{"IPv6 TCP, corrupted", ipv6Frame(testMAC, ipProtoTCP, 1400), corrupt(l4v6 + 100), false},
		{"IPv6 UDP, corrupted", ipv6Frame(testMAC, ipProtoUDP, 10), corrupt(l4v6 + 9), false},
		{"ICMPv6", ipv6Frame(testMAC, ipProtoICMPv6, 10), nil, true},
		{"ICMPv6, corrupted source", ipv6Frame(testMAC, ipProtoICMPv6, 10), corrupt(eth + 9), false},
		{"truncated IPv4: left to gVisor", ipv4Frame(testMAC, ipProtoTCP, 100)[:eth+10], nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.edit != nil {
				tt.edit(tt.frame)
			}
			h := header.Ethernet(tt.frame)
			if got := verifyChecksums(uint16(h.Type()), tt.frame[eth:]); got != tt.ok {
				t.Errorf("verifyChecksums = %v, want %v", got, tt.ok)
			}
		})
	}
}

func FuzzVerifyChecksums(f *testing.F) {
	f.Add(uint16(etherTypeIPv4), ipv4Frame(testMAC, ipProtoTCP, 20)[header.EthernetMinimumSize:])
	f.Add(uint16(etherTypeIPv6), ipv6Frame(testMAC, ipProtoUDP, 20)[header.EthernetMinimumSize:])
	f.Fuzz(func(t *testing.T, ethType uint16, p []byte) {
		verifyChecksums(ethType, p) // must not panic
	})
}
