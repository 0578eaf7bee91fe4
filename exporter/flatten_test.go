//go:build linux

package exporter

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

type ent struct {
	name, link, data string
	typ              byte
	mode             int64
}

func layerOf(t *testing.T, ents ...ent) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, Size: int64(len(e.data))}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			tw.Write([]byte(e.data))
		}
	}
	tw.Close()
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestFlatten(t *testing.T) {
	d, f := byte(tar.TypeDir), byte(tar.TypeReg)
	img, err := mutate.AppendLayers(empty.Image,
		layerOf(t,
			ent{name: "a/", typ: d, mode: 0o755},
			ent{name: "a/b/", typ: d, mode: 0o755},
			ent{name: "a/b/c/", typ: d, mode: 0o755},
			ent{name: "a/b/c/f", typ: f, mode: 0o4755, data: "linked"},
			ent{name: "a/hard", typ: tar.TypeLink, link: "a/b/c/f"},
			ent{name: "a/hard2", typ: tar.TypeLink, link: "a/b/c/f"},
			ent{name: "a/keep", typ: f, mode: 0o644, data: "k"},
			ent{name: "a/keeplink", typ: tar.TypeLink, link: "a/keep"},
			ent{name: "a/gone/", typ: d, mode: 0o755},
			ent{name: "a/gone/x", typ: f, mode: 0o644, data: "x"},
			ent{name: "a/replaced", typ: f, mode: 0o644, data: "old"},
		),
		layerOf(t,
			ent{name: "a/b/c/", typ: d, mode: 0o700},
			ent{name: "a/b/c/.wh..wh..opq", typ: f},
			ent{name: "a/b/c/g", typ: f, mode: 0o600, data: "new"},
			ent{name: "a/.wh.gone", typ: f},
			ent{name: "a/replaced", typ: f, mode: 0o600, data: "new"},
		))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := flatten(context.Background(), &out, img); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	tr := tar.NewReader(&out)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		switch h.Typeflag {
		case tar.TypeLink:
			got[h.Name] = "link " + h.Linkname
		case tar.TypeDir:
			got[h.Name] = "dir"
		default:
			got[h.Name] = string(b) + " " + string(rune('0'+h.Mode>>9&7)) + string(rune('0'+h.Mode>>6&7)) + string(rune('0'+h.Mode>>3&7)) + string(rune('0'+h.Mode&7))
		}
	}
	want := map[string]string{
		"a/": "dir", "a/b/": "dir", "a/b/c/": "dir",
		"a/b/c/g":    "new 0600",
		"a/hard":     "linked 4755", // its target is hidden by the opaque dir: the file itself
		"a/hard2":    "link a/hard", // a second link to it links to that copy
		"a/keep":     "k 0644",
		"a/keeplink": "link a/keep",
		"a/replaced": "new 0600",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected %s (%s)", k, got[k])
		}
	}
}
