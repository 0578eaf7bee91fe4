//go:build linux

package fscopy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/layer"
)

// fuzzLimits are small, so that no input can make FuzzExtract write much.
var fuzzLimits = layer.Limits{MaxBytes: 1 << 20, MaxPathLen: 256, MaxDepth: 32}

// fuzzOutside is the outside directory the seeds aim at (a canary's path
// differs in each run; the symlinks fuzzRoot makes point at the real one).
const fuzzOutside = "/tmp/outside"

// extractSeeds are the archives FuzzExtract starts from: the cases of the
// tests (bombs, sparse entries, PAX and GNU first headers, names over the
// limits, symlink and hard link tricks) in small form.
func extractSeeds(t testing.TB) map[string][]byte {
	long := strings.Repeat("long-directory-name/", 3) + strings.Repeat("f", 110) // no USTAR split: PAX or GNU headers
	var bomb bytes.Buffer
	tw := tar.NewWriter(&bomb)
	tw.WriteHeader(&tar.Header{Name: "big", Typeflag: tar.TypeReg, Size: 20 << 30, Mode: 0o644})
	tw.Write(make([]byte, 4096))
	var bombGz bytes.Buffer
	zw := gzip.NewWriter(&bombGz)
	zw.Write(bomb.Bytes())
	zw.Close()
	var gnu bytes.Buffer
	tw = tar.NewWriter(&gnu)
	tw.WriteHeader(&tar.Header{Name: long, Typeflag: tar.TypeReg, Mode: 0o644, Size: 1, Format: tar.FormatGNU})
	tw.Write([]byte("x"))
	tw.Close()
	var deep []tarEnt
	for i := 1; i <= 34; i++ {
		deep = append(deep, dirE(strings.Repeat("a/", i), 0o755))
	}
	return map[string][]byte{
		"bomb-declared-20GiB":   bomb.Bytes(),
		"bomb-gzip":             bombGz.Bytes(),
		"sparse-pax-100GiB":     paxSparse(t, "sparse", 100<<30, 0, "x"),
		"sparse-gnu-100GiB":     gnuSparse(t, "sparse", 100<<30, 0, "x"),
		"sparse-pax-small":      paxSparse(t, "s", 1<<16, 8192, "hello"),
		"sparse-gnu-small":      gnuSparse(t, "g", 1<<16, 4096, "hello"),
		"pax-first":             mkTar(t, fileE(long, "x"), fileE("short", "y")),
		"gnu-long-first":        gnu.Bytes(),
		"too-deep":              mkTar(t, deep...),
		"name-too-long":         mkTar(t, fileE(strings.Repeat("n", 300), "x")),
		"dotdot-CVE-2026-28406": mkTar(t, fileE("../outside/sentinel", "pwned"), fileE("a/../../outside/new", "pwned")),
		"symlink-then-dir":      mkTar(t, symE("d", "../outside"), dirE("d/", 0o777), fileE("d/sentinel", "pwned")),
		"symlink-then-file":     mkTar(t, symE("s", fuzzOutside+"/sentinel"), fileE("s", "pwned")),
		"file-then-dir":         mkTar(t, fileE("x", "1"), dirE("x/", 0o755), fileE("x/y", "2")),
		"dir-then-file":         mkTar(t, dirE("y/", 0o755), fileE("y/z", "1"), fileE("y", "2")),
		"through-root-symlinks": mkTar(t, fileE("abs/sentinel", "pwned"), fileE("up/sentinel", "pwned"), dirE("dots/x/", 0o777), fileE("file", "pwned")),
		"hardlink-through":      mkTar(t, hardE("h", "up/sentinel"), hardE("h2", "abs/sentinel"), fileE("h", "pwned")),
		"hardlink-to-symlink":   mkTar(t, symE("s", fuzzOutside+"/sentinel"), hardE("h", "s"), fileE("h", "pwned"), fileE("s", "pwned")),
		"hardlink-to-dir":       mkTar(t, dirE("d/", 0o755), hardE("h", "d")),
		"abs-symlink-through":   mkTar(t, dirE("run/", 0o755), symE("var/run", "/run"), dirE("var/run/act/", 0o755), fileE("var/run/act/HEAD", "ref")),
		"dotdot-heavy-symlink":  mkTar(t, symE("a/b/c", "../../../../../../etc/x"), fileE("a/b/c/f", "1")),
		"dir-time-then-symlink": mkTar(t, dirE("d/", 0o755), symE("d", fuzzOutside)),
		"symlink-loop":          mkTar(t, symE("a", "b"), symE("b", "a"), fileE("a/x", "1")),
		"devices":               mkTar(t, tarEnt{name: "null", typ: tar.TypeChar, mode: 0o666}, tarEnt{name: "p", typ: tar.TypeFifo}),
	}
}

// fuzzRoot gives the root symlinks out of it, as an image's may be.
func fuzzRoot(t testing.TB, c *canary) {
	t.Helper()
	for name, target := range map[string]string{"abs": c.outside, "up": "../outside", "dots": "../../../../outside/dir", "file": c.outside + "/sentinel"} {
		if err := os.Symlink(target, filepath.Join(c.root, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzExtract checks that no archive, compressed or not, makes ADD's
// extraction panic, hang, write more than its limits or change anything
// outside its root.
func FuzzExtract(f *testing.F) {
	needRoot(f, "extraction keeps owners and makes device nodes; runs on a tmpfs")
	for _, b := range extractSeeds(f) {
		f.Add(b)
	}
	tmp := f.TempDir()
	if err := unix.Mount("tmpfs", tmp, "tmpfs", 0, "size=256m,mode=0755"); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = unix.Unmount(tmp, unix.MNT_DETACH) })
	n := 0
	f.Fuzz(func(t *testing.T, data []byte) {
		n++
		base := filepath.Join(tmp, strconv.Itoa(n))
		if err := os.Mkdir(base, 0o755); err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(base)
		c := canaryAt(t, base)
		fuzzRoot(t, c)
		c.baseNames = names(t, base)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done := make(chan struct{})
		defer close(done)
		go watchdog(done, 30*time.Second)
		p := filepath.Join(c.src, "archive")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		var r io.ReadCloser = io.NopCloser(bytes.NewReader(data))
		if ar, ok, err := openArchive(p); err == nil && ok {
			r = ar
		}
		_ = extract(ctx, r, c.root, &copier{}, fuzzLimits)
		r.Close()
		if ctx.Err() != nil {
			t.Fatal("extraction took more than 20s")
		}
		var used int64
		_ = filepath.WalkDir(c.root, func(p string, _ os.DirEntry, err error) error {
			var st unix.Stat_t
			if err == nil && unix.Lstat(p, &st) == nil {
				used += st.Blocks * 512
			}
			return nil
		})
		if used > 2*fuzzLimits.MaxBytes+16<<20 { // data, plus directories and the like
			t.Fatalf("the root takes %d bytes, over the %d-byte limit", used, fuzzLimits.MaxBytes)
		}
		c.check(t)
	})
}

// watchdog panics with every goroutine's stack unless done closes within
// d: a hang is a failure the fuzzer can report with its input.
func watchdog(done <-chan struct{}, d time.Duration) {
	select {
	case <-done:
	case <-time.After(d):
		buf := make([]byte, 1<<20)
		panic(fmt.Sprintf("no result after %v:\n%s", d, buf[:runtime.Stack(buf, true)]))
	}
}

// TestWriteExtractSeeds keeps testdata/fuzz/FuzzExtract in step with
// extractSeeds; run with KILN_UPDATE_FUZZ_SEEDS=1 to rewrite it.
func TestWriteExtractSeeds(t *testing.T) {
	if os.Getenv("KILN_UPDATE_FUZZ_SEEDS") == "" {
		t.Skip("set KILN_UPDATE_FUZZ_SEEDS=1 to rewrite the fuzz seeds")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzExtract")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range extractSeeds(t) {
		body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
