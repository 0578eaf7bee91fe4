// Package atomicfile writes files so that nobody ever sees one half
// written: the bytes go to a temporary file on the same filesystem, which
// is optionally fsynced and then renamed over the final name. A killed
// process leaves at most a temporary file behind, never a torn one. The
// store, the exporters and kiln-busybox all write this way; it is a leaf.
package atomicfile
