// Package solver runs a build graph: it computes each vertex's cache key,
// reuses results the store already has, and executes the rest
// concurrently, each vertex once; CommitImage then makes the result, with
// the frontend's config and history, an image in the store.
package solver
