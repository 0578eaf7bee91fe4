package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fuzzLimits are small, so that no input can make FuzzApplyLimits write
// much.
var fuzzLimits = Limits{MaxBytes: 32 << 10, MaxPathLen: 256, MaxDepth: 32}

// limitSeeds are layers over the limits or on the edges of them: a bomb, a
// sparse entry, PAX and GNU long headers, deep and long names, symlinks.
func limitSeeds(t testing.TB) map[string][]byte {
	long := strings.Repeat("long-directory-name/", 3) + strings.Repeat("f", 110)
	var bomb bytes.Buffer
	tw := tar.NewWriter(&bomb)
	tw.WriteHeader(&tar.Header{Name: "big", Typeflag: tar.TypeReg, Size: 20 << 30, Mode: 0o644})
	tw.Write(make([]byte, 4096))
	var gnu bytes.Buffer
	tw = tar.NewWriter(&gnu)
	tw.WriteHeader(&tar.Header{Name: long, Typeflag: tar.TypeReg, Mode: 0o644, Size: 1, Format: tar.FormatGNU})
	tw.Write([]byte("x"))
	tw.Close()
	var deep []tarEntry
	for i := 1; i <= 34; i++ {
		deep = append(deep, tarEntry{name: strings.Repeat("a/", i), typ: tar.TypeDir, mode: 0o755})
	}
	var total []tarEntry
	for i := range 3 {
		total = append(total, tarEntry{name: "f" + strconv.Itoa(i), typ: tar.TypeReg, data: strings.Repeat("x", 12<<10)})
	}
	return map[string][]byte{
		"limit-bomb-20GiB":         bomb.Bytes(),
		"limit-total":              makeTar(t, total...),
		"limit-sparse-100GiB":      sparseLayer(t, "sparse", 100<<30),
		"limit-pax-first":          makeTar(t, tarEntry{name: long, typ: tar.TypeReg, data: "x"}),
		"limit-gnu-long-first":     gnu.Bytes(),
		"limit-too-deep":           makeTar(t, deep...),
		"limit-name-too-long":      makeTar(t, tarEntry{name: strings.Repeat("n", 300), typ: tar.TypeReg}),
		"limit-link-too-long":      makeTar(t, tarEntry{name: "l", link: strings.Repeat("../", 100), typ: tar.TypeSymlink}),
		"limit-deep-through-link":  makeTar(t, tarEntry{name: strings.Repeat("a/", 30), typ: tar.TypeDir}, tarEntry{name: "l", link: strings.Repeat("a/", 30), typ: tar.TypeSymlink}, tarEntry{name: "l/b/c/d/f", typ: tar.TypeReg}),
		"limit-symlink-then-dir":   makeTar(t, tarEntry{name: "d", link: "../outside", typ: tar.TypeSymlink}, tarEntry{name: "d/", typ: tar.TypeDir}, tarEntry{name: "d/sentinel", typ: tar.TypeReg, data: "pwned"}),
		"limit-hardlink-to-dir":    makeTar(t, tarEntry{name: "d/", typ: tar.TypeDir}, tarEntry{name: "h", link: "d", typ: tar.TypeLink}),
		"limit-hardlink-to-itself": makeTar(t, tarEntry{name: "f", typ: tar.TypeReg, data: "x"}, tarEntry{name: "f", link: "f", typ: tar.TypeLink}),
		"limit-symlink-loop":       makeTar(t, tarEntry{name: "a", link: "b", typ: tar.TypeSymlink}, tarEntry{name: "b", link: "a", typ: tar.TypeSymlink}, tarEntry{name: "a/x", typ: tar.TypeReg}),
	}
}

// FuzzApplyLimits is FuzzApply with small limits in force: no layer may
// panic, hang, write much more than the limits or change anything outside
// its root.
func FuzzApplyLimits(f *testing.F) {
	requireRoot(f)
	j := newJail(f)
	for _, b := range maliciousTars(f, j.outside) {
		f.Add(b)
	}
	for _, b := range limitSeeds(f) {
		f.Add(b)
	}
	tmp := f.TempDir()
	must(f, unix.Mount("tmpfs", tmp, "tmpfs", 0, "size=256m,mode=0755"))
	f.Cleanup(func() { _ = unix.Unmount(tmp, unix.MNT_DETACH) })
	n := 0
	f.Fuzz(func(t *testing.T, data []byte) {
		n++
		base := filepath.Join(tmp, strconv.Itoa(n))
		must(t, os.Mkdir(base, 0o755))
		defer os.RemoveAll(base)
		j := jailIn(t, base)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, _ = ApplyWith(ctx, j.root, bytes.NewReader(data), ApplyOptions{Limits: fuzzLimits, Name: "layer fuzz"})
		if ctx.Err() != nil {
			t.Fatal("applying took more than 20s")
		}
		var used int64
		_ = filepath.WalkDir(j.root, func(p string, _ os.DirEntry, err error) error {
			var st unix.Stat_t
			if err == nil && unix.Lstat(p, &st) == nil {
				used += st.Blocks * 512
			}
			return nil
		})
		if used > 2*fuzzLimits.MaxBytes+16<<20 {
			t.Fatalf("the root takes %d bytes, over the %d-byte limit", used, fuzzLimits.MaxBytes)
		}
		j.check(t)
	})
}

// TestWriteLimitSeeds keeps testdata/fuzz/FuzzApplyLimits (and the limit
// cases in FuzzApply's corpus) in step with limitSeeds; run with
// KILN_UPDATE_FUZZ_SEEDS=1 to rewrite them.
func TestWriteLimitSeeds(t *testing.T) {
	if os.Getenv("KILN_UPDATE_FUZZ_SEEDS") == "" {
		t.Skip("set KILN_UPDATE_FUZZ_SEEDS=1 to rewrite the fuzz seeds")
	}
	for _, target := range []string{"FuzzApplyLimits", "FuzzApply"} {
		dir := filepath.Join("testdata", "fuzz", target)
		must(t, os.MkdirAll(dir, 0o755))
		for name, b := range limitSeeds(t) {
			body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
			must(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
		}
	}
}
