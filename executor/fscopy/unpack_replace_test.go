//go:build linux

package fscopy

import (
	"archive/tar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/layer"
)

// replaceCase is a sequence of archives extracted into one root, one per
// ADD, then checked.
type replaceCase struct {
	name     string
	archives func(c *canary) [][]tarEnt
	err      string // what the last extraction's error says; "" = none
	check    func(t *testing.T, c *canary)
}

func isDirAt(t *testing.T, p string) {
	t.Helper()
	if fi, err := os.Lstat(p); err != nil || !fi.IsDir() {
		t.Errorf("%s is not a directory: %v", p, err)
	}
}

func fileAt(t *testing.T, p, data string) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() {
		t.Errorf("%s is not a regular file: %v", p, err)
		return
	}
	if b, _ := os.ReadFile(p); string(b) != data {
		t.Errorf("%s holds %q, want %q", p, b, data)
	}
}

func linkAt(t *testing.T, p, target string) {
	t.Helper()
	if got, err := os.Readlink(p); err != nil || got != target {
		t.Errorf("%s: link to %q (%v), want %q", p, got, err, target)
	}
}

func absent(t *testing.T, p string) {
	t.Helper()
	if _, err := os.Lstat(p); err == nil {
		t.Errorf("%s exists", p)
	}
}

func one(ents ...tarEnt) func(*canary) [][]tarEnt {
	return func(*canary) [][]tarEnt { return [][]tarEnt{ents} }
}

func dirE(name string, mode int64) tarEnt { return tarEnt{name: name, typ: tar.TypeDir, mode: mode} }
func fileE(name, data string) tarEnt      { return tarEnt{name: name, typ: tar.TypeReg, data: data} }
func symE(name, target string) tarEnt     { return tarEnt{name: name, link: target, typ: tar.TypeSymlink} }
func hardE(name, target string) tarEnt    { return tarEnt{name: name, link: target, typ: tar.TypeLink} }

// Finding 3 of issue #7, and the archive cases of the CVEs in
// registries-containers-rootless.md §6: an entry replaces what is at its
// name (unless both are directories), never writes through it; parents
// resolve inside the root; nothing outside the root changes.
var replaceCases = []replaceCase{
	{name: "symlink then dir", archives: one(dirE("t/", 0o755), symE("d", "t"), dirE("d/", 0o755), fileE("d/f", "data")),
		check: func(t *testing.T, c *canary) {
			root := c.root
			isDirAt(t, root+"/d")
			fileAt(t, root+"/d/f", "data")
			absent(t, root+"/t/f")
		}},
	{name: "escaping symlink then dir", archives: one(symE("e", "../outside"), dirE("e/", 0o777), fileE("e/sentinel", "pwned")),
		check: func(t *testing.T, c *canary) {
			root := c.root
			fileAt(t, root+"/e/sentinel", "pwned")
		}},
	{name: "symlink then file", archives: one(dirE("t/", 0o755), fileE("t/x", "orig"), symE("s", "t/x"), fileE("s", "new")),
		check: func(t *testing.T, c *canary) {
			root := c.root
			fileAt(t, root+"/s", "new")
			fileAt(t, root+"/t/x", "orig")
		}},
	{name: "symlink out then file", archives: func(c *canary) [][]tarEnt {
		return [][]tarEnt{{symE("o", c.outside+"/sentinel"), fileE("o", "pwned")}}
	}, check: func(t *testing.T, c *canary) {
		root := c.root
		fileAt(t, root+"/o", "pwned")
	}},
	{name: "file then dir", archives: one(fileE("x", "1"), dirE("x/", 0o755), fileE("x/y", "2")),
		check: func(t *testing.T, c *canary) {
			root := c.root
			fileAt(t, root+"/x/y", "2")
		}},
	{name: "dir then file", archives: one(dirE("y/", 0o755), fileE("y/z", "1"), fileE("y", "2")),
		check: func(t *testing.T, c *canary) {
			root := c.root
			fileAt(t, root+"/y", "2")
		}},
	{name: "dir then dir merges", archives: one(dirE("m/", 0o700), fileE("m/a", "1"), dirE("m/", 0o750)),
		check: func(t *testing.T, c *canary) {
			root := c.root
			fileAt(t, root+"/m/a", "1")
			if st := statOf(t, root+"/m"); st.Mode&0o7777 != 0o750 {
				t.Errorf("merged dir mode %o, want the later entry's 0750", st.Mode&0o7777)
			}
		}},
	{name: "hard link to a symlink links the symlink", archives: one(fileE("f", "data"), symE("s", "f"), hardE("h", "s")),
		check: func(t *testing.T, c *canary) {
			root := c.root
			linkAt(t, root+"/h", "f")
			if statOf(t, root+"/h").Ino != statOf(t, root+"/s").Ino {
				t.Error("h is not a hard link of s")
			}
		}},
	{name: "hard link through an escaping symlink", archives: one(symE("l", "../outside"), hardE("h", "l/sentinel"), fileE("h", "pwned")),
		err: `hard link target "l/sentinel"`},
	{name: "hard link through an absolute symlink", archives: one(dirE("real/", 0o755), fileE("real/f", "r"), symE("l", "/real"), hardE("h", "l/f")),
		check: func(t *testing.T, c *canary) {
			root := c.root
			if statOf(t, root+"/h").Ino != statOf(t, root+"/real/f").Ino {
				t.Error("h is not a hard link of real/f")
			}
		}},
	{name: "hard link to a directory", archives: one(dirE("d/", 0o755), hardE("h", "d")), err: `hard link target "d" is a directory`},
	{name: "hard link to an escaping symlink, then writes", archives: func(c *canary) [][]tarEnt {
		return [][]tarEnt{{symE("s", c.outside+"/sentinel"), hardE("h", "s"), fileE("h", "pwned"), fileE("s", "pwned")}}
	}, check: func(t *testing.T, c *canary) {
		root := c.root
		fileAt(t, root+"/h", "pwned")
	}},
	// kaniko CVE-2026-28406: "../" names joined to the destination wrote
	// outside it. They are refused, as BuildKit and the layer code do.
	{name: "CVE-2026-28406 dotdot name", archives: one(fileE("../outside/pwned", "pwned")), err: `entry "../outside/pwned": name climbs out`,
		check: func(t *testing.T, c *canary) {
			root := c.root
			absent(t, root+"/outside")
		}},
	{name: "CVE-2026-28406 dotdot inside", archives: one(fileE("a/../../outside/sentinel", "pwned")), err: "name climbs out"},
	{name: "CVE-2026-28406 dotdot dir", archives: one(dirE("../../../", 0o777)), err: "name climbs out"},
	{name: "absolute dotdot stays inside", archives: one(fileE("/../outside/sentinel", "inside")),
		check: func(t *testing.T, c *canary) {
			root := c.root
			fileAt(t, root+"/outside/sentinel", "inside")
		}},
	// BuildKit's testDockerfileAddArchiveThroughAbsoluteSymlink: two ADDs,
	// the second through /var/run -> /run from the first.
	{name: "ADD through an absolute symlink", archives: func(*canary) [][]tarEnt {
		return [][]tarEnt{
			{dirE("run/", 0o755), dirE("var/", 0o755), symE("var/run", "/run")},
			{dirE("var/run/act/", 0o755), dirE("var/run/act/actions/", 0o755), dirE("var/run/act/actions/broad/", 0o755),
				dirE("var/run/act/actions/broad/.git/", 0o755), fileE("var/run/act/actions/broad/.git/HEAD", "ref: refs/heads/main\n"),
				hardE("var/run/act/actions/broad/.git/HEAD.link", "var/run/act/actions/broad/.git/HEAD")},
		}
	}, check: func(t *testing.T, c *canary) {
		root := c.root
		head := root + "/run/act/actions/broad/.git/HEAD"
		fileAt(t, head, "ref: refs/heads/main\n")
		if statOf(t, head).Ino != statOf(t, head+".link").Ino {
			t.Error("HEAD.link is not a hard link of HEAD")
		}
		linkAt(t, root+"/var/run", "/run")
		absent(t, "/run/act/actions/broad") // the host's
	}},
	{name: "absolute symlink to the outside's host path", archives: func(c *canary) [][]tarEnt {
		return [][]tarEnt{{symE("var", c.outside), fileE("var/sentinel", "inside"), dirE("var/dir/", 0o777)}}
	}, check: func(t *testing.T, c *canary) {
		root := c.root
		fileAt(t, filepath.Join(root, c.outside, "sentinel"), "inside")
		isDirAt(t, filepath.Join(root, c.outside, "dir"))
	}},
	// kaniko #440 / the Corretto cacerts case: relative symlinks with more
	// ".." than levels are legitimate (they stop at the root) and are kept
	// as they are; entries through them land inside.
	{name: "dotdot-heavy legitimate symlinks", archives: one(
		dirE("etc/pki/java/", 0o755), fileE("etc/pki/java/cacerts", "certs"),
		dirE("usr/lib/jvm/java/lib/security/", 0o755),
		symE("usr/lib/jvm/java/lib/security/cacerts", "../../../../../../../etc/pki/java/cacerts"),
		symE("usr/lib/jvm/java/conf", "../../../../../../etc/java"),
		fileE("usr/lib/jvm/java/conf/x", "y")),
		check: func(t *testing.T, c *canary) {
			root := c.root
			linkAt(t, root+"/usr/lib/jvm/java/lib/security/cacerts", "../../../../../../../etc/pki/java/cacerts")
			fileAt(t, root+"/etc/java/x", "y")
		}},
	// A directory's time is set at the end: by then its name may be a
	// symlink, which must not be followed (it pointed outside).
	{name: "dir times never follow a later symlink", archives: func(c *canary) [][]tarEnt {
		return [][]tarEnt{{{name: "d/", typ: tar.TypeDir, mode: 0o755, mtime: time.Date(2011, 1, 1, 0, 0, 0, 0, time.UTC)}, symE("d", c.outside)}}
	}},
	{name: "dir times under a later symlink loop", archives: one(dirE("a/b/", 0o755), symE("a", "a"))},
	{name: "symlink loop", archives: one(symE("a", "b"), symE("b", "a"), fileE("a/x", "1")), err: "too many levels of symbolic links"},
	{name: "dangling symlink as a parent", archives: one(symE("l", "/nowhere/deep"), fileE("l/f", "1")),
		check: func(t *testing.T, c *canary) {
			root := c.root
			fileAt(t, root+"/nowhere/deep/f", "1")
		}},
	{name: "later symlink over a resolved dir", archives: one(dirE("a/", 0o755), fileE("a/x", "1"), dirE("b/", 0o755),
		symE("a", "b"), fileE("a/y", "2")),
		check: func(t *testing.T, c *canary) {
			root := c.root
			fileAt(t, root+"/b/y", "2")
			absent(t, root+"/b/x")
		}},
}

func TestExtractReplaces(t *testing.T) {
	needRoot(t, "extraction keeps owners")
	for _, tc := range replaceCases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCanary(t, 0)
			archives := tc.archives(c)
			var err error
			for i, ents := range archives {
				err = extractBytes(t.Context(), mkTar(t, ents...), c.root, layer.Limits{})
				if err != nil && i < len(archives)-1 {
					t.Fatalf("archive %d: %v", i, err)
				}
			}
			if tc.err == "" && err != nil {
				t.Fatalf("extract: %v", err)
			}
			if tc.err != "" {
				wantErr(t, err, tc.err)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
			c.check(t)
		})
	}
}

// The destination of an ADD is its extraction root: symlinks in the
// archive, and those already there, resolve inside it.
func TestExtractScopedToDest(t *testing.T) {
	needRoot(t, "extraction keeps owners")
	c := newCanary(t, 0)
	if err := os.MkdirAll(c.root+"/opt/app", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", c.root+"/opt/app/conf"); err != nil {
		t.Fatal(err)
	}
	b := mkTar(t, fileE("conf/x", "1"), symE("up", "../../.."), fileE("up/y", "2"))
	if err := os.WriteFile(c.src+"/a.tar", b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Copy(t.Context(), c.src, c.root, Options{Sources: []string{"a.tar"}, Dest: "/opt/app/", Unpack: true}); err != nil {
		t.Fatal(err)
	}
	fileAt(t, c.root+"/opt/app/etc/x", "1")
	fileAt(t, c.root+"/opt/app/y", "2")
	absent(t, c.root+"/etc")
	if strings.Contains(names(t, c.root), "y") {
		t.Error("y escaped the destination")
	}
	c.check(t)
}
