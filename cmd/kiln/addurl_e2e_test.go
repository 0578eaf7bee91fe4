package main

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestAddURL(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	content := "remote content v1\n"
	// The handler runs on the server's goroutines; the test changes the
	// served content between builds, so it is shared through an atomic.
	var served atomic.Value
	served.Store(content)
	modified := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/files/tool.txt" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Last-Modified", modified.Format(http.TimeFormat))
		w.Write([]byte(served.Load().(string)))
	}))
	defer srv.Close()
	sum := sha256.Sum256([]byte(content))
	good := "sha256:" + hex.EncodeToString(sum[:])
	u := srv.URL + "/files/tool.txt"
	dir := e.context(map[string]string{
		"Dockerfile": "ARG BASE\nARG URL\nARG SUM\nFROM $BASE\nARG URL\nARG SUM\n" +
			"ADD $URL /opt/\n" +
			"ADD --checksum=$SUM --chown=1000:1000 $URL /srv/renamed.txt\n",
	})
	build := func(sumArg string) result {
		return e.kiln("", "build", "--progress=plain", "-t", "addurl", "--build-arg", "BASE="+e.base,
			"--build-arg", "URL="+u, "--build-arg", "SUM="+sumArg, dir)
	}
	if r := build(good); r.code != 0 {
		t.Fatalf("build: %s", r.stderr)
	}
	fs := files(t, e.image("addurl"))
	f := fs["/opt/tool.txt"]
	if f.data != content || f.hdr.Mode&0o777 != 0o600 || f.hdr.Uid != 0 || !f.hdr.ModTime.Equal(modified) {
		t.Errorf("/opt/tool.txt = %q mode %o uid %d mtime %v", f.data, f.hdr.Mode&0o777, f.hdr.Uid, f.hdr.ModTime)
	}
	if r := fs["/srv/renamed.txt"]; r.data != content || r.hdr.Uid != 1000 {
		t.Errorf("/srv/renamed.txt = %q uid %d", r.data, r.hdr.Uid)
	}
	// Same remote content: cached. Changed remote content: rebuilt.
	if r := build(good); strings.Contains(r.stderr, "] ADD") && strings.Count(r.stderr, "CACHED") < 3 {
		t.Errorf("unchanged download re-ran steps:\n%s", r.stderr)
	}
	content = "remote content v2\n"
	served.Store(content)
	r := build(good)
	if r.code == 0 || !strings.Contains(r.stderr, "checksum mismatch") {
		t.Errorf("a download that no longer matches --checksum must fail: exit %d\n%s", r.code, r.stderr)
	}
	sum = sha256.Sum256([]byte(content))
	if r := build("sha256:" + hex.EncodeToString(sum[:])); r.code != 0 {
		t.Fatalf("build v2: %s", r.stderr)
	}
	if got := files(t, e.image("addurl"))["/opt/tool.txt"].data; got != content {
		t.Errorf("changed remote content not picked up: %q", got)
	}
}
