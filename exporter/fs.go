//go:build linux

package exporter

import (
	"context"
	"fmt"
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/internal/ctxio"
	"github.com/kiln-build/kiln/layer"
)

// WriteFilesystemTar writes the final filesystem of img (its layers merged,
// whiteouts applied) to w as one tar.
func WriteFilesystemTar(ctx context.Context, w io.Writer, img v1.Image) error {
	if err := flatten(ctx, ctxio.NewWriter(ctx, w), img); err != nil {
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
