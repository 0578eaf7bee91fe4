package frontend

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/kiln-build/kiln/containerenv"
	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/solver/dag"
)

const historyComment = "buildkit.dockerfile.v0"

// build is the state of one stage while its instructions are dispatched.
type build struct {
	s      *stage
	vertex *dag.Vertex   // the filesystem so far
	cfg    v1.ConfigFile // the image config so far
	args   []stageArg    // ARGs declared in this stage (and its base stages), in order
	// env is what RUN gets and what variables expand from: the base's Env,
	// then every ENV and every ARG with a value, in order, the last one
	// setting a name winning, as in BuildKit's llb state. Only ENV reaches
	// the image config (cfg).
	env    []string
	cmdSet bool       // CMD was given in this stage: ENTRYPOINT then keeps it
	n      int        // progress index of the last vertex
	total  int        // progress total
	lex    *shell.Lex // variable expansion
	trig   bool       // the instruction being dispatched is an ONBUILD trigger

	// healthStart is HEALTHCHECK --start-interval, which the config type
	// cannot hold (see Result.HealthStartInterval).
	healthStart time.Duration

	workdirSet bool                      // a WORKDIR of this Dockerfile ran (build checks)
	once       map[string][]parser.Range // the last CMD, ENTRYPOINT, HEALTHCHECK (build checks)
}

type stageArg struct {
	key string
	val *string // nil: declared without any value
}

// resolvedImage is a resolver answer.
type resolvedImage struct {
	canonical   string
	digest      digest.Digest
	cfg         v1.ConfigFile
	healthStart time.Duration // its Healthcheck.StartInterval
}

// compileStage compiles s (and, first, every stage it needs) once.
func (c *compiler) compileStage(s *stage) (*build, error) {
	if s.out != nil {
		return s.out, nil
	}
	if s.building {
		return nil, c.errorf(s.line, "circular dependency detected on stage: %s", s.displayName())
	}
	s.building = true
	defer func() { s.building = false }()

	b := &build{s: s, lex: c.lexer()}
	var triggers []string
	var img *resolvedImage
	switch {
	case s.base != nil:
		pb, err := c.compileStage(s.base)
		if err != nil {
			return nil, err
		}
		b.vertex = pb.vertex
		b.cfg = cloneConfig(pb.cfg)
		b.args = slices.Clone(pb.args)
		b.workdirSet = pb.workdirSet
		b.healthStart = pb.healthStart
		// BuildKit starts from the base stage's state, then (below) sets the
		// image config's Env on it again: an ARG of the base stage stays, an
		// ARG that overrode an ENV there gives way to the ENV's value.
		b.env = slices.Clone(pb.env)
		// the base stage's own ONBUILD triggers run here and are not inherited further
		triggers = b.cfg.Config.OnBuild
		b.cfg.Config.OnBuild = nil
	case s.baseName == "scratch":
		b.vertex = &dag.Vertex{Op: &dag.ScratchOp{}, Name: "FROM scratch", Pos: c.pos(s.line)}
		b.cfg.Config.WorkingDir = "/"
	default:
		var err error
		img, err = c.resolve(s.baseName, c.stagePlatform(s), s.line)
		if err != nil {
			return nil, err
		}
		c.checkImagePlatform(s.baseName, c.stagePlatform(s), img, s.from.Location)
		b.cfg = cloneConfig(img.cfg)
		b.healthStart = img.healthStart
		b.cfg.Created = v1.Time{}
		b.cfg.RootFS = v1.RootFS{}
		//lint:ignore SA1019 a base's docker_version must not be inherited (BuildKit clears it too)
		b.cfg.Container, b.cfg.DockerVersion = "", ""
		triggers = b.cfg.Config.OnBuild
		b.cfg.Config.OnBuild = nil
	}
	if _, ok := envGet(b.cfg.Config.Env, "PATH"); !ok {
		b.cfg.Config.Env = append(b.cfg.Config.Env, "PATH="+containerenv.DefaultPath)
	}
	for _, e := range b.cfg.Config.Env {
		k, v, _ := strings.Cut(e, "=")
		b.env = envAppend(b.env, k, v)
	}
	if wd := b.cfg.Config.WorkingDir; wd != "" {
		b.cfg.Config.WorkingDir = normalizePath("/", wd, false)
	}

	cmds, err := c.triggerCmds(s, triggers)
	if err != nil {
		return nil, err
	}
	cmds = append(cmds, s.cmds...)
	if img != nil {
		b.total = 1
	}
	for _, cm := range s.cmds {
		switch cm.Command.(type) {
		case *instructions.AddCommand, *instructions.CopyCommand, *instructions.RunCommand, *instructions.WorkdirCommand:
			b.total++
		}
	}
	b.total += len(triggers) // as BuildKit counts them, whatever they are
	if img != nil {
		b.vertex = b.step(&dag.Vertex{
			Op:  &dag.ImageOp{Ref: img.canonical, Digest: string(img.digest), Platform: c.stagePlatform(s)},
			Pos: c.pos(s.line),
		}, "FROM "+imageName(img))
	}
	for _, cm := range cmds {
		if err := c.ctx.Err(); err != nil {
			return nil, c.errAt(cm.line, err)
		}
		if err := c.dispatch(b, cm); err != nil {
			return nil, err
		}
	}
	s.out = b
	return b, nil
}

// triggerCmds parses the ONBUILD triggers a stage inherits; they run right
// after its FROM, reported at the FROM line.
func (c *compiler) triggerCmds(s *stage, triggers []string) ([]*cmd, error) {
	var out []*cmd
	lex := c.lexer()
	for _, t := range triggers {
		res, err := parser.Parse(strings.NewReader(t))
		if err != nil {
			return nil, c.errAt(s.line, fmt.Errorf("ONBUILD %s: %w", t, err))
		}
		if len(res.AST.Children) != 1 {
			return nil, c.errorf(s.line, "onbuild trigger should be a single expression")
		}
		node := res.AST.Children[0]
		node.StartLine, node.EndLine = s.line, s.line
		ic, err := instructions.ParseCommand(node)
		if err != nil {
			return nil, c.errAt(s.line, err)
		}
		cm := &cmd{Command: ic, line: s.line, onbuild: true}
		if err := c.resolveCopyFrom(lex, cm); err != nil {
			return nil, err
		}
		out = append(out, cm)
	}
	return out, nil
}

// resolve asks the resolver about ref once per Compile.
func (c *compiler) resolve(ref, platform string, line int) (*resolvedImage, error) {
	key := ref + "\x00" + platform
	if img, ok := c.images[key]; ok {
		return img, nil
	}
	if c.o.Resolver == nil {
		return nil, c.errorf(line, "%s: no image resolver configured", ref)
	}
	canonical, manifest, cfg, err := c.o.Resolver.Resolve(c.ctx, ref, platform)
	if err != nil {
		var names []string
		for _, s := range c.stages {
			if s.name != "" {
				names = append(names, s.name)
			}
		}
		e := c.errAt(line, fmt.Errorf("%s: %w", ref, err))
		e.Msg = withSuggestion(e.Msg, ref, names, true)
		return nil, e
	}
	img := &resolvedImage{canonical: canonical, digest: manifest}
	if cfg != nil {
		img.cfg = cloneConfig(*cfg)
		if hr, ok := c.o.Resolver.(HealthStartResolver); ok && cfg.Config.Healthcheck != nil {
			if img.healthStart, err = hr.HealthStartInterval(c.ctx, manifest); err != nil {
				return nil, c.errAt(line, fmt.Errorf("%s: %w", ref, err))
			}
		}
	}
	c.images[key] = img
	return img, nil
}

// imageVertex is the vertex of an image used by COPY --from, one per image.
func (c *compiler) imageVertex(ref, platform string, line int) (*dag.Vertex, error) {
	key := ref + "\x00" + platform
	if v, ok := c.copied[key]; ok {
		return v, nil
	}
	img, err := c.resolve(ref, platform, line)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Msg = fmt.Sprintf("--from=%s names no build stage of this Dockerfile, so it was taken as an image: %s", ref, e.Msg)
		}
		return nil, err
	}
	c.checkImagePlatform(ref, platform, img, c.location(line))
	v := &dag.Vertex{
		Op:   &dag.ImageOp{Ref: img.canonical, Digest: string(img.digest), Platform: platform},
		Name: "FROM " + imageName(img),
		Pos:  c.pos(line),
	}
	c.copied[key] = v
	return v, nil
}

func imageName(img *resolvedImage) string {
	if img.digest == "" || strings.Contains(img.canonical, "@") {
		return img.canonical
	}
	return img.canonical + "@" + string(img.digest)
}

func (c *compiler) stagePlatform(s *stage) string {
	if s.platform != "" {
		return s.platform
	}
	return c.o.Platform
}

func (c *compiler) pos(line int) dag.Pos { return dag.Pos{File: c.o.Filename, Line: line} }

// step numbers v as the stage's next step and labels it like BuildKit,
// "[build 2/5] RUN make", keeping the parts as data (dag.Vertex).
func (b *build) step(v *dag.Vertex, text string) *dag.Vertex {
	v.Name, v.Text = text, text
	if b.total == 0 {
		return v
	}
	b.n++
	if b.trig {
		v.Text = "ONBUILD " + text
	}
	v.Stage, v.StepIndex, v.StepCount = b.s.displayName(), b.n, b.total
	label := "["
	if b.s.label != "" {
		label += b.s.label + " "
	}
	label += fmt.Sprintf("%*d/%d] ", len(strconv.Itoa(b.total)), b.n, b.total)
	v.Name = label + v.Text
	return v
}

// layer puts op on top of the stage's filesystem; extra inputs follow it.
func (b *build) layer(c *compiler, op dag.Op, line int, text string, extra ...*dag.Vertex) {
	b.vertex = b.step(&dag.Vertex{
		Op:     op,
		Inputs: append([]*dag.Vertex{b.vertex}, extra...),
		Pos:    c.pos(line),
	}, text)
}

// history records one instruction in the image history.
func (b *build) history(createdBy string, layer bool) {
	b.cfg.History = append(b.cfg.History, v1.History{
		CreatedBy:  createdBy,
		Comment:    historyComment,
		EmptyLayer: !layer,
	})
}

// Get looks a variable up as BuildKit's builder sees it: ENV first, then
// the ARGs in scope (ENV wins over ARG).
func (b *build) Get(k string) (string, bool) {
	return envGet(b.env, k)
}

func (b *build) Keys() []string {
	var keys []string
	seen := map[string]bool{}
	for _, e := range b.env {
		k, _, _ := strings.Cut(e, "=")
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	return keys
}

// runEnv is a RUN's environment (see build.env). ARGs never reach the
// image config.
func (b *build) runEnv() []string {
	return slices.Clone(b.env)
}

// nonEnvArgs are ARGs BuildKit never passes to RUN.
var nonEnvArgs = map[string]struct{}{
	"BUILDKIT_SBOM_SCAN_CONTEXT": {},
	"BUILDKIT_SBOM_SCAN_STAGE":   {},
}

// envGet finds k in a KEY=value list.
func envGet(env []string, k string) (string, bool) {
	for _, e := range env {
		if ek, v, _ := strings.Cut(e, "="); ek == k {
			return v, true
		}
	}
	return "", false
}

// envSet replaces k in a KEY=value list in place, or appends it.
func envSet(env []string, k, v string) []string {
	for i, e := range env {
		if ek, _, _ := strings.Cut(e, "="); ek == k {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

// envAppend sets k in env by moving it to the end: what RUN sees is
// ordered by when each name was last set (BuildKit's llb EnvList), while
// the image config's Env keeps a redefined name in place (envSet).
func envAppend(env []string, k, v string) []string {
	env = slices.DeleteFunc(env, func(e string) bool {
		ek, _, _ := strings.Cut(e, "=")
		return ek == k
	})
	return append(env, k+"="+v)
}

// cloneConfig deep-copies the parts of a config that compiling mutates.
func cloneConfig(in v1.ConfigFile) v1.ConfigFile {
	out := in
	out.History = slices.Clone(in.History)
	out.OSFeatures = slices.Clone(in.OSFeatures)
	out.RootFS.DiffIDs = slices.Clone(in.RootFS.DiffIDs)
	cfg := &out.Config
	cfg.Cmd = slices.Clone(in.Config.Cmd)
	cfg.Entrypoint = slices.Clone(in.Config.Entrypoint)
	cfg.Env = slices.Clone(in.Config.Env)
	cfg.OnBuild = slices.Clone(in.Config.OnBuild)
	cfg.Shell = slices.Clone(in.Config.Shell)
	cfg.Labels = maps.Clone(in.Config.Labels)
	cfg.Volumes = maps.Clone(in.Config.Volumes)
	cfg.ExposedPorts = maps.Clone(in.Config.ExposedPorts)
	if in.Config.Healthcheck != nil {
		hc := *in.Config.Healthcheck
		hc.Test = slices.Clone(hc.Test)
		cfg.Healthcheck = &hc
	}
	return out
}
