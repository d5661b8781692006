package ifmgr

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tapstack/tapstack/ctl"
)

// arpDo runs an ARP or XARP request (arg *ctl.Arpreq or *ctl.Xarpreq).
func (f *fixture) arpDo(caller Caller, op string, fam ctl.Family, arg any) error {
	return f.m.Do(caller, op, fam, arg)
}

// arpTable is MIB2_IP_MEDIA rendered for comparison.
func (f *fixture) arpTable() []string {
	f.t.Helper()
	var t ctl.ArpTable
	if err := f.m.Do(root, "MIB2_IP_MEDIA", ctl.AF_INET, &t); err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, e := range t.Entries {
		out = append(out, e.Ifname+" "+e.Addr.String()+" "+e.HWAddr+" "+atfString(e.Flags))
	}
	return out
}

func atfString(f int) string {
	var b strings.Builder
	for _, x := range []struct {
		bit int
		c   string
	}{{ctl.ATF_INUSE, "U"}, {ctl.ATF_COM, "C"}, {ctl.ATF_PERM, "S"}, {ctl.ATF_PUBL, "P"}, {ctl.ATF_AUTHORITY, "A"}} {
		if f&x.bit != 0 {
			b.WriteString(x.c)
		}
	}
	return b.String()
}

// arpFails runs an ARP request that has to fail with want and change
// neither the interfaces nor the ARP table.
func (f *fixture) arpFails(caller Caller, op string, fam ctl.Family, arg any, want ctl.Errno) {
	f.t.Helper()
	before, tbefore := f.snapshot(), f.arpTable()
	err := f.arpDo(caller, op, fam, arg)
	if got := ctl.ErrnoOf(err); got != want {
		f.t.Fatalf("%s %+v: errno %v (%v), want %v", op, arg, got, err, want)
	}
	if !strings.Contains(err.Error(), op) {
		f.t.Errorf("error %q does not name the request", err)
	}
	if diff := cmp.Diff(before, f.snapshot()); diff != "" {
		f.t.Fatalf("%s failed but changed the interfaces (-before +after):\n%s", op, diff)
	}
	if diff := cmp.Diff(tbefore, f.arpTable()); diff != "" {
		f.t.Fatalf("%s failed but changed the ARP table (-before +after):\n%s", op, diff)
	}
}

func xha(name string, hw []byte) ctl.SockaddrDL {
	return ctl.SockaddrDL{Family: ctl.AF_LINK, Nlen: len(name), Alen: len(hw), Data: append([]byte(name), hw...)}
}

func TestARPRequests(t *testing.T) {
	f := newFixture(t, "tap0", "tap1")
	f.plumb("tap0")
	f.plumb("tap1")
	f.configure("tap0", "10.1.0.1", 24)
	user := Caller{}

	// Set, get, publish, delete through the old form.
	f.must("SIOCLIFADDIF", ctl.AF_INET, ctl.Lifreq{Name: "tap0"})
	if err := f.arpDo(root, "SIOCSARP", ctl.AF_INET, &ctl.Arpreq{PA: addr("10.1.0.9"), HA: "2:0:0:0:0:99", Flags: ctl.ATF_PERM}); err != nil {
		t.Fatal(err)
	}
	if err := f.arpDo(root, "SIOCSARP", ctl.AF_INET, &ctl.Arpreq{PA: addr("10.1.0.8"), HA: "02:00:00:00:00:88", Flags: ctl.ATF_PUBL}); err != nil {
		t.Fatal(err)
	}
	got := ctl.Arpreq{PA: addr("10.1.0.9")}
	if err := f.arpDo(user, "SIOCGARP", ctl.AF_INET, &got); err != nil {
		t.Fatal(err)
	}
	if got.HA != "2:0:0:0:0:99" || got.Flags != ctl.ATF_INUSE|ctl.ATF_COM|ctl.ATF_PERM {
		t.Errorf("SIOCGARP 10.1.0.9 = %s %s, want 2:0:0:0:0:99 UCS", got.HA, atfString(got.Flags))
	}
	// Our own address: readable, authoritative and published; [CHECK-13]
	// it cannot be set or deleted.
	own := ctl.Arpreq{PA: addr("10.1.0.1")}
	if err := f.arpDo(user, "SIOCGARP", ctl.AF_INET, &own); err != nil || own.HA != "2:0:0:0:0:1" ||
		own.Flags != ctl.ATF_INUSE|ctl.ATF_COM|ctl.ATF_PERM|ctl.ATF_PUBL|ctl.ATF_AUTHORITY {
		t.Errorf("SIOCGARP of our address = %s %s (%v)", own.HA, atfString(own.Flags), err)
	}
	f.arpFails(root, "SIOCSARP", ctl.AF_INET, &ctl.Arpreq{PA: addr("10.1.0.1"), HA: "2:0:0:0:0:5"}, ctl.ENOTSUP)
	f.arpFails(root, "SIOCDARP", ctl.AF_INET, &ctl.Arpreq{PA: addr("10.1.0.1")}, ctl.ENOTSUP)

	want := []string{
		"tap0 10.1.0.1 2:0:0:0:0:1 UCSPA",
		"tap0 10.1.0.8 2:0:0:0:0:88 UCP",
		"tap0 10.1.0.9 2:0:0:0:0:99 UCS",
	}
	if diff := cmp.Diff(want, f.arpTable()); diff != "" {
		t.Errorf("MIB2_IP_MEDIA (-want +got):\n%s", diff)
	}

	// Errors, each changing nothing (spec §2.0.4, §2.15).
	for _, c := range []struct {
		name, op string
		caller   Caller
		fam      ctl.Family
		arg      any
		want     ctl.Errno
	}{
		{"inet6 socket", "SIOCGARP", user, ctl.AF_INET6, &ctl.Arpreq{PA: addr("10.1.0.9")}, ctl.ENXIO},
		{"no interface or route", "SIOCSARP", root, ctl.AF_INET, &ctl.Arpreq{PA: addr("192.168.5.5"), HA: "2:0:0:0:0:5"}, ctl.ENXIO},
		{"not IPv4", "SIOCSARP", root, ctl.AF_INET, &ctl.Arpreq{PA: addr("2001:db8::1"), HA: "2:0:0:0:0:5"}, ctl.ENXIO},
		{"no entry to get", "SIOCGARP", user, ctl.AF_INET, &ctl.Arpreq{PA: addr("10.1.0.77")}, ctl.ENXIO},
		{"no entry to delete", "SIOCDARP", root, ctl.AF_INET, &ctl.Arpreq{PA: addr("10.1.0.77")}, ctl.ENXIO},
		{"bad hardware address", "SIOCSARP", root, ctl.AF_INET, &ctl.Arpreq{PA: addr("10.1.0.5"), HA: "zz:0:0:0:0:1"}, ctl.EINVAL},
		{"5-byte hardware address", "SIOCSARP", root, ctl.AF_INET, &ctl.Arpreq{PA: addr("10.1.0.5"), HA: "2:0:0:0:1"}, ctl.EINVAL},
		{"unprivileged set", "SIOCSARP", user, ctl.AF_INET, &ctl.Arpreq{PA: addr("10.1.0.5"), HA: "2:0:0:0:0:5"}, ctl.EPERM},
		{"unprivileged delete", "SIOCDARP", user, ctl.AF_INET, &ctl.Arpreq{PA: addr("10.1.0.9")}, ctl.EPERM},
		{"xarp: not AF_LINK", "SIOCSXARP", root, ctl.AF_INET,
			&ctl.Xarpreq{PA: addr("10.1.0.5"), HA: ctl.SockaddrDL{Family: ctl.AF_INET, Alen: 6, Data: []byte{2, 0, 0, 0, 0, 5}}}, ctl.ENXIO},
		{"xarp: pa not AF_INET", "SIOCGXARP", user, ctl.AF_INET,
			&ctl.Xarpreq{PAFamily: ctl.AF_INET6, PA: addr("10.1.0.9"), HA: ctl.SockaddrDL{Family: ctl.AF_LINK}}, ctl.ENXIO},
		{"xarp: name too long", "SIOCSXARP", root, ctl.AF_INET,
			&ctl.Xarpreq{PA: addr("10.1.0.5"), HA: xha(strings.Repeat("t", 32), []byte{2, 0, 0, 0, 0, 5})}, ctl.EINVAL},
		{"xarp: unknown name", "SIOCSXARP", root, ctl.AF_INET,
			&ctl.Xarpreq{PA: addr("10.1.0.5"), HA: xha("tap7", []byte{2, 0, 0, 0, 0, 5})}, ctl.ENXIO},
		{"xarp: logical unit", "SIOCSXARP", root, ctl.AF_INET,
			&ctl.Xarpreq{PA: addr("10.1.0.5"), HA: xha("tap0:1", []byte{2, 0, 0, 0, 0, 5})}, ctl.ENXIO},
		{"xarp: interface down, no ARP", "SIOCSXARP", root, ctl.AF_INET,
			&ctl.Xarpreq{PA: addr("10.1.0.5"), HA: xha("tap1", []byte{2, 0, 0, 0, 0, 5})}, ctl.ENXIO},
		{"xarp: alen not 6", "SIOCSXARP", root, ctl.AF_INET,
			&ctl.Xarpreq{PA: addr("10.1.0.5"), HA: xha("tap0", []byte{2, 0, 0, 0, 5})}, ctl.EINVAL},
		{"xarp: address beyond sdl_data", "SIOCSXARP", root, ctl.AF_INET,
			&ctl.Xarpreq{PA: addr("10.1.0.5"), HA: ctl.SockaddrDL{Family: ctl.AF_LINK, Nlen: 4, Alen: 6, Data: []byte("tap0\x02\x00")}}, ctl.EINVAL},
		{"xarp: our address", "SIOCSXARP", root, ctl.AF_INET,
			&ctl.Xarpreq{PA: addr("10.1.0.1"), HA: xha("tap0", []byte{2, 0, 0, 0, 0, 5})}, ctl.ENOTSUP},
		{"xarp: no entry", "SIOCDXARP", root, ctl.AF_INET,
			&ctl.Xarpreq{PA: addr("10.1.0.77"), HA: xha("tap0", nil)}, ctl.ENXIO},
	} {
		t.Run(c.name, func(t *testing.T) {
			f.t = t
			f.arpFails(c.caller, c.op, c.fam, c.arg, c.want)
		})
	}
	f.t = t

	// XARP by name: set, get (the reply names the interface), delete.
	x := ctl.Xarpreq{PA: addr("10.1.0.5"), HA: xha("tap0", []byte{2, 0, 0, 0, 0, 5}), Flags: ctl.ATF_PERM}
	if err := f.arpDo(root, "SIOCSXARP", ctl.AF_INET, &x); err != nil {
		t.Fatal(err)
	}
	gx := ctl.Xarpreq{PA: addr("10.1.0.5"), HA: ctl.SockaddrDL{Family: ctl.AF_LINK}}
	if err := f.arpDo(user, "SIOCGXARP", ctl.AF_INET, &gx); err != nil {
		t.Fatal(err)
	}
	idx := f.must("SIOCGLIFINDEX", ctl.AF_INET, ctl.Lifreq{Name: "tap0"}).Index
	wantHA := ctl.SockaddrDL{Family: ctl.AF_LINK, Index: idx, Type: ctl.IFT_ETHER, Nlen: 4, Alen: 6, Data: []byte("tap0\x02\x00\x00\x00\x00\x05")}
	if diff := cmp.Diff(wantHA, gx.HA); diff != "" || gx.Flags != ctl.ATF_INUSE|ctl.ATF_COM|ctl.ATF_PERM {
		t.Errorf("SIOCGXARP flags %s, xarp_ha (-want +got):\n%s", atfString(gx.Flags), diff)
	}
	for _, a := range []string{"10.1.0.5", "10.1.0.8"} {
		if err := f.arpDo(root, "SIOCDXARP", ctl.AF_INET, &ctl.Xarpreq{PA: addr(a), HA: ctl.SockaddrDL{Family: ctl.AF_LINK}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.arpDo(root, "SIOCDARP", ctl.AF_INET, &ctl.Arpreq{PA: addr("10.1.0.9")}); err != nil {
		t.Fatal(err)
	}
	if got := f.arpTable(); len(got) != 1 {
		t.Errorf("after the deletes: %v, want only our address", got)
	}

	// Taking the last address down flushes the table, as illumos does
	// when ARP unbinds.
	if err := f.arpDo(root, "SIOCSARP", ctl.AF_INET, &ctl.Arpreq{PA: addr("10.1.0.9"), HA: "2:0:0:0:0:99", Flags: ctl.ATF_PERM}); err != nil {
		t.Fatal(err)
	}
	f.setUp("tap0", ctl.AF_INET, false)
	f.setUp("tap0", ctl.AF_INET, true)
	if got := f.arpTable(); len(got) != 1 || !strings.HasPrefix(got[0], "tap0 10.1.0.1 ") {
		t.Errorf("after down and up: %v, want only our address", got)
	}
}
