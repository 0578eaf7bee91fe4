// Package imageref parses and spells image references the way docker does:
// a bare name is on docker.io (library/ for one path component, tag
// latest), a registry on the loopback interface is reached over plain
// HTTP, and names print in docker's canonical ("docker.io/library/x:1")
// and familiar ("x:1") forms. The store, the exporter and the CLI share
// it; it is a leaf.
package imageref
