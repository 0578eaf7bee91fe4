//go:build linux

package exporter

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/layer"
)

// memStore is an image store of one image, in two forms: as stored and as
// it leaves the machine (here two different images, so that each output
// shows which form it got).
type memStore struct {
	d             digest.Digest
	stored, moved v1.Image
	tags          map[string]digest.Digest
}

func (m *memStore) Get(_ context.Context, d digest.Digest) (v1.Image, error) {
	if d != m.d {
		return nil, fmt.Errorf("image %s: not found", d)
	}
	return m.stored, nil
}

func (m *memStore) RewriteTimestamp(_ context.Context, d digest.Digest, _ time.Time) (digest.Digest, error) {
	return d, nil
}

func (m *memStore) DistributableAs(_ context.Context, d digest.Digest, _ layer.Codec, _ bool) (v1.Image, error) {
	if d != m.d {
		return nil, fmt.Errorf("image %s: not found", d)
	}
	return m.moved, nil
}

func (m *memStore) TagDurable(_ context.Context, ref string, d digest.Digest) error {
	m.tags[ref] = d
	return nil
}

var (
	_ Images = (*memStore)(nil)
	_ Names  = (*memStore)(nil)
)

func TestExport(t *testing.T) {
	stored := testImage(t)
	moved := testImage(t)
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	d := digest.FromBytes([]byte("the manifest"))
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		out     string
		tags    []string // names the store got
		pushed  string   // the reference the registry got
		file    string   // the file written
		form    v1.Image // the form written or pushed
		archive string   // the name the archive gives the image
	}{
		{name: "image", out: "type=image,name=app:1", tags: []string{"app:1"}},
		{name: "registry", out: "type=registry,name=" + host + "/app:2", tags: []string{host + "/app:2"}, pushed: host + "/app:2", form: moved},
		{name: "push attribute", out: "type=docker,dest=" + dir + "/never.tar,name=" + host + "/app:3,push=true", pushed: host + "/app:3", form: moved},
		{name: "docker archive", out: "type=docker,dest=" + dir + "/d.tar,name=app:4", file: dir + "/d.tar", form: moved, archive: "app:4"},
		{name: "unnamed docker archive", out: "type=docker,dest=" + dir + "/u.tar", file: dir + "/u.tar", form: moved, archive: defaultName},
		{name: "filesystem tar", out: "type=tar,dest=" + dir + "/fs.tar", file: dir + "/fs.tar", form: stored},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &memStore{d: d, stored: stored, moved: moved, tags: map[string]digest.Digest{}}
			out, err := ParseOutput(tc.out)
			must(t, err)
			must(t, Export(t.Context(), st, st, d, out, nil))
			if len(st.tags) != len(tc.tags) {
				t.Errorf("tags %v, want %v", st.tags, tc.tags)
			}
			for _, n := range tc.tags {
				if st.tags[n] != d {
					t.Errorf("tag %s = %s, want %s", n, st.tags[n], d)
				}
			}
			if tc.pushed != "" {
				r, err := name.ParseReference(tc.pushed, name.Insecure)
				must(t, err)
				got, err := remote.Image(r, remote.WithContext(t.Context()))
				must(t, err)
				sameImage(t, got, tc.form)
				if _, err := os.Stat(dir + "/never.tar"); err == nil {
					t.Error("push=true also wrote the file")
				}
			}
			if tc.file == "" {
				return
			}
			if tc.archive == "" { // the filesystem: the stored form's files
				var want bytes.Buffer
				must(t, WriteFilesystemTar(t.Context(), &want, tc.form))
				got, err := os.ReadFile(tc.file)
				must(t, err)
				if !bytes.Equal(got, want.Bytes()) {
					t.Error("filesystem tar is not the stored image's")
				}
				return
			}
			tag, err := name.NewTag(tc.archive, name.WeakValidation)
			must(t, err)
			got, err := tarball.ImageFromPath(tc.file, &tag)
			must(t, err)
			sameImage(t, got, tc.form)
		})
	}
	st := &memStore{d: d, stored: stored, moved: moved, tags: map[string]digest.Digest{}}
	if err := Export(t.Context(), st, st, d, Output{Type: TypeImage}, nil); err == nil || !strings.Contains(err.Error(), "needs name=") {
		t.Errorf("type=image without a name: %v", err)
	}
	out, err := ParseOutput("type=oci,dest=" + filepath.Join(dir, "x.tar"))
	must(t, err)
	if err := Export(t.Context(), st, st, digest.FromBytes(nil), out, nil); err == nil {
		t.Error("Export of an image the store lacks succeeded")
	}
}

// sameImage compares image IDs and layer blobs: a docker archive gives
// the image back under a docker manifest, so its digest differs.
func sameImage(t *testing.T, got, want v1.Image) {
	t.Helper()
	g, err := got.ConfigName()
	must(t, err)
	w, err := want.ConfigName()
	must(t, err)
	if g != w {
		t.Errorf("image ID %s, want %s", g, w)
	}
	if gl, wl := layerDigests(t, got), layerDigests(t, want); !slices.Equal(gl, wl) {
		t.Errorf("layers %v, want %v", gl, wl)
	}
}
