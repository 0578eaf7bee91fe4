//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/executor"
	"github.com/kiln-build/kiln/exporter"
	"github.com/kiln-build/kiln/imagediff"
)

func newImageCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "Work with images"}
	cmd.AddCommand(newImageDiffCmd(g))
	return cmd
}

func newImageDiffCmd(g *globalFlags) *cobra.Command {
	var o imagediff.Options
	cmd := &cobra.Command{
		Use:   "diff [--timestamps] IMAGE-A IMAGE-B",
		Short: "Compare two images: manifest, config, history, layers and files (exit 1 if they differ)",
		Long: `Compare two images as "diffoci diff --semantic" does: manifest and config
fields, history, layers by diffID and, in layers that differ, every file's
type, mode, owner, size, content, link target and xattrs. Times are
ignored unless --timestamps is given. An image is a name in the store, or
oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE.
Exit status: 0 if the images are equal, 1 if they differ, 2 on trouble.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			err := runImageDiff(cmd, g, args[0], args[1], o)
			if err != nil && !errors.Is(err, errImagesDiffer) {
				fmt.Fprintf(os.Stderr, "ERROR: %v\n", err)
				return &executor.ExitError{Code: 2}
			}
			if err != nil {
				return &executor.ExitError{Code: 1}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&o.Timestamps, "timestamps", false, "compare times too (config and history created, file mtimes)")
	return cmd
}

var errImagesDiffer = errors.New("the images differ")

func runImageDiff(cmd *cobra.Command, g *globalFlags, a, b string, o imagediff.Options) error {
	ctx := cmd.Context()
	return withImage(cmd, g, a, func(ia v1.Image) error {
		return withImage(cmd, g, b, func(ib v1.Image) error {
			diffs, err := imagediff.Compare(ctx, ia, ib, o)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, d := range diffs {
				fmt.Fprintln(out, d)
			}
			if len(diffs) > 0 {
				return errImagesDiffer
			}
			return nil
		})
	})
}

// withImage calls fn with the image ref names: an archive or layout
// (oci:, oci-archive:, docker-archive:) or a name in the store.
func withImage(cmd *cobra.Command, g *globalFlags, ref string, fn func(v1.Image) error) error {
	ctx := cmd.Context()
	for _, scheme := range []string{"oci:", "oci-archive:", "docker-archive:"} {
		p, ok := strings.CutPrefix(ref, scheme)
		if !ok {
			continue
		}
		tag := ""
		if i := strings.LastIndexByte(p, ':'); i >= 0 && scheme != "docker-archive:" && !strings.Contains(p[i:], "/") {
			if _, err := os.Stat(p); err != nil {
				p, tag = p[:i], p[i+1:]
			}
		}
		found := false
		err := exporter.ReadArchive(ctx, p, func(name string, img v1.Image) error {
			if found || (tag != "" && name != tag && !strings.HasSuffix(name, ":"+tag)) {
				return nil
			}
			found = true
			return fn(img)
		})
		if err == nil && !found {
			err = fmt.Errorf("%s: no image%s in it", ref, map[bool]string{true: " tagged " + tag, false: ""}[tag != ""])
		}
		return err
	}
	st, err := g.store()
	if err != nil {
		return err
	}
	rec, err := st.Names().Get(ctx, ref)
	if err != nil {
		return err
	}
	img, err := st.Images().Get(ctx, rec.Digest)
	if err != nil {
		return err
	}
	return fn(img)
}
