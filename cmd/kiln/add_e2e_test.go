package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// tarball makes a small tar with a dir, a file owned 1000:1000 and a symlink.
func tarball(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "pkg/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "pkg/bin/tool", Typeflag: tar.TypeReg, Mode: 0o750, Uid: 1000, Gid: 1000, Size: 5},
		{Name: "pkg/link", Typeflag: tar.TypeSymlink, Linkname: "bin/tool"},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte("tool\n"))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestAddExtractsLocalArchives(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	plain := tarball(t)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	dir := e.context(map[string]string{
		"Dockerfile": `ARG BASE
FROM $BASE
ADD plain.tar /plain/
ADD app.tgz /gz
ADD misnamed.bin /misnamed/
ADD --unpack=false app.tgz /kept/
ADD notatar.tar.gz /notatar/
`,
		"notatar.tar.gz": "just text\n",
	})
	for name, data := range map[string][]byte{"plain.tar": plain, "app.tgz": gz.Bytes(), "misnamed.bin": gz.Bytes()} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// xz and bzip2 where the host has the tools to make them.
	for _, c := range []struct{ tool, name string }{{"xz", "app.txz"}, {"bzip2", "app.tbz"}, {"zstd", "app.tzst"}} {
		if _, err := exec.LookPath(c.tool); err != nil {
			continue
		}
		cmd := exec.Command(c.tool, "-c")
		cmd.Stdin = bytes.NewReader(plain)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", c.tool, err)
		}
		if err := os.WriteFile(filepath.Join(dir, c.name), out, 0o644); err != nil {
			t.Fatal(err)
		}
		f, _ := os.OpenFile(filepath.Join(dir, "Dockerfile"), os.O_APPEND|os.O_WRONLY, 0)
		f.WriteString("ADD " + c.name + " /" + c.tool + "/\n")
		f.Close()
		defer func(tool string) {
			fs := files(t, e.image("add"))
			if fs["/"+tool+"/pkg/bin/tool"].data != "tool\n" {
				t.Errorf("%s archive not extracted", tool)
			}
		}(c.tool)
	}
	e.mustKiln("build", "-t", "add", "--build-arg", "BASE="+e.base, dir)
	fs := files(t, e.image("add"))
	for _, root := range []string{"/plain", "/gz", "/misnamed"} {
		f := fs[root+"/pkg/bin/tool"]
		if f.data != "tool\n" || f.hdr.Mode&0o7777 != 0o750 || f.hdr.Uid != 1000 || f.hdr.Gid != 1000 {
			t.Errorf("%s/pkg/bin/tool = %q mode %o owner %d:%d", root, f.data, f.hdr.Mode&0o7777, f.hdr.Uid, f.hdr.Gid)
		}
		if l := fs[root+"/pkg/link"]; l.hdr == nil || l.hdr.Linkname != "bin/tool" {
			t.Errorf("%s/pkg/link missing or wrong", root)
		}
	}
	if f, ok := fs["/kept/app.tgz"]; !ok || f.data != gz.String() {
		t.Error("ADD --unpack=false should copy the archive as is")
	}
	if fs["/notatar/notatar.tar.gz"].data != "just text\n" {
		t.Error("a file named like an archive but not one should be copied as is")
	}
}
