package imagediff

import (
	"archive/tar"
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

type tf struct {
	name, data string
	mode       int64
	uid        int
	mtime      int64
	link       string
}

func layerOf(t *testing.T, files ...tf) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: f.mode, Uid: f.uid, Size: int64(len(f.data)), ModTime: time.Unix(f.mtime, 0)}
		if f.link != "" {
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, f.link, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte(f.data))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func imageOf(t *testing.T, created int64, env []string, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Created = v1.Time{Time: time.Unix(created, 0)}
	cfg.Config.Env = env
	cfg.History = []v1.History{{Created: v1.Time{Time: time.Unix(created, 0)}, CreatedBy: "COPY . /"}}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestCompare(t *testing.T) {
	base := []tf{{name: "a", data: "a", mode: 0o644, mtime: 100}, {name: "l", link: "a", mode: 0o777, mtime: 100}}
	changed := []tf{{name: "a", data: "A", mode: 0o755, uid: 1, mtime: 200}, {name: "l", link: "b", mode: 0o777, mtime: 100}, {name: "new", data: "n", mode: 0o644}}
	retimed := []tf{{name: "a", data: "a", mode: 0o644, mtime: 999}, {name: "l", link: "a", mode: 0o777, mtime: 100}}
	a := imageOf(t, 1, []string{"X=1"}, layerOf(t, base...))
	for _, tc := range []struct {
		name string
		b    v1.Image
		o    Options
		want []string // substrings of the differences, in order
	}{
		{name: "same", b: imageOf(t, 1, []string{"X=1"}, layerOf(t, base...))},
		{name: "only times differ", b: imageOf(t, 2, []string{"X=1"}, layerOf(t, retimed...))},
		{name: "times counted", b: imageOf(t, 2, []string{"X=1"}, layerOf(t, retimed...)), o: Options{Timestamps: true},
			want: []string{"config.created", "config.history[0].created", "layer 0: /a: mtime: A 100, B 999"}},
		{name: "config and files", b: imageOf(t, 1, []string{"X=2"}, layerOf(t, changed...)),
			want: []string{`config.config.Env: A ["X=1"], B ["X=2"]`, `layer 0: /a: mode: A "0644", B "0755"`, "layer 0: /a: uid: A 0, B 1",
				"layer 0: /a: content: A", `layer 0: /l: link target: A "a", B "b"`, "layer 0: /new: only in B: file 0644 0:0 1 bytes"}},
		{name: "extra layer", b: imageOf(t, 1, []string{"X=1"}, layerOf(t, base...), layerOf(t, changed...)),
			want: []string{"layer 1: only in B: sha256:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			diffs, err := Compare(t.Context(), a, tc.b, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range diffs {
				got = append(got, d.String())
			}
			if len(got) != len(tc.want) {
				t.Fatalf("differences:\n%s\nwant %d: %q", strings.Join(got, "\n"), len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("difference %d = %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}
