//go:build !linux

// kiln-busybox is a tool of kiln's demo and tests, which use Linux namespaces,
// overlayfs and cgroups: on other systems it only says so.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "kiln-busybox: runs on Linux only")
	os.Exit(1)
}
