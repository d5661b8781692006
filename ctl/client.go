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
	if dl, ok := ctx.Deadline(); ok {
		c.conn.SetDeadline(dl)
		defer c.conn.SetDeadline(timeZero)
	}
	if err := c.send(op, family, args); err != nil {
		return err
	}
	resp, err := c.receive(op)
	if err != nil {
		return err
	}
	if result != nil && len(resp.Result) > 0 {
		if err := json.Unmarshal(resp.Result, result); err != nil {
			return fmt.Errorf("%s: decode result: %w", op, err)
		}
	}
	return nil
}

// Stream sends a streaming request (op "snoop"): the daemon answers with
// any number of items, each passed to each as it arrives, then an end
// line. Stream returns nil at the end line, or the *Error the daemon
// refused the request or ended the stream with.
//
// The daemon stops a stream early only when the connection closes. So when
// ctx ends (Ctrl-C, a deadline) or each returns an error, Stream closes the
// connection and returns that error, and the Client cannot be used again.
func (c *Client) Stream(ctx context.Context, op string, family Family, args any, each func(json.RawMessage) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Closing the connection unblocks the read below and tells the daemon.
	stop := context.AfterFunc(ctx, func() { c.conn.Close() })
	defer stop()
	fail := func(err error) error {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", op, context.Cause(ctx))
		}
		return err
	}
	if err := c.send(op, family, args); err != nil {
		return fail(err)
	}
	for {
		resp, err := c.receive(op)
		if err != nil {
			return fail(err)
		}
		if resp.End {
			return nil
		}
		if err := each(resp.Result); err != nil {
			c.conn.Close()
			return err
		}
	}
}

// send writes one request line.
func (c *Client) send(op string, family Family, args any) error {
	c.next++
	req := Request{ID: c.next, Op: op, Family: family}
	if args != nil {
		raw, err := json.Marshal(args)
		if err != nil {
			return fmt.Errorf("%s: encode arguments: %w", op, err)
		}
		req.Args = raw
	}
	if err := c.enc.Encode(&req); err != nil {
		return fmt.Errorf("%s: send: %w", op, err)
	}
	return nil
}

// receive reads one response line; a refusal comes back as *Error.
func (c *Client) receive(op string) (Response, error) {
	line, err := c.r.ReadBytes('\n')
	if err != nil {
		return Response{}, fmt.Errorf("%s: receive: %w", op, err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return Response{}, fmt.Errorf("%s: decode response: %w", op, err)
	}
	if resp.Errno != "" {
		e, _ := ParseErrno(resp.Errno)
		return Response{}, &Error{Request: op, Errno: e, Msg: resp.Message}
	}
	return resp, nil
}
