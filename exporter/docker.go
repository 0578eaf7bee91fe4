//go:build linux

package exporter

import (
	"context"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/kiln-build/kiln/internal/ctxio"
)

// WriteDockerArchive writes img to w in the format of `docker save`
// (manifest.json with the repo tag, the config and the layer blobs as they
// are), which `docker load` and `podman load` accept. It writes no legacy
// "repositories" file: that one points at v1 layer directories this format
// no longer has, and docker and podman read manifest.json instead.
func WriteDockerArchive(ctx context.Context, w io.Writer, img v1.Image, ref string) error {
	tag, err := name.NewTag(ref, name.WeakValidation)
	if err != nil {
		return fmt.Errorf("writing docker archive: image name %q: %w", ref, err)
	}
	if err := tarball.Write(tag, img, ctxio.NewWriter(ctx, w)); err != nil {
		return fmt.Errorf("writing docker archive of %s: %w", ref, err)
	}
	return nil
}
