package ifmgr

import (
	"github.com/tapstack/tapstack/ctl"
)

// argKind is the argument structure a request takes.
type argKind int

const (
	argLifreq argKind = iota
	argLifconf
	argLifnum
	argAddrReq
	argLifsrcof
	argRtentry
	argProp
	argIfreq
	argIfconf
	argIfnum
	argArpreq
	argXarpreq
	argArpTable
	argIfStats
	argZone
	argZoneList
	argNdreq
	argNdList
	argNdpConf
)

// request is one row of the request table (spec §2.0.2).
type request struct {
	kind argKind
	// priv: the caller needs network-configuration privilege (EPERM).
	priv bool
	// write: the request changes state and runs exclusively.
	write bool
	// lifHandler handles LIF requests whose target is resolved from
	// lifr_name in the socket's family before the call (target is nil for
	// rows with resolve == false).
	resolve bool
	handler func(m *Manager, c *call) error
}

// call is one request being served.
type call struct {
	op      string
	family  ctl.Family
	lifr    *ctl.Lifreq
	lifc    *ctl.Lifconf
	lifn    *ctl.Lifnum
	addrReq *ctl.AddrReq
	srcof   *ctl.Lifsrcof
	rt      *ctl.Rtentry
	prop    *ctl.Prop
	ifr     *ctl.Ifreq
	ifc     *ctl.Ifconf
	ifn     *ctl.Ifnum

	// The ARP requests and MIB2_IP_MEDIA (arp.go).
	arpr *ctl.Arpreq
	xarp *ctl.Xarpreq
	arpt *ctl.ArpTable

	ifStats *ctl.IfStatsReq
	zone    *ctl.Zone
	zones   *ctl.ZoneList
	// The ND requests, ndp.list and ndp.set-conf/get-conf (ndp.go, slaac.go).
	nd      *ctl.Ndreq
	ndl     *ctl.NdList
	ndpConf *ctl.NdpConf
	target  *ipif  // resolved lifr_name
	caller  Caller // who asked: the zone decides what it sees (§11)
}

// requests is the request table: every if_tcp(7P) request tapstack
// implements. The control socket, tapadm and the tests all go through it.
var requests = map[string]request{
	"SIOCSLIFNAME":     {kind: argLifreq, priv: true, write: true, handler: (*Manager).sioSLifName},
	"unplumb":          {kind: argLifreq, priv: true, write: true, resolve: true, handler: (*Manager).sioUnplumb},
	"SIOCLIFADDIF":     {kind: argLifreq, priv: true, write: true, handler: (*Manager).sioAddIf},
	"SIOCLIFREMOVEIF":  {kind: argLifreq, priv: true, write: true, resolve: true, handler: (*Manager).sioRemoveIf},
	"SIOCSLIFADDR":     {kind: argLifreq, priv: true, write: true, resolve: true, handler: (*Manager).sioSLifAddr},
	"SIOCGLIFADDR":     {kind: argLifreq, resolve: true, handler: (*Manager).sioGLifAddr},
	"SIOCSLIFDSTADDR":  {kind: argLifreq, priv: true, write: true, resolve: true, handler: (*Manager).sioSLifDstAddr},
	"SIOCGLIFDSTADDR":  {kind: argLifreq, resolve: true, handler: (*Manager).sioGLifDstAddr},
	"SIOCSLIFBRDADDR":  {kind: argLifreq, priv: true, write: true, resolve: true, handler: (*Manager).sioSLifBrdAddr},
	"SIOCGLIFBRDADDR":  {kind: argLifreq, resolve: true, handler: (*Manager).sioGLifBrdAddr},
	"SIOCSLIFNETMASK":  {kind: argLifreq, priv: true, write: true, resolve: true, handler: (*Manager).sioSLifNetmask},
	"SIOCGLIFNETMASK":  {kind: argLifreq, resolve: true, handler: (*Manager).sioGLifNetmask},
	"SIOCSLIFFLAGS":    {kind: argLifreq, priv: true, write: true, resolve: true, handler: (*Manager).sioSLifFlags},
	"SIOCGLIFFLAGS":    {kind: argLifreq, resolve: true, handler: (*Manager).sioGLifFlags},
	"SIOCSLIFMTU":      {kind: argLifreq, priv: true, write: true, resolve: true, handler: (*Manager).sioSLifMTU},
	"SIOCGLIFMTU":      {kind: argLifreq, resolve: true, handler: (*Manager).sioGLifMTU},
	"SIOCSLIFMETRIC":   {kind: argLifreq, priv: true, write: true, resolve: true, handler: (*Manager).sioSLifMetric},
	"SIOCGLIFMETRIC":   {kind: argLifreq, resolve: true, handler: (*Manager).sioGLifMetric},
	"SIOCGLIFINDEX":    {kind: argLifreq, resolve: true, handler: (*Manager).sioGLifIndex},
	"SIOCSLIFINDEX":    {kind: argLifreq, priv: true, write: true, resolve: true, handler: (*Manager).sioSLifIndex},
	"SIOCGLIFZONE":     {kind: argLifreq, resolve: true, handler: (*Manager).sioGLifZone},
	"SIOCSLIFZONE":     {kind: argLifreq, priv: true, write: true, resolve: true, handler: (*Manager).sioSLifZone},
	"zoneadm.create":   {kind: argZone, priv: true, write: true, handler: (*Manager).zoneCreate},
	"zoneadm.delete":   {kind: argZone, priv: true, write: true, handler: (*Manager).zoneDelete},
	"zoneadm.ready":    {kind: argZone, priv: true, write: true, handler: (*Manager).zoneReady},
	"zoneadm.boot":     {kind: argZone, priv: true, write: true, handler: (*Manager).zoneBoot},
	"zoneadm.halt":     {kind: argZone, priv: true, write: true, handler: (*Manager).zoneHalt},
	"zoneadm.list":     {kind: argZoneList, handler: (*Manager).zoneList},
	"SIOCLIFGETND":     {kind: argNdreq, resolve: true, handler: (*Manager).sioLifGetND},
	"SIOCLIFSETND":     {kind: argNdreq, priv: true, write: true, resolve: true, handler: (*Manager).sioLifSetND},
	"SIOCLIFDELND":     {kind: argNdreq, priv: true, write: true, resolve: true, handler: (*Manager).sioLifDelND},
	"ndp.list":         {kind: argNdList, handler: (*Manager).ndpList},
	"ndp.set-conf":     {kind: argNdpConf, priv: true, write: true, resolve: true, handler: (*Manager).ndpSetConf},
	"ndp.get-conf":     {kind: argNdpConf, resolve: true, handler: (*Manager).ndpGetConf},
	"SIOCGLIFHWADDR":   {kind: argLifreq, resolve: true, handler: (*Manager).sioGLifHWAddr},
	"SIOCGLIFDADSTATE": {kind: argLifreq, resolve: true, handler: (*Manager).sioGLifDADState},
	"SIOCGLIFCONF":     {kind: argLifconf, handler: (*Manager).sioGLifConf},
	"SIOCGLIFNUM":      {kind: argLifnum, handler: (*Manager).sioGLifNum},
	"SIOCSLIFSUBNET":   {kind: argLifreq, priv: true, write: true, resolve: true, handler: (*Manager).sioSLifSubnet},
	"SIOCGLIFSUBNET":   {kind: argLifreq, resolve: true, handler: (*Manager).sioGLifSubnet},
	"SIOCSLIFTOKEN":    {kind: argLifreq, priv: true, write: true, resolve: true, handler: (*Manager).sioSLifToken},
	"SIOCGLIFTOKEN":    {kind: argLifreq, resolve: true, handler: (*Manager).sioGLifToken},
	"SIOCSLIFPREFIX":   {kind: argLifreq, priv: true, write: true, resolve: true, handler: (*Manager).sioSLifPrefix},
	"SIOCCLIFFLAGS":    {kind: argLifreq, priv: true, write: true, resolve: true, handler: (*Manager).sioCLifFlags},
	"SIOCSLIFLNKINFO":  {kind: argLifreq, priv: true, write: true, resolve: true, handler: (*Manager).sioSLifLnkInfo},
	"SIOCGLIFLNKINFO":  {kind: argLifreq, resolve: true, handler: (*Manager).sioGLifLnkInfo},
	"SIOCSLIFMUXID":    {kind: argLifreq, priv: true, write: true, resolve: true, handler: (*Manager).sioSLifMuxID},
	"SIOCGLIFMUXID":    {kind: argLifreq, resolve: true, handler: (*Manager).sioGLifMuxID},
	"SIOCSLIFUSESRC":   {kind: argLifreq, priv: true, write: true, resolve: true, handler: (*Manager).sioSLifUsesrc},
	"SIOCGLIFUSESRC":   {kind: argLifreq, resolve: true, handler: (*Manager).sioGLifUsesrc},
	"SIOCGLIFSRCOF":    {kind: argLifsrcof, handler: (*Manager).sioGLifSrcOf},
	"SIOCTMYADDR":      {kind: argAddrReq, handler: (*Manager).sioTMyAddr},
	"SIOCTONLINK":      {kind: argAddrReq, handler: (*Manager).sioTOnLink},
	"SIOCTMYSITE":      {kind: argAddrReq, handler: (*Manager).sioTMySite},
	"SIOCADDRT":        {kind: argRtentry, priv: true, write: true, handler: (*Manager).sioAddRt},
	"SIOCDELRT":        {kind: argRtentry, priv: true, write: true, handler: (*Manager).sioDelRt},
	"RTM_GET":          {kind: argRtentry, handler: (*Manager).rtmGet},
	"SIOCGETPROP":      {kind: argProp, handler: (*Manager).sioGetProp},
	"SIOCSETPROP":      {kind: argProp, priv: true, write: true, handler: (*Manager).sioSetProp},

	// ARP (spec §2.15, arp.go); MIB2_IP_MEDIA is the table arp -a reads.
	"SIOCSARP":      {kind: argArpreq, priv: true, write: true, handler: (*Manager).sioSArp},
	"SIOCGARP":      {kind: argArpreq, handler: (*Manager).sioGArp},
	"SIOCDARP":      {kind: argArpreq, priv: true, write: true, handler: (*Manager).sioDArp},
	"SIOCSXARP":     {kind: argXarpreq, priv: true, write: true, handler: (*Manager).sioSXArp},
	"SIOCGXARP":     {kind: argXarpreq, handler: (*Manager).sioGXArp},
	"SIOCDXARP":     {kind: argXarpreq, priv: true, write: true, handler: (*Manager).sioDXArp},
	"MIB2_IP_MEDIA": {kind: argArpTable, handler: (*Manager).mib2IPMedia},

	// The MIB2 get behind netstat -i: per-interface statistics (stats.go).
	"MIB2_IP_TRAFFIC_STATS": {kind: argIfStats, handler: (*Manager).mib2IPTrafficStats},
}

// Requests lists the names of the requests the table implements.
func Requests() []string {
	out := make([]string, 0, len(requests))
	for n := range requests {
		out = append(out, n)
	}
	return out
}

// NewArg returns a zero argument of the type request op takes, for the
// caller to decode into and pass to Do.
func NewArg(op string) (any, error) {
	r, ok := requests[op]
	if !ok {
		return nil, ctl.Errorf(ctl.EINVAL, "unknown request %q", op)
	}
	switch r.kind {
	case argLifconf:
		return &ctl.Lifconf{}, nil
	case argLifnum:
		return &ctl.Lifnum{}, nil
	case argAddrReq:
		return &ctl.AddrReq{}, nil
	case argLifsrcof:
		return &ctl.Lifsrcof{}, nil
	case argRtentry:
		return &ctl.Rtentry{}, nil
	case argProp:
		return &ctl.Prop{}, nil
	case argIfreq:
		return &ctl.Ifreq{}, nil
	case argIfconf:
		return &ctl.Ifconf{}, nil
	case argIfnum:
		return &ctl.Ifnum{}, nil
	case argIfStats:
		return &ctl.IfStatsReq{}, nil
	case argZone:
		return &ctl.Zone{}, nil
	case argZoneList:
		return &ctl.ZoneList{}, nil
	case argNdreq:
		return &ctl.Ndreq{}, nil
	case argNdList:
		return &ctl.NdList{}, nil
	case argNdpConf:
		return &ctl.NdpConf{}, nil
	case argArpreq:
		return &ctl.Arpreq{}, nil
	case argXarpreq:
		return &ctl.Xarpreq{}, nil
	case argArpTable:
		return &ctl.ArpTable{}, nil
	}
	return &ctl.Lifreq{}, nil
}

// Caller describes who sent a request.
type Caller struct {
	// Privileged callers may run set-requests (root, or a group named at
	// daemon start).
	Privileged bool
	// Zone is the name of the caller's zone; "" is the global zone. A
	// caller in another zone sees only that zone's units (spec §11) and,
	// like a shared-IP zone without sys_ip_config, may not change
	// anything.
	Zone string
}

// Do runs request op with argument arg (a pointer of the type NewArg
// returns) on a socket of the given family. The result is written back
// into arg. A failed request returns *ctl.Error and changes nothing.
func (m *Manager) Do(caller Caller, op string, family ctl.Family, arg any) (err error) {
	defer func() {
		if ce, ok := err.(*ctl.Error); ok && ce.Request == "" {
			ce.Request = op
		}
	}()
	r, ok := requests[op]
	if !ok {
		return ctl.Errorf(ctl.EINVAL, "unknown request %q", op)
	}
	if family == "" {
		family = ctl.AF_INET
	}
	if family != ctl.AF_INET && family != ctl.AF_INET6 && !(family == ctl.AF_UNSPEC && r.kind != argLifreq && r.kind != argIfreq) {
		return ctl.Errorf(ctl.EAFNOSUPPORT, "socket family %q is not inet or inet6", family)
	}
	c := &call{op: op, family: family, caller: caller}
	switch r.kind {
	case argLifreq:
		c.lifr, ok = arg.(*ctl.Lifreq)
	case argLifconf:
		c.lifc, ok = arg.(*ctl.Lifconf)
	case argLifnum:
		c.lifn, ok = arg.(*ctl.Lifnum)
	case argAddrReq:
		c.addrReq, ok = arg.(*ctl.AddrReq)
	case argLifsrcof:
		c.srcof, ok = arg.(*ctl.Lifsrcof)
	case argRtentry:
		c.rt, ok = arg.(*ctl.Rtentry)
	case argProp:
		c.prop, ok = arg.(*ctl.Prop)
	case argIfreq:
		c.ifr, ok = arg.(*ctl.Ifreq)
	case argIfconf:
		c.ifc, ok = arg.(*ctl.Ifconf)
	case argIfnum:
		c.ifn, ok = arg.(*ctl.Ifnum)
	case argArpreq:
		c.arpr, ok = arg.(*ctl.Arpreq)
	case argXarpreq:
		c.xarp, ok = arg.(*ctl.Xarpreq)
	case argArpTable:
		c.arpt, ok = arg.(*ctl.ArpTable)
	case argIfStats:
		c.ifStats, ok = arg.(*ctl.IfStatsReq)
	case argZone:
		c.zone, ok = arg.(*ctl.Zone)
	case argZoneList:
		c.zones, ok = arg.(*ctl.ZoneList)
	case argNdreq:
		c.nd, ok = arg.(*ctl.Ndreq)
	case argNdList:
		c.ndl, ok = arg.(*ctl.NdList)
	case argNdpConf:
		c.ndpConf, ok = arg.(*ctl.NdpConf)
	}
	if !ok || arg == nil {
		return ctl.Errorf(ctl.EINVAL, "missing or wrong argument for %s", op)
	}
	if r.priv && !caller.Privileged {
		return ctl.Errorf(ctl.EPERM, "%s needs network configuration privilege", op)
	}
	if r.priv && caller.Zone != "" {
		return ctl.Errorf(ctl.EPERM, "%s: zone %s shares the global zone's IP stack and may not configure it", op, caller.Zone)
	}
	if r.write {
		m.mu.Lock()
		defer m.unlockAndDeliver()
		// Learned default routes follow ROUTER and up/down (slaac.go).
		defer m.syncRouterIREsLocked()
	} else {
		m.mu.RLock()
		defer m.mu.RUnlock()
	}
	if r.resolve {
		name := ""
		if c.lifr != nil {
			name = c.lifr.Name
		} else if c.ifr != nil {
			name = truncIfName(c.ifr.Name)
		} else if c.nd != nil {
			name = c.nd.Name
		} else if c.ndpConf != nil {
			name = c.ndpConf.Name
		}
		u, err := m.lookupVisibleLocked(name, family, caller.Zone)
		if err != nil {
			return err
		}
		c.target = u
	}
	return r.handler(m, c)
}
