// Package executor runs one process in new namespaces over an overlayfs root,
// and applies file operations (COPY, mkdir) over the same kind of overlay in a
// private mount namespace.
//
// It uses the reexec pattern: the kiln binary re-executes itself
// (/proc/self/exe) with an environment marker, and main must call Init before
// anything else so the re-executed copy becomes the container's setup process.
// The setup process mounts everything, drops privileges and execs the user's
// program, so no other process ever lives inside the container's namespaces.
// No runc or libcontainer is involved: only golang.org/x/sys/unix.
package executor
