//go:build linux

package exporter

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// ReadArchive reads the images in an OCI image layout tar, an OCI layout
// directory or a docker-archive tar at path, calling fn with each image and
// the name stored for it ("" if none). The images are valid only during fn.
func ReadArchive(ctx context.Context, path string, fn func(name string, img v1.Image) error) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("reading archive: %w", err)
	}
	if fi.IsDir() {
		return readLayout(ctx, path, fn)
	}
	isOCI, err := tarHas(path, "oci-layout")
	if err != nil {
		return fmt.Errorf("reading archive %s: %w", path, err)
	}
	if !isOCI {
		return readDockerArchive(path, fn)
	}
	dir, err := os.MkdirTemp("", "kiln-load-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := untarPlain(ctx, path, dir); err != nil {
		return fmt.Errorf("reading archive %s: %w", path, err)
	}
	return readLayout(ctx, dir, fn)
}

func readLayout(ctx context.Context, dir string, fn func(string, v1.Image) error) error {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return fmt.Errorf("reading OCI layout %s: %w", dir, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return fmt.Errorf("reading OCI layout %s: %w", dir, err)
	}
	for _, d := range im.Manifests {
		if !d.MediaType.IsImage() {
			continue
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			return fmt.Errorf("reading image %s: %w", d.Digest, err)
		}
		n := d.Annotations["io.containerd.image.name"]
		if n == "" {
			n = d.Annotations["org.opencontainers.image.ref.name"]
		}
		if err := fn(n, img); err != nil {
			return err
		}
	}
	return nil
}

func readDockerArchive(path string, fn func(string, v1.Image) error) error {
	opener := func() (io.ReadCloser, error) { return os.Open(path) }
	m, err := tarball.LoadManifest(opener)
	if err != nil {
		return fmt.Errorf("reading docker archive %s: %w", path, err)
	}
	for _, d := range m {
		var tag *name.Tag
		n := ""
		if len(d.RepoTags) > 0 {
			if t, err := name.NewTag(d.RepoTags[0], name.WeakValidation); err == nil {
				tag, n = &t, d.RepoTags[0]
			}
		}
		if tag == nil && len(m) > 1 {
			return errors.New("docker archive with several untagged images is not supported")
		}
		img, err := tarball.Image(opener, tag)
		if err != nil {
			return fmt.Errorf("reading docker archive %s: %w", path, err)
		}
		if err := fn(n, img); err != nil {
			return err
		}
	}
	return nil
}

func tarHas(path, entry string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if filepath.Clean(h.Name) == entry {
			return true, nil
		}
	}
}

// untarPlain extracts regular files and dirs of an archive (an OCI layout
// has nothing else), never outside dir.
func untarPlain(ctx context.Context, path, dir string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		p, err := securejoin.SecureJoin(dir, h.Name)
		if err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			out, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
}
