package gateway

import (
	"bufio"
	"bytes"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// resolvConfMaxNS is how many nameserver lines count, as in glibc
// (MAXNS): later ones are ignored.
const resolvConfMaxNS = 3

// resolvConfFallback is the resolver used when resolv.conf is missing or
// lists none, as glibc does.
var resolvConfFallback = []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:53")}

// parseResolvConf returns the nameservers of a resolv.conf(5) file, port
// 53, at most resolvConfMaxNS of them, in order. Lines that are not
// "nameserver ADDR" with a valid IPv4 or IPv6 address (a zone allowed) are
// ignored, as the resolver does; '#' and ';' start comments.
func parseResolvConf(data []byte) []netip.AddrPort {
	var out []netip.AddrPort
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() && len(out) < resolvConfMaxNS {
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		a, err := netip.ParseAddr(f[1])
		if err != nil {
			continue
		}
		out = append(out, netip.AddrPortFrom(a.Unmap(), 53))
	}
	return out
}

// resolvConf is the nameserver list of a resolv.conf file, re-read when
// the file changes (its modification time, size or inode), which is
// checked with a stat on every call. A file modified less than
// resolvConfRacy before it was read is read again on the next call: a
// second write within the file system's timestamp granularity would
// otherwise go unnoticed. A missing or unreadable file, or one without
// nameservers, gives resolvConfFallback.
//
// Locking: mu guards the fields below it.
type resolvConf struct {
	path string

	mu sync.Mutex
	// +checklocks:mu
	stamp fileStamp
	// +checklocks:mu
	readAt time.Time
	// +checklocks:mu
	servers []netip.AddrPort
}

// resolvConfRacy is how recent a modification must be for the cached
// list not to be trusted.
const resolvConfRacy = time.Second

// fileStamp identifies a version of a file; the zero value is "missing".
type fileStamp struct {
	mtime time.Time
	size  int64
	ino   uint64
}

func stampOf(fi os.FileInfo) fileStamp {
	st := fileStamp{mtime: fi.ModTime(), size: fi.Size()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = uint64(sys.Ino)
	}
	return st
}

func newResolvConf(path string) *resolvConf {
	return &resolvConf{path: path, servers: resolvConfFallback}
}

// Servers returns the current nameservers; the caller must not modify the
// slice.
func (r *resolvConf) Servers() []netip.AddrPort {
	r.mu.Lock()
	defer r.mu.Unlock()
	fi, err := os.Stat(r.path)
	if err != nil {
		r.stamp, r.servers = fileStamp{}, resolvConfFallback
		return r.servers
	}
	st := stampOf(fi)
	if st == r.stamp && r.readAt.Sub(st.mtime) >= resolvConfRacy {
		return r.servers
	}
	now := time.Now()
	data, err := os.ReadFile(r.path)
	if err != nil {
		r.stamp, r.servers = fileStamp{}, resolvConfFallback
		return r.servers
	}
	r.stamp, r.readAt = st, now
	r.servers = parseResolvConf(data)
	if len(r.servers) == 0 {
		r.servers = resolvConfFallback
	}
	return r.servers
}
