// Command kiln builds OCI images from Dockerfiles and runs containers from
// them, without a daemon.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/executor"
	"github.com/kiln-build/kiln/solver"
)

func main() {
	// The executor re-executes this binary inside new namespaces; in that
	// child Init takes over and never returns.
	executor.Init()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	os.Exit(exitCode(err))
}

// exitCode maps an error to kiln's exit status: a failed RUN step or
// container exits with the process's own code.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var xe *executor.ExitError
	if errors.As(err, &xe) && !isStepError(err) {
		// kiln run: the container's status, already visible in its output.
		return xe.Code
	}
	fmt.Fprintf(os.Stderr, "ERROR: %v\n", err)
	var se *solver.StepError
	if errors.As(err, &se) && se.ExitCode != 0 {
		return se.ExitCode
	}
	if errors.Is(err, context.Canceled) {
		return 130
	}
	return 1
}

func isStepError(err error) bool {
	var se *solver.StepError
	return errors.As(err, &se)
}

type globalFlags struct {
	root string
}

func (g *globalFlags) store() (*cache.Store, error) {
	return cache.Open(g.root)
}

func newRootCmd() *cobra.Command {
	g := &globalFlags{}
	cmd := &cobra.Command{
		Use:           "kiln",
		Short:         "Build OCI images from Dockerfiles and run containers, without a daemon",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.PersistentFlags().StringVar(&g.root, "root", cache.DefaultRoot(), "store directory (env KILN_ROOT)")
	cmd.AddCommand(newBuildCmd(g), newRunCmd(g), newImagesCmd(g), newPullCmd(g), newLoadCmd(g), newRmiCmd(g), newTagCmd(g), newSaveCmd(g), newPsCmd(g), newRmCmd(g))
	return cmd
}
