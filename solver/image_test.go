//go:build linux

package solver

import (
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/store"
)

// CommitImage against a real store (blobs and records in a temp dir; no
// root needed: the layers are only named, never read).
func TestCommitImage(t *testing.T) {
	ctx := t.Context()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	layer := store.Layer{DiffID: digest.FromBytes([]byte("tar")), Digest: digest.FromBytes([]byte("tar")), Size: 3, MediaType: store.MediaTypeLayerTar}
	base := v1.Time{Time: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}
	img := func(createdBy string) Image {
		return Image{
			Config: v1.ConfigFile{OS: "linux", Architecture: "amd64", History: []v1.History{
				{Created: base, CreatedBy: "the base"},
				{CreatedBy: createdBy},
			}},
			Layers: []store.Layer{layer},
		}
	}
	config := func(d digest.Digest) *v1.ConfigFile {
		t.Helper()
		i, err := st.Images().Get(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := i.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}

	before := time.Now().Add(-time.Second)
	first, err := CommitImage(ctx, st.Records(), st.Images(), img("RUN make"), CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := config(first)
	if cfg.Created.Before(before) || !cfg.History[1].Created.Equal(cfg.Created.Time) || !cfg.History[0].Created.Equal(base.Time) {
		t.Errorf("stamped %v, history %v: want now on the image and its new entry, the base entry's time kept", cfg.Created, cfg.History)
	}
	if len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0].String() != string(layer.DiffID) {
		t.Errorf("rootfs %v", cfg.RootFS)
	}
	// The same config over the same layers is the same image (and ID).
	if again, err := CommitImage(ctx, st.Records(), st.Images(), img("RUN make"), CommitOptions{}); err != nil || again != first {
		t.Errorf("recommit = %s, %v; want the first image %s", again, err, first)
	}
	// Anything else is a new one, and so is every --no-cache build.
	if other, err := CommitImage(ctx, st.Records(), st.Images(), img("RUN make test"), CommitOptions{}); err != nil || other == first {
		t.Errorf("another history = %s, %v; want a new image", other, err)
	}
	if fresh, err := CommitImage(ctx, st.Records(), st.Images(), img("RUN make"), CommitOptions{NoCache: true}); err != nil || fresh == first {
		t.Errorf("--no-cache = %s, %v; want a new image", fresh, err)
	}
	// SOURCE_DATE_EPOCH stamps the image, the same every time.
	epoch := time.Unix(1700000000, 0).UTC()
	e1, err := CommitImage(ctx, st.Records(), st.Images(), img("RUN make"), CommitOptions{Epoch: &epoch})
	if err != nil {
		t.Fatal(err)
	}
	e2, err := CommitImage(ctx, st.Records(), st.Images(), img("RUN make"), CommitOptions{Epoch: &epoch})
	if err != nil || e1 != e2 || e1 == first {
		t.Errorf("epoch commits %s, %s (%v); want one image, not %s", e1, e2, err, first)
	}
	if cfg := config(e1); !cfg.Created.Equal(epoch) || !cfg.History[1].Created.Equal(epoch) || !cfg.History[0].Created.Equal(base.Time) {
		t.Errorf("epoch image created %v, history %v", cfg.Created, cfg.History)
	}
}

func TestSourceDateEpoch(t *testing.T) {
	at := func(n int64) *time.Time { x := time.Unix(n, 0).UTC(); return &x }
	for _, tc := range []struct {
		name string
		args map[string]string
		env  string
		want *time.Time
		err  string
	}{
		{name: "unset"},
		{name: "build arg", args: map[string]string{"SOURCE_DATE_EPOCH": "1700000000"}, env: "5", want: at(1700000000)},
		{name: "environment", env: "1600000000", want: at(1600000000)},
		{name: "zero", env: "0", want: at(0)},
		{name: "not a number", args: map[string]string{"SOURCE_DATE_EPOCH": "yesterday"}, err: `SOURCE_DATE_EPOCH="yesterday" (from --build-arg) is not a Unix time`},
		{name: "negative", env: "-1", err: `SOURCE_DATE_EPOCH="-1" (from the environment) is not a Unix time`},
	} {
		got, err := SourceDateEpoch(tc.args, tc.env)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.name, err, tc.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case (got == nil) != (tc.want == nil) || got != nil && !got.Equal(*tc.want):
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
