// Package digest is kiln's content address, "sha256:<hex>": what names a
// blob, a layer (its diffID), a cache key and an image in the store, and how
// one is made from bytes or a hash. It is a leaf: any package may use it.
//
// It is kiln's own rather than github.com/opencontainers/go-digest because
// the store turns digests read from records on disk into file names, and a
// corrupt record must not crash `kiln store check` or GC: Hex never panics
// (go-digest's Encoded and Algorithm panic on a string without a colon).
// kiln only ever hashes with sha256, and its JSON is the plain string, as
// go-digest's is; go-containerregistry's v1.Hash is what images speak.
package digest
