package frontend

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"github.com/kiln-build/kiln/solver/dag"
)

// runMounts compiles RUN --mount flags into dag mounts; the vertices they
// read from (the context, a stage, an image) become extra inputs, after
// the rootfs (Inputs[0]).
func (c *compiler) runMounts(b *build, cm *cmd, x *instructions.RunCommand) ([]dag.Mount, []*dag.Vertex, error) {
	var mounts []dag.Mount
	var extra []*dag.Vertex
	sshMounts := 0
	cwd := b.cfg.Config.WorkingDir
	if cwd == "" {
		cwd = "/"
	}
	for _, m := range instructions.GetMounts(x) {
		d := dag.Mount{
			Type:     string(m.Type),
			Source:   m.Source,
			ReadOnly: m.ReadOnly,
			ID:       m.CacheID,
			Sharing:  string(m.CacheSharing),
			Size:     m.SizeLimit,
			Required: m.Required,
			Input:    -1,
		}
		if m.Mode != nil {
			d.Mode = uint32(*m.Mode)
		}
		if m.UID != nil {
			d.UID = uint32(*m.UID)
		}
		if m.GID != nil {
			d.GID = uint32(*m.GID)
		}
		if m.Env != nil {
			d.Env = *m.Env
		}
		if m.Type == instructions.MountTypeCache && d.ID == "" && m.Target != "" {
			// BuildKit takes the id from the target as written, before a
			// relative one is joined to the WORKDIR: `target=cachedir` is one
			// cache whatever the WORKDIR.
			d.ID = path.Clean(m.Target)
		}
		if m.Target != "" {
			d.Target = m.Target
			if !path.IsAbs(d.Target) {
				d.Target = path.Join(cwd, d.Target)
			}
			d.Target = path.Clean(d.Target)
			if d.Target == "/" {
				return nil, nil, c.errorf(cm.line, "invalid mount target %q: a RUN mount cannot replace the root filesystem; mount it on a directory", m.Target)
			}
		}
		switch m.Type {
		case instructions.MountTypeSSH:
			if d.Source != "" {
				return nil, nil, c.errorf(cm.line, "ssh does not support source")
			}
			if d.ID == "" {
				d.ID = "default"
			}
			if d.Target == "" {
				// BuildKit's llb numbers the ssh mounts of a RUN.
				d.Target = fmt.Sprintf("/run/buildkit/ssh_agent.%d", sshMounts)
			}
			if m.Mode == nil {
				d.Mode = 0o600
			}
			sshMounts++
		case instructions.MountTypeSecret:
			if d.ID == "" && d.Source != "" {
				d.ID, d.Source = d.Source, ""
			}
			if d.ID == "" {
				d.ID = path.Base(d.Target)
			}
			if d.Target == "" && d.Env == "" {
				d.Target = "/run/secrets/" + path.Base(d.ID) // id=app/token → /run/secrets/token, as BuildKit
			}
		case instructions.MountTypeCache:
			if d.Target == "" {
				return nil, nil, c.errorf(cm.line, "RUN --mount=type=cache needs a target")
			}
			if d.ID == "" {
				d.ID = d.Target
			}
			if d.Sharing == "" {
				d.Sharing = "shared"
			}
			if m.From != "" {
				// Seeded: the cache starts as a copy of the stage or image
				// (one cache per id and seed, as BuildKit keys it).
				src, err := c.mountFrom(b, cm, m.From)
				if err != nil {
					return nil, nil, err
				}
				d.Input = 1 + len(extra)
				extra = append(extra, src)
			}
		case instructions.MountTypeBind:
			if d.Target == "" {
				return nil, nil, c.errorf(cm.line, "RUN --mount=type=bind needs a target")
			}
			src := c.contextVertex()
			if m.From != "" {
				var err error
				if src, err = c.mountFrom(b, cm, m.From); err != nil {
					return nil, nil, err
				}
			}
			d.Input = 1 + len(extra)
			extra = append(extra, src)
		case instructions.MountTypeTmpfs:
			if d.Target == "" {
				return nil, nil, c.errorf(cm.line, "RUN --mount=type=tmpfs needs a target")
			}
		default:
			return nil, nil, c.errorf(cm.line, "unknown mount type %q", m.Type)
		}
		if strings.Contains(d.Target, "\x00") {
			return nil, nil, c.errorf(cm.line, "invalid mount target %q", d.Target)
		}
		mounts = append(mounts, d)
	}
	return mounts, extra, nil
}

// mountFrom is the vertex a mount's from= names: a stage or an image.
func (c *compiler) mountFrom(b *build, cm *cmd, name string) (*dag.Vertex, error) {
	from, err := c.copySource(b.lex, name)
	if err != nil {
		return nil, c.errAt(cm.line, err)
	}
	if from.stage == b.s {
		return nil, c.errorf(cm.line, "circular dependency detected on stage: %s", b.s.displayName())
	}
	src, err := c.copyFrom(b, &cmd{Command: cm.Command, line: cm.line, from: from})
	if err != nil {
		return nil, c.errAt(cm.line, err)
	}
	return src, nil
}

// proxyArgs are passed to RUN without an ARG, and kept out of the image,
// its history and the cache key unless declared (as BuildKit does).
var proxyArgs = []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"}

// proxyEnv is the proxy build args given on the command line that the
// stage did not declare.
func (c *compiler) proxyEnv(b *build) []string {
	var env []string
	for _, k := range proxyArgs {
		v, ok := c.o.BuildArgs[k]
		if !ok || slices.ContainsFunc(b.args, func(a stageArg) bool { return a.key == k }) {
			continue
		}
		env = append(env, k+"="+v)
	}
	return env
}
