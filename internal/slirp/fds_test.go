package slirp

import (
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestSignalReady(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fd, err := unix.Dup(int(w.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := CheckFD(fd, "ready-fd"); err != nil {
		t.Fatal(err)
	}
	if err := SignalReady(fd); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r) // EOF: SignalReady closed the only writer
	if err != nil || string(got) != "1" {
		t.Errorf("read %q, %v; want \"1\" then end of file", got, err)
	}
	if err := CheckFD(fd, "ready-fd"); err == nil {
		t.Error("CheckFD accepts a closed descriptor")
	}
}

func TestWatchHangup(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h, err := WatchHangup(int(r.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Stop()
	// Data is not a hangup (slirp4netns polls for POLLHUP only).
	w.Write([]byte("x"))
	select {
	case <-h.C:
		t.Fatal("fired on data")
	case <-time.After(50 * time.Millisecond):
	}
	w.Close()
	select {
	case <-h.C:
	case <-time.After(5 * time.Second):
		t.Fatal("did not fire when the write end closed")
	}

	// Stop ends a watcher that never fired.
	r2, w2, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	defer w2.Close()
	h2, err := WatchHangup(int(r2.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	h2.Stop()
	h2.Stop()
	select {
	case <-h2.C:
		t.Error("fired on Stop")
	default:
	}
}
