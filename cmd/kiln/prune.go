//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/store"
)

type pruneFlags struct {
	all         bool
	keepStorage string
	filters     []string
	force       bool
	dryRun      bool
}

func newPruneCmd(g *globalFlags) *cobra.Command {
	f := &pruneFlags{}
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove build cache",
		Long: `Remove build cache records and the layers, snapshots and blobs that only
they use, and old build logs. Nothing an image name or a container uses is
ever removed.

By default only records whose result no named image holds are removed;
--all removes every record. --filter until=DURATION keeps records used
within DURATION (e.g. 24h, 7d). --keep-storage SIZE removes the oldest
records only until the store uses at most SIZE (binary units: 1GB = 1024³).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPrune(cmd.Context(), g, f, os.Stdin, os.Stdout)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&f.all, "all", "a", false, "remove all cache records, not only those no image holds")
	fl.StringVar(&f.keepStorage, "keep-storage", "", "amount of disk space to keep for the cache")
	fl.StringArrayVar(&f.filters, "filter", nil, `filter records ("until=DURATION")`)
	fl.BoolVarP(&f.force, "force", "f", false, "do not prompt for confirmation")
	fl.BoolVar(&f.dryRun, "dry-run", false, "only say what would be removed")
	return cmd
}

func runPrune(ctx context.Context, g *globalFlags, f *pruneFlags, in io.Reader, out io.Writer) error {
	pol := store.GCPolicy{All: f.all}
	for _, flt := range f.filters {
		k, v, _ := strings.Cut(flt, "=")
		if k != "until" && k != "unused-for" {
			return fmt.Errorf("--filter %q: only until=DURATION is supported", flt)
		}
		d, err := store.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("--filter %q: %w", flt, err)
		}
		pol.Until = d
	}
	if f.keepStorage != "" {
		n, err := store.ParseSize(f.keepStorage)
		if err != nil {
			return fmt.Errorf("--keep-storage: %w", err)
		}
		pol.KeepBytes = n
	}
	if !f.force && !f.dryRun {
		fmt.Fprint(out, "WARNING! This will remove build cache that no image or container uses.\nAre you sure you want to continue? [y/N] ")
		line, _ := bufio.NewReader(in).ReadString('\n')
		if a := strings.TrimSpace(strings.ToLower(line)); a != "y" && a != "yes" {
			return nil
		}
	}
	st, err := g.store()
	if err != nil {
		return err
	}
	lock, err := st.GC().TryLockExclusive()
	if err != nil {
		return err
	}
	if lock == nil {
		fmt.Fprintln(os.Stderr, "waiting for running builds to finish...")
		if lock, err = st.GC().LockExclusive(ctx); err != nil {
			return err
		}
	}
	defer lock.Unlock()
	res, err := st.GC().Run(ctx, []store.GCPolicy{pol}, f.dryRun)
	verb := "Removed"
	if f.dryRun {
		verb = "Would remove"
	}
	fmt.Fprintf(out, "%s %d cache records, %d layers, %d snapshots, %d blobs, %d build logs\n",
		verb, res.Records, res.Layers, res.Snapshots, res.Blobs, res.Logs)
	fmt.Fprintf(out, "Total reclaimed space: %s\n", humanSize(res.Freed))
	return err
}

// autoGC runs the configured GC after a build, once the build has let go
// of the store. If another build holds it, that build's GC will run.
func autoGC(ctx context.Context, g *globalFlags, st *store.Store, report io.Writer) {
	g.unlockStore()
	lock, err := st.GC().TryLockExclusive()
	if err != nil || lock == nil {
		return
	}
	defer lock.Unlock()
	res, ran, err := st.GC().Auto(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "WARNING: automatic garbage collection: %v\n", err)
		return
	}
	if ran && report != nil && (res.Records > 0 || res.Logs > 0 || res.Freed > 0) {
		fmt.Fprintf(report, "gc: removed %d cache records and %d build logs, freed %s (store now %s)\n",
			res.Records, res.Logs, humanSize(res.Freed), humanSize(res.After))
	}
}
