// Package ctl defines tapstack's control protocol: the wire types of the
// request table (named after the if_tcp(7P) requests and their lifreq
// fields), the errno-carrying error type, the interface flag names, and a Go
// client for the daemon's control socket.
//
// ctl is a leaf: it imports none of tapstack's packages and no gVisor
// package, so tapadm and scripts that link it stay small.
package ctl

import (
	"errors"
	"fmt"
	"syscall"
)

// Errno is a POSIX error number as the illumos interface layer returns it.
// EBADADDR is illumos-specific and has no Linux value; it gets one outside
// the Linux range so it never collides.
type Errno syscall.Errno

// The errno values ifmgr and the link layer return.
const (
	EPERM         = Errno(syscall.EPERM)
	ENOENT        = Errno(syscall.ENOENT)
	ESRCH         = Errno(syscall.ESRCH)
	ENXIO         = Errno(syscall.ENXIO)
	EAGAIN        = Errno(syscall.EAGAIN)
	ENOMEM        = Errno(syscall.ENOMEM)
	EACCES        = Errno(syscall.EACCES)
	EBUSY         = Errno(syscall.EBUSY)
	EEXIST        = Errno(syscall.EEXIST)
	ENODEV        = Errno(syscall.ENODEV)
	EINVAL        = Errno(syscall.EINVAL)
	ENOSPC        = Errno(syscall.ENOSPC)
	ERANGE        = Errno(syscall.ERANGE)
	ENAMETOOLONG  = Errno(syscall.ENAMETOOLONG)
	EPROTO        = Errno(syscall.EPROTO)
	ENOTSUP       = Errno(syscall.ENOTSUP)
	EPFNOSUPPORT  = Errno(syscall.EPFNOSUPPORT)
	EAFNOSUPPORT  = Errno(syscall.EAFNOSUPPORT)
	EADDRINUSE    = Errno(syscall.EADDRINUSE)
	EADDRNOTAVAIL = Errno(syscall.EADDRNOTAVAIL)
	ENETDOWN      = Errno(syscall.ENETDOWN)
	ENETUNREACH   = Errno(syscall.ENETUNREACH)
	ENOBUFS       = Errno(syscall.ENOBUFS)
	EALREADY      = Errno(syscall.EALREADY)
	EINPROGRESS   = Errno(syscall.EINPROGRESS)
	ETIMEDOUT     = Errno(syscall.ETIMEDOUT)
	EBADADDR      = Errno(4096 + 1) // illumos only; see spec Appendix B8
)

var errnoNames = map[Errno]string{
	EPERM: "EPERM", ENOENT: "ENOENT", ESRCH: "ESRCH", ENXIO: "ENXIO",
	EAGAIN: "EAGAIN", ENOMEM: "ENOMEM", EACCES: "EACCES", EBUSY: "EBUSY",
	EEXIST: "EEXIST", ENODEV: "ENODEV", EINVAL: "EINVAL", ENOSPC: "ENOSPC",
	ERANGE: "ERANGE", ENAMETOOLONG: "ENAMETOOLONG", EPROTO: "EPROTO",
	ENOTSUP: "ENOTSUP", EPFNOSUPPORT: "EPFNOSUPPORT", EAFNOSUPPORT: "EAFNOSUPPORT",
	EADDRINUSE: "EADDRINUSE", EADDRNOTAVAIL: "EADDRNOTAVAIL", ENETDOWN: "ENETDOWN",
	ENETUNREACH: "ENETUNREACH", ENOBUFS: "ENOBUFS", EALREADY: "EALREADY",
	EINPROGRESS: "EINPROGRESS", ETIMEDOUT: "ETIMEDOUT", EBADADDR: "EBADADDR",
}

// String returns the symbolic name ("EINVAL").
func (e Errno) String() string {
	if n, ok := errnoNames[e]; ok {
		return n
	}
	return fmt.Sprintf("errno %d", int(e))
}

// Error makes an Errno usable as a plain error.
func (e Errno) Error() string { return e.String() }

// ParseErrno returns the Errno with the given symbolic name.
func ParseErrno(name string) (Errno, bool) {
	for e, n := range errnoNames {
		if n == name {
			return e, true
		}
	}
	return 0, false
}

// Error is a failed request: the errno the spec names and a message that
// says what was wrong. Request is the request's if_tcp(7P) name when known.
type Error struct {
	Request string `json:"request,omitempty"`
	Errno   Errno  `json:"-"`
	Msg     string `json:"message"`
}

func (e *Error) Error() string {
	if e.Request != "" {
		return fmt.Sprintf("%s: %s: %s", e.Request, e.Errno, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Errno, e.Msg)
}

// Is lets errors.Is(err, ctl.EINVAL) match.
func (e *Error) Is(target error) bool {
	t, ok := target.(Errno)
	return ok && t == e.Errno
}

// Errorf returns an *Error with errno e and a formatted message.
func Errorf(e Errno, format string, args ...any) *Error {
	return &Error{Errno: e, Msg: fmt.Sprintf(format, args...)}
}

// ErrnoOf returns the errno carried by err, or 0 if it carries none.
func ErrnoOf(err error) Errno {
	var ce *Error
	if errors.As(err, &ce) {
		return ce.Errno
	}
	var e Errno
	if errors.As(err, &e) {
		return e
	}
	var se syscall.Errno
	if errors.As(err, &se) {
		return Errno(se)
	}
	return 0
}
