//go:build !linux

// kiln-registry is a tool of kiln's demo and tests, which use Linux namespaces,
// overlayfs and cgroups: on other systems it only says so.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "kiln-registry: runs on Linux only")
	os.Exit(1)
}
