package registry

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// DefaultCertsDirs are where docker and podman keep per-registry TLS
// files: DIR/HOST[:PORT]/ca.crt (or any *.crt) are CAs trusted besides the
// system's, DIR/HOST/NAME.cert with NAME.key a client certificate.
var DefaultCertsDirs = []string{"/etc/docker/certs.d", "/etc/containers/certs.d"}

// certsDirs are the certs.d roots in force: cfg.CertsDirs, else
// $KILN_CERTS_D (colon-separated), else the defaults.
func (c *Client) certsDirs() []string {
	if len(c.cfg.CertsDirs) > 0 {
		return c.cfg.CertsDirs
	}
	if v := os.Getenv("KILN_CERTS_D"); v != "" {
		return filepath.SplitList(v)
	}
	return DefaultCertsDirs
}

// tlsConfig is the TLS configuration for host: the system pool plus the
// host's CAs, and its client certificates.
func (c *Client) tlsConfig(host string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	var pool *x509.CertPool
	for _, root := range c.certsDirs() {
		dir := filepath.Join(root, host)
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue // no directory for this host: the usual case
		}
		for _, e := range ents {
			p := filepath.Join(dir, e.Name())
			switch {
			case strings.HasSuffix(e.Name(), ".crt"):
				pem, err := os.ReadFile(p)
				if err != nil {
					return nil, fmt.Errorf("registry %s: reading CA %s: %w", host, p, err)
				}
				if pool == nil {
					if pool, err = x509.SystemCertPool(); err != nil || pool == nil {
						pool = x509.NewCertPool()
					}
				}
				if !pool.AppendCertsFromPEM(pem) {
					return nil, fmt.Errorf("registry %s: %s holds no PEM certificate", host, p)
				}
			case strings.HasSuffix(e.Name(), ".cert"):
				key := strings.TrimSuffix(p, ".cert") + ".key"
				pair, err := tls.LoadX509KeyPair(p, key)
				if err != nil {
					return nil, fmt.Errorf("registry %s: client certificate %s (key %s): %w", host, p, key, err)
				}
				cfg.Certificates = append(cfg.Certificates, pair)
			}
		}
	}
	cfg.RootCAs = pool // nil: the system pool
	return cfg, nil
}

// transport is the HTTP transport for host: its TLS files, timeouts, no
// plain HTTP unless the host may have it, Retry-After honoured.
func (c *Client) transport(host string) (http.RoundTripper, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.transports[host]; ok {
		return t, nil
	}
	tc, err := c.tlsConfig(host)
	if err != nil {
		return nil, err
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.TLSClientConfig = tc
	base.ResponseHeaderTimeout = c.timeout()
	t := &guard{c: c, inner: base, stall: c.timeout()}
	if c.transports == nil {
		c.transports = map[string]http.RoundTripper{}
	}
	c.transports[host] = t
	return t, nil
}

// timeout bounds the wait for a response and for the next bytes of a body:
// cfg.Timeout, else $KILN_REGISTRY_TIMEOUT, else a minute.
func (c *Client) timeout() time.Duration {
	if c.cfg.Timeout > 0 {
		return c.cfg.Timeout
	}
	if d, err := time.ParseDuration(os.Getenv("KILN_REGISTRY_TIMEOUT")); err == nil && d > 0 {
		return d
	}
	return time.Minute
}

// maxRetryAfter caps how long a 429's Retry-After makes us wait.
const maxRetryAfter = 30 * time.Second

// guard refuses plain HTTP to hosts that may not have it (go-containerregistry
// falls back to it for private addresses too), waits out a 429's
// Retry-After before the retry layer above tries again, and fails a body
// that stalls.
type guard struct {
	c     *Client
	inner http.RoundTripper
	stall time.Duration
}

func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !g.c.insecure(req.URL.Host) {
		return nil, fmt.Errorf("refusing plain HTTP to %s: only loopback registries and those given with --insecure-registry (or config.json's registry.insecure) may be spoken to without TLS", req.URL.Host)
	}
	resp, err := g.inner.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			wait := min(time.Duration(s)*time.Second, maxRetryAfter)
			select {
			case <-time.After(wait):
			case <-req.Context().Done():
			}
		}
	}
	resp.Body = newStallReader(resp.Body, g.stall)
	return resp, nil
}

var errStalled = errors.New("the registry sent nothing for too long")

// stallReader fails a Read that gets no bytes within d, closing the body
// so the blocked read returns.
type stallReader struct {
	rc    io.ReadCloser
	d     time.Duration
	timer *time.Timer
	fired atomic.Bool
}

func newStallReader(rc io.ReadCloser, d time.Duration) io.ReadCloser {
	s := &stallReader{rc: rc, d: d}
	s.timer = time.AfterFunc(d, func() {
		if s.fired.CompareAndSwap(false, true) {
			rc.Close()
		}
	})
	s.timer.Stop()
	return s
}

func (s *stallReader) Read(p []byte) (int, error) {
	s.timer.Reset(s.d)
	n, err := s.rc.Read(p)
	s.timer.Stop()
	if n == 0 && s.fired.Load() {
		return 0, &net.OpError{Op: "read", Net: "tcp", Err: fmt.Errorf("%w (%s)", errStalled, s.d)}
	}
	return n, err
}

func (s *stallReader) Close() error {
	s.timer.Stop()
	return s.rc.Close()
}
