// Package busybox builds a minimal busybox base image from the host's static
// busybox binary and serves it from an in-process registry, so tests and the
// demo have a base image without the internet.
package busybox
