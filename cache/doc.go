// Package cache is kiln's local store: content-addressed blobs, unpacked
// layer snapshots, the cache-key → result index and image names. Every
// write is atomic (temp file or dir, then rename), so a killed process
// leaves a store the next one can use.
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
package cache
