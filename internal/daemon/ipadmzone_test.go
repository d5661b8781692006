package daemon

import (
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/ifmgr"
)

// A client in zone web sees, in ipadm show-addr, show-if and
// show-addrprop, only what has a unit in web; the global zone sees all.
func TestIpadmShowByZone(t *testing.T) {
	f := newSnoopFixture(t)
	c := f.dial()
	f.plumb(c) // mem0 10.9.0.1/24, global
	var z ctl.Zone
	do(t, c, "zoneadm.create", ctl.Zone{Name: "web"}, &z)
	do(t, c, "zoneadm.boot", ctl.Zone{Name: "web"}, nil)
	do(t, c, "ipadm.create-addr", ctl.IpadmAddr{Obj: "mem0/web", Type: ctl.AddrStatic, Local: netip.MustParsePrefix("10.9.0.5/24")}, nil)
	var rows []ctl.AddrInfo
	do(t, c, "ipadm.show-addr", ctl.IpadmAddrObj{Obj: "mem0/web"}, &rows)
	if len(rows) != 1 || rows[0].Lifname == "" {
		t.Fatalf("show-addr mem0/web: %+v", rows)
	}
	do(t, c, "SIOCSLIFZONE", ctl.Lifreq{Name: rows[0].Lifname, ZoneID: z.ID}, nil)

	show := func(caller ifmgr.Caller, op string, args, out any) {
		t.Helper()
		raw, _ := json.Marshal(args)
		res, err := f.d.dispatch(caller, &ctl.Request{Op: op, Args: raw})
		if err != nil {
			t.Fatalf("%s as %+v: %v", op, caller, err)
		}
		b, _ := json.Marshal(res)
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatal(err)
		}
	}
	web := ifmgr.Caller{Zone: "web"}
	var addrs []ctl.AddrInfo
	show(web, "ipadm.show-addr", ctl.IpadmAddrObj{}, &addrs)
	if len(addrs) != 1 || addrs[0].Obj != "mem0/web" {
		t.Errorf("show-addr in zone web: %+v, want only mem0/web", addrs)
	}
	show(ifmgr.Caller{Privileged: true}, "ipadm.show-addr", ctl.IpadmAddrObj{}, &addrs)
	if len(addrs) < 3 { // lo0's two, mem0's and mem0/web
		t.Errorf("show-addr in the global zone: %+v, want every address", addrs)
	}
	var ifs []ctl.IfInfo
	show(web, "ipadm.show-if", ctl.IpadmIf{}, &ifs)
	if len(ifs) != 1 || ifs[0].Name != "mem0" {
		t.Errorf("show-if in zone web: %+v, want only mem0", ifs)
	}
	var props []ctl.PropInfo
	show(ifmgr.Caller{Zone: "db"}, "ipadm.show-addrprop", ctl.IpadmShowProps{}, &props)
	if len(props) != 0 {
		t.Errorf("show-addrprop in a zone with nothing: %+v", props)
	}
	show(web, "ipadm.show-addrprop", ctl.IpadmShowProps{}, &props)
	for _, p := range props {
		if p.Obj != "mem0/web" {
			t.Errorf("show-addrprop in zone web shows %s", p.Obj)
		}
	}
	if len(props) == 0 {
		t.Error("show-addrprop in zone web shows nothing")
	}
}
