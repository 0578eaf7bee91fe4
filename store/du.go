//go:build linux

package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

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

// add counts u in line l.
func (du *DU) add(l duLine, u Usage) {
	switch l {
	case duBlobs:
		du.Blobs.Count += u.Count
		du.Blobs.Bytes += u.Bytes
	case duSnapshots:
		du.Snapshots.Count += u.Count
		du.Snapshots.Bytes += u.Bytes
	case duRecords:
		du.Records.Count += u.Count
		du.Records.Bytes += u.Bytes
	case duRecordIndex:
		du.Records.Bytes += u.Bytes
	case duCacheMounts:
		du.CacheMounts.Count += u.Count
		du.CacheMounts.Bytes += u.Bytes
	case duLogs:
		du.Logs.Count += u.Count
		du.Logs.Bytes += u.Bytes
	}
}

// DiskUsage measures the store: each entry of the layout that counts in
// a line of DU, and what images share. It reads but never changes it.
func (s *Store) DiskUsage(ctx context.Context) (DU, error) {
	var du DU
	w := newDUWalker()
	inv, err := s.inventory(ctx, w)
	if err != nil {
		return du, err
	}
	for _, e := range layout {
		if e.du == duNone {
			continue
		}
		var u Usage
		items, read := inv.items[e]
		switch {
		case inv.sized[e]: // measured by the inventory, item by item
			for _, it := range items {
				u.Count++
				u.Bytes += it.size
			}
		default:
			if u.Bytes, _, err = w.size(e.in(s.root)); err != nil {
				return du, err
			}
			if read {
				u.Count = len(items)
			} else if ents, err := os.ReadDir(e.in(s.root)); err == nil {
				u.Count = len(ents)
			}
		}
		du.add(e.du, u)
	}
	blobs, snaps := sizes(inv.items[blobsDir]), sizes(inv.items[snapshotsDir])
	// Which images use each layer and blob: a thing used by two is shared.
	users := map[string]int{}
	for _, im := range inv.images {
		for b := range im.uses.blobs {
			users["b"+b]++
		}
		for l := range im.uses.layers {
			users["l"+l]++
		}
	}
	for _, im := range inv.images {
		u := ImageUsage{Name: imageref.Familiar(im.name)}
		for b := range im.uses.blobs {
			u.Size += blobs[b]
			if users["b"+b] > 1 {
				u.Shared += blobs[b]
			}
		}
		for l := range im.uses.layers {
			u.Size += snaps[l]
			if users["l"+l] > 1 {
				u.Shared += snaps[l]
			}
		}
		du.Images = append(du.Images, u)
	}
	sort.Slice(du.Images, func(i, j int) bool { return du.Images[i].Name < du.Images[j].Name })
	for k, n := range users {
		if n > 1 {
			if k[0] == 'b' {
				du.Shared += blobs[k[1:]]
			} else {
				du.Shared += snaps[k[1:]]
			}
		}
	}
	du.Reclaimable = inv.plan([]GCPolicy{{All: true}}, time.Now()).freed
	du.Total = du.Blobs.Bytes + du.Snapshots.Bytes + du.CacheMounts.Bytes + du.Logs.Bytes + du.Records.Bytes
	return du, nil
}

func sizes(items []*gcItem) map[string]int64 {
	m := make(map[string]int64, len(items))
	for _, it := range items {
		m[it.id] = it.size
	}
	return m
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

// snapshotSizes is gc-sizes.json, the size of each snapshot measured once
// (a snapshot never changes), and the sizes this process learnt when it
// made snapshots (Layers.MoveIn).
type snapshotSizes struct {
	path string
	tmp  string

	known sync.Map // diffID hex → bytes on disk
}

// measure returns the size of each snapshot in dir: measured now with w
// when given, else from the size cache, measuring only what it does not
// know yet (and remembering it).
func (ss *snapshotSizes) measure(dir string, w *duWalker) (map[string]int64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("listing snapshots: %w", err)
	}
	out := make(map[string]int64, len(ents))
	cached := map[string]int64{}
	if w == nil {
		_ = readJSON(ss.path, &cached)
	}
	changed := false
	for _, e := range ents {
		id := e.Name()
		if n, ok := cached[id]; ok {
			out[id] = n
			continue
		}
		if n, ok := ss.known.Load(id); ok && w == nil {
			out[id] = n.(int64)
			cached[id], changed = n.(int64), true
			continue
		}
		ww := w
		if ww == nil {
			ww = newDUWalker()
		}
		n, _, err := ww.size(filepath.Join(dir, id))
		if err != nil {
			return nil, err
		}
		out[id] = n
		cached[id], changed = n, true
	}
	if w == nil && changed {
		for id := range cached {
			if _, ok := out[id]; !ok {
				delete(cached, id)
			}
		}
		_ = writeJSON(ss.tmp, ss.path, cached, atomicOnly)
	}
	return out, nil
}

// forget drops removed snapshots from the size cache.
func (ss *snapshotSizes) forget(ids []string) {
	if len(ids) == 0 {
		return
	}
	cached := map[string]int64{}
	if readJSON(ss.path, &cached) != nil {
		return
	}
	for _, id := range ids {
		delete(cached, id)
	}
	_ = writeJSON(ss.tmp, ss.path, cached, atomicOnly)
}
