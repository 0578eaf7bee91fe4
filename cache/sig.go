//go:build linux

package cache

import "syscall"

var sigZero = syscall.Signal(0)
