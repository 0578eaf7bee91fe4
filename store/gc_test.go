//go:build linux

package store

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/digest"
)

// gcStore is a store with: an image "app" of layers base+a, a record for
// each layer chain, a record for a layer b that no image uses, and one
// for c that only a container's image uses.
type gcStore struct {
	s             *Store
	base, a, b, c Layer
	keys          map[string]digest.Digest
}

func key(n string) digest.Digest { return digest.FromBytes([]byte("key " + n)) }

func newGCStore(t *testing.T) *gcStore {
	t.Helper()
	ctx := context.Background()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	g := &gcStore{s: s, keys: map[string]digest.Digest{}}
	g.base = commitFiles(t, s, map[string]string{"base": "base layer"})
	g.a = commitFiles(t, s, map[string]string{"a": "layer a"})
	g.b = commitFiles(t, s, map[string]string{"b": string(make([]byte, 100000))})
	g.c = commitFiles(t, s, map[string]string{"c": "layer c"})
	for name, chain := range map[string][]Layer{"base": {g.base}, "a": {g.base, g.a}, "b": {g.base, g.b}, "c": {g.base, g.c}} {
		g.keys[name] = key(name)
		if err := s.Records().Put(ctx, key(name), chain); err != nil {
			t.Fatal(err)
		}
	}
	app, err := s.Images().Commit(ctx, &v1.ConfigFile{OS: "linux"}, []Layer{g.base, g.a})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Names().TagDurable(ctx, "app:1", app); err != nil {
		t.Fatal(err)
	}
	// An untagged image that only a container uses.
	ci, err := s.Images().Commit(ctx, &v1.ConfigFile{OS: "linux", Architecture: "c"}, []Layer{g.base, g.c})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Containers().Create(ctx, &Container{Image: "c", Digest: ci}); err != nil {
		t.Fatal(err)
	}
	return g
}

func (g *gcStore) age(t *testing.T, name string, d time.Duration) {
	t.Helper()
	old := time.Now().Add(-d)
	if err := os.Chtimes(g.s.records.path(g.keys[name]), old, old); err != nil {
		t.Fatal(err)
	}
}

func (g *gcStore) has(name string) bool {
	_, err := g.s.Records().Lookup(context.Background(), g.keys[name])
	return err == nil
}

func (g *gcStore) layerKept(l Layer) bool {
	_, err := g.s.Layers().Get(context.Background(), l.DiffID)
	return err == nil
}

func TestGCPolicies(t *testing.T) {
	for _, tc := range []struct {
		name        string
		policy      GCPolicy
		aged        map[string]time.Duration
		wantRecords map[string]bool
		wantBGone   bool
	}{
		{"default removes records no image holds", GCPolicy{},
			nil, map[string]bool{"base": true, "a": true, "b": false, "c": true}, true},
		{"all removes every record", GCPolicy{All: true},
			nil, map[string]bool{"base": false, "a": false, "b": false, "c": false}, true},
		{"until keeps recent records", GCPolicy{All: true, Until: time.Hour},
			map[string]time.Duration{"b": 2 * time.Hour, "a": 3 * time.Hour},
			map[string]bool{"base": true, "a": false, "b": false, "c": true}, true},
		{"until keeps recent unreferenced records", GCPolicy{Until: time.Hour},
			map[string]time.Duration{"a": 3 * time.Hour},
			map[string]bool{"base": true, "a": true, "b": true, "c": true}, false},
		{"keep-storage above usage removes nothing", GCPolicy{All: true, KeepBytes: 1 << 40},
			nil, map[string]bool{"base": true, "a": true, "b": true, "c": true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGCStore(t)
			for n, d := range tc.aged {
				g.age(t, n, d)
			}
			res, err := g.s.GC().Run(context.Background(), []GCPolicy{tc.policy}, false)
			if err != nil {
				t.Fatal(err)
			}
			for n, want := range tc.wantRecords {
				if got := g.has(n); got != want {
					t.Errorf("record %s kept = %v, want %v", n, got, want)
				}
			}
			// What images and containers use always stays.
			for _, l := range []Layer{g.base, g.a, g.c} {
				if !g.layerKept(l) {
					t.Errorf("layer %s used by an image or container was removed", l.DiffID)
				}
			}
			if _, err := g.s.Names().Get(context.Background(), "app:1"); err != nil {
				t.Errorf("image app:1: %v", err)
			}
			if g.layerKept(g.b) == tc.wantBGone {
				t.Errorf("unused layer b kept = %v, want %v (result %+v)", g.layerKept(g.b), !tc.wantBGone, res)
			}
			if tc.wantBGone {
				if _, err := os.Stat(g.s.Layers().SnapshotDir(g.b.DiffID)); !os.IsNotExist(err) {
					t.Errorf("snapshot of b left: %v", err)
				}
				if _, err := g.s.Blobs().Stat(context.Background(), g.b.Digest); err == nil {
					t.Error("blob of b left")
				}
				if res.Freed <= 0 || res.After >= res.Before {
					t.Errorf("result %+v: nothing freed", res)
				}
			}
		})
	}
}

func TestGCKeepStorageRemovesOldestFirst(t *testing.T) {
	g := newGCStore(t)
	g.age(t, "b", 5*time.Hour)
	g.age(t, "a", 1*time.Hour)
	inv, err := g.s.inventory(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	full := inv.plan(nil, time.Now()).before
	// Just below the current usage: removing b (the oldest, and the only
	// record that frees anything) is enough; nothing newer goes.
	res, err := g.s.GC().Run(context.Background(), []GCPolicy{{All: true, KeepBytes: full - 1}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if g.has("b") || !g.has("a") || !g.has("c") || !g.has("base") {
		t.Errorf("records after keep-storage GC: a=%v b=%v c=%v base=%v (%+v)", g.has("a"), g.has("b"), g.has("c"), g.has("base"), res)
	}
	if res.After > full-1 {
		t.Errorf("usage %d after GC, want <= %d", res.After, full-1)
	}
}

func TestGCDryRunAndLogs(t *testing.T) {
	g := newGCStore(t)
	logs := g.s.Builds().NewLogs()
	f, err := logs.Create("1")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("output\n")
	f.Close()
	res, err := g.s.GC().Run(context.Background(), []GCPolicy{{All: true}}, true)
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 4 || res.Logs != 1 || !g.has("b") {
		t.Fatalf("dry run: %+v, b kept %v", res, g.has("b"))
	}
	if _, err := g.s.GC().Run(context.Background(), []GCPolicy{{All: true, Until: time.Hour}}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(logs.Dir()); err != nil {
		t.Errorf("a fresh build log was removed: %v", err)
	}
	if _, err := g.s.GC().Run(context.Background(), []GCPolicy{{All: true}}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(logs.Dir()); !os.IsNotExist(err) {
		t.Errorf("build log not pruned: %v", err)
	}
}

func TestDiskUsageCountsHardLinksOnceAndShared(t *testing.T) {
	g := newGCStore(t)
	ctx := context.Background()
	before, err := g.s.DiskUsage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Built layers have no blob until exported: the blobs are the two
	// images' manifests and configs.
	if before.Snapshots.Count != 4 || before.Records.Count != 4 || before.Blobs.Count != 4 {
		t.Errorf("du counts: %+v", before)
	}
	// One image so far: nothing is shared.
	if len(before.Images) != 1 || before.Shared != 0 {
		t.Errorf("one image, nothing shared: %+v", before)
	}
	app2, err := g.s.Images().Commit(ctx, &v1.ConfigFile{OS: "linux", Architecture: "2"}, []Layer{g.base})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.s.Names().TagDurable(ctx, "app:2", app2); err != nil {
		t.Fatal(err)
	}
	// A hard link inside a snapshot to a big file adds no bytes.
	big := filepath.Join(g.s.Layers().SnapshotDir(g.b.DiffID), "b")
	for i := range 3 {
		if err := os.Link(big, big+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	mount := filepath.Join(g.s.Root(), "cache-mounts", "go-build")
	if err := os.MkdirAll(mount, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mount, "obj"), make([]byte, 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	after, err := g.s.DiskUsage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.CacheMounts.Count != 1 || after.CacheMounts.Bytes < 64<<10 {
		t.Errorf("cache mounts: %+v", after.CacheMounts)
	}
	if after.Shared <= 0 || len(after.Images) != 2 || after.Images[0].Shared <= 0 {
		t.Errorf("shared base not reported: %+v", after)
	}
	if grew := after.Snapshots.Bytes - before.Snapshots.Bytes; grew > 4096 {
		t.Errorf("hard links counted again: snapshots grew by %d bytes", grew)
	}
	if after.Reclaimable <= 0 || after.Total < after.Snapshots.Bytes+after.Blobs.Bytes {
		t.Errorf("du totals: %+v", after)
	}
}

func TestAutoGCSkipsWhenNothingIsDue(t *testing.T) {
	g := newGCStore(t)
	ctx := context.Background()
	res, ran, err := g.s.GC().Auto(ctx)
	if err != nil || ran {
		t.Fatalf("fresh store: ran=%v %+v %v", ran, res, err)
	}
	g.age(t, "b", 72*time.Hour)
	res, ran, err = g.s.GC().Auto(ctx)
	if err != nil || !ran || g.has("b") || !g.has("a") {
		t.Fatalf("after 72h: ran=%v %+v %v; b kept %v", ran, res, err, g.has("b"))
	}
}

func TestStoreLockExcludesGCFromBuilds(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	b1, err := s.GC().LockShared(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := s.GC().LockShared(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l, err := s.GC().TryLockExclusive(); err != nil || l != nil {
		t.Fatalf("GC got the store while builds hold it: %v %v", l, err)
	}
	got := make(chan *Lock)
	go func() {
		l, _ := s.GC().LockExclusive(ctx)
		got <- l
	}()
	b1.Unlock()
	select {
	case <-got:
		t.Fatal("GC got the store while a build still holds it")
	case <-time.After(100 * time.Millisecond):
	}
	b2.Unlock()
	gc := <-got
	if gc == nil {
		t.Fatal("GC never got the store")
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := s.GC().LockShared(short); err == nil {
		t.Error("a build got the store during GC")
	}
	gc.Unlock()
}

func TestGCRefusesWhenAnImageCannotBeRead(t *testing.T) {
	g := newGCStore(t)
	ctx := context.Background()
	rec, err := g.s.Names().Get(ctx, "app:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(g.s.Blobs().Path(rec.Digest), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := g.s.GC().Run(ctx, []GCPolicy{{All: true}}, false); err == nil {
		t.Fatal("GC ran over an image it could not read")
	}
	if !g.has("b") || !g.layerKept(g.a) {
		t.Error("a refused GC removed something")
	}
}
