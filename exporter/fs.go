//go:build linux

package exporter

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/cache/layer"
)

// WriteFilesystemTar writes the final filesystem of img (its layers merged,
// whiteouts applied) to w as one tar.
func WriteFilesystemTar(ctx context.Context, w io.Writer, img v1.Image) error {
	if err := flatten(ctx, &ctxWriter{ctx: ctx, w: w}, img); err != nil {
		return fmt.Errorf("writing filesystem tar: %w", err)
	}
	return nil
}

// WriteLocal writes the final filesystem of img as files under dir, which
// is created if needed. Owners are kept, which needs root. Nothing is
// written outside dir, whatever the image's symlinks say.
func WriteLocal(ctx context.Context, dir string, img v1.Image) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("writing files to %s: %w", dir, err)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(flatten(ctx, pw, img)) }()
	defer pr.Close()
	if _, err := layer.Apply(ctx, dir, pr); err != nil {
		return fmt.Errorf("writing files to %s: %w", dir, err)
	}
	return nil
}

// Export writes img where out says, for the types that are files: oci,
// docker, local and tar. stdout receives dest=-. The image store and
// registry types are the caller's.
func Export(ctx context.Context, out Output, img v1.Image, stdout io.Writer) error {
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
	return writeFileAtomic(out.Dest, func(w io.Writer) error { return write(ctx, w) })
}

// writeFileAtomic writes dst through a temporary file beside it, so a
// failed export leaves no truncated archive behind.
func writeFileAtomic(dst string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(dst), ".kiln-export-*")
	if err != nil {
		return fmt.Errorf("export to %s: %w", dst, err)
	}
	defer os.Remove(f.Name())
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), dst)
	}
	if err != nil {
		return fmt.Errorf("export to %s: %w", dst, err)
	}
	return nil
}
