//go:build linux

package solver

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/kiln-build/kiln/executor"
	"github.com/kiln-build/kiln/solver/dag"
)

// StepError is a failed build step: which instruction, why, and for a
// process, its exit code and the last lines it printed.
type StepError struct {
	Vertex   *dag.Vertex
	Err      error
	ExitCode int      // the process's exit code; 0 if the step ran no process
	Tail     []string // last output lines
	LogPath  string   // the step's full output in the store, if it printed any
}

func (e *StepError) Error() string {
	var b strings.Builder
	if pos := e.Vertex.Pos.String(); pos != "" {
		b.WriteString(pos + ": ")
	}
	name := text(e.Vertex)
	if op, ok := e.Vertex.Op.(*dag.ExecOp); ok && e.ExitCode != 0 {
		fmt.Fprintf(&b, "%s: process %q did not complete successfully: exit code: %d", name, strings.Join(op.Args, " "), e.ExitCode)
		var xe *executor.ExitError
		if errors.As(e.Err, &xe) && xe.Reason != "" {
			b.WriteString(" (" + xe.Reason + ")")
		}
	} else {
		fmt.Fprintf(&b, "%s: %v", name, e.Err)
	}
	if len(e.Tail) > 0 {
		b.WriteString("\n  last output:\n")
		for _, l := range e.Tail {
			b.WriteString("    " + l + "\n")
		}
	}
	if e.LogPath != "" {
		if len(e.Tail) == 0 {
			b.WriteString("\n")
		}
		b.WriteString("  full log: " + e.LogPath + "\n")
	}
	return strings.TrimRight(b.String(), "\n")
}

func (e *StepError) Unwrap() error { return e.Err }

// text is what a step does, without its "[stage n/m]" label.
func text(v *dag.Vertex) string {
	if v.Text != "" {
		return v.Text
	}
	return v.Name
}

func stepError(v *dag.Vertex, err error, steps ...*Step) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	var se *StepError
	if errors.As(err, &se) {
		return err
	}
	e := &StepError{Vertex: v, Err: err}
	var xe *executor.ExitError
	if errors.As(err, &xe) {
		e.ExitCode = xe.Code
	}
	for _, s := range steps {
		e.Tail = s.Tail()
		e.LogPath = s.LogPath()
	}
	return e
}
