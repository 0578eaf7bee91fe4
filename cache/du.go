//go:build linux

package cache

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/kiln-build/kiln/imageref"
)

// Usage is a count of things and the disk space they take.
type Usage struct {
	Count int   `json:"count"`
	Bytes int64 `json:"bytes"`
}

// ImageUsage is one image name's share of the store.
type ImageUsage struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`   // its layers (blob + snapshot) and its manifest and config
	Shared int64  `json:"shared"` // part of Size that other images use too
}

// DU is what the store holds, measured on disk: allocated blocks via
// Lstat, directories included, a file with several hard links counted once.
type DU struct {
	Blobs       Usage        `json:"blobs"`
	Snapshots   Usage        `json:"snapshots"`
	CacheMounts Usage        `json:"cacheMounts"`
	Logs        Usage        `json:"logs"`
	Records     Usage        `json:"records"` // cache keys and their index files
	Images      []ImageUsage `json:"images"`
	Shared      int64        `json:"shared"`      // bytes used by more than one image
	Reclaimable int64        `json:"reclaimable"` // what `prune --all` would free
	Total       int64        `json:"total"`
}

type inode struct{ dev, ino uint64 }

// duWalker sums allocated bytes; seen makes hard links count once.
type duWalker struct{ seen map[inode]bool }

func newDUWalker() *duWalker { return &duWalker{seen: map[inode]bool{}} }

// size returns the bytes and entries under path (0 if it does not exist).
func (w *duWalker) size(path string) (int64, int, error) {
	var total int64
	n := 0
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		n++
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			total += fi.Size()
			return nil
		}
		if st.Nlink > 1 && !fi.IsDir() {
			k := inode{uint64(st.Dev), st.Ino}
			if w.seen[k] {
				return nil
			}
			w.seen[k] = true
		}
		total += st.Blocks * 512
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("measuring %s: %w", path, err)
	}
	return total, n, nil
}

// DiskUsage measures the store. It reads but never changes it.
func (s *Store) DiskUsage(ctx context.Context) (DU, error) {
	var du DU
	w := newDUWalker()
	inv, err := s.inventory(ctx, w)
	if err != nil {
		return du, err
	}
	for _, b := range inv.blobs {
		du.Blobs.Count++
		du.Blobs.Bytes += b
	}
	for _, l := range inv.snapshots {
		du.Snapshots.Count++
		du.Snapshots.Bytes += l
	}
	for _, l := range inv.logs {
		du.Logs.Count++
		du.Logs.Bytes += l.size
	}
	rb, rn, err := w.size(filepath.Join(s.root, "keys"))
	if err != nil {
		return du, err
	}
	lb, ln, err := w.size(filepath.Join(s.root, "layers"))
	if err != nil {
		return du, err
	}
	du.Records = Usage{Count: len(inv.records), Bytes: rb + lb}
	_ = rn + ln
	if ents, err := os.ReadDir(filepath.Join(s.root, "cache-mounts")); err == nil {
		du.CacheMounts.Count = len(ents)
		if du.CacheMounts.Bytes, _, err = w.size(filepath.Join(s.root, "cache-mounts")); err != nil {
			return du, err
		}
	}
	// Which images use each layer and blob: a thing used by two is shared.
	users := map[string]int{}
	for _, im := range inv.images {
		for b := range im.blobs {
			users["b"+b]++
		}
		for l := range im.layers {
			users["l"+l]++
		}
	}
	for _, im := range inv.images {
		u := ImageUsage{Name: imageref.Familiar(im.name)}
		for b := range im.blobs {
			u.Size += inv.blobs[b]
			if users["b"+b] > 1 {
				u.Shared += inv.blobs[b]
			}
		}
		for l := range im.layers {
			u.Size += inv.snapshots[l]
			if users["l"+l] > 1 {
				u.Shared += inv.snapshots[l]
			}
		}
		du.Images = append(du.Images, u)
	}
	sort.Slice(du.Images, func(i, j int) bool { return du.Images[i].Name < du.Images[j].Name })
	for k, n := range users {
		if n > 1 {
			if strings.HasPrefix(k, "b") {
				du.Shared += inv.blobs[k[1:]]
			} else {
				du.Shared += inv.snapshots[k[1:]]
			}
		}
	}
	plan := inv.plan([]GCPolicy{{All: true}}, s.now())
	du.Reclaimable = plan.freed
	du.Total = du.Blobs.Bytes + du.Snapshots.Bytes + du.CacheMounts.Bytes + du.Logs.Bytes + du.Records.Bytes
	return du, nil
}

// sizesFile caches snapshot sizes: a snapshot never changes once made.
const sizesFile = "gc-sizes.json"

// snapshotSizes fills inv.snapshots, measuring with w when given, else
// measuring only snapshots the size cache does not know yet.
func (s *Store) snapshotSizes(inv *inventory, w *duWalker) error {
	ents, err := os.ReadDir(filepath.Join(s.root, "snapshots"))
	if err != nil {
		return fmt.Errorf("listing snapshots: %w", err)
	}
	cached := map[string]int64{}
	if w == nil {
		_ = readJSON(filepath.Join(s.root, sizesFile), &cached)
	}
	changed := false
	for _, e := range ents {
		id := e.Name()
		if n, ok := cached[id]; ok {
			inv.snapshots[id] = n
			continue
		}
		if n, ok := s.sizes.Load(id); ok && w == nil {
			inv.snapshots[id] = n.(int64)
			cached[id], changed = n.(int64), true
			continue
		}
		ww := w
		if ww == nil {
			ww = newDUWalker()
		}
		n, _, err := ww.size(filepath.Join(s.root, "snapshots", id))
		if err != nil {
			return err
		}
		inv.snapshots[id] = n
		cached[id], changed = n, true
	}
	if w == nil && changed {
		for id := range cached {
			if _, ok := inv.snapshots[id]; !ok {
				delete(cached, id)
			}
		}
		_ = s.writeRecord(filepath.Join(s.root, sizesFile), cached)
	}
	return nil
}

// forgetSizes drops removed snapshots from the size cache.
func (s *Store) forgetSizes(ids []string) {
	if len(ids) == 0 {
		return
	}
	cached := map[string]int64{}
	if readJSON(filepath.Join(s.root, sizesFile), &cached) != nil {
		return
	}
	for _, id := range ids {
		delete(cached, id)
	}
	_ = s.writeRecord(filepath.Join(s.root, sizesFile), cached)
}
