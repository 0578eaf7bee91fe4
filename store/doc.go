// Package store is kiln's local store: content-addressed blobs, unpacked
// layer snapshots, the cache-key → result index, image names, containers
// and what builds leave behind, in one directory. layout.go lists every
// path in it; a Store is made of roles, one small type per part of that
// layout, reached through the Store:
//
//	Blobs        blobs/sha256: verified, content-addressed blobs
//	Layers       snapshots/, layers/: unpacked layers and their records
//	Records      keys/: what each cache key made (the build cache)
//	Names        images/: image names → manifest digests
//	Images       manifests and configs over layers (blobs, no dir of their own)
//	Containers   containers/: `kiln run`'s containers and writable layers
//	Builds       logs/, builds/: step logs, the last build's record by name
//	CacheMounts  cache-mounts/: RUN --mount=type=cache dirs, and their locks
//	Temp         tmp/: writes in progress, and what killed ones left
//	Config       config.json: the user's settings
//	GC           gc.lock, gc-sizes.json: garbage collection and the store lock
//
// Store itself does what crosses every role: Open, DiskUsage and Check.
//
// Every write is atomic (temp file or dir, then rename), so a killed
// process leaves a store the next one can use.
//
// Durability against a power cut is kept where it is cheap and means
// something: blobs (pulled layers, their configs and manifests, gzip
// forms), the records of pulled layers and image names are fsynced before
// they are named. What a build makes is not (its snapshots, the config and
// manifest of an image over them, the names given at build or commit): its
// snapshots are the page cache's
// until writeback, like any file a build tool writes, so fsyncing the cache
// records that name them would only make a record outlive its data. After
// a crash, a torn record reads as missing (the step runs again) and `kiln
// store check` finds a snapshot that no longer hashes to its diffID.
package store
