package layer

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/xattr"
)

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: mknod, chown and trusted.* xattrs")
	}
}

// node is what a snapshot promises to keep about one path.
type node struct {
	Mode       uint32 // type and permission bits
	UID, GID   uint32
	Mtime      string
	Rdev       uint64
	Link       string
	Data       string // sha256 of the contents
	Xattrs     string
	LinkedWith string // first path sharing the inode, for hardlinks
}

// readTree returns every path under dir (not dir itself) with its node.
func readTree(t testing.TB, dir string) map[string]node {
	t.Helper()
	tree := map[string]node{}
	inodes := map[uint64]string{}
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		n := node{Mode: st.Mode, UID: st.Uid, GID: st.Gid, Rdev: st.Rdev,
			Mtime: time.Unix(st.Mtim.Unix()).UTC().Format(time.RFC3339Nano)}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			n.Link, _ = os.Readlink(p)
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			n.Data = hex.EncodeToString(sum[:])
		case unix.S_IFCHR:
			if st.Rdev == 0 {
				n.Mtime = "" // a whiteout's time is not kept
			}
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR && st.Nlink > 1 && !(st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0) {
			if first, ok := inodes[st.Ino]; ok {
				n.LinkedWith = first
			} else {
				inodes[st.Ino] = rel
				n.LinkedWith = rel
			}
		}
		names, err := xattr.List(p)
		if err != nil {
			return err
		}
		sort.Strings(names)
		var xs []string
		for _, name := range names {
			v, err := xattr.Get(p, name)
			if err != nil {
				return err
			}
			xs = append(xs, name+"="+string(v))
		}
		n.Xattrs = strings.Join(xs, ",")
		tree[rel] = n
		return nil
	})
	if err != nil {
		t.Fatalf("reading tree %s: %v", dir, err)
	}
	return tree
}

func diffTrees(want, got map[string]node) string {
	var b strings.Builder
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		w, wok := want[k]
		g, gok := got[k]
		switch {
		case !wok:
			fmt.Fprintf(&b, "+ %s %+v\n", k, g)
		case !gok:
			fmt.Fprintf(&b, "- %s %+v\n", k, w)
		case w != g:
			fmt.Fprintf(&b, "- %s %+v\n+ %s %+v\n", k, w, k, g)
		}
	}
	return b.String()
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// tarEntry describes one entry of a hand-made tar.
type tarEntry struct {
	name, link string
	typ        byte
	data       string
	mode       int64
}

func makeTar(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		hdr := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: mode, Size: int64(len(e.data)), Format: tar.FormatPAX}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		must(t, tw.WriteHeader(hdr))
		if hdr.Size > 0 {
			_, err := io.WriteString(tw, e.data)
			must(t, err)
		}
	}
	must(t, tw.Close())
	return buf.Bytes()
}

// tarNames lists the entry names of a tar.
func tarNames(t testing.TB, b []byte) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		must(t, err)
		names = append(names, hdr.Name)
	}
}
