package gateway

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tapstack/tapstack/internal/netnstest"
)

// inbRun runs a command in the test's own namespace and fails the test
// if it fails.
func inbRun(t *testing.T, args ...string) string {
	t.Helper()
	path, err := netnstest.LookCmd(args[0])
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), netnstest.ExecTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// inbClientNetns creates a client namespace joined to the test's own
// namespace by a veth pair on a random 10.200.X.0/24: the test's end is
// 10.200.X.1, the client's 10.200.X.2. The pair and the namespace are
// removed when the test ends, whether it passed or not. Traffic stays
// between the two namespaces.
func inbClientNetns(t *testing.T) (ns string, hostAddr, clientAddr netip.Addr) {
	t.Helper()
	netnstest.Require(t)
	if _, err := netnstest.LookCmd("socat"); err != nil {
		t.Fatalf("%v (make deps installs socat)", err)
	}
	ns = netnstest.NewNetns(t)
	x := byte(rand.IntN(250) + 1)
	hostAddr = netip.AddrFrom4([4]byte{10, 200, x, 1})
	clientAddr = netip.AddrFrom4([4]byte{10, 200, x, 2})
	hostIf, peerIf := netnstest.UniqueName("fwh"), netnstest.UniqueName("fwc")
	inbRun(t, "ip", "link", "add", hostIf, "type", "veth", "peer", "name", peerIf, "netns", ns)
	t.Cleanup(func() {
		// Deleting one end deletes both; the namespace's deletion would
		// too, so a failure here is only reported.
		path, _ := netnstest.LookCmd("ip")
		if out, err := exec.Command(path, "link", "del", hostIf).CombinedOutput(); err != nil && !strings.Contains(string(out), "Cannot find device") {
			t.Logf("ip link del %s: %v\n%s", hostIf, err, out)
		}
	})
	inbRun(t, "ip", "addr", "add", hostAddr.String()+"/24", "dev", hostIf)
	inbRun(t, "ip", "link", "set", hostIf, "up")
	inbRun(t, "ip", "-n", ns, "addr", "add", clientAddr.String()+"/24", "dev", peerIf)
	inbRun(t, "ip", "-n", ns, "link", "set", peerIf, "up")
	// Wait for the link (and the kernel's address) to be usable.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := netnstest.Exec(t, ns, "ping", "-c1", "-W1", hostAddr.String()); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s cannot reach %s over the veth pair", ns, hostAddr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return ns, hostAddr, clientAddr
}

// TestForwardRealClientAddress connects through a forward from a client in
// another namespace (a real, non-loopback address): the server in the
// guest sees the client's own address and port, or the gateway address
// with MasqueradeForwards. TCP and UDP.
func TestForwardRealClientAddress(t *testing.T) {
	ns, hostAddr, clientAddr := inbClientNetns(t)
	for _, tc := range []struct {
		name string
		masq bool
		want netip.Addr
	}{
		{"real address", false, clientAddr},
		{"MasqueradeForwards", true, DefaultGatewayV4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newInbEnv(t, func(c *Config) { c.MasqueradeForwards = tc.masq })
			seen := inbGuestTCPServer(t, e.guest, 8080)
			inbGuestUDPServer(t, e.guest, 5353)

			t.Run("TCP", func(t *testing.T) {
				port := inbFreePort(t, "tcp4", hostAddr.String())
				if _, err := e.gw.AddForward(mustParseForward(t, fmt.Sprintf("%s:%d:8080", hostAddr, port))); err != nil {
					t.Fatal(err)
				}
				// socat sends "hello", half-closes, and prints what comes
				// back until the server closes.
				out, err := netnstest.Exec(t, ns, "sh", "-c",
					fmt.Sprintf("printf hello | socat -t 10 -T 10 - TCP4:%s:%d", hostAddr, port))
				if err != nil {
					t.Fatalf("socat: %v\n%s", err, out)
				}
				var peer netip.AddrPort
				select {
				case peer = <-seen:
				case <-time.After(5 * time.Second):
					t.Fatal("the guest server saw no connection")
				}
				if peer.Addr() != tc.want {
					t.Errorf("the guest saw %s, want %s", peer, tc.want)
				}
				if want := fmt.Sprintf("from %s\nhello", peer); out != want {
					t.Errorf("the client got %q, want %q", out, want)
				}
			})

			t.Run("UDP", func(t *testing.T) {
				port := inbFreePort(t, "udp4", hostAddr.String())
				// On the wildcard address: the reply must come from the
				// address the client sent to.
				if _, err := e.gw.AddForward(mustParseForward(t, fmt.Sprintf("%d:5353/udp", port))); err != nil {
					t.Fatal(err)
				}
				out, err := netnstest.Exec(t, ns, "sh", "-c",
					fmt.Sprintf("printf ping | socat -t 2 - UDP4:%s:%d", hostAddr, port))
				if err != nil {
					t.Fatalf("socat: %v\n%s", err, out)
				}
				f := strings.Fields(out)
				if len(f) != 3 || f[0] != "from" || f[2] != "ping" {
					t.Fatalf("the client got %q, want \"from ADDR:PORT ping\"", out)
				}
				peer, err := netip.ParseAddrPort(f[1])
				if err != nil {
					t.Fatal(err)
				}
				if peer.Addr() != tc.want {
					t.Errorf("the guest saw %s, want %s", peer, tc.want)
				}
			})
		})
	}
}
