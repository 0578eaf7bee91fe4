// Package solver runs a build graph: it computes each vertex's cache key,
// reuses results the store already has, and executes the rest
// concurrently, each vertex once.
package solver
