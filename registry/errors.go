package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Kind is what went wrong talking to a registry, as far as the user can
// act on it.
type Kind string

const (
	Unauthorized Kind = "unauthorized" // no or wrong credentials (401)
	Denied       Kind = "denied"       // credentials that may not do this (403)
	NotFound     Kind = "notfound"     // no such repository, tag or digest
	Unreachable  Kind = "unreachable"  // connection, DNS, TLS or timeout
	Failed       Kind = "failed"       // the registry kept failing (5xx, 429) or broke the protocol
)

// Error is a failed pull, push or login: which registry, which reference,
// what kind of failure, and (in its message) what to do about it.
type Error struct {
	Op       string // "pull", "push", "login"
	Registry string // host[:port]
	Ref      string // the reference as given, or the registry for login
	Kind     Kind
	Err      error
}

func (e *Error) Error() string {
	what := fmt.Sprintf("%s %s", e.Op, e.Ref)
	switch e.Kind {
	case Unauthorized:
		return fmt.Sprintf("%s: registry %s requires authentication, or the credentials kiln sent were refused; run `kiln login %s` (%v)", what, e.Registry, e.Registry, e.Err)
	case Denied:
		return fmt.Sprintf("%s: registry %s denied access: the account may not %s this repository; check the name, or run `kiln login %s` with an account that may (%v)", what, e.Registry, e.Op, e.Registry, e.Err)
	case NotFound:
		return fmt.Sprintf("%s: not found on registry %s: check the repository name and the tag or digest (%v)", what, e.Registry, e.Err)
	case Unreachable:
		hint := fmt.Sprintf("check the host and port, and its TLS certificate (a CA goes in /etc/docker/certs.d/%s/ca.crt)", e.Registry)
		if !isLoopback(e.Registry) {
			hint += fmt.Sprintf(", or allow plain HTTP with --insecure-registry %s", e.Registry)
		}
		return fmt.Sprintf("%s: cannot reach registry %s: %v; %s", what, e.Registry, e.Err, hint)
	}
	var te *transport.Error
	if errors.As(e.Err, &te) {
		return fmt.Sprintf("%s: registry %s kept failing (HTTP %d %s) after retries; try again later: %v", what, e.Registry, te.StatusCode, http.StatusText(te.StatusCode), e.Err)
	}
	return fmt.Sprintf("%s: registry %s: %v", what, e.Registry, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// wrapError classifies err, a failure of op on ref at registry reg. nil
// stays nil; a context cancellation is returned as it is.
func wrapError(op, reg, ref string, err error) error {
	if err == nil {
		return nil
	}
	var (
		re *Error
		pe *PlatformError
	)
	if errors.As(err, &re) || errors.As(err, &pe) || errors.Is(err, context.Canceled) {
		return err
	}
	return &Error{Op: op, Registry: reg, Ref: ref, Kind: kindOf(err), Err: err}
}

// kindOf sorts an error of go-containerregistry or net/http.
func kindOf(err error) Kind {
	// TLS first: a loopback registry is also tried over plain HTTP, whose
	// answer (400 from a TLS port) would hide why HTTPS failed.
	var (
		ce  *tls.CertificateVerificationError
		ua  x509.UnknownAuthorityError
		hce x509.HostnameError
	)
	if errors.As(err, &ce) || errors.As(err, &ua) || errors.As(err, &hce) {
		return Unreachable
	}
	var te *transport.Error
	if errors.As(err, &te) {
		for _, d := range te.Errors {
			switch d.Code {
			case transport.UnauthorizedErrorCode:
				return Unauthorized
			case transport.DeniedErrorCode:
				return Denied
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
				return NotFound
			}
		}
		switch te.StatusCode {
		case http.StatusUnauthorized:
			return Unauthorized
		case http.StatusForbidden:
			return Denied
		case http.StatusNotFound:
			return NotFound
		}
		return Failed
	}
	// net/http's error for a plain-HTTP server asked for HTTPS has no type
	// (after the statuses: a loopback registry's answer over HTTP wins).
	if strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		return Unreachable
	}
	var (
		ne net.Error
		oe *net.OpError
		de *net.DNSError
		rh tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &oe), errors.As(err, &de), errors.As(err, &rh),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, errStalled):
		return Unreachable
	case errors.As(err, &ne) && ne.Timeout():
		return Unreachable
	}
	return Failed
}

// Retryable reports whether err, met while reading a blob's body, is worth
// another try: the connection broke, stalled or timed out. A registry's
// error status is not: go-containerregistry has retried those already.
func Retryable(err error) bool {
	var te *transport.Error
	if err == nil || errors.As(err, &te) || errors.Is(err, context.Canceled) {
		return false
	}
	return kindOf(err) == Unreachable || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
