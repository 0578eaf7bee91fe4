//go:build linux

package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-units"
	"github.com/spf13/cobra"
)

// historyRow is one line of `kiln history`, newest first.
type historyRow struct {
	id        string
	created   time.Time
	createdBy string
	size      int64
	comment   string
}

func newHistoryCmd(g *globalFlags) *cobra.Command {
	var noTrunc, quiet, human bool
	cmd := &cobra.Command{
		Use:   "history IMAGE",
		Short: "Show the history of an image: the step that made each layer",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, err := g.store()
			if err != nil {
				return err
			}
			rec, err := st.Names().Get(ctx, args[0])
			if err != nil {
				return err
			}
			id, err := st.Images().ID(ctx, rec.Digest)
			if err != nil {
				return err
			}
			layers, cfg, err := st.Images().Layers(ctx, rec.Digest)
			if err != nil {
				return err
			}
			// As docker: each history entry that is not an empty layer takes
			// the next layer, bottom up.
			var rows []historyRow
			next := 0
			for _, h := range cfg.History {
				r := historyRow{id: "<missing>", created: h.Created.Time, createdBy: h.CreatedBy, comment: h.Comment}
				if !h.EmptyLayer && next < len(layers) {
					r.size = layers[next].Size
					next++
				}
				rows = append(rows, r)
			}
			if len(rows) == 0 {
				rows = append(rows, historyRow{created: cfg.Created.Time})
			}
			top := id.Hex()[:12]
			if noTrunc {
				top = string(id)
			}
			rows[len(rows)-1].id = top
			w := newTable(os.Stdout)
			if !quiet {
				fmt.Fprintln(w, "IMAGE\tCREATED\tCREATED BY\tSIZE\tCOMMENT")
			}
			for i := len(rows) - 1; i >= 0; i-- {
				r := rows[i]
				if quiet {
					fmt.Fprintln(w, r.id)
					continue
				}
				created, size := r.created.Format(time.RFC3339), strconv.FormatInt(r.size, 10)
				if human {
					created = units.HumanDuration(time.Since(r.created)) + " ago"
					size = units.HumanSizeWithPrecision(float64(r.size), 3)
				}
				if r.created.IsZero() {
					created = "N/A" // no time recorded (as a reproducible base may have)
				}
				by := strings.ReplaceAll(r.createdBy, "\t", " ")
				if !noTrunc {
					by = ellipsis(by, 45)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.id, created, by, size, r.comment)
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "do not truncate the output")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only show image IDs")
	cmd.Flags().BoolVarP(&human, "human", "H", true, "sizes and dates in human-readable form")
	return cmd
}

// ellipsis cuts s to max runes, the last one "…", as docker's history does.
func ellipsis(s string, max int) string {
	r := []rune(s)
	if len(r) <= max {
		return s
	}
	return string(r[:max-1]) + "…"
}
