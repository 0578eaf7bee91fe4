package registry

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func authJSON(host, user, password string) string {
	b, _ := json.Marshal(map[string]any{"auths": map[string]any{host: map[string]string{"auth": b64(user + ":" + password)}}})
	return string(b)
}

// TestCredentialSources pulls from registries that require basic and
// token auth, with the credentials in each file docker and podman read.
func TestCredentialSources(t *testing.T) {
	for _, auth := range []string{"basic", "bearer"} {
		for _, src := range []string{"none", "docker", "registry-auth-file", "xdg-runtime", "xdg-config", "docker-wins"} {
			t.Run(auth+"/"+src, func(t *testing.T) {
				dir := isolate(t)
				s := newServer(t, auth, "alice", "s3cret")
				want := seed(t, s.host, "private/base:1", "alice", "s3cret")
				good, bad := authJSON(s.host, "alice", "s3cret"), authJSON(s.host, "alice", "wrong")
				switch src {
				case "docker":
					writeFile(t, dir+"/docker/config.json", good)
				case "registry-auth-file":
					t.Setenv("REGISTRY_AUTH_FILE", dir+"/auth.json")
					writeFile(t, dir+"/auth.json", good)
				case "xdg-runtime":
					writeFile(t, dir+"/run/containers/auth.json", good)
				case "xdg-config":
					writeFile(t, dir+"/config/containers/auth.json", good)
				case "docker-wins":
					writeFile(t, dir+"/docker/config.json", good)
					writeFile(t, dir+"/run/containers/auth.json", bad)
				}
				c := New(Config{})
				img, d, err := c.Fetch(ctx, mustRef(t, c, s.host+"/private/base:1"), linux)
				if src == "none" {
					var re *Error
					if !errors.As(err, &re) || re.Kind != Unauthorized {
						t.Fatalf("anonymous pull: got %v, want an unauthorized *Error", err)
					}
					if !strings.Contains(err.Error(), "kiln login "+s.host) {
						t.Errorf("error %q does not say to run kiln login %s", err, s.host)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				wd, _ := want.Digest()
				if gd, _ := img.Digest(); gd != wd || d != wd {
					t.Errorf("pulled %s (resolved %s), want %s", gd, d, wd)
				}
				// The layers come through the same credentials.
				ls, _ := img.Layers()
				rc, err := ls[0].Compressed()
				if err != nil {
					t.Fatal(err)
				}
				rc.Close()
			})
		}
	}
}

func TestLoginLogout(t *testing.T) {
	for _, auth := range []string{"basic", "bearer"} {
		t.Run(auth, func(t *testing.T) {
			dir := isolate(t)
			s := newServer(t, auth, "alice", "s3cret")
			cfgPath := dir + "/docker/config.json"
			writeFile(t, cfgPath, `{"credsStore":"","proxies":{"default":{"httpProxy":"x"}},"auths":{"other.example":{"auth":"`+b64("bob:pw")+`"}}}`)
			c := New(Config{})
			_, err := c.Login(ctx, s.host, "alice", "wrong")
			var re *Error
			if !errors.As(err, &re) || re.Kind != Unauthorized {
				t.Fatalf("wrong password: got %v, want an unauthorized *Error", err)
			}
			if b, _ := os.ReadFile(cfgPath); strings.Contains(string(b), s.host) {
				t.Fatalf("a refused login was written: %s", b)
			}
			path, err := c.Login(ctx, s.host, "alice", "s3cret")
			if err != nil {
				t.Fatal(err)
			}
			if path != cfgPath {
				t.Errorf("written to %s, want %s", path, cfgPath)
			}
			fi, err := os.Stat(cfgPath)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("config.json mode %v, want 0600", fi.Mode().Perm())
			}
			b, _ := os.ReadFile(cfgPath)
			var file map[string]json.RawMessage
			if err := json.Unmarshal(b, &file); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(file["proxies"]), "httpProxy") {
				t.Errorf("other keys were lost: %s", b)
			}
			auths, err := ParseAuths(b)
			if err != nil {
				t.Fatal(err)
			}
			if a := auths[s.host]; a.Username != "alice" || a.Password != "s3cret" {
				t.Errorf("stored %+v for %s", a, s.host)
			}
			if a := auths["other.example"]; a.Username != "bob" {
				t.Errorf("other registry's credentials lost: %s", b)
			}
			// What login wrote is what pulls use.
			seed(t, s.host, "app:1", "alice", "s3cret")
			if _, err := New(Config{}).Image(ctx, mustRef(t, c, s.host+"/app:1"), linux); err != nil {
				t.Fatalf("pull after login: %v", err)
			}
			found, err := Logout(ctx, s.host)
			if err != nil || !found {
				t.Fatalf("logout: found %v, %v", found, err)
			}
			b, _ = os.ReadFile(cfgPath)
			if auths, _ := ParseAuths(b); auths[s.host] != (authn.AuthConfig{}) || auths["other.example"].Username != "bob" {
				t.Errorf("after logout: %s", b)
			}
			if found, _ := Logout(ctx, s.host); found {
				t.Error("a second logout found credentials")
			}
		})
	}
}

// TestMirrors: the mirrors of a registry are asked first, in order; one
// that fails is passed over. The mirror holds another image under the same
// name, so the digest says who answered.
func TestMirrors(t *testing.T) {
	isolate(t)
	upstream := newServer(t, "", "", "")
	fromUpstream := digestOf(t, seed(t, upstream.host, "library/tool:1", "", ""))
	mirror := newServer(t, "", "", "")
	fromMirror := digestOf(t, seed(t, mirror.host, "library/tool:1", "", ""))
	down := newServer(t, "", "", "")
	down.Close() // a mirror that is not there

	for _, tc := range []struct {
		name    string
		mirrors []string
		want    v1.Hash
	}{
		{"mirror first", []string{mirror.host}, fromMirror},
		{"dead mirror falls through to the next", []string{down.host, mirror.host}, fromMirror},
		{"dead mirror falls through to upstream", []string{down.host}, fromUpstream},
		{"mirror without the image falls through to upstream", []string{upstream.host + "/nothing-here"}, fromUpstream},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := upstream.requests.Load()
			c := New(Config{Mirrors: map[string][]string{upstream.host: tc.mirrors}, Retries: -1})
			img, _, err := c.Fetch(ctx, mustRef(t, c, upstream.host+"/library/tool:1"), linux)
			if err != nil {
				t.Fatal(err)
			}
			if d := digestOf(t, img); d != tc.want {
				t.Errorf("got %s, want %s", d, tc.want)
			}
			if tc.want == fromMirror && upstream.requests.Load() != before {
				t.Error("upstream was asked though the mirror had the image")
			}
		})
	}
}

func TestPlatformError(t *testing.T) {
	isolate(t)
	s := newServer(t, "", "", "")
	var adds []mutate.IndexAddendum
	for _, p := range []v1.Platform{{OS: "linux", Architecture: "arm64", Variant: "v8"}, {OS: "linux", Architecture: "s390x"}} {
		img, err := random.Image(512, 1)
		if err != nil {
			t.Fatal(err)
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	idx := mutate.AppendManifests(empty.Index, adds...)
	ref, _ := name.ParseReference(s.host+"/multi:1", name.Insecure)
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	c := New(Config{})
	_, err := c.Image(ctx, mustRef(t, c, s.host+"/multi:1"), linux)
	var pe *PlatformError
	if !errors.As(err, &pe) {
		t.Fatalf("got %v, want a *PlatformError", err)
	}
	for _, p := range []string{"linux/arm64/v8", "linux/s390x", "linux/amd64"} {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not name %s", err, p)
		}
	}
	img, d, err := c.Fetch(ctx, mustRef(t, c, s.host+"/multi:1"), v1.Platform{OS: "linux", Architecture: "s390x"})
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := idx.Digest(); d != id {
		t.Errorf("resolved digest %s, want the index's %s", d, id)
	}
	if want, _ := adds[1].Add.(v1.Image).Digest(); func() v1.Hash { h, _ := img.Digest(); return h }() != want {
		t.Error("got the wrong platform's image")
	}
}

func TestErrorKinds(t *testing.T) {
	isolate(t)
	s := newServer(t, "basic", "alice", "s3cret")
	seed(t, s.host, "app:1", "alice", "s3cret")
	writeFile(t, os.Getenv("DOCKER_CONFIG")+"/config.json", authJSON(s.host, "alice", "s3cret"))
	forbidden := newServerStatus(t, http.StatusForbidden, `{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}`)
	closed := newServer(t, "", "", "")
	closed.Close()
	c := New(Config{Retries: -1})
	for _, tc := range []struct {
		ref  string
		kind Kind
		hint string
	}{
		{s.host + "/app:nope", NotFound, "check the repository name"},
		{s.host + "/nothing:1", NotFound, "check the repository name"},
		{forbidden + "/app:1", Denied, "kiln login " + forbidden},
		{closed.host + "/app:1", Unreachable, "certs.d/" + closed.host + "/ca.crt"},
	} {
		_, err := c.Image(ctx, mustRef(t, c, tc.ref), linux)
		var re *Error
		if !errors.As(err, &re) || re.Kind != tc.kind {
			t.Errorf("%s: got %v, want kind %s", tc.ref, err, tc.kind)
			continue
		}
		if !strings.Contains(err.Error(), tc.hint) || !strings.Contains(err.Error(), tc.ref) {
			t.Errorf("%s: error %q does not name the reference and say %q", tc.ref, err, tc.hint)
		}
	}
}

// newServerStatus answers every request with status and body.
func newServerStatus(t *testing.T, status int, body string) string {
	t.Helper()
	srv := httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	return srv
}

func TestRetries(t *testing.T) {
	isolate(t)
	s := newServer(t, "", "", "")
	want := seed(t, s.host, "app:1", "", "")
	c := New(Config{Retries: 3})
	s.fail.Store(2)
	img, err := c.Image(ctx, mustRef(t, c, s.host+"/app:1"), linux)
	if err != nil {
		t.Fatalf("two 500s then success: %v", err)
	}
	if d, _ := img.Digest(); d != func() v1.Hash { h, _ := want.Digest(); return h }() {
		t.Error("wrong image")
	}
	s.fail.Store(100)
	_, err = New(Config{Retries: 2}).Image(ctx, mustRef(t, c, s.host+"/app:1"), linux)
	var re *Error
	if !errors.As(err, &re) || re.Kind != Failed || !strings.Contains(err.Error(), "500") {
		t.Errorf("permanent 500s: got %v, want a failed *Error naming the status", err)
	}
	s.fail.Store(0)
}

func TestPushSkipsExistingBlobs(t *testing.T) {
	isolate(t)
	s := newServer(t, "", "", "")
	c := New(Config{})
	img, err := random.Image(4096, 3)
	if err != nil {
		t.Fatal(err)
	}
	var events []Event
	pctx := WithProgress(ctx, func(e Event) { events = append(events, e) })
	if err := c.Write(pctx, mustRef(t, c, s.host+"/a:1"), img); err != nil {
		t.Fatal(err)
	}
	if len(events) == 0 || !events[len(events)-1].Done || events[len(events)-1].Complete == 0 {
		t.Errorf("progress events %+v: want a last Done event with bytes", events)
	}
	uploads := func() int64 { return s.requests.Load() }
	before := uploads()
	if err := c.Write(ctx, mustRef(t, c, s.host+"/a:2"), img); err != nil {
		t.Fatal(err)
	}
	// HEAD per blob (3 layers, config) and the manifest PUT at most, no
	// upload sessions.
	if n := uploads() - before; n > 8 {
		t.Errorf("second push of the same image made %d requests", n)
	}
}

// TestPushMounts: a push to another repository of the same registry
// uploads no blob (this registry shares blobs between repositories, so
// the HEAD finds them; the mount itself is tested against
// docker-registry in cmd/kiln).
func TestPushMounts(t *testing.T) {
	isolate(t)
	s := newServer(t, "", "", "")
	c := New(Config{})
	img := randomImage(t)
	if err := c.Write(ctx, mustRef(t, c, s.host+"/src/app:1"), img); err != nil {
		t.Fatal(err)
	}
	patches := s.count("PATCH", "/blobs/uploads/") + s.count("PUT", "/blobs/uploads/")
	mctx := WithMountFrom(ctx, s.host+"/src/app", "elsewhere.example/x")
	if err := c.Write(mctx, mustRef(t, c, s.host+"/dst/app:1"), img); err != nil {
		t.Fatal(err)
	}
	if n := s.count("PATCH", "/blobs/uploads/") + s.count("PUT", "/blobs/uploads/"); n != patches {
		t.Errorf("%d blob uploads to the second repository, want none", n-patches)
	}
	got, err := c.Image(ctx, mustRef(t, c, s.host+"/dst/app:1"), linux)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate(got); err != nil {
		t.Error(err)
	}
}

func validate(img v1.Image) error {
	ls, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range ls {
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		rc.Close()
	}
	return nil
}

func TestInsecureGuard(t *testing.T) {
	isolate(t)
	c := New(Config{Insecure: []string{"reg.lan:5000"}})
	for host, ok := range map[string]bool{"127.0.0.1:5000": true, "localhost:1": true, "[::1]:5000": true, "reg.lan:5000": true, "10.0.0.7:5000": false, "reg.lan:5001": false} {
		if got := c.insecure(host); got != ok {
			t.Errorf("insecure(%s) = %v, want %v", host, got, ok)
		}
	}
	tr, err := c.transport("10.0.0.7:5000")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://10.0.0.7:5000/v2/", nil)
	if _, err := tr.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "refusing plain HTTP") {
		t.Errorf("plain HTTP to a private address: %v, want a refusal", err)
	}
}

// TestLoginCredsStore: with a credsStore in config.json, login hands the
// credentials to docker-credential-NAME (a real helper speaking docker's
// protocol, keeping them in a file), pulls get them back from it, and
// logout erases them.
func TestLoginCredsStore(t *testing.T) {
	dir := isolate(t)
	bin := filepath.Join(dir, "bin")
	helper := `#!/bin/sh
f="$KILNTEST_STORE/creds.json"
case "$1" in
store) cat > "$f" ;;
get) read url; if [ -f "$f" ] && grep -q "\"ServerURL\":\"$url\"" "$f"; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
erase) rm -f "$f" ;;
esac
`
	writeFile(t, filepath.Join(bin, "docker-credential-kilntest"), helper)
	if err := os.Chmod(filepath.Join(bin, "docker-credential-kilntest"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("KILNTEST_STORE", dir)
	writeFile(t, dir+"/docker/config.json", `{"credsStore":"kilntest"}`)
	s := newServer(t, "bearer", "alice", "s3cret")
	seed(t, s.host, "app:1", "alice", "s3cret")
	c := New(Config{})
	if _, err := c.Login(ctx, s.host, "alice", "s3cret"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(dir + "/docker/config.json")
	if strings.Contains(string(b), b64("alice:s3cret")) {
		t.Errorf("the password went into config.json despite the credsStore: %s", b)
	}
	stored, err := os.ReadFile(filepath.Join(dir, "creds.json"))
	if err != nil || !strings.Contains(string(stored), `"Secret":"s3cret"`) {
		t.Fatalf("helper holds %s (%v)", stored, err)
	}
	if _, err := New(Config{}).Image(ctx, mustRef(t, c, s.host+"/app:1"), linux); err != nil {
		t.Fatalf("pull with the helper's credentials: %v", err)
	}
	if found, err := Logout(ctx, s.host); err != nil || !found {
		t.Fatalf("logout: %v %v", found, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "creds.json")); err == nil {
		t.Error("logout left the credentials in the helper")
	}
}
