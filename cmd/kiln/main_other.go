//go:build !linux

// kiln builds and runs containers with Linux namespaces, overlayfs,
// cgroups and seccomp: on other systems it only says so.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "kiln runs on Linux only (it builds with namespaces, overlayfs, cgroups and seccomp)")
	os.Exit(1)
}
