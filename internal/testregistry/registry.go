package testregistry

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Options say what registry to start.
type Options struct {
	// User and Password, if set, make the registry require them (htpasswd
	// basic auth, bcrypt).
	User, Password string
	// TLS serves HTTPS with a certificate for its address signed by a CA
	// made for this registry (Registry.CAFile, Registry.CertsDir).
	TLS bool
	// IP is the address to listen on; "" is 127.0.0.1. (NonLoopbackIP
	// finds one that is not loopback, for tests of plain-HTTP rules.)
	IP string
}

// Registry is a running docker-registry.
type Registry struct {
	Host     string // IP:PORT (127.0.0.1 unless Options.IP)
	Dir      string // its storage root
	User     string // as in Options
	Password string
	// CAFile is the PEM of the CA that signed the registry's certificate,
	// CertsDir a certs.d root holding Host/ca.crt (TLS only).
	CAFile, CertsDir string

	cmd  *exec.Cmd
	logs *syncBuffer
}

// Binary is the registry server the package runs.
const Binary = "/usr/bin/docker-registry"

// Start starts a registry for t, or skips t if it cannot (docker-registry
// or htpasswd missing); it fails t if the registry does not come up.
func Start(t testing.TB, o Options) *Registry {
	t.Helper()
	if _, err := os.Stat(Binary); err != nil {
		t.Skipf("no %s (Debian package docker-registry): %v", Binary, err)
	}
	dir := t.TempDir()
	r := &Registry{Dir: filepath.Join(dir, "storage"), User: o.User, Password: o.Password}
	var auth, tlsConf string
	if o.User != "" {
		htpasswd, err := exec.LookPath("htpasswd")
		if err != nil {
			t.Skipf("no htpasswd (Debian package apache2-utils): %v", err)
		}
		out, err := exec.Command(htpasswd, "-Bbn", o.User, o.Password).Output()
		if err != nil {
			t.Fatalf("htpasswd: %v", err)
		}
		file := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(file, bytes.TrimSpace(out), 0o600); err != nil {
			t.Fatal(err)
		}
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: kiln-test\n    path: %s\n", file)
	}
	for try := 0; ; try++ {
		ip := o.IP
		if ip == "" {
			ip = "127.0.0.1"
		}
		port, err := freePort(ip)
		if err != nil {
			t.Fatal(err)
		}
		r.Host = net.JoinHostPort(ip, fmt.Sprint(port))
		if o.TLS {
			ca, cert, key, err := makeCerts(dir, r.Host)
			if err != nil {
				t.Fatal(err)
			}
			r.CAFile = ca
			r.CertsDir = filepath.Join(dir, "certs.d")
			if err := os.MkdirAll(filepath.Join(r.CertsDir, r.Host), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := copyFile(ca, filepath.Join(r.CertsDir, r.Host, "ca.crt")); err != nil {
				t.Fatal(err)
			}
			tlsConf = fmt.Sprintf("  tls:\n    certificate: %s\n    key: %s\n", cert, key)
		}
		config := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  relativeurls: true
%s%s`, r.Dir, r.Host, tlsConf, auth)
		cfgFile := filepath.Join(dir, "config.yml")
		if err := os.WriteFile(cfgFile, []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
		err = r.start(cfgFile)
		if err == nil {
			break
		}
		if try == 3 {
			t.Fatalf("starting docker-registry: %v\n%s", err, r.logs.String())
		}
	}
	t.Cleanup(r.stop)
	return r
}

func (r *Registry) start(cfgFile string) error {
	r.logs = &syncBuffer{}
	r.cmd = exec.Command(Binary, "serve", cfgFile)
	r.cmd.Stdout, r.cmd.Stderr = r.logs, r.logs
	if err := r.cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- r.cmd.Wait() }()
	client := r.Client()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("docker-registry exited: %v", err)
		default:
		}
		resp, err := client.Get(r.URL() + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil // the Wait above reaps it once stop kills it
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = r.cmd.Process.Kill()
	<-exited
	return fmt.Errorf("docker-registry did not answer on %s within 15s", r.Host)
}

func (r *Registry) stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
	}
}

// URL is the registry's base URL (https:// when it serves TLS).
func (r *Registry) URL() string {
	if r.CAFile != "" {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// Client is an HTTP client that trusts the registry's CA.
func (r *Registry) Client() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if r.CAFile != "" {
		pool := x509.NewCertPool()
		if pem, err := os.ReadFile(r.CAFile); err == nil {
			pool.AppendCertsFromPEM(pem)
		}
		t.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	return &http.Client{Transport: t, Timeout: 10 * time.Second}
}

// AuthFile writes a docker config.json (also podman's auth.json format)
// holding the registry's credentials into dir and returns its path.
func (r *Registry) AuthFile(t testing.TB, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "config.json")
	b := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, r.Host, basicAuth(r.User, r.Password))
	if err := os.WriteFile(p, []byte(b), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// NonLoopbackIP is an IPv4 address of this machine that is not loopback,
// or "" if it has none.
func NonLoopbackIP() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	return ""
}

func freePort(ip string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}

// syncBuffer is a bytes.Buffer safe for the process's writes and the
// test's reads at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.TrimSpace(s.b.String())
}
