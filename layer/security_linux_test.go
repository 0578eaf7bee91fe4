package layer

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the fuzz seeds in testdata/fuzz/FuzzApply")

// jail is a layer root beside a directory it must never touch.
type jail struct {
	base, root, outside string
	before              map[string]node
	baseNames           []string
}

func newJail(t testing.TB) *jail {
	t.Helper()
	base := t.TempDir()
	j := &jail{base: base, root: filepath.Join(base, "root"), outside: filepath.Join(base, "outside")}
	must(t, os.Mkdir(j.root, 0o755))
	must(t, os.Mkdir(j.outside, 0o755))
	must(t, os.WriteFile(filepath.Join(j.outside, "sentinel"), []byte("untouched"), 0o644))
	must(t, os.Symlink("sentinel", filepath.Join(j.outside, "sentinel-link")))
	j.before = readTree(t, j.outside)
	j.baseNames = dirNames(t, base)
	return j
}

func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	must(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// check fails if anything outside the root changed.
func (j *jail) check(t testing.TB) {
	t.Helper()
	if d := diffTrees(j.before, readTree(t, j.outside)); d != "" {
		t.Fatalf("Apply changed a directory outside its root (-before +after):\n%s", d)
	}
	if got := fmt.Sprint(dirNames(t, j.base)); got != fmt.Sprint(j.baseNames) {
		t.Fatalf("Apply created files beside its root: %s, had %v", got, j.baseNames)
	}
}

// maliciousTars are layers that try to write outside the directory they
// are applied to.
func maliciousTars(t testing.TB, outside string) map[string][]byte {
	sentinel := filepath.Join(outside, "sentinel")
	return map[string][]byte{
		"dotdot":           makeTar(t, tarEntry{name: "../outside/sentinel", typ: tar.TypeReg, data: "pwned"}),
		"dotdot-inside":    makeTar(t, tarEntry{name: "a/../../outside/new", typ: tar.TypeReg, data: "pwned"}),
		"dotdot-dir":       makeTar(t, tarEntry{name: "../outside/", typ: tar.TypeDir, mode: 0o777}),
		"absolute":         makeTar(t, tarEntry{name: sentinel, typ: tar.TypeReg, data: "pwned"}),
		"absolute-dotdot":  makeTar(t, tarEntry{name: "/../outside/sentinel", typ: tar.TypeReg, data: "pwned"}),
		"whiteout-dotdot":  makeTar(t, tarEntry{name: "../outside/.wh.sentinel", typ: tar.TypeReg}),
		"whiteout-through": makeTar(t, tarEntry{name: "l", link: "../outside", typ: tar.TypeSymlink}, tarEntry{name: "l/.wh.sentinel", typ: tar.TypeReg}),
		"opaque-through":   makeTar(t, tarEntry{name: "l", link: outside, typ: tar.TypeSymlink}, tarEntry{name: "l/.wh..wh..opq", typ: tar.TypeReg}),
		"symlink-rel-write": makeTar(t,
			tarEntry{name: "l", link: "../outside", typ: tar.TypeSymlink},
			tarEntry{name: "l/sentinel", typ: tar.TypeReg, data: "pwned"}),
		"symlink-abs-write": makeTar(t,
			tarEntry{name: "l", link: outside, typ: tar.TypeSymlink},
			tarEntry{name: "l/new", typ: tar.TypeReg, data: "pwned"}),
		"symlink-chain": makeTar(t,
			tarEntry{name: "a", link: "b/../..", typ: tar.TypeSymlink},
			tarEntry{name: "b/", typ: tar.TypeDir, mode: 0o755},
			tarEntry{name: "a/outside/sentinel", typ: tar.TypeReg, data: "pwned"}),
		"symlink-to-file-then-file": makeTar(t,
			tarEntry{name: "s", link: sentinel, typ: tar.TypeSymlink},
			tarEntry{name: "s", typ: tar.TypeReg, data: "pwned"}),
		"symlink-to-dir-then-dir": makeTar(t,
			tarEntry{name: "d", link: "../outside", typ: tar.TypeSymlink},
			tarEntry{name: "d/", typ: tar.TypeDir, mode: 0o777}),
		"symlink-then-fifo": makeTar(t,
			tarEntry{name: "d", link: "../outside", typ: tar.TypeSymlink},
			tarEntry{name: "d/fifo", typ: tar.TypeFifo}),
		"hardlink-dotdot":   makeTar(t, tarEntry{name: "h", link: "../outside/sentinel", typ: tar.TypeLink}),
		"hardlink-absolute": makeTar(t, tarEntry{name: "h", link: sentinel, typ: tar.TypeLink}),
		"hardlink-through-symlink": makeTar(t,
			tarEntry{name: "l", link: "../outside", typ: tar.TypeSymlink},
			tarEntry{name: "h", link: "l/sentinel", typ: tar.TypeLink},
			tarEntry{name: "h", typ: tar.TypeReg, data: "pwned"}),
		"hardlink-to-escaping-symlink-then-write": makeTar(t,
			tarEntry{name: "s", link: "../outside/sentinel", typ: tar.TypeSymlink},
			tarEntry{name: "h", link: "s", typ: tar.TypeLink},
			tarEntry{name: "h", typ: tar.TypeReg, data: "pwned"},
			tarEntry{name: "s", typ: tar.TypeReg, data: "pwned"}),
		"write-through-outside-symlink": makeTar(t,
			tarEntry{name: "l", link: filepath.Join(outside, "sentinel-link"), typ: tar.TypeSymlink},
			tarEntry{name: "l", typ: tar.TypeReg, data: "pwned"}),
	}
}

func TestApplySecurity(t *testing.T) {
	requireRoot(t)
	for name, b := range maliciousTars(t, "/placeholder") {
		t.Run(name, func(t *testing.T) {
			j := newJail(t)
			// Rebuild with this jail's real paths.
			b = maliciousTars(t, j.outside)[name]
			_, err := Apply(t.Context(), j.root, bytes.NewReader(b))
			t.Logf("Apply: %v", err)
			j.check(t)
		})
	}
}

// TestWriteFuzzSeeds keeps testdata/fuzz/FuzzApply in step with the tars
// above; run with -update to rewrite it.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite the fuzz seeds")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzApply")
	must(t, os.MkdirAll(dir, 0o755))
	for name, b := range maliciousTars(t, "/tmp/outside") {
		body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
		must(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
}

func FuzzApply(f *testing.F) {
	j := newJail(f)
	for _, b := range maliciousTars(f, j.outside) {
		f.Add(b)
	}
	f.Add(makeTar(f,
		tarEntry{name: "d/", typ: tar.TypeDir, mode: 0o755},
		tarEntry{name: "d/.wh..wh..opq", typ: tar.TypeReg},
		tarEntry{name: "d/f", typ: tar.TypeReg, data: "data"},
		tarEntry{name: ".wh.gone", typ: tar.TypeReg},
		tarEntry{name: "d/h", link: "d/f", typ: tar.TypeLink},
		tarEntry{name: "s", link: "d", typ: tar.TypeSymlink},
		tarEntry{name: "p", typ: tar.TypeFifo}))
	f.Fuzz(func(t *testing.T, data []byte) {
		j := newJail(t)
		_, _ = Apply(t.Context(), j.root, bytes.NewReader(data))
		j.check(t)
	})
}
