//go:build linux

package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/solver"
	"github.com/kiln-build/kiln/store"
)

// buildProgress is a build's progress output, step logs and trace.
type buildProgress struct {
	*solver.Progress
	trace     *solver.Trace
	tracePath string
}

// newBuildProgress sets up --progress (auto picks tty when stderr is a
// terminal) and --trace.
func newBuildProgress(st *store.Store, mode, tracePath string, quiet bool, start time.Time) (*buildProgress, error) {
	if quiet {
		mode = "quiet"
	}
	switch mode {
	case "auto":
		mode = "plain"
		if isTerminal(os.Stderr) {
			mode = "tty"
		}
	case "plain", "tty", "rawjson", "quiet":
	default:
		return nil, fmt.Errorf("--progress %q: use auto, tty, plain, rawjson or quiet", mode)
	}
	var out io.Writer = os.Stderr
	bp := &buildProgress{tracePath: tracePath}
	if tracePath != "" {
		bp.trace = solver.NewTrace()
	}
	bp.Progress = solver.NewProgressWith(solver.ProgressOptions{
		Mode:  mode,
		Out:   out,
		Start: start,
		Logs:  st.Builds().NewLogs(),
		Trace: bp.trace,
		Width: func() int { return terminalWidth(os.Stderr) },
	})
	return bp, nil
}

// end stops live output and writes the trace; it runs whether or not the
// build succeeded.
func (bp *buildProgress) end() error {
	bp.Close()
	if bp.trace == nil {
		return nil
	}
	return bp.trace.WriteFile(bp.tracePath, time.Now())
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func terminalWidth(f *os.File) int {
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Col == 0 {
		return 80
	}
	return int(ws.Col)
}
