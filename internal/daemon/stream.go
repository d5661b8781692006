package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"time"

	"github.com/tapstack/tapstack/ctl"
)

// stream answers a streaming request whose checks have passed: dispatch
// returns one instead of a result. It sends items with w until it is done
// or ctx ends (the client hung up, or the daemon is closing), and returns
// nil to end the stream with the end line, or the error to end it with.
// It must not keep w after it returns.
type stream func(ctx context.Context, w *streamWriter) error

// streamWriter writes the items of one stream as Response lines.
type streamWriter struct {
	id  uint64
	w   *bufio.Writer
	enc *json.Encoder
	err error // the first write error; the connection is then unusable
}

// Send buffers one item; Flush (or a full buffer) sends it.
func (s *streamWriter) Send(item any) error {
	if s.err != nil {
		return s.err
	}
	raw, err := json.Marshal(item)
	if err != nil {
		return ctl.Errorf(ctl.EINVAL, "encode item: %v", err)
	}
	s.err = s.enc.Encode(ctl.Response{ID: s.id, Result: raw})
	return s.err
}

// Flush sends the buffered items.
func (s *streamWriter) Flush() error {
	if s.err == nil {
		s.err = s.w.Flush()
	}
	return s.err
}

// serveStream runs st for request id on c and ends the stream with the
// end line or an error line. It reports whether c can carry further
// requests: not when the client hung up or a write failed.
//
// While a stream runs the client must not send: closing its end of the
// connection is how it stops a stream early (ctl.Client.Stream), and
// anything else it sends ends the stream and the connection too.
func serveStream(c *net.UnixConn, w *bufio.Writer, enc *json.Encoder, id uint64, st stream) bool {
	ctx, stopWatch := watchHangup(c)
	sw := &streamWriter{id: id, w: w, enc: enc}
	err := st(ctx, sw)
	if !stopWatch() || sw.err != nil {
		return false
	}
	end := ctl.Response{ID: id, End: true}
	if err != nil {
		end = errResponse(id, err)
	}
	if enc.Encode(end) != nil || w.Flush() != nil {
		return false
	}
	return true
}

// watchHangup reads from c, which the client leaves silent during a
// stream, so that the stream learns at once when the client closes its
// end, not at the next write. The returned context ends then. stop ends
// the watch and reports whether c is still usable (the client neither
// hung up nor sent anything).
func watchHangup(c *net.UnixConn) (ctx context.Context, stop func() (usable bool)) {
	ctx, cancel := context.WithCancel(context.Background())
	usable := make(chan bool, 1)
	go func() {
		var b [1]byte
		_, err := c.Read(b[:])
		cancel()
		usable <- errors.Is(err, os.ErrDeadlineExceeded)
	}()
	return ctx, func() bool {
		c.SetReadDeadline(time.Unix(1, 0)) // in the past: the Read returns now
		ok := <-usable
		c.SetReadDeadline(time.Time{})
		return ok
	}
}
