package slirp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/tapstack/tapstack/ctl"
)

// Forwarder is the port-forward table the API drives; *gateway.Gateway
// implements it.
type Forwarder interface {
	// AddForward starts a forward and returns it with its ID.
	AddForward(ctl.Forward) (ctl.Forward, error)
	// RemoveForward stops forward id.
	RemoveForward(id int) error
	// Forwards lists the forwards.
	Forwards() []ctl.Forward
}

// MaxRequest is the size a request must stay below, as in slirp4netns.
const MaxRequest = 4096

// requestTimeout bounds how long a client may take to send its request.
const requestTimeout = 10 * time.Second

// API is slirp4netns's API socket: a unix stream socket on which each
// connection carries one JSON request and gets one JSON reply, after
// which the server closes it. Requests:
//
//	{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_addr":"0.0.0.0","host_port":8080,"guest_addr":"10.0.2.100","guest_port":80}}
//	→ {"return":{"id":1}}
//	{"execute":"list_hostfwd"}
//	→ {"return":{"entries":[{"id":1,"proto":"tcp","host_addr":"0.0.0.0","host_port":8080,"guest_addr":"10.0.2.100","guest_port":80}]},"entries":[...]}
//	{"execute":"remove_hostfwd","arguments":{"id":1}}
//	→ {"return":{}}
//
// and failures as {"error":{"desc":"bad request: ..."}} in slirp4netns's
// words. The reply comes as soon as a whole JSON value has arrived (as
// slirp4netns, which reads once), or at end of input: clients that
// shut down their write side and clients that do not both work.
//
// list_hostfwd carries the entries twice: under "return", as the
// slirp4netns manual documents, and at the top level, as released
// slirp4netns (through 1.3.x) actually sends them; clients are written
// against either.
//
// Forwards are the gateway's, and their IDs its IDs. As in slirp4netns
// they are IPv4 only, host_addr defaults to 0.0.0.0 and guest_addr to the
// address --configure gives the namespace.
type API struct {
	fw    Forwarder
	guest netip.Addr
	log   *slog.Logger
	path  string
	ln    *net.UnixListener

	mu sync.Mutex // serialises requests: slirp4netns "stops the world" for each
	wg sync.WaitGroup

	closeOnce sync.Once
}

// ListenAPI listens on path (removing what is there first, as slirp4netns
// does). guest is the default guest_addr. Serve answers requests.
func ListenAPI(path string, fw Forwarder, guest netip.Addr, log *slog.Logger) (*API, error) {
	if len(path) >= maxUnixSocketPath {
		return nil, fmt.Errorf("the specified API socket path is too long (>= %d)", maxUnixSocketPath)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	os.Remove(path) // avoid EADDRINUSE
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("api socket %s: %w", path, err)
	}
	// Close removes the file itself, and only then.
	ln.SetUnlinkOnClose(false)
	return &API{fw: fw, guest: guest, log: log, path: path, ln: ln}, nil
}

// Path is the socket's path.
func (a *API) Path() string { return a.path }

// Serve answers connections until Close; it returns nil after Close.
func (a *API) Serve() error {
	for {
		c, err := a.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.serveConn(c)
		}()
	}
}

// Close stops listening, waits for requests in progress and removes the
// socket file.
func (a *API) Close() error {
	var err error
	a.closeOnce.Do(func() {
		err = a.ln.Close()
		a.wg.Wait()
		os.Remove(a.path)
	})
	return err
}

func (a *API) serveConn(c *net.UnixConn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(requestTimeout))
	req, tooLarge, err := readRequest(c)
	var reply []byte
	switch {
	case tooLarge:
		a.log.Warn("api: too large message", "limit", MaxRequest)
		reply = errorReply("bad request: too large message")
	case err != nil && len(req) == 0:
		a.log.Warn("api: reading request", "err", err)
		return
	default:
		a.log.Info("api: got request", "request", string(bytes.TrimSpace(req)))
		reply = a.Handle(req)
	}
	c.Write(reply)
}

// readRequest reads one JSON value, or up to end of input, or up to a
// timeout: whichever comes first. tooLarge is set once MaxRequest bytes
// arrive without a whole value.
func readRequest(r io.Reader) (req []byte, tooLarge bool, err error) {
	buf := make([]byte, 0, MaxRequest)
	for {
		n, rerr := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) >= MaxRequest {
			return buf, true, nil
		}
		if complete(buf) {
			return buf, false, nil
		}
		if rerr != nil {
			if rerr == io.EOF {
				rerr = nil
			}
			return buf, false, rerr
		}
	}
}

// complete reports whether buf holds one whole JSON value (then or with
// more to come after it), or bytes that cannot start one (a parse error
// waiting to be reported, which more input cannot mend).
func complete(buf []byte) bool {
	if len(bytes.TrimSpace(buf)) == 0 {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(buf))
	var v json.RawMessage
	err := dec.Decode(&v)
	return err == nil || !errors.Is(err, io.ErrUnexpectedEOF) && err != io.EOF
}

// reply bodies.
type (
	errorBody struct {
		Error struct {
			Desc string `json:"desc"`
		} `json:"error"`
	}
	entry struct {
		ID        int    `json:"id"`
		Proto     string `json:"proto"`
		HostAddr  string `json:"host_addr"`
		HostPort  int    `json:"host_port"`
		GuestAddr string `json:"guest_addr"`
		GuestPort int    `json:"guest_port"`
	}
	entries struct {
		Entries []entry `json:"entries"`
	}
	listBody struct {
		Return  entries `json:"return"`
		Entries []entry `json:"entries"`
	}
	addBody struct {
		Return struct {
			ID int `json:"id"`
		} `json:"return"`
	}
)

func errorReply(desc string) []byte {
	var b errorBody
	b.Error.Desc = desc
	return mustJSON(b)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("slirp: encode reply: %v", err)) // fixed types: cannot happen
	}
	return b
}

// Handle answers one request (the bytes a client sent) with the reply to
// send back.
func (a *API) Handle(req []byte) []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	var v any
	dec := json.NewDecoder(bytes.NewReader(req))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return errorReply("bad request: cannot parse JSON")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return errorReply("bad request: json_object() failed")
	}
	execute, ok := obj["execute"].(string)
	if !ok {
		return errorReply("bad request: no execute found")
	}
	args, _ := obj["arguments"].(map[string]any)
	switch execute {
	case "add_hostfwd":
		return a.addHostfwd(args)
	case "list_hostfwd":
		return a.listHostfwd()
	case "remove_hostfwd":
		return a.removeHostfwd(args)
	}
	return errorReply("bad request: unknown execute")
}

// number reads a JSON number argument as slirp4netns does (a double cast
// to int, 0 when absent or not a number), and reports whether it is a
// valid port or ID: 1 to max.
func number(args map[string]any, key string, max int) (int, bool) {
	n, ok := args[key].(json.Number)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	if err != nil || f < 1 || f >= float64(max)+1 {
		return 0, false
	}
	return int(f), true
}

// addr4 reads an IPv4 address argument; absent or "" gives def.
func addr4(args map[string]any, key string, def netip.Addr) (netip.Addr, bool) {
	v, present := args[key]
	if !present || v == nil {
		return def, true
	}
	s, ok := v.(string)
	if !ok {
		return netip.Addr{}, false
	}
	if s == "" {
		return def, true
	}
	ad, err := netip.ParseAddr(s)
	if err != nil || !ad.Is4() {
		return netip.Addr{}, false
	}
	return ad, true
}

func (a *API) addHostfwd(args map[string]any) []byte {
	bad := func(what string) []byte { return errorReply("bad request: add_hostfwd: bad arguments." + what) }
	proto, _ := args["proto"].(string)
	if proto != "tcp" && proto != "udp" {
		return bad("proto")
	}
	f := ctl.Forward{Proto: proto}
	var ok bool
	if f.HostAddr, ok = addr4(args, "host_addr", netip.IPv4Unspecified()); !ok {
		return bad("host_addr")
	}
	port, ok := number(args, "host_port", math.MaxUint16)
	if !ok {
		return bad("host_port")
	}
	f.HostPort = uint16(port)
	if f.GuestAddr, ok = addr4(args, "guest_addr", a.guest); !ok {
		return bad("guest_addr")
	}
	if port, ok = number(args, "guest_port", math.MaxUint16); !ok {
		return bad("guest_port")
	}
	f.GuestPort = uint16(port)
	got, err := a.fw.AddForward(f)
	if err != nil {
		a.log.Warn("api: add_hostfwd failed", "forward", f, "err", err)
		return errorReply("bad request: add_hostfwd: slirp_add_hostfwd failed: " + reason(err))
	}
	a.log.Info("api: added forward", "id", got.ID, "proto", got.Proto, "host", netip.AddrPortFrom(f.HostAddr, f.HostPort), "guest", netip.AddrPortFrom(f.GuestAddr, f.GuestPort))
	var b addBody
	b.Return.ID = got.ID
	return mustJSON(b)
}

// reason is an error's message without the errno prefix ctl.Error adds.
func reason(err error) string {
	var ce *ctl.Error
	if errors.As(err, &ce) {
		return ce.Msg
	}
	return err.Error()
}

func (a *API) listHostfwd() []byte {
	fws := a.fw.Forwards()
	slices.SortFunc(fws, func(x, y ctl.Forward) int { return x.ID - y.ID })
	es := make([]entry, 0, len(fws))
	for _, f := range fws {
		host := f.HostAddr
		if !host.IsValid() {
			host = netip.IPv4Unspecified()
		}
		guest := f.GuestAddr
		if !guest.IsValid() {
			guest = a.guest
		}
		es = append(es, entry{
			ID: f.ID, Proto: f.Proto,
			HostAddr: host.String(), HostPort: int(f.HostPort),
			GuestAddr: guest.String(), GuestPort: int(f.GuestPort),
		})
	}
	return mustJSON(listBody{Return: entries{Entries: es}, Entries: es})
}

func (a *API) removeHostfwd(args map[string]any) []byte {
	id, ok := number(args, "id", math.MaxInt32)
	if ok {
		ok = slices.ContainsFunc(a.fw.Forwards(), func(f ctl.Forward) bool { return f.ID == id })
	}
	if !ok {
		return errorReply("bad request: remove_hostfwd: bad arguments.id")
	}
	if err := a.fw.RemoveForward(id); err != nil {
		a.log.Warn("api: remove_hostfwd failed", "id", id, "err", err)
		return errorReply("bad request: remove_hostfwd: slirp_remove_hostfwd failed: " + reason(err))
	}
	a.log.Info("api: removed forward", "id", id)
	return []byte(`{"return":{}}`)
}
