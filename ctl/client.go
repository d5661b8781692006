package ctl

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"sync"
)

// DefaultSocket is where tapstackd listens unless told otherwise.
const DefaultSocket = "/run/tapstack/tapstackd.sock"

// SocketPath returns the control socket path: flag value if set, else
// $TAPSTACK_CTL, else DefaultSocket.
func SocketPath(flag string) string {
	if flag != "" {
		return flag
	}
	if p := os.Getenv("TAPSTACK_CTL"); p != "" {
		return p
	}
	return DefaultSocket
}

// Client is a connection to tapstackd's control socket. Requests on one
// Client are sent one at a time, in order (mu serialises them).
type Client struct {
	mu   sync.Mutex
	conn net.Conn
	r    *bufio.Reader
	enc  *json.Encoder
	next uint64
}

// Dial connects to the control socket at path.
func Dial(path string) (*Client, error) {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return nil, fmt.Errorf("connect to tapstackd at %s: %w (is tapstackd running?)", path, err)
	}
	return &Client{conn: conn, r: bufio.NewReaderSize(conn, 64<<10), enc: json.NewEncoder(conn)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Do sends op with args (marshalled as JSON; nil for none) on a socket of
// the given family and decodes the result into result (if non-nil). A
// request the daemon refused comes back as *Error carrying its errno.
func (c *Client) Do(ctx context.Context, op string, family Family, args, result any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next++
	req := Request{ID: c.next, Op: op, Family: family}
	if args != nil {
		raw, err := json.Marshal(args)
		if err != nil {
			return fmt.Errorf("%s: encode arguments: %w", op, err)
		}
		req.Args = raw
	}
	if dl, ok := ctx.Deadline(); ok {
		c.conn.SetDeadline(dl)
		defer c.conn.SetDeadline(timeZero)
	}
	if err := c.enc.Encode(&req); err != nil {
		return fmt.Errorf("%s: send: %w", op, err)
	}
	line, err := c.r.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("%s: receive: %w", op, err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return fmt.Errorf("%s: decode response: %w", op, err)
	}
	if resp.Errno != "" {
		e, _ := ParseErrno(resp.Errno)
		return &Error{Request: op, Errno: e, Msg: resp.Message}
	}
	if result != nil && len(resp.Result) > 0 {
		if err := json.Unmarshal(resp.Result, result); err != nil {
			return fmt.Errorf("%s: decode result: %w", op, err)
		}
	}
	return nil
}
