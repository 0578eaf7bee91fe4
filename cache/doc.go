// Package cache is kiln's local store: content-addressed blobs, unpacked
// layer snapshots, the cache-key → result index and image names. Every
// write is atomic (temp file or dir, then rename), so a killed process
// leaves a store the next one can use.
package cache
