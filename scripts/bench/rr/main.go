// Command rr measures TCP request/response latency and connection rate
// for scripts/bench.
//
//	rr server ADDR            answer every byte with itself, any number of connections
//	rr client ADDR [-n N]     1-byte ping-pong over one connection; prints p50/p99 in µs
//	rr connect ADDR [-d D]    connect, 1 byte each way, close, for D; prints connections/s
//
// client and connect print one JSON object on stdout. The server is an
// echo server, so an RFC 862 echo service (port 7) works as well.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "rr:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 {
		return errors.New("usage: rr server|client|connect ADDR [-n N] [-d DURATION]")
	}
	mode, addr := args[0], args[1]
	fs := flag.NewFlagSet("rr", flag.ContinueOnError)
	n := fs.Int("n", 10000, "requests (client)")
	d := fs.Duration("d", 3*time.Second, "duration (connect)")
	if err := fs.Parse(args[2:]); err != nil {
		return err
	}
	switch mode {
	case "server":
		return serve(addr)
	case "client":
		return client(addr, *n)
	case "connect":
		return connect(addr, *d)
	}
	return fmt.Errorf("unknown mode %q", mode)
}

func serve(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			io.Copy(c, c)
		}()
	}
}

func client(addr string, n int) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	lat := make([]time.Duration, 0, n)
	b := []byte{'x'}
	for range n {
		t := time.Now()
		if err := pingPong(c, b); err != nil {
			return err
		}
		lat = append(lat, time.Since(t))
	}
	slices.Sort(lat)
	us := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / 1e3 }
	return json.NewEncoder(os.Stdout).Encode(map[string]float64{"p50_us": us(0.50), "p99_us": us(0.99)})
}

func connect(addr string, d time.Duration) error {
	b := []byte{'x'}
	start := time.Now()
	n := 0
	for time.Since(start) < d {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return err
		}
		err = pingPong(c, b)
		c.Close()
		if err != nil {
			return err
		}
		n++
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]float64{"conn_per_s": float64(n) / time.Since(start).Seconds()})
}

// pingPong writes b and reads len(b) bytes back.
func pingPong(c net.Conn, b []byte) error {
	if _, err := c.Write(b); err != nil {
		return err
	}
	_, err := io.ReadFull(c, b)
	return err
}
