package testregistry

import (
	"io"
	"net/http"
	"testing"
	"time"
)

func get(t *testing.T, c *http.Client, url, user, pass string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestStart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"plain", Options{}},
		{"auth", Options{User: "alice", Password: "s3cret"}},
		{"tls+auth", Options{User: "alice", Password: "s3cret", TLS: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := Start(t, tc.o)
			c := r.Client()
			anon := get(t, c, r.URL()+"/v2/", "", "")
			want := http.StatusOK
			if tc.o.User != "" {
				want = http.StatusUnauthorized
				if got := get(t, c, r.URL()+"/v2/", "alice", "wrong").StatusCode; got != http.StatusUnauthorized {
					t.Errorf("wrong password: status %d, want 401", got)
				}
				if got := get(t, c, r.URL()+"/v2/", "alice", "s3cret").StatusCode; got != http.StatusOK {
					t.Errorf("right password: status %d, want 200", got)
				}
			}
			if anon.StatusCode != want {
				t.Errorf("anonymous /v2/: status %d, want %d", anon.StatusCode, want)
			}
			if tc.o.TLS {
				if _, err := http.Get(r.URL() + "/v2/"); err == nil {
					t.Error("a client without the CA was not refused")
				}
			}
		})
	}
}

func TestProxyFaults(t *testing.T) {
	t.Parallel()
	r := Start(t, Options{})
	p := StartProxy(t, r)
	c := &http.Client{Timeout: 5 * time.Second}
	p.Add(Rule{Path: "/v2/", Status: http.StatusTooManyRequests, RetryAfter: 1, Times: 1})
	resp := get(t, c, "http://"+p.Host+"/v2/", "", "")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("first request: %d Retry-After %q, want 429 with Retry-After 1", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if got := get(t, c, "http://"+p.Host+"/v2/", "", "").StatusCode; got != http.StatusOK {
		t.Errorf("after the rule ran out: status %d, want 200", got)
	}
	if n := p.Requests(http.MethodGet, "/v2/"); n != 2 {
		t.Errorf("proxy saw %d requests, want 2", n)
	}
}
