//go:build linux

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

	"github.com/kiln-build/kiln/executor"
	"github.com/kiln-build/kiln/frontend"
	"github.com/kiln-build/kiln/registry"
	"github.com/kiln-build/kiln/solver"
	"github.com/kiln-build/kiln/store"
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
	var fe *frontend.Error
	if errors.As(err, &fe) {
		fmt.Fprint(os.Stderr, fe.Snippet()) // the Dockerfile around it, as BuildKit shows it
	}
	fmt.Fprintf(os.Stderr, "ERROR: %v\n", err)
	var se *solver.StepError
	if errors.As(err, &se) && se.ExitCode != 0 {
		return se.ExitCode
	}
	if errors.Is(err, context.Canceled) {
		return 130
	}
	var re *registry.Error
	if errors.As(err, &re) {
		return exitRegistry
	}
	return 1
}

// exitRegistry is kiln's exit status when a registry could not be reached
// or refused us (see docs/registries.md), distinct from a failed step's.
const exitRegistry = 3

func isStepError(err error) bool {
	var se *solver.StepError
	return errors.As(err, &se)
}

type globalFlags struct {
	root     string
	insecure []string    // --insecure-registry
	noLock   bool        // this command does not hold the store (see storeLockFree)
	lock     *store.Lock // shared hold on the store, so GC leaves our writes alone
}

func (g *globalFlags) store() (*store.Store, error) {
	s, err := store.Open(g.root)
	if err == nil {
		err = g.useRegistryConfig(s.Config())
	}
	if err != nil || g.noLock || g.lock != nil {
		return s, err
	}
	// Leftovers of killed builds go before we take our own hold.
	if _, err := s.Temp().Clean(); err != nil {
		fmt.Fprintf(os.Stderr, "warning: cleaning the store's tmp dir: %v\n", err)
	}
	if g.lock, err = s.GC().LockShared(context.Background()); err != nil {
		return nil, err
	}
	return s, nil
}

// unlockStore drops the shared hold (before an automatic GC).
func (g *globalFlags) unlockStore() {
	g.lock.Unlock()
	g.lock = nil
}

// storeLockFree are the commands that do not hold the store shared: run
// (a container can run for days; its record protects its image), and
// the ones that only read or that take the lock exclusively themselves.
var storeLockFree = map[string]bool{"run": true, "ps": true, "rm": true, "images": true, "du": true, "prune": true}

func newRootCmd() *cobra.Command {
	g := &globalFlags{}
	cmd := &cobra.Command{
		Use:           "kiln",
		Short:         "Build OCI images from Dockerfiles and run containers, without a daemon",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			g.noLock = storeLockFree[cmd.Name()]
		},
	}
	cmd.PersistentFlags().StringVar(&g.root, "root", store.DefaultRoot(), "store directory (env KILN_ROOT)")
	cmd.PersistentFlags().StringArrayVar(&g.insecure, "insecure-registry", nil, "registry host that may be spoken to over plain HTTP (repeatable)")
	cmd.AddCommand(newBuildCmd(g), newRunCmd(g), newImagesCmd(g), newPullCmd(g), newLoadCmd(g), newRmiCmd(g), newTagCmd(g), newSaveCmd(g), newPsCmd(g), newRmCmd(g), newDuCmd(g), newPruneCmd(g), newStoreCmd(g), newCommitCmd(g),
		newLoginCmd(g), newLogoutCmd(g), newPushCmd(g), newInspectCmd(g), newHistoryCmd(g), newImageCmd(g))
	return cmd
}
