//go:build linux

package fscopy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/layer"
)

// Finding 1 of issue #7: archives that declare far more than they carry
// must fail on their headers, before they write it. Each case runs on a
// 96MiB tmpfs and streams at most 64MiB, so even code that does not stop
// them cannot fill the disk.
func TestExtractBombs(t *testing.T) {
	needRoot(t, "extraction keeps owners; the bombs run on a size-limited tmpfs")
	const from = "(build.maxArchiveSize in $KILN_ROOT/config.json)"
	t.Run("20GiB declared in a header, streamed", func(t *testing.T) {
		c := newCanary(t, 96<<20)
		r := bombStream("big", 20<<30, 64<<20)
		defer r.Close()
		err := extract(t.Context(), r, c.root, &copier{}, layer.Limits{MaxBytes: 1 << 30})
		wantErr(t, err, `entry "big" declares 20GiB, more than the 1GiB archive limit `+from)
		if got := names(t, c.root); got != "" {
			t.Errorf("the refused entry was written: %s", got)
		}
		c.check(t)
	})
	t.Run("gzip of zeros, through ADD", func(t *testing.T) {
		c := newCanary(t, 96<<20)
		gzipBomb(t, filepath.Join(c.src, "bomb.tar.gz"), "big", 20<<30, 16<<20)
		err := Copy(t.Context(), c.src, c.root, Options{Sources: []string{"bomb.tar.gz"}, Dest: "/", Unpack: true,
			Limits: layer.Limits{MaxBytes: 1 << 30}})
		if want := `archive bomb.tar.gz: entry "big" declares 20GiB, more than the 1GiB archive limit ` + from; err == nil || err.Error() != want {
			t.Fatalf("Copy: %v\nwant: %s", err, want)
		}
		if got := names(t, c.root); got != "" {
			t.Errorf("the refused entry was written: %s", got)
		}
		c.check(t)
	})
	t.Run("entries over the total", func(t *testing.T) {
		c := newCanary(t, 96<<20)
		var ents []tarEnt
		for i := range 5 {
			ents = append(ents, tarEnt{name: fmt.Sprintf("f%d", i), typ: tar.TypeReg, data: strings.Repeat("x", 1<<20)})
		}
		err := extractBytes(t.Context(), mkTar(t, ents...), c.root, layer.Limits{MaxBytes: 4 << 20, MaxBytesFrom: "the test"})
		wantErr(t, err, `entry "f4" brings what the archive declares to 5MiB, more than the 4MiB archive limit (the test)`)
		if _, err := os.Lstat(filepath.Join(c.root, "f4")); err == nil {
			t.Error("the entry over the total was written")
		}
		c.check(t)
	})
	for name, b := range map[string][]byte{
		"PAX sparse":     paxSparse(t, "sparse", 100<<30, 0, "x"),
		"old GNU sparse": gnuSparse(t, "sparse", 100<<30, 0, "x"),
	} {
		t.Run(name+" declaring 100GiB in 2kB", func(t *testing.T) {
			c := newCanary(t, 96<<20)
			err := extractBytes(t.Context(), b, c.root, layer.Limits{MaxBytes: 1 << 30})
			wantErr(t, err, `entry "sparse" declares 100GiB, more than the 1GiB archive limit`)
			c.check(t)
		})
	}
}

// Sparse entries are written sparse: their holes take no space.
func TestExtractSparse(t *testing.T) {
	needRoot(t, "extraction keeps owners; runs on a size-limited tmpfs")
	c := newCanary(t, 32<<20)
	for name, b := range map[string][]byte{
		"pax": paxSparse(t, "pax", 1<<30, 512<<20, "hello"),
		"gnu": gnuSparse(t, "gnu", 1<<30, 4096, "hello"),
	} {
		start := time.Now()
		if err := extractBytes(t.Context(), b, c.root, layer.Limits{}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%s: 1GiB sparse entry in %v", name, time.Since(start))
	}
	for name, off := range map[string]int64{"pax": 512 << 20, "gnu": 4096} {
		st := statOf(t, filepath.Join(c.root, name))
		if st.Size != 1<<30 || st.Blocks*512 > 1<<20 {
			t.Errorf("%s: size %d, %d bytes allocated; want 1GiB with its hole unallocated", name, st.Size, st.Blocks*512)
		}
		f, err := os.Open(filepath.Join(c.root, name))
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 7)
		f.ReadAt(got, off-1)
		f.Close()
		if string(got) != "\x00hello\x00" {
			t.Errorf("%s: data at %d is %q", name, off, got)
		}
	}
	c.check(t)
}

// Deep trees: the 10,000-level one fails at once on MaxDepth, a
// 1,000-level one extracts in well under a second; each entry costs a few
// system calls, however deep (both took minutes, each entry resolving
// every level again). On a tmpfs, to time the extraction, not the disk.
func TestExtractDepth(t *testing.T) {
	needRoot(t, "extraction keeps owners")
	t.Run("10,000 levels", func(t *testing.T) {
		c := newCanary(t, 64<<20)
		r := deepStream(10000)
		defer r.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		start := time.Now()
		err := extract(ctx, r, c.root, &copier{}, layer.Limits{})
		t.Logf("failed after %v", time.Since(start))
		wantErr(t, err, "is 1025 levels deep, more than the limit of 1024")
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("took %v to fail", d)
		}
		c.check(t)
	})
	t.Run("1,000 levels", func(t *testing.T) {
		c := newCanary(t, 64<<20)
		r := deepStream(1000)
		defer r.Close()
		start := time.Now()
		if err := extract(t.Context(), r, c.root, &copier{}, layer.Limits{}); err != nil {
			t.Fatal(err)
		}
		t.Logf("2,000 entries, 1,000 levels deep, in %v", time.Since(start))
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("took %v", d)
		}
		deepest := filepath.Join(c.root, strings.Repeat("a/", 1000), "f")
		if b, err := os.ReadFile(deepest); err != nil || string(b) != "x" {
			t.Errorf("deepest file: %q, %v", b, err)
		}
		c.check(t)
	})
	t.Run("deep once symlinks are followed", func(t *testing.T) {
		c := newCanary(t, 64<<20)
		deep := strings.Repeat("a/", 600)
		b := mkTar(t, tarEnt{name: deep, typ: tar.TypeDir, mode: 0o755},
			tarEnt{name: "l", link: strings.TrimSuffix(deep, "/"), typ: tar.TypeSymlink},
			tarEnt{name: "l/" + strings.Repeat("b/", 500) + "f", typ: tar.TypeReg, data: "x"})
		err := extractBytes(t.Context(), b, c.root, layer.Limits{})
		wantErr(t, err, "levels deep once the symlinks in its parents are followed, more than the limit of 1024")
		c.check(t)
	})
}

func TestExtractNameLimits(t *testing.T) {
	needRoot(t, "extraction keeps owners")
	c := newCanary(t, 0)
	long := strings.Repeat("d/", 2500)
	for _, tc := range []struct {
		ent  tarEnt
		lim  layer.Limits
		want string
	}{
		{tarEnt{name: long + "f", typ: tar.TypeReg}, layer.Limits{}, "has a name of 5001 bytes, more than the limit of 4096"},
		{tarEnt{name: "l", link: long, typ: tar.TypeSymlink}, layer.Limits{}, "has a link target of 5000 bytes, more than the limit of 4096"},
		{tarEnt{name: "h", link: long, typ: tar.TypeLink}, layer.Limits{}, "has a link target of 5000 bytes"},
		{tarEnt{name: "abcdefghijk", typ: tar.TypeReg}, layer.Limits{MaxPathLen: 10}, "has a name of 11 bytes, more than the limit of 10"},
		{tarEnt{name: "a/b/c/d", typ: tar.TypeReg}, layer.Limits{MaxDepth: 3}, `entry "a/b/c/d" is 4 levels deep, more than the limit of 3`},
	} {
		err := extractBytes(t.Context(), mkTar(t, tc.ent), c.root, tc.lim)
		wantErr(t, err, tc.want)
	}
	c.check(t)
}

// Finding 2: a tar whose first entry has a PAX or GNU long-name header is
// an archive; only regular files are ever opened.
func TestOpenArchiveDetects(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("long-directory-name/", 3) + strings.Repeat("f", 110) // no USTAR split: PAX or GNU headers
	gnu := func() []byte {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		tw.WriteHeader(&tar.Header{Name: long, Typeflag: tar.TypeReg, Mode: 0o644, Size: 1, Format: tar.FormatGNU})
		tw.Write([]byte("x"))
		tw.Close()
		return b.Bytes()
	}()
	if gnu[156] != 'L' {
		t.Fatalf("the GNU tar does not start with a long-name header: %q", gnu[156])
	}
	gz := func(b []byte) []byte {
		var out bytes.Buffer
		zw := gzip.NewWriter(&out)
		zw.Write(b)
		zw.Close()
		return out.Bytes()
	}
	paxFirst := mkTar(t, tarEnt{name: long, typ: tar.TypeReg, data: "x"})
	if paxFirst[156] != tar.TypeXHeader {
		t.Fatalf("the PAX tar does not start with an extended header: %q", paxFirst[156])
	}
	var bigPAX bytes.Buffer
	tw := tar.NewWriter(&bigPAX)
	tw.WriteHeader(&tar.Header{Name: long, Typeflag: tar.TypeReg, Mode: 0o644, Size: 1, Format: tar.FormatPAX,
		PAXRecords: map[string]string{"comment": strings.Repeat("c", 600<<10)}})
	tw.Write([]byte("x"))
	tw.Close()
	for name, b := range map[string][]byte{
		"pax-first.tar": paxFirst, "gnu-long.tar": gnu, "pax-first.tar.gz": gz(paxFirst), "gnu-long.tgz": gz(gnu),
		"600k-pax-record.tar": bigPAX.Bytes(),
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		r, ok, err := openArchive(p)
		if err != nil || !ok {
			t.Errorf("%s: not taken for an archive (%v)", name, err)
			continue
		}
		h, err := tar.NewReader(r).Next() // the bytes read to decide are replayed
		r.Close()
		if err != nil || h.Name != long {
			t.Errorf("%s: first entry %v, %v", name, h, err)
		}
	}

	os.WriteFile(filepath.Join(dir, "text"), []byte("just text\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "empty"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "zeros"), make([]byte, 4096), 0o644)
	os.Symlink("pax-first.tar", filepath.Join(dir, "link.tar"))
	if err := unix.Mkfifo(filepath.Join(dir, "fifo.tar"), 0o644); err != nil {
		t.Fatal(err)
	}
	nonArchives := []string{"text", "empty", "zeros", "link.tar", "fifo.tar", "."}
	if os.Geteuid() == 0 {
		if err := unix.Mknod(filepath.Join(dir, "dev.tar"), unix.S_IFCHR|0o644, int(unix.Mkdev(1, 5))); err != nil { // /dev/zero
			t.Fatal(err)
		}
		nonArchives = append(nonArchives, "dev.tar")
	}
	for _, name := range nonArchives {
		done := make(chan error, 1)
		go func() {
			r, ok, err := openArchive(filepath.Join(dir, name))
			if ok {
				r.Close()
				err = errors.New("taken for an archive")
			}
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: openArchive blocked (it opened a FIFO or a device)", name)
		}
	}
}

// Device nodes and FIFOs in an archive are made as they are: they stay
// data, as in the images BuildKit makes.
func TestExtractDevices(t *testing.T) {
	needRoot(t, "mknod")
	c := newCanary(t, 0)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3})
	tw.WriteHeader(&tar.Header{Name: "fifo", Typeflag: tar.TypeFifo, Mode: 0o620})
	tw.Close()
	if err := extractBytes(t.Context(), buf.Bytes(), c.root, layer.Limits{}); err != nil {
		t.Fatal(err)
	}
	if st := statOf(t, filepath.Join(c.root, "null")); st.Mode != unix.S_IFCHR|0o666 || st.Rdev != unix.Mkdev(1, 3) {
		t.Errorf("null: mode %o rdev %x", st.Mode, st.Rdev)
	}
	if st := statOf(t, filepath.Join(c.root, "fifo")); st.Mode != unix.S_IFIFO|0o620 {
		t.Errorf("fifo: mode %o", st.Mode)
	}
	c.check(t)
}
