//go:build linux

package store

import "path/filepath"

// entry is one path of the store's layout. The paths and what is in them
// are the store's format: kiln versions read each other's stores, so an
// entry may be added but never moved or changed.
type entry struct {
	path  string // under the root, slash-separated
	dir   bool   // a directory, which Open makes; else a file made on first use
	role  string // the type that reads and writes it
	holds string
	gc    gcRule // how GC treats what is in it
	du    duLine // the `kiln du` line it counts in
}

// gcRule is how GC treats an entry's contents.
type gcRule int

const (
	gcNone  gcRule = iota // never collected (Temp.Clean empties tmp)
	gcRoot                // kept, with all it names: image names, containers
	gcAged                // collected by policy, least recently used first
	gcSwept               // removed once nothing kept names it
)

// duLine is the line of `kiln du` (a field of DU) an entry counts in.
type duLine int

const (
	duNone duLine = iota
	duBlobs
	duSnapshots
	duRecords     // one count per record
	duRecordIndex // in the records line's bytes, not its count
	duCacheMounts
	duLogs
)

// The entries. An entry names only entries above it, so GC, which removes
// from the bottom up, leaves only unnamed leftovers if it is killed.
var (
	blobsDir = &entry{path: "blobs/sha256", dir: true, role: "Blobs", gc: gcSwept, du: duBlobs,
		holds: "<sha256 hex>: blobs, verified by their name: manifests, configs, pulled layers, gzip forms of built ones"}
	snapshotsDir = &entry{path: "snapshots", dir: true, role: "Layers", gc: gcSwept, du: duSnapshots,
		holds: "<diffID hex>/: each layer unpacked, in overlay format; never changed once there"}
	layersDir = &entry{path: "layers", dir: true, role: "Layers", gc: gcSwept, du: duRecordIndex,
		holds: "<diffID hex>.json: a layer's blob digest, size, media type and gzip form; for a lazy layer, the repository its blob is fetched from (remote)"}
	keysDir = &entry{path: "keys", dir: true, role: "Records", gc: gcAged, du: duRecords,
		holds: "<key hex>.json: the layer chain a cache key made; <key hex>.image.json: the image an image key made"}
	namesDir = &entry{path: "images", dir: true, role: "Names", gc: gcRoot,
		holds: "<sha256 hex of the canonical name>.json: an image name and its manifest digest"}
	containersDir = &entry{path: "containers", dir: true, role: "Containers", gc: gcRoot,
		holds: "<id>/: a container's state.json and its writable layer (upper/, work/)"}
	logsDir = &entry{path: "logs", dir: true, role: "Builds", gc: gcAged, du: duLogs,
		holds: "<build id>/<step>.log: each step's full output"}
	buildsDir = &entry{path: "builds", dir: true, role: "Builds",
		holds: "<sha256 hex of the build's name>.json and .sum: the last build's steps, for --explain-cache and COPY reuse"}
	cacheMountsDir = &entry{path: "cache-mounts", dir: true, role: "CacheMounts", du: duCacheMounts,
		holds: "<id hash>[-<n>]/: the directories of RUN --mount=type=cache"}
	locksDir = &entry{path: "locks", dir: true, role: "Records, CacheMounts",
		holds: "flock files: <3 hex> for the cache keys that start so, cache-<id hash>-<n> for cache mounts, layer-<diffID hex> for fetching a lazy layer"}
	tmpDir = &entry{path: "tmp", dir: true, role: "Temp",
		holds: "writes in progress, renamed into place when done; a *.lk dir is flocked by its live owner"}
	gcLockFile = &entry{path: "gc.lock", role: "GC",
		holds: "flocked shared by every build for its whole run, exclusive by GC"}
	gcSizesFile = &entry{path: "gc-sizes.json", role: "GC",
		holds: "the size of each snapshot, measured once (a snapshot never changes)"}
	configFile = &entry{path: "config.json", role: "Config",
		holds: `the user's settings: {"build": {...}, "gc": {...}}`}
	statCacheFile = &entry{path: "statcache.bin", role: "StatCache",
		holds: "the sha256 of context files by their stat data"}
	oldStatCacheFile = &entry{path: "statcache.gob", role: "StatCache",
		holds: "the stat cache's previous format, removed when the new one is saved"}
	repoDigestsDir = &entry{path: "repodigests", dir: true, role: "Images",
		holds: "<image ID hex>/<sha256 hex of the entry>: each REPO@sha256:... the image was pulled from or pushed to (docker's RepoDigests); a few bytes each, kept"}
)

// layout is every entry, in the order above.
var layout = []*entry{
	blobsDir, snapshotsDir, layersDir, keysDir, namesDir, containersDir, logsDir, buildsDir,
	cacheMountsDir, locksDir, tmpDir, gcLockFile, gcSizesFile, configFile, statCacheFile, oldStatCacheFile, repoDigestsDir,
}

// in is e's path in the store rooted at root.
func (e *entry) in(root string) string { return filepath.Join(root, filepath.FromSlash(e.path)) }
