// Package busybox builds a minimal busybox base image from the host's static
// busybox binary and serves it from an in-process registry, so tests and the
// demo have a base image without the internet. It is a test fixture, not an
// exporter: only cmd (kiln-busybox, kiln-registry) and tests use it.
package busybox
