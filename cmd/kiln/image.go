//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/exporter"
	"github.com/kiln-build/kiln/solver/dag"
)

// sourceDateEpoch is the image's creation time for reproducible builds:
// the SOURCE_DATE_EPOCH build arg (BuildKit's built-in), else the
// environment variable; nil when neither is set.
func sourceDateEpoch(buildArgs map[string]string) (*time.Time, error) {
	s, from := buildArgs["SOURCE_DATE_EPOCH"], "--build-arg"
	if s == "" {
		s, from = os.Getenv("SOURCE_DATE_EPOCH"), "the environment"
	}
	if s == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("SOURCE_DATE_EPOCH=%q (from %s) is not a Unix time: give whole seconds since 1970, e.g. $(git log -1 --format=%%ct)", s, from)
	}
	t := time.Unix(n, 0).UTC()
	return &t, nil
}

// stampConfig sets the image's and its new history entries' creation time.
func stampConfig(cfg *v1.ConfigFile, now time.Time) {
	cfg.Created = v1.Time{Time: now}
	for i := range cfg.History {
		if cfg.History[i].Created.IsZero() {
			cfg.History[i].Created = v1.Time{Time: now}
		}
	}
}

// commitImage writes the image made of cfg and layers, unless the same
// config over the same layers was committed before: then that image (and
// its ID) is reused, so a fully cached rebuild changes nothing. With an
// epoch the image is stamped with it (and is the same image every time).
func commitImage(ctx context.Context, store *cache.Store, cfg v1.ConfigFile, x cache.ConfigExtras, layers []cache.Layer, noCache bool, epoch *time.Time) (dag.Digest, error) {
	key, err := cache.ImageKey(&cfg, layers, x)
	if err != nil {
		return "", err
	}
	if !noCache && epoch == nil {
		if d, err := store.LookupImage(ctx, key); err == nil {
			return d, nil
		}
	}
	now := time.Now().UTC()
	if epoch != nil {
		now = *epoch
	}
	stampConfig(&cfg, now)
	d, err := store.CommitImage(ctx, &cfg, layers, x)
	if err != nil {
		return "", err
	}
	return d, store.RecordImage(ctx, key, d)
}

// configDigest is an image's ID: its config digest, as docker prints it.
func configDigest(ctx context.Context, store *cache.Store, manifest dag.Digest) (string, error) {
	b, err := store.ReadBlob(ctx, manifest)
	if err != nil {
		return "", err
	}
	m, err := v1.ParseManifest(bytes.NewReader(b))
	if err != nil {
		return "", fmt.Errorf("manifest %s: %w", manifest, err)
	}
	return m.Config.Digest.String(), nil
}

// export writes the stored image with manifest digest d to out.
func export(ctx context.Context, store *cache.Store, d dag.Digest, name string, out exporter.Output) error {
	if out.Name == "" {
		out.Name = name
	}
	push := out.Type == exporter.TypeRegistry || out.Attrs["push"] == "true"
	if out.Type == exporter.TypeImage || out.Type == exporter.TypeRegistry {
		if out.Name == "" {
			return fmt.Errorf("--output type=%s needs name=... or -t", out.Type)
		}
		if err := store.Tag(ctx, out.Name, d); err != nil {
			return err
		}
		if !push {
			return nil
		}
	}
	// Layers built here are stored uncompressed; an image that leaves the
	// machine gets them gzipped (once: the store keeps the gzip blobs).
	// The filesystem outputs read the layers uncompressed anyway.
	imageOf := store.DistributableImage
	if out.Type == exporter.TypeLocal || out.Type == exporter.TypeTar {
		imageOf = store.Image
	}
	img, err := imageOf(ctx, d)
	if err != nil {
		return err
	}
	if push {
		return pushImage(ctx, img, out.Name)
	}
	if out.Name == "" {
		out.Name = "kiln-build:latest"
	}
	return exporter.Export(ctx, out, img, os.Stdout)
}

// pushImage uploads img to ref's registry (plain HTTP only on loopback).
func pushImage(ctx context.Context, img v1.Image, ref string) error {
	r, err := cache.ParseName(ref)
	if err != nil {
		return err
	}
	if err := remote.Write(r, img, remote.WithContext(ctx)); err != nil {
		return fmt.Errorf("pushing %s: %w", ref, err)
	}
	return nil
}
