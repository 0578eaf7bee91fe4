//go:build linux

package remotecache

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/store"
)

// Importer finds cache keys in the --cache-from sources, in the order
// given: the first source holding a key answers for it.
type Importer struct {
	c       *Cache
	sources []*source
}

// source is one backend read by an importer: its tags are listed once,
// and each entry's manifest and config read at most once.
type source struct {
	spec Spec
	be   backend
	n    naming

	listOnce sync.Once
	tags     map[string]bool
	listErr  error

	mu      sync.Mutex
	entries map[string]*lookup // by tag
}

type lookup struct {
	once sync.Once
	e    Entry
	ok   bool
	err  error
}

// Importer opens specs for reading and starts listing their tags now, so
// that the listing overlaps with the rest of the build's start.
func (c *Cache) Importer(ctx context.Context, specs []Spec) (*Importer, error) {
	im := &Importer{c: c}
	for _, sp := range specs {
		be, n, err := backendFor(sp)
		if err != nil {
			return nil, fmt.Errorf("--cache-from %s: %w", sp, err)
		}
		src := &source{spec: sp, be: be, n: n, entries: map[string]*lookup{}}
		go src.list(ctx)
		im.sources = append(im.sources, src)
	}
	return im, nil
}

func (s *source) list(ctx context.Context) (map[string]bool, error) {
	s.listOnce.Do(func() {
		tags, err := s.be.Tags(ctx)
		s.tags, s.listErr = map[string]bool{}, err
		for _, t := range tags {
			s.tags[t] = true
		}
	})
	return s.tags, s.listErr
}

// entry reads the entry tagged tag, if the listing has it.
func (s *source) entry(ctx context.Context, c *Cache, tag, mediaType string) (Entry, bool, error) {
	tags, err := s.list(ctx)
	if err != nil || !tags[tag] {
		return Entry{}, false, err
	}
	s.mu.Lock()
	l, ok := s.entries[tag]
	if !ok {
		l = &lookup{}
		s.entries[tag] = l
	}
	s.mu.Unlock()
	l.once.Do(func() { l.e, l.ok, l.err = s.read(ctx, c, tag, mediaType) })
	return l.e, l.ok, l.err
}

func (s *source) read(ctx context.Context, c *Cache, tag, mediaType string) (Entry, bool, error) {
	m, _, ok, err := s.be.Manifest(ctx, tag)
	if err != nil || !ok {
		return Entry{}, false, err
	}
	c.Manifest.Add(1)
	if string(m.Config.MediaType) != mediaType {
		return Entry{}, false, nil // not one of ours
	}
	raw, err := s.small(ctx, digest.Digest(m.Config.Digest.String()))
	if err != nil {
		return Entry{}, false, err
	}
	var e Entry
	if mediaType == MediaTypeEntry {
		if err := json.Unmarshal(raw, &e); err != nil {
			return Entry{}, false, fmt.Errorf("cache entry %s in %s: %w", tag, s.be, err)
		}
		if len(e.Layers) != len(m.Layers) {
			return Entry{}, false, fmt.Errorf("cache entry %s in %s: %d layers in its record, %d in its manifest", tag, s.be, len(e.Layers), len(m.Layers))
		}
		for i, l := range m.Layers {
			if string(e.Layers[i].Digest) != l.Digest.String() {
				return Entry{}, false, fmt.Errorf("cache entry %s in %s: layer %d is %s in its record, %s in its manifest", tag, s.be, i, e.Layers[i].Digest, l.Digest)
			}
		}
	} else {
		var mc mountConfig
		if err := json.Unmarshal(raw, &mc); err != nil || len(m.Layers) != 1 {
			return Entry{}, false, fmt.Errorf("cache mount entry %s in %s: malformed", tag, s.be)
		}
		l := m.Layers[0]
		e.Layers = []Layer{{DiffID: mc.DiffID, Digest: digest.Digest(l.Digest.String()), Size: l.Size, MediaType: string(l.MediaType)}}
	}
	e.src = s
	return e, true, nil
}

// small reads a config blob whole, verified.
func (s *source) small(ctx context.Context, d digest.Digest) ([]byte, error) {
	rc, err := s.be.Blob(ctx, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("cache blob %s in %s: %w", d, s.be, err)
	}
	if got := digest.FromBytes(raw); got != d {
		return nil, fmt.Errorf("cache blob %s in %s hashes to %s", d, s.be, got)
	}
	return raw, nil
}

// Lookup finds key's entry: its manifest and record, no layer. A source
// that cannot be read is no hit (a cache never fails a build).
func (im *Importer) Lookup(ctx context.Context, key digest.Digest) (Entry, bool) {
	for _, s := range im.sources {
		e, ok, err := s.entry(ctx, im.c, s.n.key(key), MediaTypeEntry)
		if err == nil && ok && e.Key == key {
			return e, true
		}
	}
	return Entry{}, false
}

// LookupSlot finds the last entry exported for a step slot, for
// --explain-cache; it is only a hint.
func (im *Importer) LookupSlot(ctx context.Context, slot string) (Entry, bool) {
	for _, s := range im.sources {
		if e, ok, err := s.entry(ctx, im.c, s.n.slot(slot), MediaTypeEntry); err == nil && ok {
			return e, true
		}
	}
	return Entry{}, false
}

// Sources says what the importer reads, for messages.
func (im *Importer) Sources() []string {
	var out []string
	for _, s := range im.sources {
		out = append(out, s.spec.String())
	}
	return out
}

// Fetch puts e's layers in the store, downloading only those it lacks,
// and returns them bottom first. Each blob is verified against its digest
// and its uncompressed content against its diffID before it is recorded.
func (im *Importer) Fetch(ctx context.Context, e Entry) ([]store.Layer, error) {
	if e.src == nil {
		return nil, fmt.Errorf("cache entry %s was not imported", e.Key)
	}
	out := make([]store.Layer, len(e.Layers))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i, l := range e.Layers {
		g.Go(func() error {
			sl, err := im.c.fetchLayer(gctx, e.src, l)
			out[i] = sl
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("importing cache key %s from %s: %w", e.Key, e.src.be, err)
	}
	return out, nil
}

func (c *Cache) fetchLayer(ctx context.Context, src *source, l Layer) (store.Layer, error) {
	if sl, err := c.st.Layers().Get(ctx, l.DiffID); err == nil {
		return sl, nil
	}
	return c.pull.do(string(l.DiffID), func() (store.Layer, error) {
		if sl, err := c.st.Layers().Get(ctx, l.DiffID); err == nil {
			return sl, nil
		}
		if err := errors.Join(l.DiffID.Validate(), l.Digest.Validate()); err != nil {
			return store.Layer{}, err // both are checked by Import: neither may be empty
		}
		if rb, ok := src.be.(*registryBackend); ok {
			// Lazy: fetched from the cache's repository when first read.
			sl := store.Layer{DiffID: l.DiffID, Digest: l.Digest, Size: l.Size, MediaType: l.MediaType}
			if err := c.st.Layers().Record(ctx, sl, store.LayerSource{Repo: rb.repo.Name()}); err != nil {
				return store.Layer{}, err
			}
			return c.st.Layers().Get(ctx, l.DiffID)
		}
		rc, err := src.be.Blob(ctx, l.Digest)
		if err != nil {
			return store.Layer{}, err
		}
		defer rc.Close()
		c.Fetched.Add(1)
		return c.st.Layers().Import(ctx, rc, l.Digest, l.DiffID, l.MediaType)
	})
}

// configBytes is an entry's config blob.
func (e Entry) configBytes() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Errors are the sources that could not be listed (no hit came from
// them), for a warning: a cache that cannot be read never fails a build.
func (im *Importer) Errors(ctx context.Context) []error {
	var out []error
	for _, s := range im.sources {
		if _, err := s.list(ctx); err != nil { // started by Importer: waits for it
			out = append(out, fmt.Errorf("%s: %w", s.spec, err))
		}
	}
	return out
}
