//go:build linux

package executor

import (
	"errors"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/containerenv"
)

// RunOverrides are what `kiln run` changes, as `docker run` does, in the
// process an image's config describes.
type RunOverrides struct {
	Args []string // what follows the image name: replaces the image's CMD
	// Entrypoint, when set, replaces the image's ENTRYPOINT and drops its
	// CMD; "" clears the ENTRYPOINT and keeps the CMD.
	Entrypoint *string
	// Env are KEY=VALUE entries (or a bare KEY, for LookupEnv's value, or
	// nothing if it has none), later ones winning.
	Env       []string
	LookupEnv func(key string) (string, bool)
	Workdir   string
	User      string
}

// ImageProcess is the process that `docker run` starts from an image
// whose config is c, with o applied: its argv, its env (the image's, with
// the overrides in place or appended, and the default PATH if it has
// none), its working directory and user. The caller sets its stdio.
func ImageProcess(c v1.Config, o RunOverrides) (Process, error) {
	argv := append([]string(nil), c.Entrypoint...)
	if o.Entrypoint != nil {
		argv = nil
		if *o.Entrypoint != "" {
			argv = []string{*o.Entrypoint}
		}
	}
	if len(o.Args) > 0 {
		argv = append(argv, o.Args...)
	} else if o.Entrypoint == nil || *o.Entrypoint == "" {
		argv = append(argv, c.Cmd...)
	}
	if len(argv) == 0 {
		return Process{}, errors.New("no command specified: the image has no ENTRYPOINT or CMD; give one after the image name")
	}
	p := Process{Args: argv, Env: runEnv(c.Env, o), Cwd: c.WorkingDir, User: c.User}
	if o.Workdir != "" {
		p.Cwd = o.Workdir
	}
	if o.User != "" {
		p.User = o.User
	}
	return p, nil
}

// runEnv merges o.Env into the image's env, keeping the image's order.
func runEnv(image []string, o RunOverrides) []string {
	env := append([]string(nil), image...)
	for _, kv := range o.Env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok {
			v, present := "", false
			if o.LookupEnv != nil {
				v, present = o.LookupEnv(k)
			}
			if !present {
				continue
			}
			kv = k + "=" + v
		}
		replaced := false
		for i, e := range env {
			if ek, _, _ := strings.Cut(e, "="); ek == k {
				env[i], replaced = kv, true
				break
			}
		}
		if !replaced {
			env = append(env, kv)
		}
	}
	for _, e := range env {
		if strings.HasPrefix(e, "PATH=") {
			return env
		}
	}
	return append([]string{"PATH=" + containerenv.DefaultPath}, env...)
}
