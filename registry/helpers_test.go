package registry

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// isolate points every credentials file kiln reads at a fresh directory.
func isolate(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("HOME", dir)
	t.Setenv("DOCKER_CONFIG", dir+"/docker")
	t.Setenv("REGISTRY_AUTH_FILE", "")
	t.Setenv("XDG_RUNTIME_DIR", dir+"/run")
	t.Setenv("XDG_CONFIG_HOME", dir+"/config")
	t.Setenv("KILN_CERTS_D", dir+"/certs.d")
	return dir
}

// server is go-containerregistry's in-process registry, optionally behind
// basic or token (Bearer) auth for user:password.
type server struct {
	*httptest.Server
	host     string
	requests atomic.Int64
	mu       sync.Mutex
	seen     []string     // "METHOD path?query"
	fail     atomic.Int64 // answer this many next requests with 500
}

func newServer(t *testing.T, auth, user, password string) *server {
	t.Helper()
	s := &server{}
	reg := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	const token = "tok-kiln-test"
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		s.mu.Lock()
		s.seen = append(s.seen, r.Method+" "+r.URL.RequestURI())
		s.mu.Unlock()
		if s.fail.Load() > 0 {
			s.fail.Add(-1)
			http.Error(w, "injected", http.StatusInternalServerError)
			return
		}
		u, p, ok := r.BasicAuth()
		good := ok && u == user && p == password
		switch auth {
		case "basic":
			if !good {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
				return
			}
		case "bearer":
			if r.URL.Path == "/token" {
				if !good {
					http.Error(w, "bad credentials", http.StatusUnauthorized)
					return
				}
				_, _ = io.WriteString(w, `{"token":"`+token+`"}`)
				return
			}
			if r.Header.Get("Authorization") != "Bearer "+token {
				w.Header().Set("WWW-Authenticate", `Bearer realm="http://`+r.Host+`/token",service="test"`)
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
				return
			}
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	s.host = strings.TrimPrefix(s.URL, "http://")
	return s
}

// seed pushes a random image to host/repo:tag with user:password and
// returns it.
func seed(t *testing.T, host, repo, user, password string) v1.Image {
	t.Helper()
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host+"/"+repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	opts := []remote.Option{}
	if user != "" {
		opts = append(opts, remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: user, Password: password})))
	}
	if err := remote.Write(ref, img, opts...); err != nil {
		t.Fatal(err)
	}
	return img
}

func mustRef(t *testing.T, c *Client, s string) name.Reference {
	t.Helper()
	r, err := c.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var ctx = context.Background()

var linux = v1.Platform{OS: "linux", Architecture: "amd64"}

func randomImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func digestOf(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// count is how many requests so far had method and contained part.
func (s *server) count(method, part string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.seen {
		if strings.HasPrefix(r, method+" ") && strings.Contains(r, part) {
			n++
		}
	}
	return n
}
