//go:build linux

package fscopy

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzSources checks that no source pattern or destination makes Copy or
// Walk panic or write outside destRoot, even through symlinks in either
// tree that point out of their roots.
func FuzzSources(f *testing.F) {
	needRoot(f, "created parent dirs are chowned to 0:0")
	for _, seed := range [][3]string{
		{"a.txt", "/b", ""},
		{"../../etc/passwd", "/p", ""},
		{"esc/*", "/out/", "*.md"},
		{"*/*", "/up/", ""},
		{"[", "/x/", ""},
		{`\`, "/abs/deep/", ""},
		{"dir/../../..", "/up/../../x", "!dir"},
		{"linkdir", "/abs", "dir/sub"},
		{".", "/", ""},
		{"d*/*", "/dots/../../", "**"},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, source, dest, exclude string) {
		if strings.ContainsRune(source+dest, 0) || len(source)+len(dest) > 200 {
			return
		}
		base := t.TempDir()
		src, dst, outside := filepath.Join(base, "src"), filepath.Join(base, "dst"), filepath.Join(base, "outside")
		for _, d := range []string{src, dst, outside} {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		build(t, src, srcFixture)
		build(t, src, []ent{{"l", "out", 0, outside}, {"l", "up", 0, "../"}})
		build(t, dst, []ent{{"l", "abs", 0, outside}, {"l", "up", 0, "../.."}, {"l", "dots", 0, "../outside"}})
		build(t, outside, []ent{{"f", "sentinel", 0o644, "x"}})
		want := tree(t, outside)

		o := Options{Sources: []string{source}, Dest: dest}
		if exclude != "" {
			o.Excludes = []string{exclude}
		}
		_ = Walk(context.Background(), src, o, func(rel string, fi os.FileInfo) error {
			if !filepath.IsLocal(rel) && rel != "." {
				t.Errorf("Walk reported %q outside srcRoot", rel)
			}
			return nil
		})
		_ = Copy(context.Background(), src, dst, o)

		if got := tree(t, outside); !reflect.DeepEqual(got, want) {
			t.Fatalf("Copy(%q -> %q) changed outside: %v", source, dest, got)
		}
		ents, err := os.ReadDir(base)
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != 3 {
			t.Fatalf("Copy(%q -> %q) wrote next to destRoot: %v", source, dest, ents)
		}
	})
}
