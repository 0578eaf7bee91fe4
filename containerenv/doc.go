// Package containerenv is the environment a Linux container starts from
// when its image says nothing: the default PATH. The frontend puts it in a
// stage's config, the executor looks programs up in it, `kiln run` gives it
// and the busybox test image carries it. It is a leaf: any package may use
// it.
package containerenv
