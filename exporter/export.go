//go:build linux

package exporter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/internal/atomicfile"
	"github.com/kiln-build/kiln/layer"
	"github.com/kiln-build/kiln/registry"
)

// Images is what Export reads of the local store's images (store.Images).
type Images interface {
	// Get is the stored image with manifest d, its layers as stored (a
	// layer built here uncompressed).
	Get(ctx context.Context, d digest.Digest) (v1.Image, error)
	// DistributableAs is the image as it leaves the machine: layers built
	// here compressed with c, made once per codec and kept; base layers
	// too if force is set.
	DistributableAs(ctx context.Context, d digest.Digest, c layer.Codec, force bool) (v1.Image, error)
	// RewriteTimestamp stores the image with the file times of its layers
	// built here clamped to epoch and returns its manifest digest.
	RewriteTimestamp(ctx context.Context, d digest.Digest, epoch time.Time) (digest.Digest, error)
}

// Names names images in the local store (store.Names).
type Names interface {
	// TagDurable names the image d in the store, fsynced.
	TagDurable(ctx context.Context, ref string, d digest.Digest) error
}

// defaultName is what an archive names an image that has no name.
const defaultName = "kiln-build:latest"

// Result is what an export made, for --metadata-file and --iidfile: the
// manifest's descriptor (as pushed or written; as stored for type=image),
// the config digest (the image ID) and the names given.
type Result struct {
	Descriptor v1.Descriptor
	Config     v1.Hash
	Names      []string
	Stored     digest.Digest // the store's manifest of what was exported (rewrite-timestamp makes a new one)
}

// Export is ExportImage without the result.
func Export(ctx context.Context, images Images, names Names, d digest.Digest, out Output, stdout io.Writer) error {
	_, err := ExportImage(ctx, images, names, d, out, nil, stdout)
	return err
}

// ExportImage writes the stored image with manifest d where out says:
// type=image names it in the store, type=registry names it and pushes it
// (as does push=true), and the file types write it out, on stdout for
// dest=-. out.Names are the names it gets (none for the file types:
// kiln-build:latest in the archive). With rewrite-timestamp, epoch is
// SOURCE_DATE_EPOCH (an error when nil) and the image exported is the one
// with clamped times.
func ExportImage(ctx context.Context, images Images, names Names, d digest.Digest, out Output, epoch *time.Time, stdout io.Writer) (Result, error) {
	if len(out.Names) == 0 && out.Name != "" {
		out.Names = []string{out.Name}
	}
	push := out.Push || out.Type == TypeRegistry || out.Attrs["push"] == "true"
	if out.RewriteTimestamp {
		if epoch == nil {
			return Result{}, errors.New("--output rewrite-timestamp=true needs SOURCE_DATE_EPOCH (--build-arg SOURCE_DATE_EPOCH=... or the environment)")
		}
		var err error
		if d, err = images.RewriteTimestamp(ctx, d, *epoch); err != nil {
			return Result{}, fmt.Errorf("rewriting timestamps: %w", err)
		}
	}
	res := Result{Names: out.Names, Stored: d}
	if out.Type == TypeImage || out.Type == TypeRegistry {
		if len(out.Names) == 0 {
			return Result{}, fmt.Errorf("--output type=%s needs name=... or -t", out.Type)
		}
		for _, n := range out.Names {
			if err := names.TagDurable(ctx, n, d); err != nil {
				return Result{}, err
			}
		}
		if !push {
			img, err := images.Get(ctx, d)
			if err != nil {
				return Result{}, err
			}
			return describe(img, res)
		}
	}
	if !out.IsImage() {
		img, err := images.Get(ctx, d)
		if err != nil {
			return Result{}, err
		}
		return res, Write(ctx, out, img, stdout)
	}
	img, err := images.DistributableAs(ctx, d, out.Codec, out.ForceCompression)
	if err != nil {
		return Result{}, err
	}
	if img, err = retype(img, out.DockerTypes, out.Annotations[AnnotateManifest]); err != nil {
		return Result{}, err
	}
	if push {
		for _, n := range out.Names {
			if err := Push(ctx, img, n); err != nil {
				return Result{}, err
			}
		}
		return describe(img, res)
	}
	if out.Name == "" {
		out.Name = defaultName
	}
	if err := Write(ctx, out, img, stdout); err != nil {
		return Result{}, err
	}
	return describe(img, res)
}

// Describe is the Result of an export of img that wrote nothing: its
// manifest descriptor and config digest.
func Describe(img v1.Image) (Result, error) { return describe(img, Result{}) }

// describe fills r with img's descriptor and config digest.
func describe(img v1.Image, r Result) (Result, error) {
	desc, err := partial.Descriptor(img)
	if err != nil {
		return Result{}, fmt.Errorf("describing the image: %w", err)
	}
	if r.Config, err = img.ConfigName(); err != nil {
		return Result{}, fmt.Errorf("describing the image: %w", err)
	}
	// As BuildKit's containerimage.descriptor: the config digest and
	// the creation time ride along.
	desc.Annotations = map[string]string{"config.digest": r.Config.String()}
	if cfg, err := img.ConfigFile(); err == nil && !cfg.Created.IsZero() {
		desc.Annotations["org.opencontainers.image.created"] = cfg.Created.UTC().Format(time.RFC3339)
	}
	r.Descriptor = *desc
	return r, nil
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
	lo := layoutOptions{index: out.Annotations[AnnotateIndex], descriptor: out.Annotations[AnnotateDescriptor]}
	if out.Type == TypeOCI && !out.Tar {
		return writeOCILayout(ctx, out.Dest, img, out.Name, lo)
	}
	var write func(context.Context, io.Writer) error
	switch out.Type {
	case TypeOCI:
		write = func(ctx context.Context, w io.Writer) error { return writeOCIArchive(ctx, w, img, out.Name, lo) }
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
