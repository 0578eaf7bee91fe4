package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"strings"
	"testing"
)

// tarOf is a tar holding one file, name, with content name.
func tarOf(t *testing.T, name string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(name))}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(name))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func gzipOf(s string) string {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(s))
	zw.Close()
	return buf.String()
}

// TestAddSeveralSources: ADD with several sources follows BuildKit's
// rules: every local archive is extracted into dest, which it makes a
// directory whether or not it ends in "/" (and so do wildcards matching
// archives); plain files among several sources need dest to be a
// directory ("/" or existing), as docker says.
func TestAddSeveralSources(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := map[string]string{
		"a.tar":       tarOf(t, "from-a"),
		"b.tgz":       gzipOf(tarOf(t, "from-b")),
		"plain.txt":   "plain\n",
		"sub/c.tar":   tarOf(t, "from-c"),
		"sub/d.tar":   tarOf(t, "from-d"),
		"sub/note.md": "note\n",
	}
	ctx["Dockerfile"] = `ARG BASE
FROM $BASE
ADD a.tar b.tgz /two
ADD a.tar plain.txt /mixed/
ADD sub/*.tar /wild
ADD b.tgz plain.txt sub/note.md /existing-later/
RUN mkdir /made
ADD a.tar plain.txt /made
`
	dir := e.context(ctx)
	e.mustKiln("build", "--progress=plain", "-t", "addmulti", "--build-arg", "BASE="+e.base, dir)
	got := files(t, e.image("addmulti"))
	for p, want := range map[string]string{
		"two/from-a": "from-a", "two/from-b": "from-b",
		"mixed/from-a": "from-a", "mixed/plain.txt": "plain\n",
		"wild/from-c": "from-c", "wild/from-d": "from-d",
		"existing-later/from-b": "from-b", "existing-later/plain.txt": "plain\n", "existing-later/note.md": "note\n",
		"made/from-a": "from-a", "made/plain.txt": "plain\n",
	} {
		if f, ok := got["/"+p]; !ok || f.data != want {
			t.Errorf("/%s = %q (present %v), want %q", p, f.data, ok, want)
		}
	}
	if f, ok := got["/two"]; !ok || f.hdr.Typeflag != tar.TypeDir {
		t.Errorf("/two is not a directory: %+v", f.hdr)
	}

	for _, bad := range []string{"ADD a.tar plain.txt /nodir", "ADD plain.txt sub/note.md /nodir", "ADD sub/* /nodir"} {
		dir := e.context(map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\n" + bad + "\n", "a.tar": ctx["a.tar"], "plain.txt": "plain\n",
			"sub/note.md": "note\n", "sub/c.tar": ctx["sub/c.tar"]})
		r := e.kiln("", "build", "--progress=plain", "--build-arg", "BASE="+e.base, dir)
		want := "When using ADD with more than one source file, the destination must be a directory and end with a /"
		if r.code == 0 || !strings.Contains(r.stderr, want) {
			t.Errorf("%s: exit %d, stderr:\n%s\nwant %q", bad, r.code, r.stderr, want)
		}
	}
}
