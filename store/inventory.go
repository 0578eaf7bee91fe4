//go:build linux

package store

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/kiln-build/kiln/digest"
)

// gcItem is one thing of a swept or aged entry that GC may remove: a
// blob, a snapshot, a layer record, a cache record, a build's logs.
type gcItem struct {
	id       string // its name in its entry: blob or diffID hex, record file, build id
	path     string
	dir      bool
	size     int64     // what removing it frees (0 for records, which GC does not count)
	lastUsed time.Time // aged entries: when it was last used
	uses     *uses     // what it keeps while kept (records, layer records); nil: nothing
	held     bool      // a record all of whose uses names and containers keep
}

// uses are the blobs (hex) and layers (diffID hex) something keeps.
type uses struct{ blobs, layers map[string]bool }

func newUses() *uses { return &uses{blobs: map[string]bool{}, layers: map[string]bool{}} }

func (u *uses) add(o *uses) {
	for b := range o.blobs {
		u.blobs[b] = true
	}
	for l := range o.layers {
		u.layers[l] = true
	}
}

func (u *uses) within(o *uses) bool {
	for b := range u.blobs {
		if !o.blobs[b] {
			return false
		}
	}
	for l := range u.layers {
		if !o.layers[l] {
			return false
		}
	}
	return true
}

// names reports whether u names the item id of swept entry e: blobs by
// their hex, snapshots and layer records by their diffID's.
func (u *uses) names(e *entry, id string) bool {
	if e == blobsDir {
		return u.blobs[id]
	}
	return u.layers[id]
}

// namedImage is what one image name uses.
type namedImage struct {
	name string
	uses *uses
}

// inventory is everything in the store that GC reasons about.
type inventory struct {
	items  map[*entry][]*gcItem // the swept and aged entries'
	sized  map[*entry]bool      // entries whose items' sizes were measured
	images []namedImage         // the names, for du's sharing figures
	pinned *uses                // what names and containers use
}

// inventoryReaders read each entry GC reasons about. Store.inventory calls
// them in layout order.
var inventoryReaders = map[*entry]func(s *Store, ctx context.Context, inv *inventory, w, snapW *duWalker) error{
	blobsDir:      readBlobs,
	snapshotsDir:  readSnapshots,
	layersDir:     readLayerRecords,
	keysDir:       readCacheRecords,
	namesDir:      readNames,
	containersDir: readContainers,
	logsDir:       readLogs,
}

// inventory reads the store. With a walker, snapshot sizes are measured
// now (hard links counted once store-wide); without, they come from the
// size cache, measured once per snapshot (snapshots never change).
func (s *Store) inventory(ctx context.Context, w *duWalker) (*inventory, error) {
	inv := &inventory{items: map[*entry][]*gcItem{}, sized: map[*entry]bool{}, pinned: newUses()}
	bw := w
	if bw == nil {
		bw = newDUWalker()
	}
	for _, e := range layout {
		if read := inventoryReaders[e]; read != nil {
			if err := read(s, ctx, inv, bw, w); err != nil {
				return nil, err
			}
		}
	}
	// A record is held if names and containers keep all it uses.
	for _, e := range layout {
		for _, it := range inv.items[e] {
			it.held = it.uses != nil && it.uses.within(inv.pinned)
		}
	}
	return inv, nil
}

func readBlobs(s *Store, ctx context.Context, inv *inventory, w, _ *duWalker) error {
	ents, err := os.ReadDir(s.blobs.dir)
	if err != nil {
		return fmt.Errorf("listing blobs: %w", err)
	}
	for _, e := range ents {
		p := filepath.Join(s.blobs.dir, e.Name())
		n, _, err := w.size(p)
		if err != nil {
			return err
		}
		inv.items[blobsDir] = append(inv.items[blobsDir], &gcItem{id: e.Name(), path: p, size: n})
	}
	inv.sized[blobsDir] = true
	return nil
}

func readSnapshots(s *Store, ctx context.Context, inv *inventory, _, w *duWalker) error {
	sizes, err := s.gc.sizes.measure(s.layers.snapshots, w)
	if err != nil {
		return err
	}
	for id, n := range sizes {
		inv.items[snapshotsDir] = append(inv.items[snapshotsDir], &gcItem{id: id, path: s.layers.SnapshotDir(digest.NewFromHex(id)), dir: true, size: n})
	}
	inv.sized[snapshotsDir] = true
	return nil
}

func readLayerRecords(s *Store, ctx context.Context, inv *inventory, _, _ *duWalker) error {
	ents, err := os.ReadDir(s.layers.records)
	if err != nil {
		return fmt.Errorf("listing layers: %w", err)
	}
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		it := &gcItem{id: id, path: filepath.Join(s.layers.records, e.Name()), uses: newUses()}
		var l layerRecord
		if readJSON(it.path, &l) == nil {
			for _, d := range l.blobRefs() {
				if d.Validate() == nil {
					it.uses.blobs[d.Hex()] = true
				}
			}
		}
		inv.items[layersDir] = append(inv.items[layersDir], it)
	}
	return nil
}

// readCacheRecords reads keys/<hex>.json (a layer chain) and
// keys/<hex>.image.json (an image); other files there are not GC's.
func readCacheRecords(s *Store, ctx context.Context, inv *inventory, _, _ *duWalker) error {
	dir := s.records.dir
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
		it := &gcItem{id: name, path: filepath.Join(dir, name), lastUsed: fi.ModTime(), uses: newUses()}
		switch {
		case strings.HasSuffix(name, ".image.json") && len(name) == 64+len(".image.json"):
			var r ImageRecord
			if readJSON(it.path, &r) == nil {
				it.uses, _ = s.closure(ctx, r.Digest) // what it could read, if not all
			}
		case strings.HasSuffix(name, ".json") && len(name) == 64+len(".json"):
			var r record
			if readJSON(it.path, &r) == nil {
				for _, l := range r.Layers {
					it.uses.layers[l.Hex()] = true
				}
			}
		default:
			continue
		}
		inv.items[keysDir] = append(inv.items[keysDir], it)
	}
	return nil
}

func readNames(s *Store, ctx context.Context, inv *inventory, _, _ *duWalker) error {
	imgs, err := s.names.List(ctx)
	if err != nil {
		return err
	}
	for _, im := range imgs {
		u, err := s.closure(ctx, im.Digest)
		if err != nil {
			return fmt.Errorf("image %s: %w", im.Name, err)
		}
		inv.images = append(inv.images, namedImage{name: im.Name, uses: u})
		inv.pinned.add(u)
	}
	return nil
}

func readContainers(s *Store, ctx context.Context, inv *inventory, _, _ *duWalker) error {
	cs, err := s.containers.List(ctx)
	if err != nil {
		return err
	}
	for _, c := range cs {
		u, err := s.closure(ctx, c.Digest)
		if err != nil {
			return fmt.Errorf("container %s: %w", c.Name, err)
		}
		inv.pinned.add(u)
	}
	return nil
}

func readLogs(s *Store, ctx context.Context, inv *inventory, w, _ *duWalker) error {
	logs, err := s.builds.logDirs()
	if err != nil {
		return err
	}
	for _, l := range logs {
		n, _, err := w.size(l.Path)
		if err != nil {
			return err
		}
		inv.items[logsDir] = append(inv.items[logsDir], &gcItem{id: l.ID, path: l.Path, dir: true, lastUsed: l.ModTime, size: n})
	}
	inv.sized[logsDir] = true
	return nil
}

// closure is what the image with manifest d uses: its manifest, config
// and layer blobs, and its layers (diffIDs). Missing parts are skipped (the
// image is broken already); a part that cannot be read is an error, so
// that GC never removes what an image might use.
func (s *Store) closure(ctx context.Context, d digest.Digest) (*uses, error) {
	u := newUses()
	err := s.closeOver(ctx, d, u, 0)
	return u, err
}

func (s *Store) readIfThere(ctx context.Context, d digest.Digest) ([]byte, error) {
	raw, err := s.blobs.Read(ctx, d)
	if IsNotFound(err) {
		return nil, nil
	}
	return raw, err
}

func (s *Store) closeOver(ctx context.Context, d digest.Digest, u *uses, depth int) error {
	if d.Validate() != nil || depth > 2 {
		return nil
	}
	u.blobs[d.Hex()] = true
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
		if err := s.closeOver(ctx, c.Digest, u, depth+1); err != nil {
			return err
		}
	}
	for _, l := range m.Layers {
		if l.Digest.Validate() == nil {
			u.blobs[l.Digest.Hex()] = true
		}
	}
	if m.Config.Digest.Validate() != nil {
		return nil
	}
	u.blobs[m.Config.Digest.Hex()] = true
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
		u.layers[id.Hex()] = true
	}
	return nil
}

// mark returns what the pinned roots and the live items keep: what they
// use, and what the swept items so named use in turn. An entry names only
// entries above it (layout.go), so one pass from the bottom up is enough.
func (inv *inventory) mark(live map[*gcItem]bool) *uses {
	m := newUses()
	m.add(inv.pinned)
	for it := range live {
		if it.uses != nil {
			m.add(it.uses)
		}
	}
	for i := len(layout) - 1; i >= 0; i-- {
		e := layout[i]
		if e.gc != gcSwept {
			continue
		}
		for _, it := range inv.items[e] {
			if it.uses != nil && m.names(e, it.id) {
				m.add(it.uses)
			}
		}
	}
	return m
}

// usage is the bytes the store would use if only live aged items stayed.
func (inv *inventory) usage(live map[*gcItem]bool) int64 {
	m := inv.mark(live)
	var n int64
	for _, e := range layout {
		for _, it := range inv.items[e] {
			if e.gc == gcSwept && m.names(e, it.id) || e.gc == gcAged && live[it] {
				n += it.size
			}
		}
	}
	return n
}

// plan is a collection worked out but not yet done.
type plan struct {
	remove               map[*entry][]*gcItem
	freed, before, after int64
}

// plan applies policies in order, as BuildKit does, and works out what
// goes: the aged items (records, logs) they drop, then every swept item
// (layer, snapshot, blob) that nothing left uses.
func (inv *inventory) plan(policies []GCPolicy, now time.Time) plan {
	live := map[*gcItem]bool{}
	for _, e := range layout {
		if e.gc == gcAged {
			for _, it := range inv.items[e] {
				live[it] = true
			}
		}
	}
	p := plan{remove: map[*entry][]*gcItem{}}
	p.before = inv.usage(live)
	for _, pol := range policies {
		var cands []*gcItem
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
	m := inv.mark(live)
	for _, e := range layout {
		for _, it := range inv.items[e] {
			if e.gc == gcAged && !live[it] || e.gc == gcSwept && !m.names(e, it.id) {
				p.remove[e] = append(p.remove[e], it)
				p.freed += it.size
			}
		}
	}
	p.after = p.before - p.freed
	return p
}
