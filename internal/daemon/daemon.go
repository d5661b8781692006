// Package daemon wires tapstackd together: the gVisor stack, the link
// registry, the interface layer, the optional in-stack services, and the
// control socket that serves tapadm.
package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/tapstack/tapstack/ctl"
	"github.com/tapstack/tapstack/ifmgr"
	"github.com/tapstack/tapstack/ifmgr/ipadm"
	"github.com/tapstack/tapstack/internal/services"
	"github.com/tapstack/tapstack/link"
	"github.com/tapstack/tapstack/ndp"
	"github.com/tapstack/tapstack/route"
	"github.com/tapstack/tapstack/stack"
)

// Config configures a Daemon.
type Config struct {
	// CtlPath is the control socket to listen on.
	CtlPath string
	// Services names in-stack services to run ("echo", "discard").
	Services []string
	// CreateTap makes a TAP link; the daemon calls it for dladm
	// create-tap. Nil refuses create-tap (ENOTSUP).
	CreateTap func(ctl.CreateTap) (*link.Link, error)
	// CreateAFPacket makes an AF_PACKET link; the daemon calls it for
	// dladm create-afpacket. Nil refuses create-afpacket (ENOTSUP).
	CreateAFPacket func(ctl.CreateAFPacket) (*link.Link, error)
	// Groups names groups (or gids) whose members may run set-requests,
	// besides root and the daemon's user (privilege.go).
	Groups []string
	// ZoneMap puts the clients of a uid in a zone (zones.go).
	ZoneMap map[uint32]string
	// NoDAD turns duplicate address detection off: addresses are
	// usable the moment they are up (tapstackd --no-dad).
	NoDAD bool
	// StatePath is the ipadm state file ("" keeps no state); read at New,
	// applied by RestoreState (ipadm.go).
	StatePath string
	Log       *slog.Logger
}

// Daemon is one running tapstackd.
type Daemon struct {
	cfg    Config
	log    *slog.Logger
	stack  *stack.Stack
	links  *link.Registry
	routes *route.Table
	ifm    *ifmgr.Manager
	ipadm  *ipadm.Registry
	ndp    *ndp.Dispatcher
	svc    *services.Services
	ln     *net.UnixListener
	priv   *privilege

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup

	// nsMu guards sessions and nsClosed: the connected namespaces, by
	// link name (namespace.go).
	nsMu     sync.Mutex
	sessions map[string]*Namespace
	nsClosed bool
}

// New builds the stack and interface layer (lo0 up), starts the services
// and listens on the control socket.
func New(cfg Config) (*Daemon, error) {
	d := &Daemon{cfg: cfg, log: cfg.Log, links: &link.Registry{}, conns: map[net.Conn]struct{}{}}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	priv, err := newPrivilege(cfg.Groups)
	if err != nil {
		return nil, err
	}
	d.priv = priv
	// Without HandleLocal: a namespace gateway (ConnectNamespace) makes
	// its NIC promiscuous, and gVisor with HandleLocal drops everything
	// arriving on a promiscuous NIC (stack.Options). The cost: the stack's
	// own traffic to its addresses on a non-loopback NIC leaves by that
	// NIC instead of looping inside (lo0 is unaffected).
	// The NDP dispatcher carries router advertisements and SLAAC
	// addresses from gVisor to the interface layer (ADDRCONF units).
	d.ndp = ndp.NewDispatcher()
	d.stack = stack.NewWithOptions(stack.Options{NoHandleLocal: true, NDPDispatcher: d.ndp})
	d.routes = route.New(d.stack)
	ifm, err := ifmgr.New(ifmgr.Config{Stack: d.stack, Routes: d.routes, Links: d.links, Log: d.log, NDP: d.ndp, DAD: !cfg.NoDAD})
	if err != nil {
		d.ndp.Close()
		d.stack.Close()
		return nil, err
	}
	d.ifm = ifm
	if d.ipadm, err = ipadm.New(ifm, cfg.StatePath, d.log); err != nil {
		d.ndp.Close()
		d.stack.Close()
		return nil, err
	}
	if len(cfg.Services) > 0 {
		svc, err := services.Start(d.stack.GVisor(), cfg.Services)
		if err != nil {
			d.ndp.Close()
			d.stack.Close()
			return nil, err
		}
		d.svc = svc
	}
	if err := d.listen(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// Manager returns the interface layer (for in-process tests).
func (d *Daemon) Manager() *ifmgr.Manager { return d.ifm }

// Stack returns the stack.
func (d *Daemon) Stack() *stack.Stack { return d.stack }

// AddLink registers a link made outside the daemon (an in-memory pair in
// tests); the daemon owns it from then on and closes it at Close. A name
// already taken is EEXIST.
func (d *Daemon) AddLink(l *link.Link) error {
	if err := d.links.Add(l); err != nil {
		return ctl.Errorf(ctl.EEXIST, "%v", err)
	}
	return nil
}

func (d *Daemon) listen() error {
	path := d.cfg.CtlPath
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("control socket directory: %w", err)
	}
	// A socket left by a daemon that died is removed; a live one is not.
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return fmt.Errorf("another tapstackd is listening on %s", path)
	}
	os.Remove(path)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return fmt.Errorf("listen on %s: %w", path, err)
	}
	// Everyone may connect and read; set-requests check credentials.
	if err := os.Chmod(path, 0o666); err != nil {
		ln.Close()
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	d.ln = ln
	return nil
}

// Serve accepts control connections until ctx is done or the listener is
// closed.
func (d *Daemon) Serve(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		d.ln.Close()
	}()
	for {
		c, err := d.ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		d.mu.Lock()
		d.conns[c] = struct{}{}
		d.wg.Add(1)
		d.mu.Unlock()
		go d.serveConn(c)
	}
}

// Close stops serving, closes every connection, disconnects the
// namespaces, deletes the links the daemon created (their TAP devices go
// with them) and stops the stack.
func (d *Daemon) Close() {
	if d.ln != nil {
		d.ln.Close()
		os.Remove(d.cfg.CtlPath)
	}
	d.mu.Lock()
	for c := range d.conns {
		c.Close()
	}
	d.mu.Unlock()
	d.wg.Wait()
	d.closeNamespaces()
	if d.svc != nil {
		d.svc.Close()
	}
	d.links.CloseAll()
	d.ndp.Close()
	d.stack.Close()
}

// maxLine bounds one request line.
const maxLine = 1 << 20

func (d *Daemon) serveConn(c *net.UnixConn) {
	defer func() {
		c.Close()
		d.mu.Lock()
		delete(d.conns, c)
		d.mu.Unlock()
		d.wg.Done()
	}()
	caller := d.callerOf(c)
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	w := bufio.NewWriter(c)
	enc := json.NewEncoder(w)
	for sc.Scan() {
		resp, st := d.handle(caller, sc.Bytes())
		if st != nil {
			if !serveStream(c, w, enc, resp.ID, st) {
				return
			}
			continue
		}
		if err := enc.Encode(resp); err != nil {
			return
		}
		if err := w.Flush(); err != nil {
			return
		}
	}
}

// handle decodes and answers one request line. A streaming request that
// passed its checks is answered by st instead (resp then carries only the
// request's ID; serveStream writes the lines).
func (d *Daemon) handle(caller ifmgr.Caller, line []byte) (resp ctl.Response, st stream) {
	var req ctl.Request
	if err := json.Unmarshal(line, &req); err != nil {
		return errResponse(0, ctl.Errorf(ctl.EINVAL, "malformed request: %v", err)), nil
	}
	result, err := d.dispatch(caller, &req)
	if err != nil {
		return errResponse(req.ID, err), nil
	}
	resp = ctl.Response{ID: req.ID}
	if st, ok := result.(stream); ok {
		return resp, st
	}
	if result != nil {
		raw, err := json.Marshal(result)
		if err != nil {
			return errResponse(req.ID, ctl.Errorf(ctl.EINVAL, "encode result: %v", err)), nil
		}
		resp.Result = raw
	}
	return resp, nil
}

func errResponse(id uint64, err error) ctl.Response {
	e := ctl.ErrnoOf(err)
	if e == 0 {
		e = ctl.EINVAL
	}
	msg := err.Error()
	var ce *ctl.Error
	if errors.As(err, &ce) {
		msg = ce.Msg
	}
	return ctl.Response{ID: id, Errno: e.String(), Message: msg}
}

// decode unmarshals a request's arguments into v; absent arguments leave
// v zero.
func decode(req *ctl.Request, v any) error {
	if len(req.Args) == 0 {
		return nil
	}
	if err := json.Unmarshal(req.Args, v); err != nil {
		return ctl.Errorf(ctl.EINVAL, "bad arguments for %s: %v", req.Op, err)
	}
	return nil
}

func (d *Daemon) dispatch(caller ifmgr.Caller, req *ctl.Request) (any, error) {
	switch req.Op {
	case "dladm.create-tap":
		var a ctl.CreateTap
		if err := decode(req, &a); err != nil {
			return nil, err
		}
		return d.linkCreated(a.Name)(d.createTap(caller, a))
	case "dladm.create-afpacket":
		var a ctl.CreateAFPacket
		if err := decode(req, &a); err != nil {
			return nil, err
		}
		return d.linkCreated(a.Name)(d.createAFPacket(caller, a))
	case "dladm.delete-link":
		var a ctl.LinkName
		if err := decode(req, &a); err != nil {
			return nil, err
		}
		return nil, d.deleteLink(caller, a.Name)
	case "dladm.show-link":
		return d.showLinks(), nil
	case "netstat.routes":
		return zoneRoutes(caller, d.routeEntries(req.Family)), nil
	case "netstat.interfaces":
		var a ctl.IfStatsReq
		if err := decode(req, &a); err != nil {
			return nil, err
		}
		return d.interfaceStats(caller, req.Family, a)
	case "wait-dad":
		var a ctl.WaitDAD
		if err := decode(req, &a); err != nil {
			return nil, err
		}
		return nil, d.waitDAD(req.Family, a)
	case "ping":
		var a ctl.Ping
		if err := decode(req, &a); err != nil {
			return nil, err
		}
		return d.ping(a)
	case "events":
		var a ctl.Events
		if err := decode(req, &a); err != nil {
			return nil, err
		}
		return d.events(a)
	case "snoop":
		var a ctl.Snoop
		if err := decode(req, &a); err != nil {
			return nil, err
		}
		return d.snoop(caller, a)
	case "gateway.add-forward":
		var a addForwardArgs
		if err := decode(req, &a); err != nil {
			return nil, err
		}
		return d.addForward(caller, a)
	case "gateway.list-forwards":
		return d.listForwards()
	case "gateway.remove-forward":
		var a ctl.ForwardID
		if err := decode(req, &a); err != nil {
			return nil, err
		}
		return nil, d.removeForward(caller, a.ID)
	}
	if res, ok, err := d.dispatchIpadm(caller, req); ok {
		return res, err
	}
	arg, err := ifmgr.NewArg(req.Op)
	if err != nil {
		return nil, err
	}
	if err := decode(req, arg); err != nil {
		return nil, err
	}
	if err := d.ifm.Do(caller, req.Op, req.Family, arg); err != nil {
		return nil, err
	}
	return arg, nil
}
