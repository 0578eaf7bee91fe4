//go:build linux

package executor

import (
	"fmt"
	"io"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/executor/fscopy"
)

// Rootfs is an overlay: Lowers are snapshot dirs in overlay format (whiteouts
// are 0/0 char devices, opaque dirs have xattr trusted.overlay.opaque=y),
// bottom layer first (image order). Upper and Work are empty dirs on the same
// filesystem; changes land in Upper (overlay format), which the caller then
// turns into a layer. len(Lowers)==0 means scratch.
type Rootfs struct {
	Lowers []string
	Upper  string
	Work   string
}

// Process is what runs inside the container.
type Process struct {
	Args   []string
	Env    []string // the env of the process (dag.RunEnv for a RUN), plus HOME=<the user's home> if it sets none
	Cwd    string   // absolute path in the rootfs; "" = "/"; created (0755, root) if missing
	User   string   // "", "name", "uid", "name:group", "uid:gid"; resolved in the rootfs
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// Options are the container settings that are not part of the process.
type Options struct {
	Hostname string  // default DefaultHostname
	Network  string  // "" or "host": host network namespace; "none": new namespace with only loopback
	Mounts   []Mount // extra mounts (RUN --mount), in order
	Limits   Limits  // pids and memory of the whole process tree
	// Seccomp is a profile in docker's JSON format for the process's
	// syscall filter; nil is docker's default profile. SeccompUnconfined
	// runs without one (--security-opt seccomp=unconfined).
	Seccomp           []byte
	SeccompUnconfined bool
	// NoNewPrivileges sets no_new_privs: setuid binaries and file
	// capabilities grant nothing (--security-opt no-new-privileges).
	NoNewPrivileges bool
}

// Limits bound what one RUN step or container may use; zero means no limit
// (BuildKit sets none by default).
type Limits struct {
	Pids   int64 `json:"pids,omitempty"`   // processes and threads at once
	Memory int64 `json:"memory,omitempty"` // bytes of memory (and swap on v1, where the kernel accounts it)
}

// Mount is one extra mount in a Run container. A missing target (file or
// directory, and its missing parents) is created for the mount and, if
// still empty after the run, removed from the upper dir, as BuildKit does.
type Mount struct {
	Type     string   `json:"type"`              // "bind", "tmpfs" or "overlay"
	Source   string   `json:"source,omitempty"`  // bind: host file or dir
	Lowers   []string `json:"lowers,omitempty"`  // overlay: layer dirs, bottom first
	Upper    string   `json:"upper,omitempty"`   // overlay: writable (throwaway) upper dir, "" = read-only
	Work     string   `json:"work,omitempty"`    // overlay: its work dir
	Staging  string   `json:"staging,omitempty"` // overlay with Subpath: an empty host dir to mount it on first
	Subpath  string   `json:"subpath,omitempty"` // bind or overlay: the part of it to mount at Target, resolved inside it
	Target   string   `json:"target"`            // absolute path in the container
	ReadOnly bool     `json:"readonly,omitempty"`
	Size     int64    `json:"size,omitempty"` // tmpfs bytes, 0 = kernel default
	// Optional skips the mount when the target exists as the wrong type
	// (the host files every container gets, over an odd image).
	Optional bool `json:"optional,omitempty"`
}

// ExitError is a process that ran but did not exit with status 0.
type ExitError struct {
	Code int // exit status, or 128+signal if killed by a signal
	// Reason says why, when kiln knows more than the status: e.g. the
	// kernel's OOM killer under the step's memory limit.
	Reason string
}

func (e *ExitError) Error() string {
	if e.Reason != "" {
		return (&ExitError{Code: e.Code}).Error() + ": " + e.Reason
	}
	// Like a shell, 128+n is read as signal n.
	if e.Code > 128 && e.Code < 128+65 {
		sig := syscall.Signal(e.Code - 128)
		if name := unix.SignalName(sig); name != "" {
			return fmt.Sprintf("process killed by signal %s", name)
		}
		return fmt.Sprintf("process killed by signal %d", int(sig))
	}
	return fmt.Sprintf("process exited with code %d", e.Code)
}

// FileOp is a filesystem operation done over a Rootfs's overlay inside a
// private mount namespace. Exactly one of Copy and Mkdir is set.
type FileOp struct {
	Copy  *CopyOp  `json:"copy,omitempty"`
	Mkdir *MkdirOp `json:"mkdir,omitempty"`
}

// CopyOp copies from a host directory or from another snapshot chain.
type CopyOp struct {
	SrcDir    string         `json:"srcDir,omitempty"`    // host directory to copy from (the build context), or ""
	SrcLowers []string       `json:"srcLowers,omitempty"` // or: the source's snapshot chain (bottom first), mounted read-only
	Options   fscopy.Options `json:"options"`             // what to copy and where
}

// MkdirOp creates Path and its missing parents.
type MkdirOp struct {
	Path  string `json:"path"`  // absolute in the rootfs
	Chown string `json:"chown"` // owner of created dirs, "" = 0:0
	Mode  uint32 `json:"mode"`  // e.g. 0755
}
