//go:build linux

package exporter

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// fileLayer is a layer holding the given files (path → content).
func fileLayer(t *testing.T, files ...string) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for i := 0; i+1 < len(files); i += 2 {
		if dir := filepath.Dir(files[i]); dir != "." && !dirs[dir] {
			dirs[dir] = true
			must(t, tw.WriteHeader(&tar.Header{Name: dir + "/", Typeflag: tar.TypeDir, Mode: 0o755}))
		}
		must(t, tw.WriteHeader(&tar.Header{Name: files[i], Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(files[i+1]))}))
		_, err := io.WriteString(tw, files[i+1])
		must(t, err)
	}
	must(t, tw.Close())
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(types.OCILayer))
	must(t, err)
	return l
}

// testImage is a linux/amd64 OCI image: two file layers and a random one,
// the second file layer deleting a file of the first.
func testImage(t *testing.T) v1.Image {
	t.Helper()
	rnd, err := random.Layer(4096, types.OCILayer)
	must(t, err)
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.AppendLayers(img,
		fileLayer(t, "etc/hello", "hello\n", "etc/gone", "x"),
		fileLayer(t, "etc/.wh.gone", "", "bin/tool", "#!/bin/sh\n"),
		rnd)
	must(t, err)
	cfg, err := img.ConfigFile()
	must(t, err)
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Config.Cmd = []string{"/bin/tool"}
	img, err = mutate.ConfigFile(img, cfg)
	must(t, err)
	return img
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// untar extracts a tar of regular files and directories into dir.
func untar(t *testing.T, r io.Reader, dir string) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		must(t, err)
		names = append(names, hdr.Name)
		p := filepath.Join(dir, filepath.FromSlash(hdr.Name))
		switch hdr.Typeflag {
		case tar.TypeDir:
			must(t, os.MkdirAll(p, 0o755))
		case tar.TypeReg:
			must(t, os.MkdirAll(filepath.Dir(p), 0o755))
			f, err := os.Create(p)
			must(t, err)
			_, err = io.Copy(f, tr)
			must(t, err)
			must(t, f.Close())
		default:
			t.Fatalf("unexpected entry %q of type %q", hdr.Name, hdr.Typeflag)
		}
	}
}

func layerDigests(t *testing.T, img v1.Image) []v1.Hash {
	t.Helper()
	ls, err := img.Layers()
	must(t, err)
	var out []v1.Hash
	for _, l := range ls {
		d, err := l.Digest()
		must(t, err)
		out = append(out, d)
	}
	return out
}
