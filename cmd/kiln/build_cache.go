//go:build linux

package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/layer"
	"github.com/kiln-build/kiln/remotecache"
	"github.com/kiln-build/kiln/solver"
	"github.com/kiln-build/kiln/solver/dag"
	"github.com/kiln-build/kiln/store"
)

// cacheFlags are --cache-from and --cache-to, in buildx's CSV syntax.
type cacheFlags struct {
	from, to []string
}

func (c *cacheFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&c.from, "cache-from", nil, `import build cache: "type=registry,ref=REF" or "type=local,src=DIR" (repeatable, tried in order)`)
	fl.StringArrayVar(&c.to, "cache-to", nil, `export build cache: "type=registry,ref=REF[,mode=min|max][,cache-mounts=true]" or "type=local,dest=DIR[,...]" (repeatable)`)
}

// cacheSpec is a parsed --cache-from/--cache-to.
type cacheSpec struct {
	remotecache.Spec
	ignoreError bool // export: a failure is a warning (the default)
}

// parseCacheSpec reads one value of --cache-from (export false) or
// --cache-to (export true). A bare value is a registry reference, as in
// buildx; every key must be known.
func parseCacheSpec(v string, export bool) (cacheSpec, error) {
	flag := "--cache-from"
	if export {
		flag = "--cache-to"
	}
	fail := func(format string, args ...any) (cacheSpec, error) {
		return cacheSpec{}, fmt.Errorf("%s %q: %s", flag, v, fmt.Sprintf(format, args...))
	}
	r := csv.NewReader(strings.NewReader(v))
	r.LazyQuotes = true
	fields, err := r.Read()
	if err != nil || len(fields) == 0 {
		return fail("expected key=value pairs separated by commas")
	}
	s := cacheSpec{Spec: remotecache.Spec{Mode: "min", Codec: remotecache.DefaultCodec}, ignoreError: true}
	if len(fields) == 1 && !strings.Contains(fields[0], "=") {
		s.Type, s.Ref = "registry", strings.TrimSpace(fields[0])
	} else {
		for _, f := range fields {
			k, val, ok := strings.Cut(strings.TrimSpace(f), "=")
			if !ok {
				return fail("%q is not key=value", f)
			}
			switch k = strings.ToLower(k); {
			case k == "type":
				s.Type = val
			case k == "ref":
				s.Ref = val
			case k == "mode" && export:
				if val != "min" && val != "max" {
					return fail("mode=%s: use min or max", val)
				}
				s.Mode = val
			case k == "cache-mounts" && export:
				b, err := strconv.ParseBool(val)
				if err != nil {
					return fail("cache-mounts=%s: use true or false", val)
				}
				s.CacheMounts = b
			case k == "ignore-error" && export:
				b, err := strconv.ParseBool(val)
				if err != nil {
					return fail("ignore-error=%s: use true or false", val)
				}
				s.ignoreError = b
			case k == "compression" && export:
				switch val {
				case "zstd":
					s.Codec.Kind = layer.Zstd
				case "gzip":
					s.Codec.Kind = layer.Gzip
				case "uncompressed":
					s.Codec.Kind = layer.Uncompressed
				default:
					return fail("compression=%s: use gzip (the default), zstd or uncompressed", val)
				}
			case k == "compression-level" && export:
				n, err := strconv.Atoi(val)
				if err != nil {
					return fail("compression-level=%s: want a number", val)
				}
				s.Codec.Level = n
			case k == "dest" && export, k == "src" && !export:
				s.Dir = val
			default:
				keys := "type, ref, src"
				if export {
					keys = "type, ref, dest, mode, cache-mounts, compression, compression-level, ignore-error"
				}
				return fail("unknown key %q (use %s)", k, keys)
			}
		}
	}
	if export {
		if err := s.Codec.Validate(); err != nil {
			return fail("%v", err)
		}
	}
	switch s.Type {
	case "registry":
		if s.Ref == "" {
			return fail("type=registry needs ref=REF")
		}
		if s.Dir != "" {
			return fail("type=registry takes ref=, not a directory")
		}
	case "local":
		if s.Dir == "" {
			if export {
				return fail("type=local needs dest=DIR")
			}
			return fail("type=local needs src=DIR")
		}
		if s.Ref != "" {
			return fail("type=local takes a directory, not ref=")
		}
		abs, err := filepath.Abs(s.Dir)
		if err != nil {
			return fail("%v", err)
		}
		s.Dir = abs
	case "":
		return fail("type= is required (registry or local)")
	default:
		return fail("unknown type %q (use registry or local)", s.Type)
	}
	return s, nil
}

// buildCache is a build's remote caches: the importer the solver asks,
// the exports done once the image is committed.
type buildCache struct {
	c  *remotecache.Cache
	im *remotecache.Importer // nil: no --cache-from
	to []cacheSpec
}

func newBuildCache(ctx context.Context, st *store.Store, platform string, f cacheFlags) (*buildCache, error) {
	b := &buildCache{c: remotecache.New(st, platform)}
	var from []remotecache.Spec
	for _, v := range f.from {
		s, err := parseCacheSpec(v, false)
		if err != nil {
			return nil, err
		}
		from = append(from, s.Spec)
	}
	for _, v := range f.to {
		s, err := parseCacheSpec(v, true)
		if err != nil {
			return nil, err
		}
		// One compression for every export: each layer is compressed once.
		if len(b.to) == 0 {
			b.c.SetCodec(s.Codec)
		} else if s.Codec != b.to[0].Codec {
			return nil, fmt.Errorf("--cache-to %q: every --cache-to of a build must use the same compression (each layer is compressed once for all)", v)
		}
		b.to = append(b.to, s)
		if err := b.c.Stream(s.Spec); err != nil {
			return nil, err
		}
	}
	if len(from) > 0 {
		im, err := b.c.Importer(ctx, from)
		if err != nil {
			return nil, err
		}
		b.im = im
	}
	return b, nil
}

// remote is what the solver asks, nil without --cache-from.
func (b *buildCache) remote() solver.RemoteCache {
	if b.im == nil {
		return nil
	}
	return remoteAdapter{b.im}
}

// produced starts compressing (and, for mode=max, uploading) each new
// layer when there is an export.
func (b *buildCache) produced(ctx context.Context) func([]store.Layer) {
	if len(b.to) == 0 {
		return nil
	}
	return func(layers []store.Layer) { b.c.Prepare(ctx, layers) }
}

// export writes the build's cache to every --cache-to.
func (b *buildCache) export(ctx context.Context, s *solver.Solver, root *dag.Vertex, progress *buildProgress) error {
	if b.im != nil {
		for _, err := range b.im.Errors(ctx) {
			progress.Printf("warning: cannot read the build cache %v\n", err)
		}
		progress.Printf("importing cache from %s: %d manifests read, %d blobs fetched\n",
			strings.Join(b.im.Sources(), ", "), b.c.Manifest.Load(), b.c.Fetched.Load())
	}
	if len(b.to) == 0 {
		return nil
	}
	var results []remotecache.Result
	for _, r := range s.CacheResults(root) {
		results = append(results, remotecache.Result{Key: r.Key, Layers: r.Layers, Slot: r.Slot, Step: r.Step, Final: r.Final})
	}
	mounts := s.CacheMountsUsed()
	for _, spec := range b.to {
		rep, err := b.c.Export(ctx, spec.Spec, results, mounts)
		if err != nil {
			if !spec.ignoreError {
				return err
			}
			progress.Printf("warning: cache export to %s failed (the build succeeded): %v\n", spec.Spec, err)
			continue
		}
		progress.Printf("exporting cache to %s (mode=%s): %s\n", spec.Spec, spec.Mode, rep)
	}
	return nil
}

// remoteAdapter is a remotecache.Importer as the solver's RemoteCache.
type remoteAdapter struct{ im *remotecache.Importer }

func (a remoteAdapter) Lookup(ctx context.Context, key digest.Digest) (solver.RemoteEntry, bool) {
	e, ok := a.im.Lookup(ctx, key)
	return solver.RemoteEntry{Key: e.Key, Step: e.Step, Handle: e}, ok
}

func (a remoteAdapter) LookupSlot(ctx context.Context, slot string) (solver.RemoteEntry, bool) {
	e, ok := a.im.LookupSlot(ctx, slot)
	return solver.RemoteEntry{Key: e.Key, Step: e.Step, Handle: e}, ok
}

func (a remoteAdapter) Fetch(ctx context.Context, e solver.RemoteEntry) ([]store.Layer, error) {
	re, ok := e.Handle.(remotecache.Entry)
	if !ok {
		return nil, fmt.Errorf("cache entry %s is not from the remote cache", e.Key)
	}
	return a.im.Fetch(ctx, re)
}

func (a remoteAdapter) ImportMount(ctx context.Context, id, dir string) (bool, error) {
	return a.im.ImportMount(ctx, id, dir)
}

func (a remoteAdapter) Sources() []string { return a.im.Sources() }
