package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/tapstack/tapstack/link"
)

// windowWatch records the largest receive window the stack side of l
// advertises in TCP segments it sends, scaled by the window scale of its
// SYN or SYN-ACK (one connection per watch).
type windowWatch struct {
	mu    sync.Mutex
	scale int // -1 until a SYN was seen
	max   int
}

func watchWindows(t *testing.T, l *link.Link) *windowWatch {
	w := &windowWatch{scale: -1}
	remove := l.AddTap(func(dir link.Direction, frame []byte) {
		if dir != link.Outbound {
			return
		}
		p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.NoCopy)
		tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if tcp == nil {
			return
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		if tcp.SYN {
			w.scale = 0
			for _, o := range tcp.Options {
				if o.OptionType == layers.TCPOptionKindWindowScale && len(o.OptionData) == 1 {
					w.scale = int(o.OptionData[0])
				}
			}
			return
		}
		if w.scale >= 0 {
			w.max = max(w.max, int(tcp.Window)<<w.scale)
		}
	})
	t.Cleanup(remove)
	return w
}

func (w *windowWatch) largest() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.max
}

// wantRelayWindow fails unless the relay advertised about half of
// relayReceiveBuffer (gVisor advertises half the free buffer): with
// gVisor's default 1 MiB buffer it advertises 512 KiB at most.
func wantRelayWindow(t *testing.T, w *windowWatch) {
	t.Helper()
	if got, want := w.largest(), relayReceiveBuffer/2*3/4; got < want {
		t.Errorf("largest window advertised to the namespace: %d bytes, want ≥ %d (receive buffer %d)", got, want, relayReceiveBuffer)
	}
}

// TestOutboundRelayWindow: a connection from the namespace is offered
// the relay's large receive window, so a sender is not held back while
// the daemon writes to the host side.
func TestOutboundRelayWindow(t *testing.T) {
	n := newTestNet(t)
	cfg := n.config()
	cfg.AllowHostLoopback = true
	n.start(t, cfg)
	w := watchWindows(t, n.gwLink)
	srv := tcpServer(t, "127.0.0.1:0", echoHandler)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := n.dialTCP(ctx, netip.AddrPortFrom(gw4, srv.Port()))
	if err != nil {
		t.Fatalf("guest connect through the gateway: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	msg := bytes.Repeat([]byte("window"), 16<<10)
	go c.Write(msg)
	if _, err := io.ReadFull(c, make([]byte, len(msg))); err != nil {
		t.Fatalf("read echo: %v", err)
	}
	wantRelayWindow(t, w)
}

// TestForwardRelayWindow: the stack's connection into the namespace for
// a port forward offers the same window.
func TestForwardRelayWindow(t *testing.T) {
	e := newInbEnv(t, nil)
	w := watchWindows(t, e.gw.cfg.Link)
	inbGuestTCPServer(t, e.guest, 8080)
	port := inbFreePort(t, "tcp4", "127.0.0.1")
	f, err := e.gw.AddForward(mustParseForward(t, fmt.Sprintf("127.0.0.1:%d:8080", port)))
	if err != nil {
		t.Fatal(err)
	}
	defer e.gw.RemoveForward(f.ID)
	msg := strings.Repeat("window\n", 16<<10)
	if _, echo := inbTalkTCP(t, net.JoinHostPort("127.0.0.1", fmt.Sprint(port)), msg); echo != msg {
		t.Fatalf("echo of %d bytes: got %d", len(msg), len(echo))
	}
	wantRelayWindow(t, w)
}
