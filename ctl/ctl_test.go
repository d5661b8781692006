package ctl

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFlagsString(t *testing.T) {
	for _, tc := range []struct {
		f    Flags
		want string
	}{
		{0x2001000849, "2001000849<UP,LOOPBACK,RUNNING,MULTICAST,IPv4,VIRTUAL>"},
		{0x1000843, "1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4>"},
		{0, "0<>"},
		{IFF_DHCPRUNNING | IFF_COS_ENABLED, "200004000<DHCP,CoS>"},
	} {
		if got := tc.f.String(); got != tc.want {
			t.Errorf("%#x: %q, want %q", uint64(tc.f), got, tc.want)
		}
	}
}

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Flags
		wantErr bool
	}{
		{"0x1000843", 0x1000843, false},
		{"17", 17, false},
		{"UP|BROADCAST", IFF_UP | IFF_BROADCAST, false},
		{"IFF_UP,ipv4", IFF_UP | IFF_IPV4, false},
		{"UP|BOGUS", 0, true},
	} {
		got, err := ParseFlags(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseFlags(%q) = %#x, %v", tc.in, uint64(got), err)
		}
	}
}

func TestErrno(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", Errorf(EADDRNOTAVAIL, "address %s in use", "10.0.0.1"))
	if ErrnoOf(err) != EADDRNOTAVAIL || !errors.Is(err, EADDRNOTAVAIL) {
		t.Errorf("ErrnoOf(%v) = %v", err, ErrnoOf(err))
	}
	if ErrnoOf(fmt.Errorf("x: %w", syscall.ENOENT)) != ENOENT {
		t.Error("syscall errno not mapped")
	}
	if ErrnoOf(errors.New("plain")) != 0 {
		t.Error("plain error has an errno")
	}
	for e, name := range errnoNames {
		if got, ok := ParseErrno(name); !ok || got != e {
			t.Errorf("ParseErrno(%q) = %v, %v", name, got, ok)
		}
	}
	ce := &Error{Request: "SIOCSLIFMTU", Errno: EINVAL, Msg: "MTU 67 is outside 68..1500"}
	if got := ce.Error(); got != "SIOCSLIFMTU: EINVAL: MTU 67 is outside 68..1500" {
		t.Errorf("Error() = %q", got)
	}
}

// TestLifreqJSON pins the wire names of the man page and the empty
// address = AF_UNSPEC convention.
func TestLifreqJSON(t *testing.T) {
	r := Lifreq{Name: "tap0:1", Addr: netip.MustParseAddr("10.0.0.1"), Addrlen: 24, Flags: IFF_UP}
	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"lifr_name":"tap0:1","lifr_addr":"10.0.0.1","lifr_addrlen":24,"lifr_flags":1}`
	if string(raw) != want {
		t.Errorf("got %s\nwant %s", raw, want)
	}
	var back Lifreq
	if err := json.Unmarshal([]byte(`{"lifr_name":"tap0","lifr_addr":""}`), &back); err != nil {
		t.Fatal(err)
	}
	if back.Addr.IsValid() || FamilyOf(back.Addr) != AF_UNSPEC {
		t.Errorf("empty lifr_addr decoded as %v", back.Addr)
	}
	if diff := cmp.Diff(AF_INET6, FamilyOf(netip.MustParseAddr("::1"))); diff != "" {
		t.Error(diff)
	}
}
