// Package dag holds the build graph the frontend produces and the solver runs:
// vertices, the closed set of operations, and their content-addressed keys.
// It does no I/O.
package dag
