//go:build linux

package remotecache

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/layer"
	"github.com/kiln-build/kiln/store"
)

// countingRegistry is go-containerregistry's in-process registry, counting
// the requests it answers by kind.
type countingRegistry struct {
	host string
	mu   sync.Mutex
	n    map[string]int // "GET blob", "PUT manifest", "POST", ...
}

func newRegistry(t *testing.T) *countingRegistry {
	t.Helper()
	c := &countingRegistry{n: map[string]int{}}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind := "other"
		switch {
		case strings.Contains(r.URL.Path, "/blobs/"):
			kind = "blob"
		case strings.Contains(r.URL.Path, "/manifests/"):
			kind = "manifest"
		case strings.HasSuffix(r.URL.Path, "/tags/list"):
			kind = "tags"
		}
		c.mu.Lock()
		c.n[r.Method+" "+kind]++
		c.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c.host = strings.TrimPrefix(srv.URL, "http://")
	return c
}

func (c *countingRegistry) count(kind string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[kind]
}

// uploads is every request that writes: blob uploads and manifest PUTs.
func (c *countingRegistry) uploads() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for k, v := range c.n {
		if strings.HasPrefix(k, "PUT") || strings.HasPrefix(k, "POST") || strings.HasPrefix(k, "PATCH") {
			n += v
		}
	}
	return n
}

func (c *countingRegistry) reset() {
	c.mu.Lock()
	c.n = map[string]int{}
	c.mu.Unlock()
}

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// chain makes a layer chain of n layers in st, each one file whose content
// names the branch, and the results a build of it would offer: one key per
// prefix of the chain.
func chain(t *testing.T, st *store.Store, branch string, n int) []Result {
	t.Helper()
	var layers []store.Layer
	var out []Result
	for i := range n {
		dir, err := st.Temp().Dir("test-")
		if err != nil {
			t.Fatal(err)
		}
		content := fmt.Sprintf("layer %d", i)
		if i > 0 {
			content += " of " + branch // the first layer is shared by every branch
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d", i)), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		l, err := st.Layers().MoveIn(context.Background(), dir)
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
		key := digest.FromBytes([]byte(fmt.Sprintf("key %d %s", i, content)))
		out = append(out, Result{Key: key, Layers: append([]store.Layer(nil), layers...), Slot: fmt.Sprintf("[stage-0 %d]", i+1), Final: i == n-1})
	}
	return out
}

func TestRegistryRoundTrip(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t)
	ref := reg.host + "/app/cache:main"
	a := openStore(t)
	results := chain(t, a, "main", 3)
	ca := New(a, "linux/amd64")
	// As a build does: blobs compressed and uploaded as each step ends.
	if err := ca.Stream(Spec{Type: "registry", Ref: ref, Mode: "max"}); err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		ca.Prepare(ctx, r.Layers)
	}
	rep, err := ca.Export(ctx, Spec{Type: "registry", Ref: ref, Mode: "max"}, results, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Keys != 3 || rep.Skipped != 0 {
		t.Errorf("cold export: %v", rep)
	}

	// An unchanged build exports nothing: one listing, no upload.
	reg.reset()
	rep, err = New(a, "linux/amd64").Export(ctx, Spec{Type: "registry", Ref: ref, Mode: "max"}, results, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Skipped != 3 || reg.uploads() != 0 || reg.count("GET tags") != 1 || reg.count("HEAD blob") != 0 {
		t.Errorf("unchanged export: %v, requests %v", rep, reg.n)
	}

	// Another store: the last key's entry gives the whole chain, and only
	// the layers it lacks are downloaded.
	b := openStore(t)
	reg.reset()
	cb := New(b, "linux/amd64")
	im, err := cb.Importer(ctx, []Spec{{Type: "registry", Ref: ref}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := im.Lookup(ctx, digest.FromBytes([]byte("no such key"))); ok {
		t.Error("a key nobody exported was found")
	}
	e, ok := im.Lookup(ctx, results[2].Key)
	if !ok {
		t.Fatal("the exported key was not found")
	}
	if e.Slot != "[stage-0 3]" {
		t.Errorf("entry slot %q", e.Slot)
	}
	if n := reg.count("GET blob"); n != 1 { // the config
		t.Errorf("a lookup read %d blobs, want only the entry's config", n)
	}
	got, err := im.Fetch(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range got {
		if l.DiffID != results[2].Layers[i].DiffID {
			t.Errorf("layer %d: diffID %s, want %s", i, l.DiffID, results[2].Layers[i].DiffID)
		}
		if _, err := b.Layers().Get(ctx, l.DiffID); err != nil {
			t.Errorf("layer %d is not in the store: %v", i, err)
		}
	}
	// Fetch records the layers lazily: nothing is downloaded until a
	// reader asks for their content (Ensure), and then each layer once.
	if n := reg.count("GET blob"); n != 1 {
		t.Errorf("fetching 3 layers made %d blob GETs, want 1 (the config): they are lazy", n)
	}
	if _, err := im.Fetch(ctx, e); err != nil || reg.count("GET blob") != 1 {
		t.Errorf("second fetch: %v, %d blob GETs", err, reg.count("GET blob"))
	}
	if err := b.Layers().Ensure(ctx, got); err != nil {
		t.Fatal(err)
	}
	for i, l := range got {
		if !b.Layers().Present(ctx, l.DiffID) {
			t.Errorf("layer %d not present after Ensure", i)
		}
	}
	if n := reg.count("GET blob"); n != 1+3 {
		t.Errorf("ensuring 3 lazy layers made %d blob GETs in all, want 4", n)
	}
	if err := b.Layers().Ensure(ctx, got); err != nil || reg.count("GET blob") != 4 {
		t.Errorf("second ensure: %v, %d blob GETs", err, reg.count("GET blob"))
	}
	if s, ok := im.LookupSlot(ctx, "[stage-0 2]"); !ok || s.Key != results[1].Key {
		t.Errorf("slot lookup: %v %v", s.Key, ok)
	}
}

// Two branches export to one reference at once; both are there after.
func TestConcurrentExportsKeepEachOther(t *testing.T) {
	ctx := context.Background()
	for _, typ := range []string{"registry", "local"} {
		t.Run(typ, func(t *testing.T) {
			spec := Spec{Type: typ, Mode: "max"}
			if typ == "registry" {
				spec.Ref = newRegistry(t).host + "/app/cache:ci"
			} else {
				spec.Dir = t.TempDir()
			}
			var wg sync.WaitGroup
			branches := map[string][]Result{}
			for _, br := range []string{"main", "feature", "fix"} {
				st := openStore(t)
				rs := chain(t, st, br, 3)
				branches[br] = rs
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := New(st, "linux/amd64").Export(ctx, spec, rs, nil); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			im, err := New(openStore(t), "linux/amd64").Importer(ctx, []Spec{spec})
			if err != nil {
				t.Fatal(err)
			}
			for br, rs := range branches {
				for _, r := range rs {
					if _, ok := im.Lookup(ctx, r.Key); !ok {
						t.Errorf("branch %s: key %s lost", br, r.Key)
					}
				}
			}
		})
	}
}

func TestModeMinExportsFinalStepsOnly(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openStore(t)
	rs := chain(t, st, "main", 3)
	rs[1].Final = false
	rep, err := New(st, "linux/amd64").Export(ctx, Spec{Type: "local", Dir: dir, Mode: "min"}, rs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Keys != 1 {
		t.Errorf("mode=min exported %d keys, want the final one", rep.Keys)
	}
	im, err := New(openStore(t), "linux/amd64").Importer(ctx, []Spec{{Type: "local", Dir: dir}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := im.Lookup(ctx, rs[1].Key); ok {
		t.Error("mode=min exported an intermediate step")
	}
	e, ok := im.Lookup(ctx, rs[2].Key)
	if !ok {
		t.Fatal("final key missing")
	}
	if _, err := im.Fetch(ctx, e); err != nil {
		t.Fatal(err)
	}
}

// A blob that does not match its digest never reaches the store.
func TestFetchVerifies(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openStore(t)
	rs := chain(t, st, "main", 1)
	if _, err := New(st, "linux/amd64").Export(ctx, Spec{Type: "local", Dir: dir, Mode: "max"}, rs, nil); err != nil {
		t.Fatal(err)
	}
	b := openStore(t)
	cb := New(b, "linux/amd64")
	im, err := cb.Importer(ctx, []Spec{{Type: "local", Dir: dir}})
	if err != nil {
		t.Fatal(err)
	}
	e, ok := im.Lookup(ctx, rs[0].Key)
	if !ok {
		t.Fatal("key missing")
	}
	blob := filepath.Join(dir, "blobs", "sha256", e.Layers[0].Digest.Hex())
	if err := os.WriteFile(blob, []byte("not the layer"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := im.Fetch(ctx, e); err == nil {
		t.Fatal("a corrupt blob was imported")
	}
	if _, err := b.Layers().Get(ctx, e.Layers[0].DiffID); err == nil {
		t.Error("the corrupt layer is in the store")
	}
}

func TestCacheMountRoundTrip(t *testing.T) {
	ctx := context.Background()
	spec := Spec{Type: "registry", Ref: newRegistry(t).host + "/app/cache:mounts", Mode: "max", CacheMounts: true}
	a := openStore(t)
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "pkg", "mod"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "pkg", "mod", "m.zip"), []byte("module data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(a, "linux/amd64").Export(ctx, spec, nil, map[string]string{"/go/pkg": src}); err != nil {
		t.Fatal(err)
	}
	// Unchanged: no new entry.
	rep, err := New(a, "linux/amd64").Export(ctx, spec, nil, map[string]string{"/go/pkg": src})
	if err != nil || rep.Written != 0 {
		t.Errorf("unchanged mount re-exported: %v %v", rep, err)
	}
	b := openStore(t)
	for _, c := range []struct {
		platform string
		want     bool
	}{{"linux/arm64", false}, {"linux/amd64", true}} {
		im, err := New(b, c.platform).Importer(ctx, []Spec{spec})
		if err != nil {
			t.Fatal(err)
		}
		dst := t.TempDir()
		ok, err := im.ImportMount(ctx, "/go/pkg", dst)
		if err != nil || ok != c.want {
			t.Fatalf("%s: import = %v, %v; want %v", c.platform, ok, err, c.want)
		}
		data, err := os.ReadFile(filepath.Join(dst, "pkg", "mod", "m.zip"))
		if c.want && (err != nil || string(data) != "module data") {
			t.Errorf("imported mount holds %q, %v", data, err)
		}
	}
	// Changed on another machine: the last export wins.
	if err := os.WriteFile(filepath.Join(src, "pkg", "mod", "m.zip"), []byte("newer"), 0o644); err != nil {
		t.Fatal(err)
	}
	if rep, err := New(openStore(t), "linux/amd64").Export(ctx, spec, nil, map[string]string{"/go/pkg": src}); err != nil || rep.Written != 1 {
		t.Fatalf("changed mount: %v %v", rep, err)
	}
	im, err := New(b, "linux/amd64").Importer(ctx, []Spec{spec})
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if ok, err := im.ImportMount(ctx, "/go/pkg", dst); !ok || err != nil {
		t.Fatalf("import after a change: %v %v", ok, err)
	}
	if data, _ := os.ReadFile(filepath.Join(dst, "pkg", "mod", "m.zip")); string(data) != "newer" {
		t.Errorf("after a second export the mount holds %q, want the last one's", data)
	}
}

func TestNaming(t *testing.T) {
	key := digest.FromBytes([]byte("k"))
	for _, c := range []struct {
		base string
		ok   bool
	}{{"main", true}, {"buildcache", true}, {strings.Repeat("t", 95), true}, {strings.Repeat("t", 96), false}, {"-bad", false}, {"", false}} {
		n, err := newNaming(c.base)
		if (err == nil) != c.ok {
			t.Errorf("newNaming(%q): %v", c.base, err)
			continue
		}
		if err != nil {
			continue
		}
		for _, tag := range []string{n.key(key), n.mount("/root/.cache", "linux/amd64"), n.slot("[build 3]")} {
			if !tagPattern.MatchString(tag) {
				t.Errorf("tag %q is not a valid tag", tag)
			}
		}
		if k, m, sl := n.key(key), n.mount("x", "linux/amd64"), n.slot("[x 1]"); k == m || k == sl || m == sl {
			t.Errorf("base %q: a key, a mount and a slot share a tag", c.base)
		}
	}
}

func TestBlobMediaType(t *testing.T) {
	d1, d2 := digest.FromBytes([]byte("1")), digest.FromBytes([]byte("2"))
	built := store.Layer{DiffID: d1, Digest: d1, MediaType: store.MediaTypeLayerTar}
	for _, c := range []struct {
		codec layer.Codec
		l     store.Layer
		ref   store.BlobRef
		want  string
	}{
		{DefaultCodec, built, store.BlobRef{Digest: d2}, store.MediaTypeLayerGzip},
		{layer.Codec{Kind: layer.Zstd, Level: 19}, built, store.BlobRef{Digest: d2}, store.MediaTypeLayerZstd},
		{layer.Codec{Kind: layer.Gzip}, built, store.BlobRef{Digest: d2}, store.MediaTypeLayerGzip},
		{layer.Codec{Kind: layer.Uncompressed}, built, store.BlobRef{Digest: d1}, store.MediaTypeLayerTar},
		{DefaultCodec, store.Layer{DiffID: d1, Digest: d2, MediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip"}, store.BlobRef{Digest: d2}, store.MediaTypeLayerGzip},
		{DefaultCodec, store.Layer{DiffID: d1, Digest: d1, MediaType: "application/vnd.docker.image.rootfs.diff.tar"}, store.BlobRef{Digest: d2}, store.MediaTypeLayerGzip},
		{DefaultCodec, store.Layer{DiffID: d1, Digest: d2, MediaType: store.MediaTypeLayerZstd}, store.BlobRef{Digest: d2}, store.MediaTypeLayerZstd},
	} {
		cc := &Cache{codec: c.codec}
		if got := cc.blobMediaType(c.l, c.ref); got != c.want {
			t.Errorf("%s (codec %s) with blob %s: %s, want %s", c.l.MediaType, c.codec, c.ref.Digest, got, c.want)
		}
	}
}
