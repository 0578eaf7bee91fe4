//go:build linux

package exporter

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/digest"
)

// TestExportImageResult: the result describes what was written; media
// types and annotations reach the manifest and index.json.
func TestExportImageResult(t *testing.T) {
	stored, moved := testImage(t), testImage(t)
	d := digest.FromBytes([]byte("the manifest"))
	dir := t.TempDir()
	for _, tc := range []struct {
		name, out  string
		docker     bool
		manifest   map[string]string
		index      map[string]string
		descriptor map[string]string
	}{
		{name: "oci", out: "type=oci,tar=false,name=app:1,annotation.m=1,annotation-index.i=2,annotation-manifest-descriptor.d=3",
			manifest: map[string]string{"m": "1"}, index: map[string]string{"i": "2"}, descriptor: map[string]string{"d": "3"}},
		{name: "docker types", out: "type=oci,tar=false,oci-mediatypes=false", docker: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &memStore{d: d, stored: stored, moved: moved, tags: map[string]digest.Digest{}}
			dest := filepath.Join(dir, tc.name)
			out, err := ParseOutput(tc.out + ",dest=" + dest)
			must(t, err)
			res, err := ExportImage(t.Context(), st, st, d, out, nil, nil)
			must(t, err)
			b, err := os.ReadFile(filepath.Join(dest, "index.json"))
			must(t, err)
			var idx v1.IndexManifest
			must(t, json.Unmarshal(b, &idx))
			desc := idx.Manifests[0]
			if desc.Digest != res.Descriptor.Digest || desc.Size != res.Descriptor.Size || desc.MediaType != res.Descriptor.MediaType {
				t.Errorf("result %+v, index.json %+v", res.Descriptor, desc)
			}
			if want, _ := moved.ConfigName(); res.Config != want {
				t.Errorf("result config %s, want %s", res.Config, want)
			}
			for k, v := range tc.index {
				if idx.Annotations[k] != v {
					t.Errorf("index.json annotations %v, want %s=%s", idx.Annotations, k, v)
				}
			}
			for k, v := range tc.descriptor {
				if desc.Annotations[k] != v {
					t.Errorf("index.json descriptor annotations %v, want %s=%s", desc.Annotations, k, v)
				}
			}
			mb, err := os.ReadFile(filepath.Join(dest, "blobs", "sha256", desc.Digest.Hex))
			must(t, err)
			var m v1.Manifest
			must(t, json.Unmarshal(mb, &m))
			for k, v := range tc.manifest {
				if m.Annotations[k] != v {
					t.Errorf("manifest annotations %v, want %s=%s", m.Annotations, k, v)
				}
			}
			wantM, wantL := types.OCIManifestSchema1, types.OCILayer
			if tc.docker {
				wantM, wantL = types.DockerManifestSchema2, types.DockerLayer
			}
			if m.MediaType != wantM || m.Layers[0].MediaType != wantL {
				t.Errorf("manifest %s with layers of %s, want %s and %s", m.MediaType, m.Layers[0].MediaType, wantM, wantL)
			}
		})
	}
	st := &memStore{d: d, stored: stored, moved: moved, tags: map[string]digest.Digest{}}
	out, err := ParseOutput("type=image,name=a:1,rewrite-timestamp=true")
	must(t, err)
	if _, err := ExportImage(t.Context(), st, st, d, out, nil, nil); err == nil || !strings.Contains(err.Error(), "SOURCE_DATE_EPOCH") {
		t.Errorf("rewrite-timestamp without an epoch: %v", err)
	}
	out, err = ParseOutput(`type=image,"name=a:1,b:2"`)
	must(t, err)
	res, err := ExportImage(t.Context(), st, st, d, out, nil, nil)
	must(t, err)
	if want, _ := stored.Digest(); res.Descriptor.Digest != want || st.tags["a:1"] != d || st.tags["b:2"] != d {
		t.Errorf("type=image: result %+v (want the stored %s), tags %v", res.Descriptor, want, st.tags)
	}
}
