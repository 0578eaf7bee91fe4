//go:build linux

package store

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/digest"
)

// The layout is the store's format, which kiln versions share: this is
// every path of it as of the first kiln that wrote each. An entry may be
// added to the layout (and here), never moved or removed.
var formatPaths = []string{
	"blobs/sha256", "snapshots", "layers", "keys", "images", "containers", "logs", "builds",
	"cache-mounts", "locks", "tmp", "gc.lock", "gc-sizes.json", "config.json", "statcache.bin", "statcache.gob",
	"repodigests",
}

func TestLayout(t *testing.T) {
	var paths []string
	for _, e := range layout {
		paths = append(paths, e.path)
		if e.path != path.Clean(e.path) || path.IsAbs(e.path) || strings.HasPrefix(e.path, "..") {
			t.Errorf("entry %q is not a clean path under the root", e.path)
		}
		if e.role == "" || e.holds == "" {
			t.Errorf("entry %s does not say what it holds or who owns it", e.path)
		}
		if (e.gc == gcSwept || e.gc == gcAged || e.gc == gcRoot) && inventoryReaders[e] == nil {
			t.Errorf("GC collects or keeps by %s but no inventory reader reads it", e.path)
		}
		if e.gc == gcSwept && e != blobsDir && e != snapshotsDir && e != layersDir {
			t.Errorf("uses.names does not know which ids name the items of %s", e.path)
		}
	}
	if !slices.Equal(paths, formatPaths) {
		t.Errorf("the layout's paths changed:\n got %q\nwant %q", paths, formatPaths)
	}
	for e := range inventoryReaders {
		if !slices.Contains(layout, e) {
			t.Errorf("an inventory reader reads %s, which is not in the layout", e.path)
		}
	}
	for e := range checks {
		if !slices.Contains(layout, e) {
			t.Errorf("Check verifies %s, which is not in the layout", e.path)
		}
	}

	// Open makes every directory of the layout.
	s := openTemp(t)
	for _, e := range layout {
		fi, err := os.Stat(e.in(s.Root()))
		if e.dir && (err != nil || !fi.IsDir()) {
			t.Errorf("Open did not make %s: %v", e.path, err)
		}
	}
}

// Every role writes only inside its part of the layout: after a store has
// had each role at work, nothing in it is outside a layout entry.
func TestEverythingIsInTheLayout(t *testing.T) {
	ctx := t.Context()
	s, l, d := builtImage(t, map[string]string{"f": "F"})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Names().TagAtomic(ctx, "app:1", d))
	lock, err := s.GC().TryLockExclusive()
	must(err)
	_, _, err = s.GC().Auto(ctx)
	must(err)
	_, err = s.GC().Run(ctx, []GCPolicy{{All: true}}, false) // writes gc-sizes.json
	must(err)
	must(lock.Unlock())
	must(s.Records().Put(ctx, digest.FromBytes([]byte("k")), []Layer{l}))
	key := digest.FromBytes([]byte("image key"))
	must(s.Records().PutImage(ctx, key, d))
	unlock, err := s.Records().Lock(ctx, key)
	must(err)
	unlock()
	_, err = s.Layers().Gzip(ctx, l)
	must(err)
	must(s.Containers().Create(ctx, &Container{Name: "c", Digest: d}))
	f, err := s.Builds().NewLogs().Create("step")
	must(err)
	f.Close()
	must(s.Builds().WriteRecord(ctx, "app", "sum", map[string]string{}))
	_, err = s.CacheMounts().Dir("id", 0, 0o755, os.Getuid(), os.Getgid())
	must(err)
	unlock, err = s.CacheMounts().Lock(ctx, "id", 0)
	must(err)
	unlock()
	tmp, err := s.Temp().Dir("x-")
	must(err)
	must(os.WriteFile(filepath.Join(s.Root(), "config.json"), []byte(`{}`), 0o644))
	sc := s.StatCache()
	fi, err := os.Lstat(filepath.Join(s.Layers().SnapshotDir(l.DiffID), "f"))
	must(err)
	_, err = sc.Sum("/f", fi, func() (string, error) { return "sum", nil })
	must(err)
	must(sc.Save())
	_, err = s.Images().Commit(ctx, &v1.ConfigFile{OS: "linux", Architecture: "unnamed"}, []Layer{l})
	must(err)
	_, err = s.DiskUsage(ctx)
	must(err)
	_, err = s.Check(ctx, false)
	must(err)
	must(s.Temp().Remove(tmp))

	err = filepath.WalkDir(s.Root(), func(p string, de fs.DirEntry, err error) error {
		if err != nil || p == s.Root() {
			return err
		}
		rel, _ := filepath.Rel(s.Root(), p)
		rel = filepath.ToSlash(rel)
		for _, e := range layout {
			if rel == e.path || strings.HasPrefix(rel, e.path+"/") {
				if e.dir && rel == e.path {
					return nil // inside it is the entry's own business
				}
				return fs.SkipDir
			}
			if strings.HasPrefix(e.path, rel+"/") {
				return nil // a parent of entries (blobs/)
			}
		}
		t.Errorf("%s is in the store but in no layout entry", rel)
		return nil
	})
	must(err)
	for _, e := range []*entry{blobsDir, snapshotsDir, layersDir, keysDir, namesDir, containersDir, logsDir, buildsDir,
		cacheMountsDir, locksDir, gcLockFile, gcSizesFile, configFile, statCacheFile} {
		if ents, _ := os.ReadDir(e.in(s.Root())); e.dir && len(ents) == 0 {
			t.Errorf("no role wrote into %s: the test misses a role", e.path)
		} else if _, err := os.Stat(e.in(s.Root())); err != nil {
			t.Errorf("no role wrote %s: the test misses a role", e.path)
		}
	}
}
