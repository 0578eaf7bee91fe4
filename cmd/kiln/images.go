//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker/go-units"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/exporter"
	"github.com/kiln-build/kiln/imageref"
	"github.com/kiln-build/kiln/store"
)

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 3, ' ', 0) }

func ago(t time.Time) string {
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d seconds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d minutes", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d hours", int(d.Hours()))
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

// humanSize is a size as docker prints it in `docker images`.
func humanSize(n int64) string { return units.HumanSizeWithPrecision(float64(n), 3) }

func newImagesCmd(g *globalFlags) *cobra.Command {
	var quiet, digests, noTrunc bool
	var filters []string
	cmd := &cobra.Command{
		Use:   "images",
		Short: "List images in the local store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var patterns []string
			for _, f := range filters {
				k, v, _ := strings.Cut(f, "=")
				if k != "reference" || v == "" {
					return fmt.Errorf("--filter %q: only reference=PATTERN is supported", f)
				}
				if _, err := path.Match(v, ""); err != nil {
					return fmt.Errorf("--filter %q: %w", f, err)
				}
				patterns = append(patterns, v)
			}
			st, err := g.store()
			if err != nil {
				return err
			}
			recs, err := st.Names().List(ctx)
			if err != nil {
				return err
			}
			w := newTable(os.Stdout)
			if !quiet {
				head := "REPOSITORY\tTAG\t"
				if digests {
					head += "DIGEST\t"
				}
				fmt.Fprintln(w, head+"IMAGE ID\tCREATED\tSIZE")
			}
			for _, r := range recs {
				familiar := imageref.Familiar(r.Name)
				if len(patterns) > 0 && !matchReference(patterns, familiar) {
					continue
				}
				id, err := st.Images().ID(ctx, r.Digest)
				if err != nil {
					continue
				}
				shown := id.Hex()[:12]
				if noTrunc {
					shown = string(id)
				}
				if quiet {
					fmt.Fprintln(w, shown)
					continue
				}
				repo, tag := splitTag(familiar)
				created, size := "", int64(0)
				if layers, cfg, err := st.Images().Layers(ctx, r.Digest); err == nil {
					created = ago(cfg.Created.Time) + " ago"
					if cfg.Created.IsZero() {
						created = "N/A"
					}
					for _, l := range layers {
						size += l.Size
					}
				}
				if digests {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", repo, tag, repoDigestOf(ctx, st, r), shown, created, humanSize(size))
					continue
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", repo, tag, shown, created, humanSize(size))
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only show image IDs")
	cmd.Flags().BoolVar(&digests, "digests", false, "show the registry digest of each image")
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "show full image IDs")
	cmd.Flags().StringArrayVarP(&filters, "filter", "f", nil, "filter the list: reference=PATTERN (glob on name:tag, as docker)")
	return cmd
}

// matchReference is docker's reference filter: the glob matches the
// familiar name with its tag, or without it.
func matchReference(patterns []string, familiar string) bool {
	repo, _ := splitTag(familiar)
	for _, p := range patterns {
		if ok, _ := path.Match(p, familiar); ok {
			return true
		}
		if ok, _ := path.Match(p, repo); ok {
			return true
		}
	}
	return false
}

// repoDigestOf is the registry digest recorded for r's repository, or
// <none>, as `docker images --digests` shows it.
func repoDigestOf(ctx context.Context, st *store.Store, r store.ImageRecord) string {
	rds, _ := st.Images().RepoDigests(ctx, r.Digest)
	repo, _ := splitTag(r.Name)
	for _, rd := range rds {
		if name, d, ok := strings.Cut(rd, "@"); ok && name == repo {
			return d
		}
	}
	return "<none>"
}

func splitTag(n string) (string, string) {
	for i := len(n) - 1; i >= 0; i-- {
		switch n[i] {
		case ':':
			return n[:i], n[i+1:]
		case '/':
			return n, "<none>"
		}
	}
	return n, "<none>"
}

func newPullCmd(g *globalFlags) *cobra.Command {
	var platform, progress string
	cmd := &cobra.Command{
		Use:   "pull IMAGE",
		Short: "Pull an image from a registry into the local store",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := g.store()
			if err != nil {
				return err
			}
			tp, err := newTransferProgress(progress)
			if err != nil {
				return err
			}
			p, err := st.Images().Pull(tp.context(cmd.Context()), args[0], platform, store.PullAlways)
			tp.close()
			if err != nil {
				return err
			}
			// A single image of another platform is stored, with podman's
			// warning: running it would fail with "exec format error".
			if want, err := v1.ParsePlatform(platform); err == nil && p.Config != nil {
				if got := p.Config.Platform(); got != nil && got.OS != "" && !got.Satisfies(*want) {
					fmt.Fprintf(os.Stderr, "WARNING: image platform (%s) does not match the expected platform (%s)\n", got, want)
				}
			}
			fmt.Printf("Digest: %s\n%s\n", p.Digest, p.Name)
			return nil
		},
	}
	cmd.Flags().StringVar(&platform, "platform", runtime.GOOS+"/"+runtime.GOARCH, "platform to pull (os/arch[/variant])")
	cmd.Flags().StringVar(&progress, "progress", "auto", "progress output: auto, tty, plain or quiet")
	return cmd
}

func newLoadCmd(g *globalFlags) *cobra.Command {
	var input string
	var tag string
	cmd := &cobra.Command{
		Use:   "load -i FILE",
		Short: "Load an image from an OCI archive or a docker-archive tar",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, err := g.store()
			if err != nil {
				return err
			}
			return exporter.ReadArchive(ctx, input, func(name string, img v1.Image) error {
				d, err := st.Images().Import(ctx, img)
				if err != nil {
					return fmt.Errorf("loading %s: %w", input, err)
				}
				if tag != "" {
					name = tag
				}
				if name == "" {
					fmt.Printf("Loaded image ID: %s\n", d)
					return nil
				}
				if err := st.Names().TagDurable(ctx, name, d); err != nil {
					return err
				}
				fmt.Printf("Loaded image: %s\n", imageref.Familiar(canonical(name)))
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "archive to read")
	cmd.Flags().StringVar(&tag, "tag", "", "name the loaded image (default: the name stored in the archive)")
	_ = cmd.MarkFlagRequired("input")
	return cmd
}

func newRmiCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "rmi IMAGE...",
		Short: "Remove image names from the store",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := g.store()
			if err != nil {
				return err
			}
			for _, a := range args {
				if err := st.Names().Untag(cmd.Context(), a); err != nil {
					return err
				}
				fmt.Printf("Untagged: %s\n", a)
			}
			return nil
		},
	}
}

func newTagCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE TARGET",
		Short: "Give an image another name",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := g.store()
			if err != nil {
				return err
			}
			rec, err := st.Names().Get(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return st.Names().TagDurable(cmd.Context(), args[1], rec.Digest)
		},
	}
}
