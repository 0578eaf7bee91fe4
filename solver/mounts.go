//go:build linux

package solver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/kiln-build/kiln/executor"
	"github.com/kiln-build/kiln/solver/dag"
)

// Secret is where a build secret's value comes from (kiln build --secret).
type Secret struct {
	File string // read from this file
	Env  string // or from this environment variable
}

func (s Secret) value() ([]byte, error) {
	if s.File != "" {
		return os.ReadFile(s.File)
	}
	v, ok := os.LookupEnv(s.Env)
	if !ok {
		return nil, fmt.Errorf("environment variable %s is not set", s.Env)
	}
	return []byte(v), nil
}

// runMounts turns an ExecOp's mounts into executor mounts, with the extra
// env its secrets expose; release undoes what it set up (locks, temp
// copies of secrets, throwaway upper dirs).
func (s *Solver) runMounts(ctx context.Context, v *dag.Vertex, op *dag.ExecOp, inputs []*state, tmp string) (mounts []executor.Mount, env []string, release func(), err error) {
	var undo []func()
	release = func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	defer func() {
		if err != nil {
			release()
		}
	}()
	scratch := func(name string) (string, error) {
		d := filepath.Join(tmp, fmt.Sprintf("m%d-%s", len(mounts), name))
		return d, os.MkdirAll(d, 0o755)
	}
	for _, m := range op.Mounts {
		switch m.Type {
		case "bind":
			em, err := s.bindMount(ctx, v, m, inputs, scratch)
			if err != nil {
				return nil, nil, release, err
			}
			mounts = append(mounts, em)
		case "cache":
			em, unlock, err := s.cacheMount(ctx, v, m, inputs, scratch)
			if err != nil {
				return nil, nil, release, err
			}
			undo = append(undo, unlock)
			mounts = append(mounts, em)
		case "tmpfs":
			mounts = append(mounts, executor.Mount{Type: "tmpfs", Target: m.Target, Size: m.Size})
		case "secret":
			em, e, cleanup, err := s.secretMount(m)
			if err != nil {
				return nil, nil, release, err
			}
			undo = append(undo, cleanup)
			env = append(env, e...)
			if em != nil {
				mounts = append(mounts, *em)
			}
		case "ssh":
			sock, ok := s.opts.SSH[m.ID]
			switch {
			case ok:
				// The agent's socket itself, bind-mounted (no proxy: its
				// owner and mode are the host's, not uid=/gid=/mode=).
				mounts = append(mounts, executor.Mount{Type: "bind", Source: sock, Target: m.Target})
			case m.Required:
				return nil, nil, release, fmt.Errorf("RUN --mount=type=ssh,id=%s,required: no SSH agent socket was given for %q; "+
					"pass kiln build --ssh %s (uses $SSH_AUTH_SOCK) or --ssh %s=SOCKET", m.ID, m.ID, m.ID, m.ID)
			}
		default:
			return nil, nil, release, fmt.Errorf("RUN --mount=type=%s is not supported", m.Type)
		}
	}
	return mounts, env, release, nil
}

func (s *Solver) bindMount(ctx context.Context, v *dag.Vertex, m dag.Mount, inputs []*state, scratch func(string) (string, error)) (executor.Mount, error) {
	if m.Input < 0 || m.Input >= len(v.Inputs) {
		return executor.Mount{}, fmt.Errorf("bind mount of %s: no source", m.Target)
	}
	if dir, ok := s.dirOf(v.Inputs[m.Input]); ok && m.ReadOnly {
		src, err := securejoin.SecureJoin(dir, m.Source)
		if err != nil {
			return executor.Mount{}, err
		}
		if _, err := os.Stat(src); err != nil {
			return executor.Mount{}, fmt.Errorf("bind mount source %q: not found in the build context", m.Source)
		}
		// The executor resolves Subpath again inside dir, by fd, when it mounts.
		return executor.Mount{Type: "bind", Source: dir, Subpath: m.Source, Target: m.Target, ReadOnly: true}, nil
	}
	// An overlay: read-only, or writable with changes thrown away after.
	em, err := s.inputOverlay(ctx, v, m, inputs, scratch)
	if err != nil {
		return executor.Mount{}, err
	}
	em.ReadOnly = m.ReadOnly
	if !m.ReadOnly {
		if em.Upper, err = scratch("upper"); err != nil {
			return executor.Mount{}, err
		}
		if em.Work, err = scratch("work"); err != nil {
			return executor.Mount{}, err
		}
	}
	return em, nil
}

// cacheMount is a persistent dir in the store. sharing=locked holds an
// exclusive lock for the step; private uses another instance when the main
// one is busy; shared lets everyone in.
func (s *Solver) cacheMount(ctx context.Context, v *dag.Vertex, m dag.Mount, inputs []*state, scratch func(string) (string, error)) (executor.Mount, func(), error) {
	id := m.ID
	if id == "" {
		id = m.Target
	}
	mode := os.FileMode(0o755)
	if m.Mode != 0 {
		mode = os.FileMode(m.Mode)
	}
	seeded := m.Input >= 0 && m.Input < len(v.Inputs)
	sharing := m.Sharing
	if seeded {
		// One cache per id and seed, as BuildKit keys it (id:ref). Its
		// upper dir can be in one overlay at a time: shared acts as locked.
		id += ":" + string(inputs[m.Input].key)
		if sharing != "private" {
			sharing = "locked"
		}
	}
	if !seeded && s.opts.Remote != nil { // remote.go: before any lock on it is taken
		if dir, err := s.store.CacheMounts.Dir(id, 0, mode, int(m.UID), int(m.GID)); err == nil {
			s.importMount(ctx, id, dir)
		}
	}
	unlock := func() {}
	instance := 0
	switch sharing {
	case "locked":
		u, err := s.store.CacheMounts.Lock(ctx, id, 0)
		if err != nil {
			return executor.Mount{}, nil, err
		}
		unlock = u
	case "private":
		for ; ; instance++ {
			u, err := s.store.CacheMounts.TryLock(id, instance)
			if err != nil {
				return executor.Mount{}, nil, err
			}
			if u != nil {
				unlock = u
				break
			}
		}
	}
	dir, err := s.store.CacheMounts.Dir(id, instance, mode, int(m.UID), int(m.GID))
	if err != nil {
		unlock()
		return executor.Mount{}, nil, err
	}
	if !seeded && instance == 0 {
		s.useMount(id, dir)
	}
	if seeded {
		// The seed's layers (or directory) below, the cache's own changes
		// kept in an upper dir across builds: a copy-on-write child of the
		// seed, as BuildKit makes it.
		em, err := s.seededCache(ctx, v, m, inputs, dir, scratch)
		if err != nil {
			unlock()
			return executor.Mount{}, nil, err
		}
		return em, unlock, nil
	}
	if m.Source != "" && path.Clean("/"+m.Source) != "/" {
		src, err := securejoin.SecureJoin(dir, m.Source)
		if err != nil {
			unlock()
			return executor.Mount{}, nil, err
		}
		// As in BuildKit, the subpath must be there already (a new cache
		// is empty): it fails rather than being created.
		if _, err := os.Stat(src); err != nil {
			unlock()
			return executor.Mount{}, nil, fmt.Errorf("cache mount %s: source %q is not in the cache: %w", m.Target, m.Source, err)
		}
	}
	// Other steps may be changing the cache right now: the executor
	// resolves the subpath inside it by fd, never this path (CVE-2024-23651).
	return executor.Mount{Type: "bind", Source: dir, Subpath: m.Source, Target: m.Target, ReadOnly: m.ReadOnly}, unlock, nil
}

// inputOverlay is a read-only overlay of the mount's input (a directory,
// or a layer chain) at m.Target, showing m.Source of it; the caller adds an
// upper dir to make it writable.
func (s *Solver) inputOverlay(ctx context.Context, v *dag.Vertex, m dag.Mount, inputs []*state, scratch func(string) (string, error)) (executor.Mount, error) {
	var lowers []string
	if d, ok := s.dirOf(v.Inputs[m.Input]); ok {
		lowers = []string{d}
	} else {
		var err error
		if lowers, err = s.store.Layers.EnsureDirs(ctx, inputs[m.Input].layers); err != nil {
			return executor.Mount{}, err
		}
	}
	empty, err := scratch("empty")
	if err != nil {
		return executor.Mount{}, err
	}
	staging, err := scratch("staging")
	if err != nil {
		return executor.Mount{}, err
	}
	return executor.Mount{Type: "overlay", Lowers: append([]string{empty}, lowers...), Target: m.Target,
		Subpath: path.Clean("/" + m.Source), Staging: staging}, nil
}

func (s *Solver) seededCache(ctx context.Context, v *dag.Vertex, m dag.Mount, inputs []*state, dir string, scratch func(string) (string, error)) (executor.Mount, error) {
	upper, work := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	for _, d := range []string{upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return executor.Mount{}, fmt.Errorf("cache mount %s: %w", m.Target, err)
		}
	}
	em, err := s.inputOverlay(ctx, v, m, inputs, scratch)
	if err != nil {
		return executor.Mount{}, err
	}
	if !m.ReadOnly {
		em.Upper, em.Work = upper, work
	}
	return em, nil
}

// secretMount puts a secret's value in a private file on a tmpfs (never on
// the store's disk, never in a layer or key) and binds it read-only.
func (s *Solver) secretMount(m dag.Mount) (*executor.Mount, []string, func(), error) {
	id := m.ID
	if id == "" && m.Target != "" {
		id = path.Base(m.Target)
	}
	src, ok := s.opts.Secrets[id]
	if !ok {
		if m.Required {
			return nil, nil, nil, fmt.Errorf("secret %q is required but was not given: use kiln build --secret id=%s,src=FILE (or env=VAR)", id, id)
		}
		return nil, nil, func() {}, nil
	}
	val, err := src.value()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("secret %q: %w", id, err)
	}
	var env []string
	if m.Env != "" {
		env = append(env, m.Env+"="+string(val))
	}
	target := m.Target
	if target == "" {
		if m.Env != "" {
			return nil, env, func() {}, nil // env only
		}
		target = "/run/secrets/" + id
	}
	base := "/dev/shm"
	if fi, err := os.Stat(base); err != nil || !fi.IsDir() {
		base = ""
	}
	dir, err := os.MkdirTemp(base, "kiln-secret-")
	if err != nil {
		return nil, nil, nil, fmt.Errorf("secret %q: %w", id, err)
	}
	cleanup := func() { os.RemoveAll(dir) }
	mode := os.FileMode(0o400)
	if m.Mode != 0 {
		mode = os.FileMode(m.Mode)
	}
	f := filepath.Join(dir, "secret")
	err = os.WriteFile(f, val, 0o600)
	if err == nil {
		// chmod after chown, which clears setuid and setgid bits.
		err = errors.Join(os.Lchown(f, int(m.UID), int(m.GID)), os.Chmod(f, mode))
	}
	if err != nil {
		cleanup()
		return nil, nil, nil, fmt.Errorf("secret %q: making its file for %s: %w", id, target, err)
	}
	return &executor.Mount{Type: "bind", Source: f, Target: target, ReadOnly: true}, env, cleanup, nil
}
