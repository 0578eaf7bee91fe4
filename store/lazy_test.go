//go:build linux

package store

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/internal/busybox"
)

// lazyRegistry is go-containerregistry's in-process registry that counts
// the blob GETs it serves and can corrupt chosen blobs on the way out.
type lazyRegistry struct {
	host string

	mu      sync.Mutex
	gets    map[string]int  // blob digest → GETs served
	corrupt map[string]bool // blob digest → flip a byte of its body
}

func newLazyRegistry(t *testing.T) *lazyRegistry {
	t.Helper()
	r := &lazyRegistry{gets: map[string]int{}, corrupt: map[string]bool{}}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, d, isBlob := strings.Cut(req.URL.Path, "/blobs/")
		if !isBlob || req.Method != http.MethodGet || !strings.HasPrefix(d, "sha256:") {
			h.ServeHTTP(w, req)
			return
		}
		r.mu.Lock()
		r.gets[d]++
		bad := r.corrupt[d]
		r.mu.Unlock()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		body := rec.Body.Bytes()
		if bad && len(body) > 0 {
			body[len(body)/2] ^= 0xff
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	r.host = strings.TrimPrefix(srv.URL, "http://")
	return r
}

func (r *lazyRegistry) blobGets(d digest.Digest) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gets[string(d)]
}

func (r *lazyRegistry) setCorrupt(d digest.Digest, bad bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.corrupt[string(d)] = bad
}

// pushRandom pushes a random image of n layers to repo and returns it as
// the registry serves it (layers read lazily from there).
func (r *lazyRegistry) pushRandom(t *testing.T, repo string, n int) v1.Image {
	t.Helper()
	img, err := random.Image(4096, int64(n))
	if err != nil {
		t.Fatal(err)
	}
	ref := r.host + "/" + repo + ":1"
	if err := busybox.Push(context.Background(), img, ref); err != nil {
		t.Fatal(err)
	}
	parsed, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	remoteImg, err := remote.Image(parsed)
	if err != nil {
		t.Fatal(err)
	}
	return remoteImg
}

// lazyImage stores img lazily (as a lazy pull would) and returns its
// manifest digest and its layers as the store records them.
func lazyImage(t *testing.T, s *Store, img v1.Image, repo string) (digest.Digest, []Layer) {
	t.Helper()
	ctx := context.Background()
	d, err := s.Images().ImportLazy(ctx, img, LayerSource{Repo: repo})
	if err != nil {
		t.Fatal(err)
	}
	layers, _, err := s.Images().Layers(ctx, d)
	if err != nil {
		t.Fatalf("layers of a lazy image: %v", err)
	}
	return d, layers
}

func TestLazyLayerFetchedOnFirstEnsure(t *testing.T) {
	ctx := context.Background()
	reg := newLazyRegistry(t)
	img := reg.pushRandom(t, "app", 3)
	s := openTemp(t)
	d, layers := lazyImage(t, s, img, reg.host+"/app")
	if err := s.Names().TagDurable(ctx, "app", d); err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		if n := reg.blobGets(l.Digest); n != 0 {
			t.Fatalf("layer %s fetched %d times by recording it", l.Digest, n)
		}
		if !s.Layers().Lazy(ctx, l.DiffID) || s.Layers().Present(ctx, l.DiffID) {
			t.Fatalf("layer %s: want lazy, not present", l.DiffID)
		}
	}
	// A lazy layer is not broken, and GC keeps the record an image names.
	if probs, err := s.Check(ctx, false); err != nil || len(probs) != 0 {
		t.Fatalf("check of a lazy image: %v %v", probs, err)
	}
	if _, err := s.GC().Run(ctx, []GCPolicy{{All: true}}, false); err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		if !s.Layers().Lazy(ctx, l.DiffID) {
			t.Fatalf("GC removed lazy layer %s of a named image", l.DiffID)
		}
	}

	// Many readers at once: each layer is fetched once.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, err := s.Layers().EnsureDirs(ctx, layers)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range layers {
		if n := reg.blobGets(l.Digest); n != 1 {
			t.Errorf("layer %s fetched %d times, want 1", l.Digest, n)
		}
		if s.Layers().Lazy(ctx, l.DiffID) || !s.Layers().Present(ctx, l.DiffID) {
			t.Errorf("layer %s: want present after Ensure", l.DiffID)
		}
		ents, err := os.ReadDir(s.Layers().SnapshotDir(l.DiffID))
		if err != nil || len(ents) == 0 {
			t.Errorf("snapshot of %s: %v entries, %v", l.DiffID, len(ents), err)
		}
	}
	if probs, err := s.Check(ctx, false); err != nil || len(probs) != 0 {
		t.Fatalf("check after fetching: %v %v", probs, err)
	}
	if err := s.Layers().Ensure(ctx, layers); err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		if n := reg.blobGets(l.Digest); n != 1 {
			t.Errorf("layer %s fetched again (%d GETs) once present", l.Digest, n)
		}
	}
}

func TestLazyLayerReadByExport(t *testing.T) {
	ctx := context.Background()
	reg := newLazyRegistry(t)
	img := reg.pushRandom(t, "app", 2)
	s := openTemp(t)
	d, layers := lazyImage(t, s, img, reg.host+"/app")
	out, err := s.Images().Distributable(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	got, err := out.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range got {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatalf("reading lazy layer %d: %v", i, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if digest.FromBytes(b) != layers[i].Digest {
			t.Errorf("layer %d: read %s, want %s", i, digest.FromBytes(b), layers[i].Digest)
		}
		if n := reg.blobGets(layers[i].Digest); n != 1 {
			t.Errorf("layer %d fetched %d times, want 1", i, n)
		}
	}
}

func TestLazyLayerUnnamedIsSwept(t *testing.T) {
	ctx := context.Background()
	reg := newLazyRegistry(t)
	img := reg.pushRandom(t, "app", 1)
	s := openTemp(t)
	_, layers := lazyImage(t, s, img, reg.host+"/app")
	if _, err := s.GC().Run(ctx, []GCPolicy{{All: true}}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Layers().Get(ctx, layers[0].DiffID); !IsNotFound(err) {
		t.Fatalf("lazy layer no image names: Get after GC = %v, want not found", err)
	}
}

func TestLazyLayerBadRemoteIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(reg *lazyRegistry, l Layer, other Layer) Layer
	}{
		{"corrupt blob", func(reg *lazyRegistry, l, _ Layer) Layer {
			reg.setCorrupt(l.Digest, true)
			return l
		}},
		{"wrong diffID", func(_ *lazyRegistry, l, other Layer) Layer {
			l.DiffID = other.DiffID
			return l
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			reg := newLazyRegistry(t)
			img := reg.pushRandom(t, "app", 2)
			s := openTemp(t)
			repo := reg.host + "/app"
			ls, err := img.Layers()
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			var recorded []Layer
			for i, rl := range ls {
				h, _ := rl.Digest()
				n, _ := rl.Size()
				recorded = append(recorded, Layer{DiffID: digest.Digest(cfg.RootFS.DiffIDs[i].String()), Digest: digest.Digest(h.String()), Size: n, MediaType: MediaTypeLayerGzip})
			}
			l := tc.spoil(reg, recorded[0], recorded[1])
			if err := s.Layers().Record(ctx, l, LayerSource{Repo: repo}); err != nil {
				t.Fatal(err)
			}
			err = s.Layers().Ensure(ctx, []Layer{l})
			if err == nil {
				t.Fatal("a bad remote layer was accepted")
			}
			if s.Blobs().has(ctx, l.Digest) {
				t.Error("the refused blob is in the store")
			}
			if _, err := os.Stat(s.Layers().SnapshotDir(l.DiffID)); !os.IsNotExist(err) {
				t.Errorf("a snapshot was left for the refused layer: %v", err)
			}
			if left := tmpLeftovers(t, s); len(left) != 0 {
				t.Errorf("partial files left in tmp: %v", left)
			}
			if !s.Layers().Lazy(ctx, l.DiffID) {
				t.Error("the refused layer is no longer lazy")
			}
			if probs, err := s.Check(ctx, false); err != nil || len(probs) != 0 {
				t.Errorf("check after a refused fetch: %v %v", probs, err)
			}
		})
	}
}

// tmpLeftovers are the entries of the store's tmp dir but the lock dirs
// of live owners.
func tmpLeftovers(t *testing.T, s *Store) []string {
	t.Helper()
	ents, err := os.ReadDir(s.Temp().dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".lk") {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestPullLazyDownloadsNoLayer(t *testing.T) {
	ctx := context.Background()
	reg := newLazyRegistry(t)
	img := reg.pushRandom(t, "base", 2)
	s := openTemp(t)
	ref := reg.host + "/base:1"
	p, err := s.Images().PullLazy(ctx, ref, "linux/amd64", PullMissing)
	if err != nil {
		t.Fatal(err)
	}
	layers, _, err := s.Images().Layers(ctx, p.Digest)
	if err != nil {
		t.Fatal(err)
	}
	want, err := img.Layers()
	if err != nil || len(layers) != len(want) {
		t.Fatalf("%d layers, want %d (%v)", len(layers), len(want), err)
	}
	for _, l := range layers {
		if n := reg.blobGets(l.Digest); n != 0 || !s.Layers().Lazy(ctx, l.DiffID) {
			t.Errorf("layer %s: %d GETs, lazy %v; want 0 and lazy", l.Digest, n, s.Layers().Lazy(ctx, l.DiffID))
		}
	}
	// kiln pull of the same name makes the content present.
	if _, err := s.Images().Pull(ctx, ref, "linux/amd64", PullMissing); err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		if n := reg.blobGets(l.Digest); n != 1 || !s.Layers().Present(ctx, l.DiffID) {
			t.Errorf("layer %s after Pull: %d GETs, present %v; want 1 and present", l.Digest, n, s.Layers().Present(ctx, l.DiffID))
		}
	}
}
