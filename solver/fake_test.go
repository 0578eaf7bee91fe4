//go:build linux

package solver

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/containerenv"
	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/executor"
	"github.com/kiln-build/kiln/frontend"
	"github.com/kiln-build/kiln/solver/dag"
	"github.com/kiln-build/kiln/store"
)

// fakeStore plays every store role the solver uses in memory, with its
// snapshots and scratch dirs in a temp dir: no root, no locks shared with
// other processes. Each role is a small type over the shared state
// (roles), as the real store's are.
type fakeStore struct {
	root string

	mu       sync.Mutex
	records  map[digest.Digest][]store.Layer
	images   map[digest.Digest][]store.Layer
	keyLocks map[string]chan struct{}
	builds   map[string][]byte
	sums     map[string]string
}

func newFakeStore(t *testing.T) *fakeStore {
	t.Helper()
	s := &fakeStore{root: t.TempDir(), records: map[digest.Digest][]store.Layer{}, images: map[digest.Digest][]store.Layer{},
		keyLocks: map[string]chan struct{}{}, builds: map[string][]byte{}, sums: map[string]string{}}
	for _, d := range []string{"snapshots", "tmp", "cachemounts"} {
		if err := os.Mkdir(filepath.Join(s.root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

type (
	fakeRecords     struct{ *fakeStore }
	fakeLayers      struct{ *fakeStore }
	fakeImages      struct{ *fakeStore }
	fakeCacheMounts struct{ *fakeStore }
	fakeScratch     struct{ *fakeStore }
	fakeHistory     struct{ *fakeStore }
	fakeLimits      struct{}
	noStatCache     struct{}
)

var (
	_ Records     = fakeRecords{}
	_ Layers      = fakeLayers{}
	_ Images      = fakeImages{}
	_ CacheMounts = fakeCacheMounts{}
	_ Scratch     = fakeScratch{}
	_ History     = fakeHistory{}
	_ Limits      = fakeLimits{}
	_ StatCaches  = noStatCache{}
)

// roles are the fake's roles, as NewWith takes them.
func (s *fakeStore) roles() Roles {
	return Roles{Records: fakeRecords{s}, Layers: fakeLayers{s}, Images: fakeImages{s}, CacheMounts: fakeCacheMounts{s},
		Scratch: fakeScratch{s}, Limits: fakeLimits{}, History: fakeHistory{s}, StatCaches: noStatCache{}}
}

// addImage stores a one-layer image holding files and returns its digest.
func (s *fakeStore) addImage(t *testing.T, files map[string]string) digest.Digest {
	t.Helper()
	dir, err := fakeScratch{s}.Dir("image-")
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l, err := fakeLayers{s}.MoveIn(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	d := digest.NewFromHex(strings.Repeat("e", 64))
	s.mu.Lock()
	s.images[d] = []store.Layer{l}
	s.mu.Unlock()
	return d
}

// lock is a per-name mutex that gives up when ctx ends.
func (s *fakeStore) lock(ctx context.Context, name string) (func(), error) {
	ch := s.lockChan(name)
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// tryLock is lock without the wait: nil if name is held.
func (s *fakeStore) tryLock(name string) func() {
	ch := s.lockChan(name)
	select {
	case ch <- struct{}{}:
		return func() { <-ch }
	default:
		return nil
	}
}

func (s *fakeStore) lockChan(name string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.keyLocks[name]
	if !ok {
		ch = make(chan struct{}, 1)
		s.keyLocks[name] = ch
	}
	return ch
}

func (s fakeRecords) Lookup(ctx context.Context, key digest.Digest) ([]store.Layer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.records[key]
	if !ok {
		return nil, fmt.Errorf("record %s: %w", key, store.ErrNotFound)
	}
	return append([]store.Layer(nil), l...), nil
}

func (s fakeRecords) Put(ctx context.Context, key digest.Digest, layers []store.Layer) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[key] = append([]store.Layer(nil), layers...)
	return nil
}

func (fakeRecords) Touch(context.Context, digest.Digest) {}

func (s fakeRecords) Lock(ctx context.Context, key digest.Digest) (func(), error) {
	return s.lock(ctx, "key "+string(key))
}

func (s fakeLayers) SnapshotDir(diffID digest.Digest) string {
	return filepath.Join(s.root, "snapshots", diffID.Hex())
}

// EnsureDirs: the fake has no lazy layers, every snapshot is on disk.
func (s fakeLayers) EnsureDirs(ctx context.Context, layers []store.Layer) ([]string, error) {
	out := make([]string, len(layers))
	for i, l := range layers {
		out[i] = s.SnapshotDir(l.DiffID)
	}
	return out, nil
}

func (s fakeLayers) Present(ctx context.Context, diffID digest.Digest) bool {
	_, err := os.Stat(s.SnapshotDir(diffID))
	return err == nil
}

// MoveIn names the layer by a digest of the tree's names, types and data
// (not a real layer tar: nothing here reads one).
func (s fakeLayers) MoveIn(ctx context.Context, dir string) (store.Layer, error) {
	h := sha256.New()
	var size int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(h, "%q %v\n", rel, d.Type())
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			size += int64(len(b))
			fmt.Fprintf(h, "%d %x\n", len(b), sha256.Sum256(b))
		}
		return nil
	})
	if err != nil {
		return store.Layer{}, err
	}
	d := digest.FromHash(h)
	if err := os.Rename(dir, s.SnapshotDir(d)); err != nil {
		if _, serr := os.Stat(s.SnapshotDir(d)); serr != nil {
			return store.Layer{}, err
		}
		os.RemoveAll(dir) // the same layer was made before
	}
	return store.Layer{DiffID: d, Digest: d, Size: size, MediaType: store.MediaTypeLayerTar}, nil
}

func (s fakeImages) Layers(ctx context.Context, d digest.Digest) ([]store.Layer, *v1.ConfigFile, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.images[d]
	if !ok {
		return nil, nil, fmt.Errorf("image %s: %w", d, store.ErrNotFound)
	}
	return l, &v1.ConfigFile{}, nil
}

func (fakeImages) Pull(ctx context.Context, ref, platform string, policy store.PullPolicy) (store.Pulled, error) {
	return store.Pulled{}, fmt.Errorf("pull %s: no registry in this test", ref)
}

func (s fakeCacheMounts) Dir(id string, instance int, mode os.FileMode, uid, gid int) (string, error) {
	d := filepath.Join(s.root, "cachemounts", fmt.Sprintf("%x-%d", sha256.Sum256([]byte(id)), instance))
	return d, os.MkdirAll(d, mode)
}

func (s fakeCacheMounts) Lock(ctx context.Context, id string, instance int) (func(), error) {
	return s.lock(ctx, fmt.Sprintf("cache %q %d", id, instance))
}

func (s fakeCacheMounts) TryLock(id string, instance int) (func(), error) {
	return s.tryLock(fmt.Sprintf("cache %q %d", id, instance)), nil
}

func (s fakeScratch) Dir(prefix string) (string, error) {
	return os.MkdirTemp(filepath.Join(s.root, "tmp"), prefix)
}

func (fakeScratch) Remove(dir string) error { return os.RemoveAll(dir) }

func (fakeLimits) ArchiveLimit(store.BuildConfig) (int64, error) { return 1 << 30, nil }

func (s fakeHistory) ReadRecord(ctx context.Context, name string, v any) error {
	s.mu.Lock()
	b, ok := s.builds[name]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("build record %s: %w", name, store.ErrNotFound)
	}
	return json.Unmarshal(b, v)
}

func (s fakeHistory) RecordSum(ctx context.Context, name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sums[name]
}

func (s fakeHistory) WriteRecord(ctx context.Context, name, sum string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.builds[name], s.sums[name] = b, sum
	return nil
}

func (noStatCache) StatCache() *store.StatCache { return nil }

// fakeExecutor records what it is asked to do, and how many ops ran at
// once; hook, if set, decides how a RUN ends (its command is the last arg).
type fakeExecutor struct {
	hook func(ctx context.Context, cmd string) error

	mu              sync.Mutex
	calls           []string // "RUN cmd", "COPY dest", "MKDIR path", in the order they started
	envs            map[string][]string
	copies          []*executor.CopyOp
	running, maxRun int
}

var _ Executor = (*fakeExecutor)(nil)

func (f *fakeExecutor) start(call string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	f.running++
	f.maxRun = max(f.maxRun, f.running)
}

func (f *fakeExecutor) stop() {
	f.mu.Lock()
	f.running--
	f.mu.Unlock()
}

// Run writes the command into the new layer, so that steps differ.
func (f *fakeExecutor) Run(ctx context.Context, root executor.Rootfs, p executor.Process, o executor.Options) error {
	cmd := p.Args[len(p.Args)-1]
	f.start("RUN " + cmd)
	defer f.stop()
	f.mu.Lock()
	if f.envs == nil {
		f.envs = map[string][]string{}
	}
	f.envs[cmd] = p.Env
	f.mu.Unlock()
	if f.hook != nil {
		if err := f.hook(ctx, cmd); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(root.Upper, "ran"), []byte(cmd), 0o644)
}

func (f *fakeExecutor) Apply(ctx context.Context, root executor.Rootfs, op executor.FileOp) error {
	switch {
	case op.Copy != nil:
		f.start("COPY " + op.Copy.Options.Dest)
		f.mu.Lock()
		f.copies = append(f.copies, op.Copy)
		f.mu.Unlock()
		defer f.stop()
		return os.WriteFile(filepath.Join(root.Upper, "copied"), []byte(strings.Join(op.Copy.Options.Sources, " ")), 0o644)
	case op.Mkdir != nil:
		f.start("MKDIR " + op.Mkdir.Path)
		defer f.stop()
		return os.MkdirAll(filepath.Join(root.Upper, op.Mkdir.Path), 0o755)
	}
	return fmt.Errorf("empty file op")
}

func (f *fakeExecutor) count(call string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == call {
			n++
		}
	}
	return n
}

func (f *fakeExecutor) snapshot() (calls []string, maxRun int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...), f.maxRun
}

// fakeResolver resolves every image to the fake store's base image.
type fakeResolver struct{ digest digest.Digest }

func (r fakeResolver) Resolve(ctx context.Context, ref, platform string) (string, digest.Digest, *v1.ConfigFile, error) {
	return "example.test/" + ref, r.digest, &v1.ConfigFile{Config: v1.Config{Env: []string{"PATH=" + containerenv.DefaultPath}}}, nil
}

// harness is a fake store with a base image and a build context: what
// each test compiles Dockerfiles against and solves them in.
type harness struct {
	t       *testing.T
	store   *fakeStore
	base    digest.Digest
	context string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	st := newFakeStore(t)
	return &harness{t: t, store: st, base: st.addImage(t, map[string]string{"etc/passwd": "root:x:0:0::/root:/bin/sh\n"}), context: t.TempDir()}
}

// compile turns a Dockerfile into its graph, with the real frontend.
func (h *harness) compile(df string, args map[string]string) *dag.Vertex {
	h.t.Helper()
	res, err := frontend.Compile(h.t.Context(), frontend.Options{
		Dockerfile: []byte(df), Filename: "Dockerfile", ContextDir: h.context, BuildArgs: args,
		Platform: "linux/amd64", Resolver: fakeResolver{h.base},
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return res.Root
}

// solve runs a new build (a new Solver, as a new kiln build would be) of
// root with ex.
func (h *harness) solve(ctx context.Context, ex *fakeExecutor, root *dag.Vertex, o Options) ([]store.Layer, error) {
	return NewWith(h.store.roles(), ex, o).Solve(ctx, root)
}

func writeFile(t *testing.T, dir, name, data string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
