package ctl

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// streamServer is a stand-in daemon on a unix socket. For each request it
// writes the lines serve returns; after op "vanish" it closes the
// connection. hungUp is closed when the client closes its end.
type streamServer struct {
	sock   string
	hungUp chan struct{}
}

func newStreamServer(t *testing.T, serve func(Request) []Response) *streamServer {
	t.Helper()
	dir, err := os.MkdirTemp("", "ctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &streamServer{sock: filepath.Join(dir, "s.sock"), hungUp: make(chan struct{})}
	ln, err := net.Listen("unix", s.sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		r := bufio.NewReader(conn)
		enc := json.NewEncoder(conn)
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				close(s.hungUp)
				return
			}
			var req Request
			json.Unmarshal(line, &req)
			for _, resp := range serve(req) {
				resp.ID = req.ID
				if enc.Encode(resp) != nil {
					close(s.hungUp) // the client closed while we wrote
					return
				}
			}
			if req.Op == "vanish" {
				return // a daemon that dies mid-stream
			}
		}
	}()
	return s
}

func (s *streamServer) dial(t *testing.T) *Client {
	t.Helper()
	c, err := Dial(s.sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (s *streamServer) waitHangup(t *testing.T) {
	t.Helper()
	select {
	case <-s.hungUp:
	case <-time.After(5 * time.Second):
		t.Fatal("the server did not see the client close the connection")
	}
}

func item(v string) Response {
	raw, _ := json.Marshal(v)
	return Response{Result: raw}
}

func collect(got *[]string) func(json.RawMessage) error {
	return func(raw json.RawMessage) error {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return err
		}
		*got = append(*got, s)
		return nil
	}
}

func TestStreamItemsThenEnd(t *testing.T) {
	s := newStreamServer(t, func(req Request) []Response {
		switch req.Op {
		case "snoop":
			return []Response{item("a"), item("b"), item("c"), {End: true}}
		case "fail":
			return []Response{item("a"), {Errno: "ENXIO", Message: "link tap0 was deleted"}}
		}
		return []Response{{Result: json.RawMessage(`{"lifn_count":3}`)}}
	})
	c := s.dial(t)
	ctx := context.Background()
	var got []string
	if err := c.Stream(ctx, "snoop", "", Snoop{Link: "tap0"}, collect(&got)); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"a", "b", "c"}, got); d != "" {
		t.Errorf("items (-want +got):\n%s", d)
	}
	// A stream that ended leaves the client usable, also after an error.
	got = nil
	err := c.Stream(ctx, "fail", "", nil, collect(&got))
	if ErrnoOf(err) != ENXIO || err.Error() != "fail: ENXIO: link tap0 was deleted" || len(got) != 1 {
		t.Errorf("stream ended by an error: %v, items %v", err, got)
	}
	var n Lifnum
	if err := c.Do(ctx, "SIOCGLIFNUM", AF_INET, nil, &n); err != nil || n.Count != 3 {
		t.Errorf("Do after streams: %+v, %v", n, err)
	}
}

// TestStreamCancel: ending the context stops a stream that sends nothing,
// and the daemon sees the connection close.
func TestStreamCancel(t *testing.T) {
	s := newStreamServer(t, func(Request) []Response { return []Response{item("a")} })
	c := s.dial(t)
	ctx, cancel := context.WithCancel(context.Background())
	var got []string
	done := make(chan error, 1)
	go func() { done <- c.Stream(ctx, "snoop", "", nil, collect(&got)) }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Stream after cancel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Stream did not return when its context ended")
	}
	s.waitHangup(t)
	if err := c.Do(context.Background(), "SIOCGLIFNUM", AF_INET, nil, nil); err == nil {
		t.Error("the client is usable after a cancelled stream")
	}
}

func TestStreamEachFails(t *testing.T) {
	s := newStreamServer(t, func(Request) []Response { return []Response{item("a"), item("b")} })
	c := s.dial(t)
	stop := errors.New("disk full")
	err := c.Stream(context.Background(), "snoop", "", nil, func(json.RawMessage) error { return stop })
	if err != stop {
		t.Errorf("Stream: %v, want each's error", err)
	}
	s.waitHangup(t)
}

func TestStreamDaemonGone(t *testing.T) {
	s := newStreamServer(t, func(Request) []Response { return []Response{item("a")} })
	var got []string
	err := s.dial(t).Stream(context.Background(), "vanish", "", nil, collect(&got))
	if !errors.Is(err, io.EOF) || len(got) != 1 {
		t.Errorf("Stream from a daemon that went away: %v, items %v", err, got)
	}
}
