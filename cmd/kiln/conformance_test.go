package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
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
	e, cases := caseEnv(t) // before t.Parallel: see caseEnv
	t.Parallel()
	for _, dir := range dirs {
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
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
			build := cases.build(&ce, dir)
			if build.err != nil {
				t.Fatal(build.err)
			}
			r, tag := build.res, build.tag
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

// Every case of testdata/e2e and testdata/differential is built with kiln
// once, in one store, by the first test that needs the build:
// TestConformance checks it against the case's expect.json,
// TestDifferentialBuildah compares it with buildah's build of the case.
// Cases share the store, as concurrent builds may (go test -parallel bounds
// how many conformance cases run at once); each has its own tag.
var sharedCases struct {
	mu    sync.Mutex
	users int // the tests using store
	store *caseStore
}

type caseStore struct {
	dir    string // the store (dir/store) and the cases' contexts
	mu     sync.Mutex
	builds map[string]*caseBuild // by case dir
}

// caseBuild is kiln's build of one case.
type caseBuild struct {
	once sync.Once
	tag  string
	res  result
	err  error // the case could not be read, or kiln not run
}

// caseEnv makes t a user of the case store until t ends and returns the
// store's env. The store lives while one of its users runs (each round of
// -count builds anew): the tests sharing it call caseEnv before
// t.Parallel, so that neither ends before the other began.
func caseEnv(t *testing.T) (*env, *caseStore) {
	t.Helper()
	e := envAt(t, "") // skips unless end-to-end tests can run
	sharedCases.mu.Lock()
	defer sharedCases.mu.Unlock()
	if sharedCases.store == nil {
		dir, err := os.MkdirTemp("", "kiln-cases-")
		if err != nil {
			t.Fatal(err)
		}
		sharedCases.store = &caseStore{dir: dir, builds: map[string]*caseBuild{}}
	}
	cs := sharedCases.store
	sharedCases.users++
	t.Cleanup(func() {
		sharedCases.mu.Lock()
		defer sharedCases.mu.Unlock()
		if sharedCases.users--; sharedCases.users == 0 {
			sharedCases.store = nil
			if err := os.RemoveAll(cs.dir); err != nil {
				t.Error(err)
			}
		}
	})
	e.root = filepath.Join(cs.dir, "store")
	return e, cs
}

// build is kiln's build of the case in dir (testdata/GROUP/NAME), run now
// unless another test has: `kiln build --progress=plain -t case-GROUP-NAME
// --build-arg BASE=<busybox>` with the args of its expect.json, on a copy
// of the case dir (but expect.json). Safe from any goroutine.
func (cs *caseStore) build(e *env, dir string) *caseBuild {
	dir = filepath.Clean(dir)
	cs.mu.Lock()
	b := cs.builds[dir]
	if b == nil {
		name := filepath.Base(filepath.Dir(dir)) + "-" + filepath.Base(dir)
		b = &caseBuild{tag: "case-" + strings.ToLower(name)}
		cs.builds[dir] = b
	}
	cs.mu.Unlock()
	b.once.Do(func() { b.res, b.err = b.run(e, filepath.Join(cs.dir, "contexts", b.tag), dir) })
	return b
}

func (b *caseBuild) run(e *env, ctx, dir string) (result, error) {
	var x expectation
	if raw, err := os.ReadFile(filepath.Join(dir, "expect.json")); err == nil {
		if err := json.Unmarshal(raw, &x); err != nil {
			return result{}, fmt.Errorf("%s/expect.json: %w", dir, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return result{}, err
	}
	// Made as t.TempDir makes the context of copyContext: the mode of the
	// context's root can show in an image.
	if err := os.MkdirAll(filepath.Dir(ctx), 0o755); err != nil {
		return result{}, err
	}
	if err := os.Mkdir(ctx, 0o700); err != nil {
		return result{}, err
	}
	if err := copyTree(dir, ctx); err != nil {
		return result{}, err
	}
	args := append([]string{"build", "--progress=plain", "-t", b.tag, "--build-arg", "BASE=" + e.base}, x.Args...)
	return e.run("", append(args, ctx)...)
}

// copyContext copies a case dir (but expect.json) to a temp build context.
func copyContext(t *testing.T, dir string) string {
	t.Helper()
	ctx := t.TempDir()
	if err := copyTree(dir, ctx); err != nil {
		t.Fatal(err)
	}
	return ctx
}

// copyTree copies the case dir (but expect.json) into the dir ctx.
func copyTree(dir, ctx string) error {
	return filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
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
