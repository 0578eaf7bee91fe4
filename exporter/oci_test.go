//go:build linux

package exporter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// checkLayout checks the layout in dir holds exactly img under the given
// annotations and returns the image read back from it.
func checkLayout(t *testing.T, dir string, img v1.Image, refName, fullName string) v1.Image {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(dir)
	must(t, err)
	im, err := idx.IndexManifest()
	must(t, err)
	if len(im.Manifests) != 1 {
		t.Fatalf("index.json lists %d manifests, want 1", len(im.Manifests))
	}
	desc := im.Manifests[0]
	want, err := img.Digest()
	must(t, err)
	if desc.Digest != want || desc.MediaType != types.OCIManifestSchema1 {
		t.Errorf("index.json lists %s %s, want %s %s", desc.MediaType, desc.Digest, types.OCIManifestSchema1, want)
	}
	if got := desc.Annotations[AnnotationRefName]; got != refName {
		t.Errorf("%s = %q, want %q", AnnotationRefName, got, refName)
	}
	if got := desc.Annotations[AnnotationContainerName]; got != fullName {
		t.Errorf("%s = %q, want %q", AnnotationContainerName, got, fullName)
	}
	if desc.Platform == nil || desc.Platform.OS != "linux" || desc.Platform.Architecture != "amd64" {
		t.Errorf("index.json platform %v, want linux/amd64", desc.Platform)
	}
	got, err := layout.Path(dir).Image(want)
	must(t, err)
	// validate reads every blob back and checks digests, sizes and diffIDs.
	must(t, validate.Image(got))
	if g, w := layerDigests(t, got), layerDigests(t, img); !slices.Equal(g, w) {
		t.Errorf("layers read back %v, want %v", g, w)
	}
	return got
}

func TestWriteOCIArchive(t *testing.T) {
	img := testImage(t)
	var buf bytes.Buffer
	must(t, WriteOCIArchive(t.Context(), &buf, img, "hello:1"))
	dir := t.TempDir()
	names := untar(t, bytes.NewReader(buf.Bytes()), dir)
	for _, n := range []string{"oci-layout", "index.json", "blobs/", "blobs/sha256/"} {
		if !slices.Contains(names, n) {
			t.Errorf("archive lacks %s: %q", n, names)
		}
	}
	back := checkLayout(t, dir, img, "1", "docker.io/library/hello:1")

	// The image read back is backed by compressed blobs, as images from
	// kiln's store are: writing it again must give the very same archive.
	var again bytes.Buffer
	must(t, WriteOCIArchive(t.Context(), &again, back, "hello:1"))
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("archive of the image read back differs from the first archive")
	}
}

func TestWriteOCILayout(t *testing.T) {
	img := testImage(t)
	for _, tc := range []struct{ name, ref, full string }{
		{"", "latest", ""},
		{"hello", "latest", "docker.io/library/hello:latest"},
		{"localhost:5000/team/app:v2", "v2", "localhost:5000/team/app:v2"},
		{"ghcr.io/o/x:1.2", "1.2", "ghcr.io/o/x:1.2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "layout")
			must(t, writeOCILayout(t.Context(), dir, img, tc.name, layoutOptions{}))
			checkLayout(t, dir, img, tc.ref, tc.full)
			tmp, _ := filepath.Glob(filepath.Join(dir, "blobs", "sha256", ".tmp-*"))
			if len(tmp) > 0 {
				t.Errorf("temporary files left: %v", tmp)
			}
		})
	}
}

func TestWriteOCIBadName(t *testing.T) {
	err := WriteOCIArchive(t.Context(), io.Discard, testImage(t), "UPPER/case:tag!")
	if err == nil {
		t.Error("WriteOCIArchive accepted an invalid image name")
	}
}

// lyingLayer claims a digest its bytes do not have.
type lyingLayer struct{ partial.CompressedLayer }

func (l lyingLayer) Digest() (v1.Hash, error) {
	return v1.NewHash("sha256:" + strings.Repeat("ab", 32))
}

func TestWriteOCIVerifiesBlobs(t *testing.T) {
	good := fileLayer(t, "a", "b")
	bad, err := partial.CompressedToLayer(lyingLayer{good})
	must(t, err)
	img, err := mutate.AppendLayers(testImage(t), bad)
	must(t, err)
	err = writeOCILayout(t.Context(), t.TempDir(), img, "x:1", layoutOptions{})
	if err == nil || !strings.Contains(err.Error(), "content has digest") {
		t.Errorf("WriteOCILayout of a layer with a wrong digest: %v", err)
	}
}

func TestWriteOCICancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := WriteOCIArchive(ctx, io.Discard, testImage(t), "x:1")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("WriteOCIArchive with a cancelled context: %v", err)
	}
}

func TestSkopeoInspect(t *testing.T) {
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Skip("skopeo not installed")
	}
	img := testImage(t)
	digest, err := img.Digest()
	must(t, err)
	file := filepath.Join(t.TempDir(), "img.tar")
	f, err := os.Create(file)
	must(t, err)
	must(t, WriteOCIArchive(t.Context(), f, img, "hello:1"))
	must(t, f.Close())
	dir := filepath.Join(t.TempDir(), "layout")
	must(t, writeOCILayout(t.Context(), dir, img, "hello:1", layoutOptions{}))

	for _, ref := range []string{"oci-archive:" + file, "oci-archive:" + file + ":1", "oci:" + dir + ":1"} {
		out, err := exec.CommandContext(t.Context(), "skopeo", "inspect", ref).CombinedOutput()
		if err != nil {
			t.Fatalf("skopeo inspect %s: %v\n%s", ref, err, out)
		}
		var got struct {
			Digest       string
			Architecture string
			Os           string
			Layers       []string
		}
		must(t, json.Unmarshal(out, &got))
		if got.Digest != digest.String() || got.Os != "linux" || got.Architecture != "amd64" || len(got.Layers) != 3 {
			t.Errorf("skopeo inspect %s = %+v, want digest %s linux/amd64 3 layers", ref, got, digest)
		}
	}
}

func TestUmociUnpack(t *testing.T) {
	if _, err := exec.LookPath("umoci"); err != nil {
		t.Skip("umoci not installed")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: umoci unpack without --rootless")
	}
	dir := filepath.Join(t.TempDir(), "layout")
	must(t, writeOCILayout(t.Context(), dir, testImage(t), "hello:1", layoutOptions{}))
	bundle := filepath.Join(t.TempDir(), "bundle")
	out, err := exec.CommandContext(t.Context(), "umoci", "unpack", "--image", dir+":1", bundle).CombinedOutput()
	if err != nil {
		t.Fatalf("umoci unpack: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(bundle, "rootfs", "etc", "hello"))
	if err != nil || string(b) != "hello\n" {
		t.Errorf("etc/hello in the unpacked bundle: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(bundle, "rootfs", "etc", "gone")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("etc/gone was whited out but unpacks: %v", err)
	}
	cfg, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	must(t, err)
	if !strings.Contains(string(cfg), `"/bin/tool"`) {
		t.Errorf("runtime config lacks the image's Cmd:\n%s", cfg)
	}
}

func ExampleParseOutput() {
	out, _ := ParseOutput("type=oci,dest=dir,tar=false")
	fmt.Println(out.Type, out.Dest, out.Tar)
	// Output: oci dir false
}
