//go:build linux

package main

import (
	"strings"
	"testing"

	"github.com/kiln-build/kiln/remotecache"
)

func TestParseCacheSpec(t *testing.T) {
	for _, c := range []struct {
		in     string
		export bool
		want   string // Type Ref|Dir Mode CacheMounts [codec], or "error: ..." substring
	}{
		{"type=registry,ref=r/a:b,compression=zstd", true, "registry r/a:b min false zstd"},
		{"type=registry,ref=r/a:b,compression=uncompressed", true, "registry r/a:b min false uncompressed"},
		{"type=registry,ref=r/a:b,compression=zstd,compression-level=19", true, "registry r/a:b min false zstd-19"},
		{"type=registry,ref=r/a:b,compression-level=9", true, "registry r/a:b min false gzip-9"},
		{"type=registry,ref=r/a:b,compression=zip", true, "error: compression=zip"},
		{"type=registry,ref=r/a:b,compression=gzip,compression-level=12", true, "error: compression-level"},
		{"type=registry,ref=r/a:b,compression=gzip", false, "error: unknown key \"compression\""},
		{"type=registry,ref=r.example/app:cache", false, "registry r.example/app:cache min false"},
		{"r.example/app:cache", false, "registry r.example/app:cache min false"},
		{"type=registry,ref=r.example/app:cache,mode=max,cache-mounts=true", true, "registry r.example/app:cache max true"},
		{"type=local,dest=/tmp/c", true, "local /tmp/c min false"},
		{"type=local,src=/tmp/c", false, "local /tmp/c min false"},
		{`"type=registry","ref=r.example/a:b"`, false, "registry r.example/a:b min false"},
		{"type=registry,ref=r/a:b,mode=max", false, "error: unknown key \"mode\""},
		{"type=registry,ref=r/a:b,mode=all", true, "error: mode=all"},
		{"type=registry,ref=r/a:b,colour=red", true, "error: unknown key \"colour\""},
		{"type=local,dest=/tmp/c", false, "error: unknown key \"dest\""},
		{"type=local", true, "error: needs dest=DIR"},
		{"type=registry", true, "error: needs ref=REF"},
		{"type=gha", true, "error: unknown type"},
		{"ref=r/a:b", true, "error: type= is required"},
		{"type=registry,ref=r/a:b,cache-mounts=maybe", true, "error: cache-mounts=maybe"},
		{"type=registry,ref", true, "error: is not key=value"},
	} {
		s, err := parseCacheSpec(c.in, c.export)
		got := ""
		if err != nil {
			got = "error: " + err.Error()
		} else {
			loc := s.Ref + s.Dir
			got = strings.Join([]string{s.Type, loc, s.Mode, map[bool]string{true: "true", false: "false"}[s.CacheMounts]}, " ")
			if c.export && s.Codec != remotecache.DefaultCodec {
				got += " " + s.Codec.String()
			}
		}
		if strings.HasPrefix(c.want, "error: ") {
			if err == nil || !strings.Contains(got, strings.TrimPrefix(c.want, "error: ")) {
				t.Errorf("parse(%q, %v) = %q, want an error with %q", c.in, c.export, got, c.want)
			}
			continue
		}
		if got != c.want {
			t.Errorf("parse(%q, %v) = %q, want %q", c.in, c.export, got, c.want)
		}
	}
}

// FuzzParseCacheSpec: any input gives a valid spec or an error naming the
// flag, never a panic; a valid spec names a place to read or write.
func FuzzParseCacheSpec(f *testing.F) {
	for _, s := range []string{"type=registry,ref=r/a:b,mode=max,cache-mounts=true", "type=local,dest=/x", "type=local,src=/x", "r/a:b", `"a=b`, ",,,", "type=registry,ref=\"x,y\""} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, in string, export bool) {
		s, err := parseCacheSpec(in, export)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "--cache-") {
				t.Errorf("error does not name the flag: %v", err)
			}
			return
		}
		switch s.Type {
		case "registry":
			if s.Ref == "" || s.Dir != "" {
				t.Errorf("registry spec %+v", s)
			}
		case "local":
			if s.Dir == "" || s.Ref != "" {
				t.Errorf("local spec %+v", s)
			}
		default:
			t.Errorf("type %q accepted", s.Type)
		}
		if s.Mode != "min" && s.Mode != "max" {
			t.Errorf("mode %q", s.Mode)
		}
	})
}
