//go:build linux

package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

func newStoreCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "store", Short: "Inspect and repair the local store"}
	var repair bool
	check := &cobra.Command{
		Use:   "check",
		Short: "Verify blobs, layers, cache records and image names; --repair removes what is broken",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := g.store()
			if err != nil {
				return err
			}
			probs, err := st.Check(cmd.Context(), repair)
			if err != nil {
				return err
			}
			for _, p := range probs {
				fmt.Printf("%s: %s\n", p.Path, p.What)
			}
			switch {
			case len(probs) == 0:
				fmt.Println("store is consistent")
			case repair:
				fmt.Printf("removed %d broken entries; the next build remakes them\n", len(probs))
			default:
				return errors.New("the store has broken entries: run `kiln store check --repair` to remove them")
			}
			return nil
		},
	}
	check.Flags().BoolVar(&repair, "repair", false, "remove broken entries")
	cmd.AddCommand(check)
	return cmd
}
