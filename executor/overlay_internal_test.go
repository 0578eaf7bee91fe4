//go:build linux

package executor

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestOverlayData(t *testing.T) {
	long := func(n int) []string {
		var ls []string
		for i := range n {
			ls = append(ls, fmt.Sprintf("/var/lib/kiln/snapshots/%064x", i))
		}
		return ls
	}
	tests := []struct {
		name     string
		o        overlay
		wantData string // "" = only check the prefix and dir
		wantDir  string
		wantErr  error
	}{
		{
			name:     "read-write, top layer first",
			o:        overlay{Lowers: []string{"/s/1", "/s/2"}, Upper: "/u", Work: "/w"},
			wantData: "lowerdir=/s/2:/s/1,upperdir=/u,workdir=/w,redirect_dir=off,metacopy=off,index=off",
		},
		{
			name:     "read-only",
			o:        overlay{Lowers: []string{"/s/1", "/s/2"}},
			wantData: "lowerdir=/s/2:/s/1,redirect_dir=off,metacopy=off,index=off",
		},
		{
			name:     "escaped separators",
			o:        overlay{Lowers: []string{"/s/a:b", `/s/c,d\e`}},
			wantData: `lowerdir=/s/c\,d\\e:/s/a\:b,redirect_dir=off,metacopy=off,index=off`,
		},
		{
			name:    "too long for absolute paths: relative to the common parent",
			o:       overlay{Lowers: long(60), Upper: "/var/lib/kiln/snapshots/up/fs", Work: "/var/lib/kiln/snapshots/up/work"},
			wantDir: "/var/lib/kiln/snapshots",
		},
		{
			name:    "too long even relative",
			o:       overlay{Lowers: long(70)},
			wantErr: errOptionsTooLong,
		},
		{
			name:    "no lowers",
			o:       overlay{},
			wantErr: errors.New("overlay needs at least one lower dir"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, dir, err := overlayData(tt.o, 4096)
			if tt.wantErr != nil {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr.Error()) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(data) >= 4096 {
				t.Errorf("data is %d bytes", len(data))
			}
			if dir != tt.wantDir {
				t.Errorf("dir = %q, want %q", dir, tt.wantDir)
			}
			if tt.wantData != "" && data != tt.wantData {
				t.Errorf("data = %q\nwant   %q", data, tt.wantData)
			}
			if tt.wantDir != "" {
				top := fmt.Sprintf("lowerdir=%064x:", len(tt.o.Lowers)-1)
				if !strings.HasPrefix(data, top) || !strings.Contains(data, ",upperdir=up/fs,workdir=up/work,") {
					t.Errorf("data not relative to %s: %.200s...", dir, data)
				}
			}
		})
	}
}

func TestCommonDir(t *testing.T) {
	tests := []struct {
		paths []string
		want  string
	}{
		{[]string{"/a/b/c", "/a/b/d"}, "/a/b"},
		{[]string{"/a/b/c", "/a/bc/d"}, "/a"},
		{[]string{"/a/b", "/a/b/c"}, "/a/b"},
		{[]string{"/x", "/y"}, "/"},
		{[]string{"/a/b/"}, "/a/b"},
	}
	for _, tt := range tests {
		if got := commonDir(tt.paths); got != tt.want {
			t.Errorf("commonDir(%q) = %q, want %q", tt.paths, got, tt.want)
		}
	}
}

func TestDedupeLowers(t *testing.T) {
	tests := []struct{ in, want []string }{
		{[]string{"/a", "/b"}, []string{"/a", "/b"}},
		{[]string{"/a", "/b", "/a"}, []string{"/b", "/a"}},
		{[]string{"/a", "/a/", "/b", "/c", "/b"}, []string{"/a/", "/c", "/b"}},
	}
	for _, tt := range tests {
		if got := dedupeLowers(tt.in); strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("dedupeLowers(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
