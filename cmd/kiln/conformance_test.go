package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// A conformance case is a directory under testdata/e2e: a Dockerfile (its
// base is `ARG BASE` + `FROM $BASE`, the busybox image), context files, and
// expect.json saying what BuildKit's documented behaviour gives.
type expectation struct {
	Args       []string              `json:"args"`       // extra kiln build flags
	Fail       string                `json:"fail"`       // the build must fail with this in its output
	Exit       int                   `json:"exit"`       // and this exit code (0 = any non-zero)
	Files      map[string]fileExpect `json:"files"`      // path in the image → what it must be
	Config     *configExpect         `json:"config"`     // image config fields to check
	Layers     *int                  `json:"layers"`     // number of layers, base included
	EmptyLayer []bool                `json:"emptyLayer"` // history entries after the base's, in order
	Run        *runExpect            `json:"run"`        // kiln run of the image
	Output     []string              `json:"output"`     // substrings of the build output
}

type fileExpect struct {
	Content  *string `json:"content"`
	Contains string  `json:"contains"`
	Mode     string  `json:"mode"` // octal permission bits, e.g. "0755"
	UID      *int    `json:"uid"`
	GID      *int    `json:"gid"`
	Type     string  `json:"type"` // file, dir, symlink
	Link     string  `json:"link"`
	Absent   bool    `json:"absent"`
}

type configExpect struct {
	Env          []string          `json:"env"`       // must contain
	EnvAbsent    []string          `json:"envAbsent"` // no entry with these names
	Cmd          *[]string         `json:"cmd"`
	Entrypoint   *[]string         `json:"entrypoint"`
	User         *string           `json:"user"`
	WorkingDir   *string           `json:"workingDir"`
	Labels       map[string]string `json:"labels"`
	ExposedPorts *[]string         `json:"exposedPorts"`
	Volumes      *[]string         `json:"volumes"`
	StopSignal   *string           `json:"stopSignal"`
	Healthcheck  *v1.HealthConfig  `json:"healthcheck"`
	OnBuild      *[]string         `json:"onBuild"`
	Shell        *[]string         `json:"shell"`
}

type runExpect struct {
	Args   []string `json:"args"`
	Stdout string   `json:"stdout"`
	Exit   int      `json:"exit"`
}

func TestConformance(t *testing.T) {
	dirs, err := filepath.Glob("../../testdata/e2e/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no conformance cases: %v", err)
	}
	e := newEnv(t)
	for _, dir := range dirs {
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			// Cases share the store, as concurrent builds may (go test
			// -parallel bounds how many run at once); each has its own tag.
			t.Parallel()
			b, err := os.ReadFile(filepath.Join(dir, "expect.json"))
			if err != nil {
				t.Fatal(err)
			}
			var x expectation
			if err := json.Unmarshal(b, &x); err != nil {
				t.Fatalf("expect.json: %v", err)
			}
			ce := *e
			ce.t = t
			ctx := copyContext(t, dir)
			tag := "conf-" + strings.ToLower(name)
			args := append([]string{"build", "--progress=plain", "-t", tag, "--build-arg", "BASE=" + e.base}, x.Args...)
			r := ce.kiln("", append(args, ctx)...)
			if x.Fail != "" {
				if r.code == 0 || !strings.Contains(r.stderr, x.Fail) {
					t.Fatalf("want failure with %q, got exit %d:\n%s", x.Fail, r.code, r.stderr)
				}
				if x.Exit != 0 && r.code != x.Exit {
					t.Errorf("exit code %d, want %d", r.code, x.Exit)
				}
				return
			}
			if r.code != 0 {
				t.Fatalf("build failed (exit %d):\n%s", r.code, r.stderr)
			}
			for _, o := range x.Output {
				if !strings.Contains(r.stderr, o) {
					t.Errorf("build output lacks %q:\n%s", o, r.stderr)
				}
			}
			img := ce.image(tag)
			cfg := configOf(t, img)
			checkFiles(t, files(t, img), x.Files)
			if x.Config != nil {
				checkConfig(t, cfg.Config, *x.Config)
			}
			if x.Layers != nil && len(cfg.RootFS.DiffIDs) != *x.Layers {
				t.Errorf("%d layers, want %d", len(cfg.RootFS.DiffIDs), *x.Layers)
			}
			if x.EmptyLayer != nil {
				h := cfg.History
				if len(h) < len(x.EmptyLayer) {
					t.Fatalf("history has %d entries, want at least %d", len(h), len(x.EmptyLayer))
				}
				var got []bool
				for _, e := range h[len(h)-len(x.EmptyLayer):] {
					got = append(got, e.EmptyLayer)
				}
				if !reflect.DeepEqual(got, x.EmptyLayer) {
					t.Errorf("history empty_layer flags %v, want %v", got, x.EmptyLayer)
				}
			}
			if x.Run != nil {
				rr := ce.kiln("", append([]string{"run", "--rm", tag}, x.Run.Args...)...)
				if rr.stdout != x.Run.Stdout || rr.code != x.Run.Exit {
					t.Errorf("run: stdout %q exit %d, want %q exit %d (stderr %q)", rr.stdout, rr.code, x.Run.Stdout, x.Run.Exit, rr.stderr)
				}
			}
		})
	}
}

// copyContext copies a case dir (but expect.json) to a temp build context.
func copyContext(t *testing.T, dir string) string {
	t.Helper()
	ctx := t.TempDir()
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "expect.json" || rel == "." {
			return nil
		}
		dst := filepath.Join(ctx, rel)
		switch {
		case fi.IsDir():
			return os.MkdirAll(dst, fi.Mode().Perm())
		case fi.Mode()&os.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, dst)
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(dst, b, fi.Mode().Perm())
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return ctx
}

func checkFiles(t *testing.T, fs map[string]file, want map[string]fileExpect) {
	t.Helper()
	paths := make([]string, 0, len(want))
	for p := range want {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		w := want[p]
		f, ok := fs[p]
		if w.Absent {
			if ok {
				t.Errorf("%s should not exist", p)
			}
			continue
		}
		if !ok {
			t.Errorf("%s missing", p)
			continue
		}
		if w.Content != nil && f.data != *w.Content {
			t.Errorf("%s content %q, want %q", p, f.data, *w.Content)
		}
		if w.Contains != "" && !strings.Contains(f.data, w.Contains) {
			t.Errorf("%s content %q lacks %q", p, f.data, w.Contains)
		}
		if w.Mode != "" {
			m, _ := strconv.ParseInt(w.Mode, 8, 32)
			if f.hdr.Mode&0o7777 != m {
				t.Errorf("%s mode %o, want %o", p, f.hdr.Mode&0o7777, m)
			}
		}
		if w.UID != nil && f.hdr.Uid != *w.UID {
			t.Errorf("%s uid %d, want %d", p, f.hdr.Uid, *w.UID)
		}
		if w.GID != nil && f.hdr.Gid != *w.GID {
			t.Errorf("%s gid %d, want %d", p, f.hdr.Gid, *w.GID)
		}
		typ := map[byte]string{'0': "file", '5': "dir", '2': "symlink", '1': "hardlink"}[f.hdr.Typeflag]
		if w.Type != "" && typ != w.Type {
			t.Errorf("%s is a %s, want %s", p, typ, w.Type)
		}
		if w.Link != "" && f.hdr.Linkname != w.Link {
			t.Errorf("%s links to %q, want %q", p, f.hdr.Linkname, w.Link)
		}
	}
}

func checkConfig(t *testing.T, c v1.Config, w configExpect) {
	t.Helper()
	for _, e := range w.Env {
		if !contains(c.Env, e) {
			t.Errorf("Env %q lacks %q", c.Env, e)
		}
	}
	for _, k := range w.EnvAbsent {
		for _, e := range c.Env {
			if strings.HasPrefix(e, k+"=") {
				t.Errorf("Env has %q, which must not be in the config", e)
			}
		}
	}
	eq := func(field string, got, want any) {
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", field, got, want)
		}
	}
	if w.Cmd != nil {
		eq("Cmd", nilIfEmpty(c.Cmd), nilIfEmpty(*w.Cmd))
	}
	if w.Entrypoint != nil {
		eq("Entrypoint", nilIfEmpty(c.Entrypoint), nilIfEmpty(*w.Entrypoint))
	}
	if w.User != nil {
		eq("User", c.User, *w.User)
	}
	if w.WorkingDir != nil {
		eq("WorkingDir", c.WorkingDir, *w.WorkingDir)
	}
	for k, v := range w.Labels {
		eq("Labels["+k+"]", c.Labels[k], v)
	}
	if w.ExposedPorts != nil {
		eq("ExposedPorts", keys(c.ExposedPorts), nilIfEmpty(*w.ExposedPorts))
	}
	if w.Volumes != nil {
		eq("Volumes", keys(c.Volumes), nilIfEmpty(*w.Volumes))
	}
	if w.StopSignal != nil {
		eq("StopSignal", c.StopSignal, *w.StopSignal)
	}
	if w.Healthcheck != nil {
		eq("Healthcheck", c.Healthcheck, w.Healthcheck)
	}
	if w.OnBuild != nil {
		eq("OnBuild", nilIfEmpty(c.OnBuild), nilIfEmpty(*w.OnBuild))
	}
	if w.Shell != nil {
		eq("Shell", nilIfEmpty(c.Shell), nilIfEmpty(*w.Shell))
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func nilIfEmpty(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	return l
}

func keys(m map[string]struct{}) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
