package frontend

import (
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// The parser directives kiln acts on itself: `# check=` (and its build arg)
// configures the build checks, `# syntax=` may only name the Dockerfile
// frontend. `# escape=` is the parser's.

// checkArg is the build arg that replaces the Dockerfile's check directive.
const checkArg = "BUILDKIT_DOCKERFILE_CHECK"

const checkSyntaxHint = "use skip=Rule1,Rule2|all;error=true|false;experimental=Rule1,...|all"

// newLinter configures the build checks from BUILDKIT_DOCKERFILE_CHECK, or
// else from the `# check=` directive.
func (c *compiler) newLinter() error {
	var cfg *linter.Config
	var err error
	if v, ok := c.o.BuildArgs[checkArg]; ok {
		if cfg, err = linter.ParseLintOptions(v); err != nil {
			return c.errorf(0, "failed to parse %s: %v (%s)", checkArg, err, checkSyntaxHint)
		}
	} else {
		v, _, loc, _ := parser.ParseDirective("check", c.o.Dockerfile)
		if cfg, err = linter.ParseLintOptions(v); err != nil {
			line := 0
			if len(loc) > 0 {
				line = loc[0].Start.Line
			}
			return c.errorf(line, "failed to parse check options: %v (%s)", err, checkSyntaxHint)
		}
	}
	cfg.Warn = c.warn
	c.lint = linter.New(cfg)
	return nil
}

// checkSyntax accepts a `# syntax=` directive (or BUILDKIT_SYNTAX) naming
// the Dockerfile frontend, which kiln implements, and refuses any other
// frontend image.
func (c *compiler) checkSyntax() error {
	ref, line := "", 0
	if v, ok := c.o.BuildArgs["BUILDKIT_SYNTAX"]; ok {
		ref, _, _ = strings.Cut(strings.TrimSpace(v), " ")
	} else if r, _, loc, ok := parser.DetectSyntax(c.o.Dockerfile); ok {
		ref = r
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
	}
	if ref == "" || dockerfileFrontend(ref) {
		return nil
	}
	return c.errorf(line, "the syntax directive names the frontend image %q, but kiln implements the Dockerfile language itself and runs no frontend images: remove the line or use docker/dockerfile:1", ref)
}

// dockerfileFrontend reports whether ref is docker/dockerfile or
// docker/dockerfile-upstream, any tag or digest.
func dockerfileFrontend(ref string) bool {
	name, _, _ := strings.Cut(ref, "@")
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name = name[:i]
	}
	for _, prefix := range []string{"docker.io/", "index.docker.io/", "registry-1.docker.io/"} {
		name = strings.TrimPrefix(name, prefix)
	}
	return name == "docker/dockerfile" || name == "docker/dockerfile-upstream"
}
