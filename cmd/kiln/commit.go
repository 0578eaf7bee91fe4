//go:build linux

package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/store"
)

func newCommitCmd(g *globalFlags) *cobra.Command {
	var message, author string
	cmd := &cobra.Command{
		Use:   "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
		Short: "Create a new image from a container's changes",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, err := g.store()
			if err != nil {
				return err
			}
			d, err := st.Containers().Commit(ctx, args[0], store.ContainerCommit{Author: author, Message: message})
			if err != nil {
				return err
			}
			if len(args) == 2 {
				if err := st.Names().TagAtomic(ctx, args[1], d); err != nil {
					return err
				}
			}
			id, err := st.Images().ID(ctx, d)
			if err != nil {
				return err
			}
			fmt.Println(id)
			return nil
		},
	}
	cmd.Flags().StringVarP(&message, "message", "m", "", "commit message")
	cmd.Flags().StringVarP(&author, "author", "a", "", "author")
	return cmd
}
