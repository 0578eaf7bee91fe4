package registry

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func httptestServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestTLSCertsDir pulls from a TLS registry whose CA is only in a certs.d
// directory: trusted with it, refused without it.
func TestTLSCertsDir(t *testing.T) {
	dir := isolate(t)
	srv := httptest.NewUnstartedServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "https://")
	// Seed it through a client that trusts the server.
	seedClient := New(Config{})
	seedClient.transports = map[string]http.RoundTripper{host: srv.Client().Transport}
	img := randomImage(t)
	if err := seedClient.Write(ctx, mustRef(t, seedClient, host+"/app:1"), img); err != nil {
		t.Fatal(err)
	}

	c := New(Config{Retries: -1})
	_, err := c.Image(ctx, mustRef(t, c, host+"/app:1"), linux)
	var re *Error
	if !errors.As(err, &re) {
		t.Fatalf("without the CA: got %v, want a *Error", err)
	}

	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	writeFile(t, filepath.Join(dir, "certs.d", host, "ca.crt"), string(ca))
	c = New(Config{})
	got, err := c.Image(ctx, mustRef(t, c, host+"/app:1"), linux)
	if err != nil {
		t.Fatalf("with the CA in certs.d: %v", err)
	}
	if gd, _ := got.Digest(); gd != digestOf(t, img) {
		t.Error("wrong image")
	}

	// A broken file in certs.d is an error, not a silent fallback.
	writeFile(t, filepath.Join(dir, "certs.d", host, "bad.crt"), "not a certificate")
	c = New(Config{})
	if _, err := c.Image(ctx, mustRef(t, c, host+"/app:1"), linux); err == nil || !strings.Contains(err.Error(), "bad.crt") {
		t.Errorf("unusable CA file: got %v, want an error naming it", err)
	}
	os.Remove(filepath.Join(dir, "certs.d", host, "bad.crt"))
}

// FuzzParseAuths: whatever the credentials file holds, parsing never
// panics, keys come out normalized, and credentials written back in the
// form kiln login writes parse to the same user and password.
func FuzzParseAuths(f *testing.F) {
	f.Add([]byte(`{"auths":{"https://index.docker.io/v1/":{"auth":"` + b64("u:p") + `"}}}`))
	f.Add([]byte(`{"auths":{"reg:5000":{"username":"u","password":"p:q"}},"credsStore":"pass"}`))
	f.Add([]byte(`{"auths":{"x":{"auth":"!!"}}}`))
	f.Add([]byte(`{"auths":{"x":{"auth":"` + b64("nocolon") + `"}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		auths, err := ParseAuths(b)
		if err != nil {
			return
		}
		back := map[string]map[string]map[string]string{"auths": {}}
		for k, a := range auths {
			if k != normalizeKey(k) {
				t.Errorf("key %q is not normalized", k)
			}
			if strings.Contains(a.Username, ":") {
				continue // not representable as base64(user:password)
			}
			back["auths"][k] = map[string]string{"auth": b64(a.Username + ":" + a.Password)}
		}
		raw, err := json.Marshal(back)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseAuths(raw)
		if err != nil {
			t.Fatalf("re-parsing %s: %v", raw, err)
		}
		for k, a := range again {
			if o := auths[k]; o.Username != a.Username || o.Password != a.Password {
				t.Errorf("%s: %q:%q became %q:%q", k, o.Username, o.Password, a.Username, a.Password)
			}
		}
	})
}

// TestTLSClientCert: a registry that requires a client certificate gets
// the NAME.cert/NAME.key pair of its certs.d directory.
func TestTLSClientCert(t *testing.T) {
	dir := isolate(t)
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "client CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kiln"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	srv := httptest.NewUnstartedServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "https://")
	certs := filepath.Join(dir, "certs.d", host)
	writeFile(t, filepath.Join(certs, "ca.crt"), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})))

	c := New(Config{Retries: -1})
	if err := c.Write(ctx, mustRef(t, c, host+"/app:1"), randomImage(t)); err == nil {
		t.Fatal("a push without the client certificate was accepted")
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	writeFile(t, filepath.Join(certs, "client.cert"), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, filepath.Join(certs, "client.key"), string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
	c = New(Config{})
	img := randomImage(t)
	if err := c.Write(ctx, mustRef(t, c, host+"/app:1"), img); err != nil {
		t.Fatalf("push with the client certificate: %v", err)
	}
	got, err := c.Image(ctx, mustRef(t, c, host+"/app:1"), linux)
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(t, got) != digestOf(t, img) {
		t.Error("wrong image")
	}
}
