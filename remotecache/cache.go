//go:build linux

package remotecache

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/layer"
	"github.com/kiln-build/kiln/store"
)

// Spec is one --cache-from or --cache-to.
type Spec struct {
	Type string // "registry" or "local"
	Ref  string // registry: host/repo:tag
	Dir  string // local: the OCI layout directory
	// Export only: "min" (the final image's steps, the default) or "max"
	// (every step built), and whether cache mounts travel too.
	Mode        string
	CacheMounts bool
	// Codec compresses the layers built here that have no compressed
	// blob yet (pulled layers keep theirs): DefaultCodec unless
	// compression= says otherwise. A build's exports share one (SetCodec).
	Codec layer.Codec
}

func (s Spec) String() string {
	if s.Type == "local" {
		return "local:" + s.Dir
	}
	return s.Ref
}

// Cache is one build's use of remote caches over a store: it imports
// from the --cache-from sources and exports to the --cache-to ones, and
// compresses each layer at most once for all of them.
type Cache struct {
	st       *store.Store
	platform string

	mu       sync.Mutex
	codec    layer.Codec         // of the exports (DefaultCodec unless SetCodec)
	gz       map[string]*gzipped // by diffID
	prepared map[digest.Digest]bool
	streams  []backend      // mode=max exports, fed blobs as steps finish
	wg       sync.WaitGroup // Prepare's work in flight
	sem      chan struct{}  // bounds background compressions and uploads
	pull     singleflight   // layers being fetched, by diffID

	// Counters of what crossed the network, for reports and tests.
	Fetched  atomic.Int64 // layer blobs downloaded
	Manifest atomic.Int64 // entry manifests read
}

// New returns the remote caches of a build on st for platform
// ("linux/amd64"; cache mounts are per platform).
func New(st *store.Store, platform string) *Cache {
	return &Cache{st: st, platform: platform, codec: DefaultCodec, gz: map[string]*gzipped{}, prepared: map[digest.Digest]bool{}, sem: make(chan struct{}, 3), pull: singleflight{m: map[string]*flight{}}}
}

// backendFor opens a spec's backend and base tag.
func backendFor(s Spec) (backend, naming, error) {
	switch s.Type {
	case "registry":
		b, tag, err := newRegistryBackend(s.Ref)
		if err != nil {
			return nil, naming{}, err
		}
		n, err := newNaming(tag)
		return b, n, err
	case "local":
		if s.Dir == "" {
			return nil, naming{}, fmt.Errorf("cache type=local needs a directory")
		}
		n, _ := newNaming("cache")
		return &layoutBackend{dir: s.Dir}, n, nil
	}
	return nil, naming{}, fmt.Errorf("unknown cache type %q", s.Type)
}

// singleflight runs one fetch per key at a time; later callers wait for
// the first one's result.
type singleflight struct {
	mu sync.Mutex
	m  map[string]*flight
}

type flight struct {
	done chan struct{}
	l    store.Layer
	err  error
}

func (g *singleflight) do(key string, fn func() (store.Layer, error)) (store.Layer, error) {
	g.mu.Lock()
	if f, ok := g.m[key]; ok {
		g.mu.Unlock()
		<-f.done
		return f.l, f.err
	}
	f := &flight{done: make(chan struct{})}
	g.m[key] = f
	g.mu.Unlock()
	f.l, f.err = fn()
	close(f.done)
	g.mu.Lock()
	delete(g.m, key)
	g.mu.Unlock()
	return f.l, f.err
}

// gzipped is a layer's compressed blob, made once per build.
type gzipped struct {
	once sync.Once
	ref  store.BlobRef
	err  error
}

// blobOf is the compressed blob of l (the store's own if it has one: a
// pulled layer's blob, or the gzip an earlier export made), compressed
// now at most once.
func (c *Cache) blobOf(ctx context.Context, l store.Layer) (store.BlobRef, error) {
	c.mu.Lock()
	g, ok := c.gz[string(l.DiffID)]
	if !ok {
		g = &gzipped{}
		c.gz[string(l.DiffID)] = g
	}
	c.mu.Unlock()
	g.once.Do(func() { g.ref, g.err = c.compressed(ctx, l) })
	return g.ref, g.err
}

// DefaultCodec is BuildKit's default for cache layers, gzip, which is
// also what a push of the image uses: a build that exports its cache and
// pushes compresses each layer once for both. (zstd measured no faster
// here: the export of a cold build waits on the upload, not on
// compression.) compression= chooses another.
var DefaultCodec = layer.Codec{Kind: layer.Gzip}

// SetCodec is the compression of the build's exports (one for all: each
// layer is compressed once); it is called before the build starts.
func (c *Cache) SetCodec(codec layer.Codec) { c.codec = codec }

// compressed is l's own blob when it has a compressed one (a pulled layer,
// passed through byte for byte), else its blob in the cache's codec, made
// now (or by an earlier export or push) and kept in the store.
func (c *Cache) compressed(ctx context.Context, l store.Layer) (store.BlobRef, error) {
	if !l.FromSnapshot() {
		return c.st.Layers().Gzip(ctx, l) // its own blob, unless it is an uncompressed one
	}
	return c.st.Layers().Blob(ctx, l, c.codec)
}

// Stream makes the blobs of a mode=max export go up while the build goes
// on (see Prepare): every step's layers are in such an export.
func (c *Cache) Stream(spec Spec) error {
	if spec.Mode != "max" {
		return nil
	}
	be, _, err := backendFor(spec)
	if err != nil {
		return fmt.Errorf("--cache-to %s: %w", spec, err)
	}
	c.mu.Lock()
	c.streams = append(c.streams, be)
	c.mu.Unlock()
	return nil
}

// Prepare starts, in the background, compressing the layers of a chain a
// step just made (once each) and uploading them to the Stream exports,
// so that the export at the end of the build finds them ready and costs
// little more than its manifests. What fails here is done again, and
// reported, by Export.
func (c *Cache) Prepare(ctx context.Context, layers []store.Layer) {
	c.mu.Lock()
	streams := c.streams
	var todo []store.Layer
	for _, l := range layers {
		if !c.prepared[l.DiffID] {
			c.prepared[l.DiffID] = true
			todo = append(todo, l)
		}
	}
	c.mu.Unlock()
	for _, l := range todo {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			select {
			case c.sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-c.sem }()
			ref, err := c.blobOf(ctx, l)
			if err != nil {
				return
			}
			for _, be := range streams {
				_ = be.PutBlob(ctx, &blobLayer{desc: descriptor(ref, c.blobMediaType(l, ref)), open: func() (io.ReadCloser, error) {
					return c.st.Layers().OpenBlob(ctx, l.DiffID, ref.Digest)
				}})
			}
		}()
	}
}

func descriptor(ref store.BlobRef, mediaType string) v1.Descriptor {
	h, _ := v1.NewHash(string(ref.Digest))
	return v1.Descriptor{MediaType: types.MediaType(mediaType), Size: ref.Size, Digest: h}
}
