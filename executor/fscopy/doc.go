// Package fscopy copies files from a source root onto a destination root
// filesystem with the semantics of a Dockerfile COPY instruction.
//
// It is pure Go and works on plain directories; the executor calls it in a
// private mount namespace with the destination being an overlay mount. Every
// path is resolved with github.com/cyphar/filepath-securejoin so neither
// "../" in a source nor a symlink in either tree can reach outside its root.
// Walk and Copy share one selection engine, so what the solver hashes for
// the cache key is exactly what gets copied; that is why the package is a
// leaf, importing nothing of kiln's but other leaves, that both the solver
// and the executor use.
//
// A change to what Copy or the archive extraction produce for the same
// options (ownership, modes, times, replacement rules) must bump
// solver/dag.ExecVersion, or stores keep results made by the old rules
// under the same keys.
package fscopy
