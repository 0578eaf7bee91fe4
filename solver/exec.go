//go:build linux

package solver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/executor"
	"github.com/kiln-build/kiln/executor/fscopy"
	"github.com/kiln-build/kiln/imageref"
	"github.com/kiln-build/kiln/layer"
	"github.com/kiln-build/kiln/solver/dag"
	"github.com/kiln-build/kiln/store"
)

// copyOptions is what fscopy is told for op; local is the context it
// copies from, or nil.
func copyOptions(op *dag.CopyOp, local *dag.LocalOp) fscopy.Options {
	// --exclude patterns are relative to each source, .dockerignore's to
	// the context.
	o := fscopy.Options{Sources: op.Sources, Dest: op.Dest, Chown: op.Chown, Chmod: op.Chmod,
		SourceExcludes: op.Excludes, Parents: op.Parents, Unpack: op.Unpack}
	if local != nil {
		o.Excludes = local.Excludes
		o.ContextOwner = true
	}
	return o
}

// exec executes v over its solved inputs: pulls its image, or runs it over
// an overlay of its first input with the Executor.
func (s *Solver) exec(ctx context.Context, v *dag.Vertex, inputs []*state, p *Step) ([]store.Layer, error) {
	switch op := v.Op.(type) {
	case *dag.ImageOp:
		return s.image(ctx, op)
	case *dag.ExecOp:
		return s.layerOver(ctx, inputs[0].layers, func(root executor.Rootfs) error {
			mounts, secretEnv, release, err := s.runMounts(ctx, v, op, inputs, filepath.Dir(root.Upper))
			if err != nil {
				return err
			}
			defer release()
			return s.executor.Run(ctx, root, executor.Process{
				Args: op.Args, Env: dag.RunEnv(op, secretEnv), Cwd: op.Cwd, User: op.User,
				Stdout: p, Stderr: p.Stderr(),
			}, executor.Options{Network: op.Network, Mounts: mounts, Hostname: op.Hostname,
				Limits: executor.Limits{Pids: s.opts.Build.PidsLimit, Memory: s.opts.Build.MemoryLimit}})
		})
	case *dag.CopyOp:
		c := &executor.CopyOp{}
		if local, ok := v.Inputs[1].Op.(*dag.LocalOp); ok {
			c.SrcDir = local.Dir
			c.Options = copyOptions(op, local)
			c.Options.Reuse = s.reuseFor(ctx, v, inputs[0].layers) // see reuse.go
		} else if dir, ok := s.dirOf(v.Inputs[1]); ok {
			c.SrcDir = dir
			c.Options = copyOptions(op, nil)
			c.Options.ContextOwner = true
		} else {
			lowers, err := s.store.Layers.EnsureDirs(ctx, inputs[1].layers)
			if err != nil {
				return nil, err
			}
			c.SrcLowers = lowers
			c.Options = copyOptions(op, nil)
		}
		if op.Unpack {
			// Measured now: the free space is what an extraction may fill.
			limit, err := s.store.Limits.ArchiveLimit(s.opts.Build)
			if err != nil {
				return nil, err
			}
			c.Options.Limits = layer.Limits{MaxBytes: limit}
		}
		return s.layerOver(ctx, inputs[0].layers, func(root executor.Rootfs) error {
			return s.executor.Apply(ctx, root, executor.FileOp{Copy: c})
		})
	case *dag.MkdirOp:
		return s.layerOver(ctx, inputs[0].layers, func(root executor.Rootfs) error {
			return s.executor.Apply(ctx, root, executor.FileOp{Mkdir: &executor.MkdirOp{Path: op.Path, Chown: op.Chown, Mode: op.Mode}})
		})
	}
	return nil, fmt.Errorf("unknown op %T", v.Op)
}

// layerOver runs fn over an overlay of base and commits what it changed
// as one more layer.
func (s *Solver) layerOver(ctx context.Context, base []store.Layer, fn func(executor.Rootfs) error) ([]store.Layer, error) {
	tmp, err := s.store.Scratch.Dir("step-")
	if err != nil {
		return nil, err
	}
	defer s.store.Scratch.Remove(tmp)
	lowers, err := s.store.Layers.EnsureDirs(ctx, base) // fetches lazy layers
	if err != nil {
		return nil, err
	}
	root := executor.Rootfs{Lowers: lowers, Upper: filepath.Join(tmp, "upper"), Work: filepath.Join(tmp, "work")}
	for _, d := range []string{root.Upper, root.Work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := fn(root); err != nil {
		return nil, err
	}
	l, err := s.store.Layers.MoveIn(ctx, root.Upper)
	if err != nil {
		return nil, err
	}
	return append(append([]store.Layer(nil), base...), l), nil
}

// image makes sure a base image's layers are in the store.
func (s *Solver) image(ctx context.Context, op *dag.ImageOp) ([]store.Layer, error) {
	if layers, _, err := s.store.Images.Layers(ctx, digest.Digest(op.Digest)); err == nil {
		return layers, nil
	}
	ref := op.Ref
	if r, err := imageref.Parse(op.Ref); err == nil {
		ref = r.Context().Name() + "@" + op.Digest
	}
	pulled, err := s.store.Images.Pull(ctx, ref, op.Platform, store.PullMissing)
	if err != nil {
		return nil, err
	}
	layers, _, err := s.store.Images.Layers(ctx, pulled.Digest)
	return layers, err
}

// noCacheFor reports whether v is a step of a stage in
// Options.NoCacheFilter.
func (s *Solver) noCacheFor(v *dag.Vertex) bool {
	if v.Stage == "" {
		return false
	}
	for _, st := range s.opts.NoCacheFilter {
		if strings.EqualFold(st, v.Stage) {
			return true
		}
	}
	return false
}
