//go:build linux

package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/kiln-build/kiln/digest"
)

// GCPolicy is one pass of garbage collection over the cache records (keys/)
// and build logs. Named images and containers, and everything they use,
// are never removed.
type GCPolicy struct {
	Until     time.Duration // only records unused for longer than this (0: every age)
	All       bool          // also records whose result a named image or container holds
	KeepBytes int64         // > 0: remove the oldest candidates only while the store uses more
}

// GCResult says what a collection removed.
type GCResult struct {
	Records, Logs, Layers, Blobs, Snapshots int
	Freed                                   int64 // bytes
	Before, After                           int64 // store usage (blobs, snapshots, logs)
}

// TouchRecord marks key's record as used now, so GC keeps records in
// use and collects those unused the longest.
func (s *Store) TouchRecord(key digest.Digest) {
	if key.Validate() != nil {
		return
	}
	now := time.Now()
	_ = os.Chtimes(s.keyPath(key), now, now)
}

type invRoot struct {
	name   string
	blobs  map[string]bool // hex
	layers map[string]bool // diffID hex
}

type invItem struct {
	path     string
	lastUsed time.Time
	size     int64
	root     invRoot // records only
	held     bool    // records only: images hold all of it
}

// inventory is everything in the store that GC reasons about.
type inventory struct {
	blobs     map[string]int64    // hex → bytes
	snapshots map[string]int64    // diffID hex → bytes
	layers    map[string][]string // diffID hex → its blobs' hex (blob, gzip form), from layers/*.json
	images    []invRoot           // names
	pinned    invRoot             // names and containers, closed over
	records   []*invItem
	logs      []*invItem
}

func (s *Store) now() time.Time { return time.Now() }

// inventory reads the store. With a walker, snapshot sizes are measured
// now (hard links counted once store-wide); without, they come from the
// size cache, measured once per snapshot (snapshots never change).
func (s *Store) inventory(ctx context.Context, w *duWalker) (*inventory, error) {
	inv := &inventory{blobs: map[string]int64{}, snapshots: map[string]int64{}, layers: map[string][]string{},
		pinned: invRoot{blobs: map[string]bool{}, layers: map[string]bool{}}}
	bw := w
	if bw == nil {
		bw = newDUWalker()
	}
	ents, err := os.ReadDir(filepath.Join(s.root, "blobs", "sha256"))
	if err != nil {
		return nil, fmt.Errorf("listing blobs: %w", err)
	}
	for _, e := range ents {
		n, _, err := bw.size(filepath.Join(s.root, "blobs", "sha256", e.Name()))
		if err != nil {
			return nil, err
		}
		inv.blobs[e.Name()] = n
	}
	if err := s.snapshotSizes(inv, w); err != nil {
		return nil, err
	}
	ents, err = os.ReadDir(filepath.Join(s.root, "layers"))
	if err != nil {
		return nil, fmt.Errorf("listing layers: %w", err)
	}
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		var l layerRecord
		inv.layers[id] = nil
		if readJSON(filepath.Join(s.root, "layers", e.Name()), &l) == nil {
			inv.layers[id] = append(inv.layers[id], l.Digest.Hex())
			if l.Gzip != nil && l.Gzip.Digest.Validate() == nil {
				inv.layers[id] = append(inv.layers[id], l.Gzip.Digest.Hex())
			}
		}
	}
	imgs, err := s.Images(ctx)
	if err != nil {
		return nil, err
	}
	for _, im := range imgs {
		r, err := s.closure(ctx, im.Name, im.Digest)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", im.Name, err)
		}
		inv.images = append(inv.images, r)
		inv.pin(r)
	}
	cs, err := s.Containers(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	for _, c := range cs {
		r, err := s.closure(ctx, c.Name, c.Digest)
		if err != nil {
			return nil, fmt.Errorf("container %s: %w", c.Name, err)
		}
		inv.pin(r)
	}
	if err := s.readRecords(ctx, inv); err != nil {
		return nil, err
	}
	logs, err := s.LogDirs()
	if err != nil {
		return nil, err
	}
	for _, l := range logs {
		n, _, err := bw.size(l.Path)
		if err != nil {
			return nil, err
		}
		inv.logs = append(inv.logs, &invItem{path: l.Path, lastUsed: l.ModTime, size: n})
	}
	return inv, nil
}

func (inv *inventory) pin(r invRoot) {
	for b := range r.blobs {
		inv.pinned.blobs[b] = true
	}
	for l := range r.layers {
		inv.pinned.layers[l] = true
	}
}

// readRecords reads keys/<hex>.json (a layer chain) and
// keys/<hex>.image.json (an image); other files there are not GC's.
func (s *Store) readRecords(ctx context.Context, inv *inventory) error {
	dir := filepath.Join(s.root, "keys")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("listing cache records: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		fi, err := e.Info()
		if err != nil {
			continue
		}
		it := &invItem{path: filepath.Join(dir, name), lastUsed: fi.ModTime(), size: fi.Size()}
		switch {
		case strings.HasSuffix(name, ".image.json") && len(name) == 64+len(".image.json"):
			var r ImageRecord
			if readJSON(it.path, &r) == nil {
				it.root, _ = s.closure(ctx, "", r.Digest)
			}
		case strings.HasSuffix(name, ".json") && len(name) == 64+len(".json"):
			var r record
			it.root = invRoot{blobs: map[string]bool{}, layers: map[string]bool{}}
			if readJSON(it.path, &r) == nil {
				for _, l := range r.Layers {
					it.root.layers[l.Hex()] = true
				}
			}
		default:
			continue
		}
		if it.root.layers == nil {
			it.root = invRoot{blobs: map[string]bool{}, layers: map[string]bool{}}
		}
		it.held = true
		for b := range it.root.blobs {
			it.held = it.held && inv.pinned.blobs[b]
		}
		for l := range it.root.layers {
			it.held = it.held && inv.pinned.layers[l]
		}
		inv.records = append(inv.records, it)
	}
	return nil
}

// closure is what the image with manifest d uses: its manifest, config
// and layer blobs, and its layers (diffIDs). Missing parts are skipped (the
// image is broken already); a part that cannot be read is an error, so
// that GC never removes what an image might use.
func (s *Store) closure(ctx context.Context, name string, d digest.Digest) (invRoot, error) {
	r := invRoot{name: name, blobs: map[string]bool{}, layers: map[string]bool{}}
	err := s.closeOver(ctx, d, r, 0)
	return r, err
}

func (s *Store) readIfThere(ctx context.Context, d digest.Digest) ([]byte, error) {
	raw, err := s.ReadBlob(ctx, d)
	if IsNotFound(err) {
		return nil, nil
	}
	return raw, err
}

func (s *Store) closeOver(ctx context.Context, d digest.Digest, r invRoot, depth int) error {
	if d.Validate() != nil || depth > 2 {
		return nil
	}
	r.blobs[d.Hex()] = true
	raw, err := s.readIfThere(ctx, d)
	if err != nil || raw == nil {
		return err
	}
	var m struct {
		Config    struct{ Digest digest.Digest }   `json:"config"`
		Layers    []struct{ Digest digest.Digest } `json:"layers"`
		Manifests []struct{ Digest digest.Digest } `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("manifest %s: %w", d, err)
	}
	for _, c := range m.Manifests {
		if err := s.closeOver(ctx, c.Digest, r, depth+1); err != nil {
			return err
		}
	}
	for _, l := range m.Layers {
		if l.Digest.Validate() == nil {
			r.blobs[l.Digest.Hex()] = true
		}
	}
	if m.Config.Digest.Validate() != nil {
		return nil
	}
	r.blobs[m.Config.Digest.Hex()] = true
	cb, err := s.readIfThere(ctx, m.Config.Digest)
	if err != nil || cb == nil {
		return err
	}
	var cfg struct {
		RootFS struct {
			DiffIDs []digest.Digest `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(cb, &cfg); err != nil {
		return fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	for _, id := range cfg.RootFS.DiffIDs {
		r.layers[id.Hex()] = true
	}
	return nil
}

// plan is a collection worked out but not yet done.
type plan struct {
	records, logs           []*invItem
	layers, blobs, snapshot []string
	freed, before, after    int64
}

// mark returns what the pinned roots and the live records use.
func (inv *inventory) mark(live map[*invItem]bool) (blobs, layers map[string]bool) {
	blobs, layers = map[string]bool{}, map[string]bool{}
	add := func(r invRoot) {
		for b := range r.blobs {
			blobs[b] = true
		}
		for l := range r.layers {
			layers[l] = true
		}
	}
	add(inv.pinned)
	for it := range live {
		add(it.root)
	}
	for l := range layers {
		for _, b := range inv.layers[l] {
			blobs[b] = true
		}
	}
	return blobs, layers
}

func (inv *inventory) usage(live map[*invItem]bool) int64 {
	blobs, layers := inv.mark(live)
	var n int64
	for b := range blobs {
		n += inv.blobs[b]
	}
	for l := range layers {
		n += inv.snapshots[l]
	}
	for _, it := range inv.logs {
		if live[it] {
			n += it.size
		}
	}
	return n
}

// plan applies policies in order, as BuildKit does, and works out what
// goes: the records and logs they drop, then every layer, snapshot and
// blob that nothing left uses.
func (inv *inventory) plan(policies []GCPolicy, now time.Time) plan {
	live := map[*invItem]bool{}
	for _, it := range inv.records {
		live[it] = true
	}
	for _, it := range inv.logs {
		live[it] = true
	}
	var p plan
	p.before = inv.usage(live)
	for _, pol := range policies {
		var cands []*invItem
		for it := range live {
			if now.Sub(it.lastUsed) < pol.Until || (it.held && !pol.All) {
				continue
			}
			cands = append(cands, it)
		}
		sort.Slice(cands, func(i, j int) bool { return cands[i].lastUsed.Before(cands[j].lastUsed) })
		for _, it := range cands {
			if pol.KeepBytes > 0 && inv.usage(live) <= pol.KeepBytes {
				break
			}
			delete(live, it)
		}
	}
	for _, it := range inv.records {
		if !live[it] {
			p.records = append(p.records, it)
		}
	}
	for _, it := range inv.logs {
		if !live[it] {
			p.logs = append(p.logs, it)
			p.freed += it.size
		}
	}
	blobs, layers := inv.mark(live)
	for l := range inv.layers {
		if !layers[l] {
			p.layers = append(p.layers, l)
		}
	}
	for l, n := range inv.snapshots {
		if !layers[l] {
			p.snapshot = append(p.snapshot, l)
			p.freed += n
		}
	}
	for b, n := range inv.blobs {
		if !blobs[b] {
			p.blobs = append(p.blobs, b)
			p.freed += n
		}
	}
	p.after = p.before - p.freed
	return p
}

// GC removes what policies select. The caller holds the store's
// exclusive lock (LockExclusive), so no build is writing meanwhile.
func (s *Store) GC(ctx context.Context, policies []GCPolicy, dryRun bool) (GCResult, error) {
	inv, err := s.inventory(ctx, nil)
	if err != nil {
		return GCResult{}, err
	}
	p := inv.plan(policies, s.now())
	res := GCResult{Records: len(p.records), Logs: len(p.logs), Layers: len(p.layers), Blobs: len(p.blobs),
		Snapshots: len(p.snapshot), Freed: p.freed, Before: p.before, After: p.after}
	if dryRun {
		return res, nil
	}
	// Records first, then layer records, then what they named: a killed GC
	// leaves only unreferenced leftovers, which the next one removes.
	var errs []error
	rm := func(path string) {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	for _, it := range p.records {
		rm(it.path)
	}
	for _, l := range p.layers {
		rm(filepath.Join(s.root, "layers", l+".json"))
	}
	for _, l := range p.snapshot {
		if err := s.removeDir(filepath.Join(s.root, "snapshots", l)); err != nil {
			errs = append(errs, err)
		}
	}
	for _, b := range p.blobs {
		rm(filepath.Join(s.root, "blobs", "sha256", b))
	}
	for _, it := range p.logs {
		if err := s.removeDir(it.path); err != nil {
			errs = append(errs, err)
		}
	}
	s.forgetSizes(p.snapshot)
	if err := errors.Join(errs...); err != nil {
		return res, fmt.Errorf("garbage collection: %w", err)
	}
	return res, nil
}

// removeDir renames dir into tmp first so that a half-removed snapshot is
// never seen under its name.
func (s *Store) removeDir(dir string) error {
	tmp := filepath.Join(s.root, "tmp", "gc-"+randomID())
	if err := os.Rename(dir, tmp); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("removing %s: %w", dir, err)
	}
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("removing %s: %w", dir, err)
	}
	return nil
}
