package testregistry

import (
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Rule is a fault the proxy injects into the requests it matches.
type Rule struct {
	Method string // "" matches any
	Path   string // a substring of the URL path ("/blobs/"); "" matches any
	// Times is how many matching requests get the fault; 0 is all of them.
	Times int

	Status     int // answer with this status instead of forwarding (500, 429)
	RetryAfter int // seconds, sent with Status (429)
	// Reset forwards the request but resets the connection after half of
	// the response body.
	Reset bool
	// Stall forwards the request but, after half of the body, sends
	// nothing more for this long (or until the client gives up).
	Stall time.Duration

	hits int
}

// Proxy is a plain-HTTP loopback reverse proxy in front of a registry.
type Proxy struct {
	Host string // 127.0.0.1:PORT

	mu    sync.Mutex
	rules []*Rule
	seen  []string // "METHOD PATH?QUERY" of every request, in order
	srv   *http.Server
}

// StartProxy starts a fault proxy for t in front of r (which may serve
// TLS: the proxy trusts its CA). Credentials pass through.
func StartProxy(t testing.TB, r *Registry) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target, _ := url.Parse(r.URL())
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = r.Client().Transport
	rp.ErrorLog = log.New(io.Discard, "", 0)
	p := &Proxy{Host: l.Addr().String()}
	p.srv = &http.Server{Handler: p.handler(rp), ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = p.srv.Serve(l) }()
	t.Cleanup(func() { p.srv.Close() })
	return p
}

// Add installs a rule; the first rule that matches a request (and has
// hits left) applies.
func (p *Proxy) Add(r Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = append(p.rules, &r)
}

// Clear removes every rule.
func (p *Proxy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = nil
}

// Requests is how many requests had method (any if "") and a path (with
// its query) containing path.
func (p *Proxy) Requests(method, path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, s := range p.seen {
		m, u, _ := strings.Cut(s, " ")
		if (method == "" || m == method) && strings.Contains(u, path) {
			n++
		}
	}
	return n
}

func (p *Proxy) match(req *http.Request) *Rule {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen = append(p.seen, req.Method+" "+req.URL.RequestURI())
	for _, r := range p.rules {
		if (r.Method == "" || r.Method == req.Method) && strings.Contains(req.URL.Path, r.Path) && (r.Times == 0 || r.hits < r.Times) {
			r.hits++
			c := *r
			return &c
		}
	}
	return nil
}

func (p *Proxy) handler(rp *httputil.ReverseProxy) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rule := p.match(req)
		switch {
		case rule == nil:
			rp.ServeHTTP(w, req)
		case rule.Status != 0:
			if rule.RetryAfter > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(rule.RetryAfter))
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(rule.Status)
			_, _ = io.WriteString(w, `{"errors":[{"code":"UNKNOWN","message":"injected by the fault proxy"}]}`)
		default:
			rp.ServeHTTP(&breakingWriter{ResponseWriter: w, rule: rule, ctx: req}, req)
		}
	})
}

// breakingWriter passes the response on until half of its body, then
// resets the connection or stalls.
type breakingWriter struct {
	http.ResponseWriter
	rule    *Rule
	ctx     *http.Request
	limit   int64
	written int64
	broken  bool
}

func (b *breakingWriter) WriteHeader(code int) {
	n, _ := strconv.ParseInt(b.Header().Get("Content-Length"), 10, 64)
	b.limit = n / 2
	b.ResponseWriter.WriteHeader(code)
}

var errBroken = errors.New("connection broken by the fault proxy")

func (b *breakingWriter) Write(p []byte) (int, error) {
	if b.broken {
		return 0, errBroken
	}
	if room := b.limit - b.written; int64(len(p)) > room {
		n, _ := b.ResponseWriter.Write(p[:max(room, 0)])
		b.written += int64(n)
		b.cut()
		return n, errBroken
	}
	n, err := b.ResponseWriter.Write(p)
	b.written += int64(n)
	return n, err
}

func (b *breakingWriter) cut() {
	b.broken = true
	if f, ok := b.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
	if b.rule.Stall > 0 {
		select {
		case <-time.After(b.rule.Stall):
		case <-b.ctx.Context().Done():
		}
	}
	hj, ok := b.ResponseWriter.(http.Hijacker)
	if !ok {
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // close with a RST, not a FIN
	}
	conn.Close()
}
