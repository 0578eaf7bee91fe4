//go:build linux

package solver

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/store"
)

// The store roles the solver uses have two implementations: the store's
// (New) and the in-memory fakes its other tests run on (NewWith). One
// suite per role runs against both, the containerd way, so that what a
// test shows on the fakes holds on the store.
func TestRoles(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) Roles{
		"store": func(t *testing.T) Roles {
			st, err := store.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return rolesOf(st)
		},
		"fake": func(t *testing.T) Roles { return newFakeStore(t).roles() },
	} {
		t.Run(name, func(t *testing.T) {
			t.Run("layers", func(t *testing.T) { testLayers(t, open(t)) })
			t.Run("records", func(t *testing.T) { testRecords(t, open(t)) })
			t.Run("images", func(t *testing.T) { testImages(t, open(t)) })
			t.Run("cache mounts", func(t *testing.T) { testCacheMounts(t, open(t)) })
			t.Run("scratch", func(t *testing.T) { testScratch(t, open(t)) })
			t.Run("history", func(t *testing.T) { testHistory(t, open(t)) })
		})
	}
}

// layerOf moves a scratch dir holding files in as a layer.
func layerOf(t *testing.T, r Roles, files map[string]string) store.Layer {
	t.Helper()
	dir, err := r.Scratch.Dir("layer-")
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l, err := r.Layers.MoveIn(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("MoveIn left %s: %v", dir, err)
	}
	return l
}

func testLayers(t *testing.T, r Roles) {
	a := layerOf(t, r, map[string]string{"f": "A"})
	b := layerOf(t, r, map[string]string{"f": "B"})
	if a.DiffID == b.DiffID {
		t.Fatalf("two trees, one layer %s", a.DiffID)
	}
	if data, err := os.ReadFile(filepath.Join(r.Layers.SnapshotDir(a.DiffID), "f")); err != nil || string(data) != "A" {
		t.Errorf("a's snapshot: %q, %v", data, err)
	}
	if dirs, err := r.Layers.EnsureDirs(t.Context(), []store.Layer{a, b}); err != nil || len(dirs) != 2 || dirs[0] != r.Layers.SnapshotDir(a.DiffID) || dirs[1] != r.Layers.SnapshotDir(b.DiffID) {
		t.Errorf("EnsureDirs = %v, %v", dirs, err)
	}
	if !r.Layers.Present(t.Context(), a.DiffID) || r.Layers.Present(t.Context(), digest.FromBytes([]byte("no such layer"))) {
		t.Error("Present is wrong")
	}
}

func testRecords(t *testing.T, r Roles) {
	ctx := t.Context()
	key := digest.FromBytes([]byte("key"))
	if _, err := r.Records.Lookup(ctx, key); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Lookup of nothing: %v", err)
	}
	l := layerOf(t, r, map[string]string{"f": "A"})
	if err := r.Records.Put(ctx, key, []store.Layer{l}); err != nil {
		t.Fatal(err)
	}
	r.Records.Touch(ctx, key)
	if got, err := r.Records.Lookup(ctx, key); err != nil || len(got) != 1 || got[0] != l {
		t.Errorf("Lookup = %v, %v; want [%v]", got, err, l)
	}
	unlock, err := r.Records.Lock(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := r.Records.Lock(short, key); err == nil {
		t.Error("a held key was locked again")
	}
	unlock()
	again, err := r.Records.Lock(ctx, key)
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	again()
}

func testImages(t *testing.T, r Roles) {
	if _, _, err := r.Images.Layers(t.Context(), digest.FromBytes([]byte("no image"))); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Layers of no image: %v", err)
	}
}

func testCacheMounts(t *testing.T, r Roles) {
	ctx := t.Context()
	uid, gid := os.Getuid(), os.Getgid()
	d0, err := r.CacheMounts.Dir("id", 0, 0o755, uid, gid)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := r.CacheMounts.Dir("id", 0, 0o755, uid, gid); err != nil || again != d0 {
		t.Errorf("Dir again = %s, %v; want %s", again, err, d0)
	}
	if d1, err := r.CacheMounts.Dir("id", 1, 0o755, uid, gid); err != nil || d1 == d0 {
		t.Errorf("instance 1 = %s, %v", d1, err)
	}
	if fi, err := os.Stat(d0); err != nil || !fi.IsDir() {
		t.Errorf("cache mount dir: %v", err)
	}
	unlock, err := r.CacheMounts.Lock(ctx, "id", 0)
	if err != nil {
		t.Fatal(err)
	}
	if u, err := r.CacheMounts.TryLock("id", 0); err != nil || u != nil {
		t.Errorf("TryLock of a held instance: %v, %v", u != nil, err)
	}
	u1, err := r.CacheMounts.TryLock("id", 1)
	if err != nil || u1 == nil {
		t.Fatalf("TryLock of a free instance: %v", err)
	}
	u1()
	unlock()
}

func testScratch(t *testing.T, r Roles) {
	d, err := r.Scratch.Dir("x-")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
		t.Fatalf("scratch dir: %v", err)
	}
	if err := r.Scratch.Remove(d); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d); !os.IsNotExist(err) {
		t.Errorf("after Remove: %v", err)
	}
}

func testHistory(t *testing.T, r Roles) {
	ctx := t.Context()
	var v map[string]int
	if err := r.History.ReadRecord(ctx, "app", &v); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ReadRecord of no build: %v", err)
	}
	if sum := r.History.RecordSum(ctx, "app"); sum != "" {
		t.Errorf("RecordSum of no build = %q", sum)
	}
	if err := r.History.WriteRecord(ctx, "app", "s", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	if err := r.History.ReadRecord(ctx, "app", &v); err != nil || v["n"] != 1 {
		t.Errorf("ReadRecord = %v, %v", v, err)
	}
	if sum := r.History.RecordSum(ctx, "app"); sum != "s" {
		t.Errorf("RecordSum = %q", sum)
	}
}
