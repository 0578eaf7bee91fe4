//go:build linux

package exporter

import (
	"context"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/internal/atomicfile"
	"github.com/kiln-build/kiln/registry"
)

// Images is what Export reads of the local store's images (store.Images).
type Images interface {
	// Get is the stored image with manifest d, its layers as stored (a
	// layer built here uncompressed).
	Get(ctx context.Context, d digest.Digest) (v1.Image, error)
	// Distributable is the image as it leaves the machine: every layer
	// compressed, made once and kept.
	Distributable(ctx context.Context, d digest.Digest) (v1.Image, error)
}

// Names names images in the local store (store.Names).
type Names interface {
	// TagDurable names the image d in the store, fsynced.
	TagDurable(ctx context.Context, ref string, d digest.Digest) error
}

// defaultName is what an archive names an image that has no name.
const defaultName = "kiln-build:latest"

// Export writes the stored image with manifest d where out says: type=image
// names it in the store, type=registry names it and pushes it (as does
// push=true on any type), and the file types write it out, on stdout for
// dest=-. out.Name is the name it gets ("" for the file types:
// kiln-build:latest in the archive).
func Export(ctx context.Context, images Images, names Names, d digest.Digest, out Output, stdout io.Writer) error {
	push := out.Type == TypeRegistry || out.Attrs["push"] == "true"
	if out.Type == TypeImage || out.Type == TypeRegistry {
		if out.Name == "" {
			return fmt.Errorf("--output type=%s needs name=... or -t", out.Type)
		}
		if err := names.TagDurable(ctx, out.Name, d); err != nil {
			return err
		}
		if !push {
			return nil
		}
	}
	// Layers built here are stored uncompressed; an image that leaves the
	// machine gets them gzipped. The filesystem outputs read the layers
	// uncompressed anyway.
	imageOf := images.Distributable
	if out.Type == TypeLocal || out.Type == TypeTar {
		imageOf = images.Get
	}
	img, err := imageOf(ctx, d)
	if err != nil {
		return err
	}
	if push {
		return Push(ctx, img, out.Name)
	}
	if out.Name == "" {
		out.Name = defaultName
	}
	return Write(ctx, out, img, stdout)
}

// Push uploads img to ref's registry (plain HTTP only on loopback).
func Push(ctx context.Context, img v1.Image, ref string) error {
	r, err := registry.Default.ParseReference(ref)
	if err != nil {
		return err
	}
	return registry.Default.Write(ctx, r, img)
}

// Write writes img where out says, for the types that are files: oci,
// docker, local and tar. stdout receives dest=-. The image store and
// registry types are Export's.
func Write(ctx context.Context, out Output, img v1.Image, stdout io.Writer) error {
	if out.Type == TypeLocal {
		return WriteLocal(ctx, out.Dest, img)
	}
	if out.Type == TypeOCI && !out.Tar {
		return WriteOCILayout(ctx, out.Dest, img, out.Name)
	}
	var write func(context.Context, io.Writer) error
	switch out.Type {
	case TypeOCI:
		write = func(ctx context.Context, w io.Writer) error { return WriteOCIArchive(ctx, w, img, out.Name) }
	case TypeDocker:
		write = func(ctx context.Context, w io.Writer) error { return WriteDockerArchive(ctx, w, img, out.Name) }
	case TypeTar:
		write = func(ctx context.Context, w io.Writer) error { return WriteFilesystemTar(ctx, w, img) }
	default:
		return fmt.Errorf("export: type=%s is not a file output", out.Type)
	}
	if out.Dest == "-" {
		return write(ctx, stdout)
	}
	// Through a temporary file beside it: a failed export leaves no
	// truncated archive behind.
	if err := atomicfile.WriteFile(out.Dest, atomicfile.Options{Perm: 0o644}, func(w io.Writer) error { return write(ctx, w) }); err != nil {
		return fmt.Errorf("export to %s: %w", out.Dest, err)
	}
	return nil
}
