package user

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

const testPasswd = `root:x:0:0:root:/root:/bin/sh
# a comment line
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin

app:x:1000:1001:App:/home/app:/bin/sh
nohome:x:1002:1002::::
broken:x:notanumber:5:::
`

const testGroup = `root:x:0:root
wheel:x:10:root,app
appgrp:x:1001:
staff:x:50:app,other
other:x:2000:daemon
`

// fakeRoot makes a rootfs with the given /etc files (absent when "").
func fakeRoot(t *testing.T, passwd, group string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, data string) {
		if data == "" {
			return
		}
		if err := os.WriteFile(filepath.Join(root, "etc", name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("passwd", passwd)
	write("group", group)
	return root
}

func TestLookup(t *testing.T) {
	full := fakeRoot(t, testPasswd, testGroup)
	empty := fakeRoot(t, "", "")
	tests := []struct {
		name    string
		root    string
		spec    string
		want    Identity
		wantErr error
	}{
		{"empty is root, from passwd", full, "", Identity{UID: 0, GID: 0, Groups: []uint32{0, 10}, Home: "/root"}, nil},
		{"root by name gets its groups", full, "root", Identity{UID: 0, GID: 0, Groups: []uint32{0, 10}, Home: "/root"}, nil},
		{"name", full, "app", Identity{UID: 1000, GID: 1001, Groups: []uint32{10, 50}, Home: "/home/app"}, nil},
		{"uid in passwd", full, "1000", Identity{UID: 1000, GID: 1001, Groups: []uint32{10, 50}, Home: "/home/app"}, nil},
		{"uid not in passwd", full, "4242", Identity{UID: 4242, GID: 0, Home: "/"}, nil},
		{"uid with no files", empty, "4242", Identity{UID: 4242, GID: 0, Home: "/"}, nil},
		{"empty home defaults", full, "nohome", Identity{UID: 1002, GID: 1002, Home: "/"}, nil},
		{"member of one group", full, "daemon", Identity{UID: 1, GID: 1, Groups: []uint32{2000}, Home: "/usr/sbin"}, nil},
		{"name:group name", full, "app:staff", Identity{UID: 1000, GID: 50, Home: "/home/app"}, nil},
		{"name:gid", full, "app:77", Identity{UID: 1000, GID: 77, Home: "/home/app"}, nil},
		{"uid:gid no files", empty, "5:6", Identity{UID: 5, GID: 6, Home: "/"}, nil},
		{"uid:group name", full, "4242:wheel", Identity{UID: 4242, GID: 10, Home: "/"}, nil},
		{"empty user part is root", full, ":staff", Identity{UID: 0, GID: 50, Home: "/root"}, nil},
		{"trailing colon ignores group", full, "app:", Identity{UID: 1000, GID: 1001, Groups: []uint32{10, 50}, Home: "/home/app"}, nil},
		{"unknown name", full, "nobody", Identity{}, ErrNoPasswdEntries},
		{"name with no passwd file", empty, "app", Identity{}, ErrNoPasswdEntries},
		{"malformed entry is ignored", full, "broken", Identity{}, ErrNoPasswdEntries},
		{"unknown group name", full, "app:nogroup", Identity{}, ErrNoGroupEntries},
		{"group name with no group file", empty, "0:wheel", Identity{}, ErrNoGroupEntries},
		{"uid out of range is a name", full, "4294967296", Identity{}, ErrNoPasswdEntries},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Lookup(tc.root, tc.spec)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Lookup(%q) error = %v, want %v", tc.spec, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Lookup(%q): %v", tc.spec, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Lookup(%q) = %+v, want %+v", tc.spec, got, tc.want)
			}
		})
	}
}

func TestLookupErrorText(t *testing.T) {
	_, err := Lookup(fakeRoot(t, testPasswd, testGroup), "ghost")
	want := "unable to find user ghost: no matching entries in passwd file"
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %q", err, want)
	}
}

func TestLookupChown(t *testing.T) {
	full := fakeRoot(t, testPasswd, testGroup)
	empty := fakeRoot(t, "", "")
	tests := []struct {
		name     string
		root     string
		spec     string
		uid, gid uint32
		wantErr  error
	}{
		{"empty", full, "", 0, 0, nil},
		{"numeric user gets gid=uid", full, "1000", 1000, 1000, nil},
		{"numeric user without files", empty, "33", 33, 33, nil},
		{"name gets primary gid", full, "app", 1000, 1001, nil},
		{"name:name", full, "app:staff", 1000, 50, nil},
		{"name:gid", full, "app:9", 1000, 9, nil},
		{"uid:gid", empty, "7:8", 7, 8, nil},
		{"uid:group name", full, "7:wheel", 7, 10, nil},
		{"group only", full, ":wheel", 0, 10, nil},
		// BuildKit resolves names it cannot find to 0 instead of failing.
		{"unknown user", full, "ghost", 0, 0, nil},
		{"unknown user no passwd", empty, "app", 0, 0, nil},
		{"unknown group keeps the user's gid", full, "app:ghosts", 1000, 1001, nil},
		{"unknown user and group", full, "ghost:ghosts", 0, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			uid, gid, err := LookupChown(tc.root, tc.spec)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("LookupChown(%q) error = %v, want %v", tc.spec, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("LookupChown(%q): %v", tc.spec, err)
			}
			if uid != tc.uid || gid != tc.gid {
				t.Fatalf("LookupChown(%q) = %d:%d, want %d:%d", tc.spec, uid, gid, tc.uid, tc.gid)
			}
		})
	}
}

// A symlinked /etc/passwd pointing outside the rootfs must resolve inside it.
func TestLookupSymlinkStaysInRoot(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "passwd"), []byte("evil:x:666:666::/:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		target string
	}{
		{"absolute", filepath.Join(outside, "passwd")},
		{"dotdot", "../../../../../../../../" + filepath.Join(outside, "passwd")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := fakeRoot(t, "", "")
			if err := os.Symlink(tc.target, filepath.Join(root, "etc", "passwd")); err != nil {
				t.Fatal(err)
			}
			if _, err := Lookup(root, "evil"); !errors.Is(err, ErrNoPasswdEntries) {
				t.Fatalf("Lookup read outside the root: err = %v", err)
			}
			if uid, gid, err := LookupChown(root, "evil"); err != nil || uid != 0 || gid != 0 {
				t.Fatalf("LookupChown read outside the root: %d:%d, %v", uid, gid, err)
			}
		})
	}
}

// A symlink inside the rootfs is followed relative to the rootfs.
func TestLookupSymlinkWithinRoot(t *testing.T) {
	root := fakeRoot(t, "", testGroup)
	if err := os.MkdirAll(filepath.Join(root, "usr/lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "usr/lib/passwd"), []byte(testPasswd), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/usr/lib/passwd", filepath.Join(root, "etc", "passwd")); err != nil {
		t.Fatal(err)
	}
	id, err := Lookup(root, "app")
	if err != nil {
		t.Fatal(err)
	}
	if id.UID != 1000 || id.GID != 1001 {
		t.Fatalf("got %+v, want 1000:1001", id)
	}
}

func TestLookupNotRegular(t *testing.T) {
	root := fakeRoot(t, "", "")
	if err := os.Mkdir(filepath.Join(root, "etc", "passwd"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Lookup(root, "app"); err == nil || errors.Is(err, ErrNoPasswdEntries) {
		t.Fatalf("want a read error for a directory passwd, got %v", err)
	}
}
