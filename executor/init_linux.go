package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/executor/fscopy"
)

// Init turns the process into an executor child if it was started as one by
// Run or Apply, and never returns then. Otherwise it returns at once. main
// (and TestMain of tests that use this package) must call it first thing.
func Init() {
	mode, ok := os.LookupEnv(reexecEnv)
	if !ok {
		return
	}
	// Mounts, chdir and credentials must all happen on the thread that
	// finally execs, and nothing else in the process may run in between.
	runtime.LockOSThread()
	// The status pipe must close by itself when the user's program execs.
	unix.CloseOnExec(statusFd)
	s, err := readSpec()
	if err == nil {
		switch mode {
		case modeRun:
			err = runChild(s) // returns only on failure
		case modeApply:
			if err = applyChild(s); err == nil {
				report(status{Done: true})
				os.Exit(0)
			}
		default:
			err = fmt.Errorf("unknown executor child mode %q", mode)
		}
	}
	report(errorStatus(err))
	os.Exit(1)
}

func readSpec() (*spec, error) {
	f := os.NewFile(specFd, "spec")
	defer f.Close()
	var s spec
	if err := json.NewDecoder(f).Decode(&s); err != nil {
		return nil, fmt.Errorf("reading executor spec: %w", err)
	}
	return &s, nil
}

// report sends st to the parent; there is nobody to tell if that fails.
func report(st status) {
	b, _ := json.Marshal(st)
	_, _ = unix.Write(statusFd, append(b, '\n'))
}

// applyChild mounts the overlays for a file operation and runs it. Errors
// from fscopy are returned unwrapped so the parent sees their exact text.
func applyChild(s *spec) error {
	if s.Op == nil {
		return errors.New("apply: no operation in spec")
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	if err := mountOverlay(s.Mountpoint, s.Root); err != nil {
		return err
	}
	defer unmount(s.Mountpoint)
	ctx := context.Background()
	if m := s.Op.Mkdir; m != nil {
		return fscopy.Mkdir(ctx, s.Mountpoint, m.Path, m.Chown, fileMode(m.Mode))
	}
	c := s.Op.Copy
	if c.SrcDir == "" && len(c.SrcLowers) > 0 {
		var err error
		if len(c.SrcLowers) == 1 {
			err = bindReadOnly(c.SrcLowers[0], s.SrcMount)
		} else {
			err = mountOverlay(s.SrcMount, overlay{Lowers: c.SrcLowers})
		}
		if err != nil {
			return fmt.Errorf("mounting copy source: %w", err)
		}
		defer unmount(s.SrcMount)
	}
	if c.Options.Reuse != nil {
		// Reuse links go straight into the upper dir, never through the
		// overlay: link(2) cannot cross mounts.
		c.Options.Reuse.Upper = s.Root.Upper
	}
	// Off the main goroutine, which Init locked to its thread: the copy
	// waits on its file copiers tens of thousands of times, and each wait
	// of a locked goroutine is a hand-off between OS threads. The mounts
	// are the whole process's (its own mount namespace), not this thread's.
	errc := make(chan error, 1)
	go func() { errc <- fscopy.Copy(ctx, s.SrcMount, s.Mountpoint, c.Options) }()
	return <-errc
}

// unmount unmounts target, lazily if it is still busy. The namespace dies
// with the process anyway; unmounting first makes the teardown synchronous.
func unmount(target string) {
	if err := unix.Unmount(target, 0); err != nil {
		_ = unix.Unmount(target, unix.MNT_DETACH)
	}
}

// fileMode converts a unix mode (e.g. 02755) to an os.FileMode; 0 means 0755.
func fileMode(m uint32) os.FileMode {
	if m == 0 {
		return 0o755
	}
	mode := os.FileMode(m & 0o777)
	if m&unix.S_ISUID != 0 {
		mode |= os.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		mode |= os.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= os.ModeSticky
	}
	return mode
}
