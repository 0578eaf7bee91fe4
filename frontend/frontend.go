package frontend

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/patternmatcher"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/solver/dag"
)

// ImageResolver resolves a FROM / COPY --from image reference. The solver/cmd
// side implements it.
type ImageResolver interface {
	// Resolve returns ref's canonical name (e.g. "docker.io/library/busybox:latest"),
	// its manifest digest and config.
	Resolve(ctx context.Context, ref, platform string) (canonical string, manifest digest.Digest, cfg *v1.ConfigFile, err error)
}

// HealthStartResolver is an ImageResolver that can also read a resolved
// image's HEALTHCHECK --start-interval, which v1.ConfigFile has no field
// for, so that an image built on it keeps it.
type HealthStartResolver interface {
	HealthStartInterval(ctx context.Context, manifest digest.Digest) (time.Duration, error)
}

// Options is one Dockerfile compilation request.
type Options struct {
	Dockerfile []byte
	Filename   string            // as the user named it, shown in errors: "Dockerfile"
	ContextDir string            // absolute; goes into the LocalOp's Dir
	Excludes   []string          // .dockerignore patterns, into LocalOp.Excludes
	BuildArgs  map[string]string // --build-arg
	Target     string            // --target: stage name; "" = last stage
	Platform   string            // "linux/amd64"
	Resolver   ImageResolver

	// Check makes every build-check violation an error, as error=true in
	// the check directive does, and, without a Target, checks every stage
	// rather than the ones the target needs (`docker build --check`).
	Check bool
}

// Result is a compiled Dockerfile.
type Result struct {
	Root     *dag.Vertex   // the target stage's final filesystem
	Config   v1.ConfigFile // image config; RootFS and Created are left for the exporter
	Warnings []Warning     // build-check violations sorted by line, then the others
	// HealthStartInterval is HEALTHCHECK --start-interval, which
	// go-containerregistry's HealthConfig has no field for: whoever writes
	// the config adds it to Config.Healthcheck as "StartInterval".
	HealthStartInterval time.Duration
}

// Compile turns o.Dockerfile into the graph that builds o.Target. Every
// error it returns is an *Error.
func Compile(ctx context.Context, o Options) (*Result, error) {
	if o.Filename == "" {
		o.Filename = "Dockerfile"
	}
	c := &compiler{
		ctx:      ctx,
		o:        o,
		lines:    strings.Split(strings.ReplaceAll(string(o.Dockerfile), "\r\n", "\n"), "\n"),
		endLines: map[int]int{},
		images:   map[string]*resolvedImage{},
		copied:   map[string]*dag.Vertex{},
		used:     map[string]bool{},
		metaArgs: map[string]bool{},
	}
	if len(o.Dockerfile) == 0 {
		return nil, c.errorf(0, "the Dockerfile cannot be empty")
	}
	if err := c.checkSyntax(); err != nil {
		return nil, err
	}
	if err := c.newLinter(); err != nil {
		return nil, err
	}
	if err := c.parse(); err != nil {
		return nil, err
	}
	target, err := c.target()
	if err != nil {
		return nil, err
	}
	if o.Check && o.Target == "" {
		for _, s := range c.stages {
			if _, err := c.compileStage(s); err != nil {
				return nil, err
			}
		}
	}
	b, err := c.compileStage(target)
	if err != nil {
		return nil, err
	}
	if err := c.lintError(); err != nil {
		return nil, err
	}
	res := &Result{Root: b.vertex, Config: cloneConfig(b.cfg), Warnings: append(sortWarnings(c.checks), c.other...)}
	if res.Config.Config.Healthcheck != nil {
		res.HealthStartInterval = b.healthStart
	}
	root := target
	for root.base != nil {
		root = root.base
	}
	// The image is of the platform its base really is (BuildKit keeps the
	// base config's, and warns InvalidBaseImagePlatform on a mismatch);
	// scratch, or a base that names none, takes the stage's platform.
	if res.Config.OS == "" || res.Config.Architecture == "" {
		if os, arch, variant, ok := splitPlatform(c.stagePlatform(root)); ok {
			res.Config.OS, res.Config.Architecture, res.Config.Variant = os, arch, variant
		}
	}
	if unused := c.unusedBuildArgs(); len(unused) > 0 {
		res.Warnings = append(res.Warnings, Warning{Message: fmt.Sprintf("One or more build-args %v were not consumed", unused)})
	}
	return res, nil
}

// compiler holds the state of one Compile call.
type compiler struct {
	ctx      context.Context
	o        Options
	lines    []string    // the Dockerfile's lines, for Error.Source
	endLines map[int]int // an instruction's first line → its last
	src      *source
	escape   rune
	stages   []*stage
	global   *argScope       // meta ARGs and the automatic platform ARGs; FROM lines only
	metaArgs map[string]bool // every ARG name declared before the first FROM
	images   map[string]*resolvedImage
	copied   map[string]*dag.Vertex // COPY --from=<image> vertices by ref
	context  *dag.Vertex            // the one shared build-context LocalOp
	used     map[string]bool        // build-arg names some ARG declared

	lint   *linter.Linter
	checks []Warning // build-check violations
	other  []Warning // warnings that are no build check
	ignore *patternmatcher.PatternMatcher
}

// contextVertex returns the single LocalOp vertex every context copy shares.
func (c *compiler) contextVertex() *dag.Vertex {
	if c.context == nil {
		c.context = &dag.Vertex{
			Op:   &dag.LocalOp{Name: "context", Dir: c.o.ContextDir, Excludes: slices.Clone(c.o.Excludes)},
			Name: "[internal] load build context", Text: "load build context",
		}
	}
	return c.context
}

// unusedBuildArgs lists the --build-arg names no ARG consumed, sorted.
func (c *compiler) unusedBuildArgs() []string {
	var out []string
	for k := range c.o.BuildArgs {
		if !c.used[k] && !builtinArg(k) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// builtinArg reports whether a build arg is predefined by BuildKit, so passing
// it without a matching ARG is not worth a warning.
func builtinArg(k string) bool {
	switch strings.ToLower(k) {
	case "http_proxy", "https_proxy", "ftp_proxy", "no_proxy", "all_proxy":
		return true
	}
	if _, ok := platformArgNames[k]; ok {
		return true
	}
	return k == "SOURCE_DATE_EPOCH" || strings.HasPrefix(k, "BUILDKIT_")
}

// splitPlatform splits "os/arch[/variant]".
func splitPlatform(p string) (os, arch, variant string, ok bool) {
	parts := strings.Split(p, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return "", "", "", false
	}
	if len(parts) == 3 {
		variant = parts[2]
	}
	return parts[0], parts[1], variant, true
}
