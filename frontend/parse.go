package frontend

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/command"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// stage is one FROM section of the Dockerfile.
type stage struct {
	index    int
	name     string // the lower-cased AS name, "" if none
	label    string // progress-name prefix: name, "stage-N", or "" in a one-stage file
	line     int    // the FROM line
	baseName string // FROM's image or stage, variables expanded
	platform string // FROM --platform, expanded; "" = Options.Platform
	base     *stage // set when FROM names an earlier stage
	cmds     []*cmd
	from     *instructions.Stage // as parsed, for the build checks

	building bool
	out      *build // set once compiled
}

// cmd is one instruction of a stage.
type cmd struct {
	instructions.Command
	line    int
	from    *copySource // COPY --from
	onbuild bool        // a trigger inherited from the base
}

// copySource is what COPY --from names: an earlier stage or an image.
type copySource struct {
	stage *stage
	image string
}

// parse parses the Dockerfile into stages and resolves what each FROM and
// COPY --from names. Nothing is resolved through the resolver yet.
func (c *compiler) parse() error {
	res, err := parser.Parse(bytes.NewReader(c.o.Dockerfile))
	if err != nil {
		return c.errAt(0, err)
	}
	c.escape = res.EscapeToken
	for _, w := range res.Warnings {
		c.parserWarning(w)
	}

	var metaArgs []*instructions.ArgCommand
	var metaLines []int
	for _, node := range res.AST.Children {
		c.endLines[node.StartLine] = node.EndLine
	}
	for _, node := range res.AST.Children {
		if _, ok := command.Commands[strings.ToLower(node.Value)]; !ok {
			return c.errAt(node.StartLine, fmt.Errorf("%s", withSuggestion("unknown instruction: "+node.Value, node.Value, instructionNames(), false)))
		}
		v, err := instructions.ParseInstructionWithLinter(node, c.lint)
		if err != nil {
			return c.errAt(node.StartLine, err)
		}
		switch v := v.(type) {
		case *instructions.Stage:
			c.stages = append(c.stages, &stage{
				index:    len(c.stages),
				name:     v.Name,
				line:     node.StartLine,
				baseName: v.BaseName,
				platform: v.Platform,
				from:     v,
			})
		case *instructions.ArgCommand:
			if len(c.stages) == 0 {
				metaArgs = append(metaArgs, v)
				metaLines = append(metaLines, node.StartLine)
				continue
			}
			c.addCmd(v, node.StartLine)
		case instructions.Command:
			if len(c.stages) == 0 {
				return c.errorf(node.StartLine, "no build stage in current context: only ARG can come before the first FROM")
			}
			c.addCmd(v, node.StartLine)
		default:
			return c.errorf(node.StartLine, "%T is not a command type", v)
		}
	}
	if len(c.stages) == 0 {
		return c.errorf(0, "dockerfile contains no stages to build: add a FROM instruction")
	}
	c.checkStages()
	c.checkDefaultBaseNames(metaArgs)
	if err := c.globalArgs(metaArgs, metaLines); err != nil {
		return err
	}
	lex := c.lexer()
	for _, s := range c.stages {
		if err := c.resolveFrom(lex, s); err != nil {
			return err
		}
		for _, cm := range s.cmds {
			if err := c.resolveCopyFrom(lex, cm); err != nil {
				return err
			}
		}
	}
	return c.checkCycles()
}

func (c *compiler) addCmd(v instructions.Command, line int) {
	s := c.stages[len(c.stages)-1]
	s.cmds = append(s.cmds, &cmd{Command: v, line: line})
}

func (c *compiler) lexer() *shell.Lex { return shell.NewLex(c.escape) }

// instructionNames are the 18 Dockerfile instructions, upper-case.
func instructionNames() []string {
	out := make([]string, 0, len(command.Commands))
	for n := range command.Commands {
		out = append(out, strings.ToUpper(n))
	}
	slices.Sort(out) // suggestions must not depend on map order
	return out
}

// globalArgs evaluates the ARGs before the first FROM, over the automatic
// platform ARGs, with --build-arg values winning over defaults.
func (c *compiler) globalArgs(metaArgs []*instructions.ArgCommand, lines []int) error {
	c.global = c.platformArgs()
	lex := c.lexer()
	for i, a := range metaArgs {
		for _, kv := range a.Args {
			c.used[kv.Key] = true
			c.metaArgs[kv.Key] = true
			if bv, ok := c.o.BuildArgs[kv.Key]; ok {
				c.global.set(kv.Key, bv)
				continue
			}
			if kv.Value == nil {
				continue
			}
			v, _, err := lex.ProcessWord(*kv.Value, c.global)
			if err != nil {
				return c.errAt(lines[i], err)
			}
			c.global.set(kv.Key, v)
		}
	}
	return nil
}

// platformArgs are the automatic global ARGs; a --build-arg of the same
// name replaces the value.
func (c *compiler) platformArgs() *argScope {
	args := &argScope{}
	os, arch, variant, _ := splitPlatform(c.o.Platform)
	targetStage := c.o.Target
	if targetStage == "" {
		targetStage = c.stages[len(c.stages)-1].name
	}
	if targetStage == "" {
		targetStage = "default"
	}
	for _, kv := range [][2]string{
		{"BUILDPLATFORM", c.o.Platform}, {"BUILDOS", os}, {"BUILDOSVERSION", ""}, {"BUILDARCH", arch}, {"BUILDVARIANT", variant},
		{"TARGETPLATFORM", c.o.Platform}, {"TARGETOS", os}, {"TARGETOSVERSION", ""}, {"TARGETARCH", arch}, {"TARGETVARIANT", variant},
		{"TARGETSTAGE", targetStage},
	} {
		v := kv[1]
		if bv, ok := c.o.BuildArgs[kv[0]]; ok {
			v = bv
		}
		args.set(kv[0], v)
	}
	return args
}

// resolveFrom expands FROM's image and --platform with the global ARGs and
// links the stage to an earlier stage of that name.
func (c *compiler) resolveFrom(lex *shell.Lex, s *stage) error {
	nameMatch, err := lex.ProcessWordWithMatches(s.baseName, c.global)
	var platMatch *shell.ProcessWordResult
	var platErr error
	if s.platform != "" {
		m, err := lex.ProcessWordWithMatches(s.platform, c.global)
		platMatch, platErr = &m, err
	}
	c.checkFrom(s, nameMatch, platMatch)
	if err != nil {
		return c.errAt(s.line, err)
	}
	name := nameMatch.Result
	if name == "" {
		e := c.errorf(s.line, "base name (%s) should not be blank", s.baseName)
		if vars := slices.Concat(sortedKeys(nameMatch.Matched), sortedKeys(nameMatch.Unmatched)); len(vars) > 0 {
			e.Msg += fmt.Sprintf(": give ARG %s a default before the first FROM, or pass --build-arg %s=IMAGE", vars[0], vars[0])
		}
		return e
	}
	s.baseName = name
	if s.platform != "" {
		p, err := platMatch.Result, platErr
		if err != nil {
			return c.errAt(s.line, fmt.Errorf("failed to process arguments for platform %s: %w", s.platform, err))
		}
		if _, _, _, ok := splitPlatform(p); !ok {
			return c.errorf(s.line, "failed to parse platform %s: %q is not an os/arch[/variant] platform", s.platform, p)
		}
		s.platform = p
	}
	for _, prev := range c.stages[:s.index] {
		if prev.name != "" && strings.EqualFold(prev.name, name) {
			s.base = prev // the latest earlier stage of that name
		}
	}
	switch {
	case len(c.stages) == 1:
		s.label = ""
	case s.name != "":
		s.label = s.name
	default:
		s.label = fmt.Sprintf("stage-%d", s.index)
	}
	return nil
}

// resolveCopyFrom links COPY --from to a stage (by name or index) or, failing
// that, to an image reference.
func (c *compiler) resolveCopyFrom(lex *shell.Lex, cm *cmd) error {
	cp, ok := cm.Command.(*instructions.CopyCommand)
	if !ok || cp.From == "" {
		return nil
	}
	src, err := c.copySource(lex, cp.From)
	if err != nil {
		return c.errAt(cm.line, err)
	}
	cm.from = src
	return nil
}

func (c *compiler) copySource(lex *shell.Lex, from string) (*copySource, error) {
	if w, _, err := lex.ProcessWord(from, &argScope{}); err != nil || w != from {
		return nil, fmt.Errorf("variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround")
	}
	if i, err := strconv.Atoi(from); err == nil {
		if i < 0 || i >= len(c.stages) {
			return nil, fmt.Errorf("invalid stage index %d: the stages are numbered from 0 to %d in the order of their FROM", i, len(c.stages)-1)
		}
		return &copySource{stage: c.stages[i]}, nil
	}
	// the last stage of a name wins, as in BuildKit
	for _, s := range slices.Backward(c.stages) {
		if s.name != "" && strings.EqualFold(s.name, from) {
			return &copySource{stage: s}, nil
		}
	}
	return &copySource{image: from}, nil
}

// checkCycles reports a stage that depends on itself through FROM or COPY --from.
func (c *compiler) checkCycles() error {
	const (
		unseen = iota
		onPath
		done
	)
	state := make([]int, len(c.stages))
	var visit func(s *stage) *cmd
	visit = func(s *stage) *cmd {
		state[s.index] = onPath
		for _, cm := range s.cmds {
			if cm.from == nil || cm.from.stage == nil {
				continue
			}
			switch state[cm.from.stage.index] {
			case onPath:
				return cm
			case unseen:
				if bad := visit(cm.from.stage); bad != nil {
					return bad
				}
			}
		}
		if s.base != nil && state[s.base.index] == unseen {
			if bad := visit(s.base); bad != nil {
				return bad
			}
		}
		state[s.index] = done
		return nil
	}
	for _, s := range c.stages {
		if state[s.index] != unseen {
			continue
		}
		if bad := visit(s); bad != nil {
			return c.errorf(bad.line, "circular dependency detected on stage: %s", s.displayName())
		}
	}
	return nil
}

// displayName names a stage in messages.
func (s *stage) displayName() string {
	if s.name != "" {
		return s.name
	}
	return fmt.Sprintf("stage-%d", s.index)
}

// target finds the stage to build.
func (c *compiler) target() (*stage, error) {
	if c.o.Target == "" {
		return c.stages[len(c.stages)-1], nil
	}
	var names []string
	for _, s := range slices.Backward(c.stages) {
		if s.name != "" && strings.EqualFold(s.name, c.o.Target) {
			return s, nil
		}
		if s.name != "" {
			names = append(names, s.name)
		}
	}
	msg := fmt.Sprintf("target stage %q could not be found", c.o.Target)
	switch s := withSuggestion(msg, c.o.Target, names, true); {
	case s != msg:
		msg = s
	case len(names) == 0:
		msg += ": no stage has a name (FROM image AS name)"
	default:
		slices.Reverse(names)
		msg += ": the named stages are " + strings.Join(names, ", ")
	}
	return nil, c.errorf(0, "%s", msg)
}

// argScope is an ordered set of variables; it is the shell.EnvGetter for
// the global ARGs.
type argScope struct {
	keys []string
	vals map[string]string
}

func (a *argScope) set(k, v string) {
	if a.vals == nil {
		a.vals = map[string]string{}
	}
	if _, ok := a.vals[k]; !ok {
		a.keys = append(a.keys, k)
	}
	a.vals[k] = v
}

func (a *argScope) Get(k string) (string, bool) {
	v, ok := a.vals[k]
	return v, ok
}

func (a *argScope) Keys() []string { return slices.Clone(a.keys) }

// platformArgNames are the automatic global ARGs.
var platformArgNames = map[string]struct{}{
	"BUILDPLATFORM": {}, "BUILDOS": {}, "BUILDOSVERSION": {}, "BUILDARCH": {}, "BUILDVARIANT": {},
	"TARGETPLATFORM": {}, "TARGETOS": {}, "TARGETOSVERSION": {}, "TARGETARCH": {}, "TARGETVARIANT": {},
	"TARGETSTAGE": {},
}
