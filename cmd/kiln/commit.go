//go:build linux

package main

import (
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"
)

func newCommitCmd(g *globalFlags) *cobra.Command {
	var message, author string
	cmd := &cobra.Command{
		Use:   "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
		Short: "Create a new image from a container's changes",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			store, err := g.store()
			if err != nil {
				return err
			}
			c, err := store.Container(ctx, args[0])
			if err != nil {
				return err
			}
			if c.Status == "running" {
				return fmt.Errorf("container %s is running: kiln commits only stopped containers", args[0])
			}
			layers, cfg, err := store.ImageLayers(ctx, c.Digest)
			if err != nil {
				return fmt.Errorf("the image of container %s: %w", args[0], err)
			}
			l, err := store.CommitCopy(ctx, store.ContainerDir(c.ID)+"/upper")
			if err != nil {
				return err
			}
			now := time.Now().UTC()
			nc := *cfg
			nc.History = append(append([]v1.History(nil), cfg.History...), v1.History{
				Created:   v1.Time{Time: now},
				CreatedBy: fmt.Sprintf("%v", c.Command),
				Author:    author,
				Comment:   message,
			})
			if author != "" {
				nc.Author = author
			}
			nc.Created = v1.Time{Time: now}
			d, err := store.CommitImage(ctx, &nc, append(layers, l))
			if err != nil {
				return err
			}
			if len(args) == 2 {
				if err := store.TagBuilt(ctx, args[1], d); err != nil {
					return err
				}
			}
			id, err := configDigest(ctx, store, d)
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
