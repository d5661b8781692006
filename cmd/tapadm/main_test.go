package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapstack/tapstack/ctl"
)

func TestPrintError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{
			name: "daemon refusal",
			err:  refuse("SIOCSLIFADDR", ctl.EADDRNOTAVAIL, "10.0.0.1 is already up on tap1"),
			want: "tapadm: SIOCSLIFADDR: EADDRNOTAVAIL: 10.0.0.1 is already up on tap1\n",
		},
		{
			name: "usage error with the command's synopsis",
			err:  usagef("netstat", "unsupported option -i"),
			want: "tapadm: netstat: unsupported option -i\nusage:\n" + netstatUsage,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			printError(&b, tt.err)
			if d := diff(tt.want, b.String()); d != "" {
				t.Errorf("printError (-want +got):\n%s", d)
			}
		})
	}
}

func TestRunHelpAndUsage(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), args, &stdout, &stderr); err != nil {
			t.Errorf("run %v: %v", args, err)
		}
		if !strings.HasPrefix(stdout.String(), "usage: tapadm") {
			t.Errorf("run %v printed %q, want the usage", args, stdout.String())
		}
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "no command given"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"--bogus"}, "flag provided but not defined: -bogus"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), tt.args, &stdout, &stderr)
		if d := diff(tt.want, errString(err)); d != "" {
			t.Errorf("run %v error (-want +got):\n%s", tt.args, d)
		}
	}
}

func TestRunNoDaemon(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "absent.sock")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"--ctl", sock, "ifconfig", "-a"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "connect to tapstackd at "+sock) {
		t.Errorf("got %v, want a connection error naming %s", err, sock)
	}
}

// TestRunOverSocket drives tapadm through the real ctl.Client against a
// stand-in daemon on a unix socket, checking the requests' wire form and the
// error path end to end.
func TestRunOverSocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "tapadm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "ctl.sock") // short: sun_path is 108 bytes
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatalf("listen on a unix socket: %v", err)
	}
	t.Cleanup(func() { ln.Close() })

	got := make(chan []ctl.Request, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer conn.Close()
		var reqs []ctl.Request
		sc := bufio.NewScanner(conn)
		enc := json.NewEncoder(conn)
		for sc.Scan() {
			var req ctl.Request
			if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
				break
			}
			reqs = append(reqs, req)
			resp := ctl.Response{ID: req.ID}
			switch req.Op {
			case "SIOCGLIFFLAGS":
				resp.Result = json.RawMessage(`{"lifr_name":"tap0","lifr_flags":16779266}`)
			case "SIOCSLIFFLAGS":
				resp.Errno, resp.Message = "EADDRNOTAVAIL", "10.0.0.1 is already up on tap1"
			}
			if err := enc.Encode(&resp); err != nil {
				break
			}
		}
		got <- reqs
	}()

	var stdout, stderr bytes.Buffer
	err = run(context.Background(), []string{"--ctl", sock, "ifconfig", "tap0", "10.0.0.1/24", "up"}, &stdout, &stderr)
	var b bytes.Buffer
	printError(&b, err)
	if d := diff("tapadm: SIOCSLIFFLAGS: EADDRNOTAVAIL: 10.0.0.1 is already up on tap1\n", b.String()); d != "" {
		t.Errorf("error output (-want +got):\n%s", d)
	}
	reqs := <-got
	var lines []string
	for _, r := range reqs {
		lines = append(lines, r.Op+" "+string(r.Family)+" "+string(r.Args))
	}
	want := []string{
		`SIOCSLIFNETMASK inet {"lifr_name":"tap0","lifr_addr":"255.255.255.0"}`,
		`SIOCSLIFADDR inet {"lifr_name":"tap0","lifr_addr":"10.0.0.1"}`,
		`SIOCGLIFFLAGS inet {"lifr_name":"tap0"}`,
		`SIOCSLIFFLAGS inet {"lifr_name":"tap0","lifr_flags":16779267}`,
	}
	if d := diff(want, lines); d != "" {
		t.Errorf("requests on the wire (-want +got):\n%s", d)
	}
}
