//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func newDuCmd(g *globalFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "du",
		Short: "Show the store's disk usage: blobs, snapshots, cache mounts, logs, and what images share",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := g.store()
			if err != nil {
				return err
			}
			du, err := st.DiskUsage(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(du)
			}
			w := newTable(os.Stdout)
			fmt.Fprintln(w, "TYPE\tCOUNT\tSIZE")
			for _, r := range []struct {
				name  string
				count int
				bytes int64
			}{
				{"blobs", du.Blobs.Count, du.Blobs.Bytes},
				{"snapshots", du.Snapshots.Count, du.Snapshots.Bytes},
				{"cache mounts", du.CacheMounts.Count, du.CacheMounts.Bytes},
				{"logs", du.Logs.Count, du.Logs.Bytes},
				{"cache records", du.Records.Count, du.Records.Bytes},
			} {
				fmt.Fprintf(w, "%s\t%d\t%s\n", r.name, r.count, humanSize(r.bytes))
			}
			if len(du.Images) > 0 {
				fmt.Fprintln(w, "\nIMAGE\tSIZE\tSHARED")
				for _, im := range du.Images {
					fmt.Fprintf(w, "%s\t%s\t%s\n", im.Name, humanSize(im.Size), humanSize(im.Shared))
				}
			}
			w.Flush()
			fmt.Printf("\nShared by several images: %s\n", humanSize(du.Shared))
			fmt.Printf("Reclaimable (kiln prune --all): %s\n", humanSize(du.Reclaimable))
			fmt.Printf("Total: %s\n", humanSize(du.Total))
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the figures as JSON")
	return cmd
}
