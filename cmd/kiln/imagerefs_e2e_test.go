package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"net/http"
	"net/http/httptest"
	"testing"
)

// Image references in COPY --from and RUN --mount=from take no variables,
// so a conformance case cannot name the test registry: these are written
// with its address.
func TestImageReferencesInCopyAndMount(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := e.context(map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\n" +
		"COPY --from=" + e.base + " /etc/passwd /from-image/passwd\n" +
		"RUN --mount=from=" + e.base + ",target=/img grep -c root /img/etc/group > /mounted-count\n"})
	r := e.kiln("", "build", "--progress=plain", "-t", "imgrefs", "--build-arg", "BASE="+e.base, dir)
	if r.code != 0 {
		t.Fatalf("build: %s", r.stderr)
	}
	fs := files(t, e.image("imgrefs"))
	if f := fs["/from-image/passwd"]; f.hdr == nil || !bytes.Contains([]byte(f.data), []byte("root:x:0:0")) {
		t.Errorf("/from-image/passwd = %q", f.data)
	}
	if f := fs["/mounted-count"]; f.data != "1\n" {
		t.Errorf("/mounted-count = %q, want 1", f.data)
	}
	if _, ok := fs["/img"]; ok {
		t.Error("the mount point /img stayed in the layer")
	}
}

func TestAddURLUnpack(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, f := range []struct{ name, data string }{{"pkg/bin/tool", "#!/bin/sh\n"}, {"pkg/README", "read me\n"}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o755, Size: int64(len(f.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(f.data))
	}
	tw.Close()
	zw.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(buf.Bytes())
	}))
	defer srv.Close()
	dir := e.context(map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\nARG URL\n" +
		"ADD --unpack=true $URL /opt/\n" +
		"ADD $URL /raw/\n"})
	r := e.kiln("", "build", "--progress=plain", "-t", "addunpack", "--build-arg", "BASE="+e.base,
		"--build-arg", "URL="+srv.URL+"/dl/pkg.tar.gz", dir)
	if r.code != 0 {
		t.Fatalf("build: %s", r.stderr)
	}
	fs := files(t, e.image("addunpack"))
	if f := fs["/opt/pkg/bin/tool"]; f.data != "#!/bin/sh\n" || f.hdr.Mode&0o777 != 0o755 {
		t.Errorf("/opt/pkg/bin/tool = %q (%v)", f.data, f.hdr)
	}
	if f := fs["/opt/pkg/README"]; f.data != "read me\n" {
		t.Errorf("/opt/pkg/README = %q", f.data)
	}
	// Without --unpack a download is not extracted (0600, as downloaded).
	if f := fs["/raw/pkg.tar.gz"]; f.hdr == nil || f.data != buf.String() || f.hdr.Mode&0o777 != 0o600 {
		t.Errorf("/raw/pkg.tar.gz not the archive as downloaded")
	}
}
