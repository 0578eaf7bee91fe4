package frontend

import (
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/buildkit/util/suggest"
	"github.com/moby/patternmatcher"
)

// Build checks, as BuildKit's Dockerfile frontend runs them: the rule
// definitions and the skip/error/experimental configuration are BuildKit's
// linter package; this file decides, like dockerfile2llb, when each rule
// fires. Parse-time rules and the FROM rules cover every stage; the rules
// of the other instructions cover the stages that are compiled (all of
// them with Options.Check and no target, as `docker build --check`).

// warn is the linter's callback: it records one violation.
func (c *compiler) warn(rule, description, url, msg string, location []parser.Range) {
	w := Warning{Rule: rule, Description: description, URL: url, Message: msg, src: c.source()}
	for i, r := range location {
		if i == 0 {
			w.Line = r.Start.Line
		}
		w.EndLine = max(w.EndLine, r.Start.Line, r.End.Line)
	}
	c.checks = append(c.checks, w)
}

// lintError is the error of a failed check: error=true in the
// configuration, or Options.Check, and at least one violation.
func (c *compiler) lintError() error {
	if len(c.checks) == 0 || !(c.lint.ReturnAsError || c.o.Check) {
		return nil
	}
	var rules []string
	for _, w := range c.checks {
		if !slices.Contains(rules, w.Rule) {
			rules = append(rules, w.Rule)
		}
	}
	slices.Sort(rules)
	e := c.errorf(0, "lint violation found for rules: %s", strings.Join(rules, ", "))
	e.Warnings = sortWarnings(c.checks)
	return e
}

// parserWarning turns a parser warning into its rule (the parser only
// warns about empty continuation lines).
func (c *compiler) parserWarning(w parser.Warning) {
	if w.URL == linter.RuleNoEmptyContinuation.URL && w.Location != nil {
		c.lint.Run(&linter.RuleNoEmptyContinuation, []parser.Range{*w.Location}, linter.RuleNoEmptyContinuation.Format())
		return
	}
	c.other = append(c.other, Warning{Message: w.Short, src: c.source()})
}

// checkStages runs the rules over the whole list of stages:
// ReservedStageName, DuplicateStageName, ConsistentInstructionCasing.
func (c *compiler) checkStages() {
	seen := map[string]bool{}
	for _, s := range c.stages {
		if s.name == "" {
			continue
		}
		if s.name == "context" || s.name == "scratch" {
			c.lint.Run(&linter.RuleReservedStageName, s.from.Location, linter.RuleReservedStageName.Format(s.name))
		}
		if seen[s.name] {
			c.lint.Run(&linter.RuleDuplicateStageName, s.from.Location, linter.RuleDuplicateStageName.Format(s.name))
		}
		seen[s.name] = true
	}

	consistent := func(s string) bool { return s == strings.ToLower(s) || s == strings.ToUpper(s) }
	var lower, upper int
	count := func(name string) {
		switch {
		case !consistent(name):
		case name == strings.ToLower(name):
			lower++
		default:
			upper++
		}
	}
	for _, s := range c.stages {
		count(s.from.OrigCmd)
		for _, cm := range s.cmds {
			count(cm.Name())
		}
	}
	check := func(name string, loc []parser.Range) {
		want := ""
		switch {
		case lower > upper && strings.ToLower(name) != name:
			want = "lowercase"
		case lower <= upper && strings.ToUpper(name) != name:
			want = "uppercase"
		}
		if want != "" {
			c.lint.Run(&linter.RuleConsistentInstructionCasing, loc, linter.RuleConsistentInstructionCasing.Format(name, want))
		}
	}
	for _, s := range c.stages {
		check(s.from.OrigCmd, s.from.Location)
		for _, cm := range s.cmds {
			check(cm.Name(), cm.Location())
		}
	}
}

// checkDefaultBaseNames is InvalidDefaultArgInFrom: every FROM must name a
// valid image with the global ARGs' defaults alone (no --build-arg).
func (c *compiler) checkDefaultBaseNames(metaArgs []*instructions.ArgCommand) {
	args := c.platformArgs()
	lex := c.lexer()
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			if kv.Value == nil {
				continue
			}
			v, err := lex.ProcessWordWithMatches(*kv.Value, args)
			if err != nil {
				return // the build fails on it later, with the real values
			}
			args.set(kv.Key, v.Result)
		}
	}
	for _, s := range c.stages {
		m, err := lex.ProcessWordWithMatches(s.from.BaseName, args)
		if err != nil {
			return
		}
		if !validReference(m.Result) {
			c.lint.Run(&linter.RuleInvalidDefaultArgInFrom, s.from.Location, linter.RuleInvalidDefaultArgInFrom.Format(s.from.BaseName))
		}
	}
}

// checkFrom runs the rules on one FROM's expansions: UndefinedArgInFrom,
// RedundantTargetPlatform, FromPlatformFlagConstDisallowed.
func (c *compiler) checkFrom(s *stage, name shell.ProcessWordResult, plat *shell.ProcessWordResult) {
	l := c.lint.WithMergedConfigFromComments(s.from.Comments)
	declared := map[string]bool{}
	for k := range c.metaArgs {
		declared[k] = true
	}
	for _, k := range c.global.Keys() {
		declared[k] = true
	}
	keys := make([]string, 0, len(declared))
	for k := range declared {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	undeclared := func(m shell.ProcessWordResult) {
		for _, arg := range sortedKeys(m.Unmatched) {
			if !declared[arg] {
				l.Run(&linter.RuleUndefinedArgInFrom, s.from.Location, linter.RuleUndefinedArgInFrom.Format(arg, suggestion(arg, keys)))
			}
		}
	}
	undeclared(name)
	if plat == nil {
		return
	}
	undeclared(*plat)
	if _, ok := plat.Matched["TARGETPLATFORM"]; ok && len(plat.Matched) == 1 && len(plat.Unmatched) == 0 {
		if v, _ := c.global.Get("TARGETPLATFORM"); v == plat.Result {
			l.Run(&linter.RuleRedundantTargetPlatform, s.from.Location, linter.RuleRedundantTargetPlatform.Format(s.from.Platform))
		}
	}
	if len(plat.Matched) == 0 && len(plat.Unmatched) == 0 {
		os, arch, _, ok := splitPlatform(plat.Result)
		if ok && !strings.Contains(s.name, os) && !strings.Contains(s.name, arch) {
			l.Run(&linter.RuleFromPlatformFlagConstDisallowed, s.from.Location, linter.RuleFromPlatformFlagConstDisallowed.Format(plat.Result))
		}
	}
}

// checkImagePlatform is InvalidBaseImagePlatform, for the image of a FROM
// or a --from. Images whose config names no platform cannot be checked.
func (c *compiler) checkImagePlatform(name, platform string, img *resolvedImage, loc []parser.Range) {
	if img.cfg.OS == "" || img.cfg.Architecture == "" {
		return
	}
	wantOS, wantArch, wantVariant, ok := splitPlatform(platform)
	if !ok {
		return
	}
	wantArch, wantVariant = normalizeArch(wantArch, wantVariant)
	gotArch, gotVariant := normalizeArch(img.cfg.Architecture, img.cfg.Variant)
	if wantOS != img.cfg.OS || wantArch != gotArch {
		msg := linter.RuleInvalidBaseImagePlatform.Format(name,
			formatPlatform(wantOS, wantArch, wantVariant), formatPlatform(img.cfg.OS, gotArch, gotVariant))
		c.lint.Run(&linter.RuleInvalidBaseImagePlatform, loc, msg)
	}
}

// location is the parser location of the instruction starting at line.
func (c *compiler) location(line int) []parser.Range {
	var out []parser.Range
	for l := line; l <= max(line, c.endLines[line]); l++ {
		out = append(out, parser.Range{Start: parser.Position{Line: l}, End: parser.Position{Line: l}})
	}
	return out
}

func normalizeArch(arch, variant string) (string, string) {
	switch strings.ToLower(arch) {
	case "x86_64", "x86-64", "amd64":
		if variant == "v1" {
			variant = ""
		}
		return "amd64", variant
	case "aarch64", "arm64":
		if variant == "8" || variant == "v8" || variant == "v8.0" {
			variant = ""
		}
		return "arm64", variant
	case "i386", "i486", "i586", "i686", "386":
		return "386", ""
	}
	return arch, variant
}

func formatPlatform(os, arch, variant string) string {
	if variant != "" {
		return os + "/" + arch + "/" + variant
	}
	return os + "/" + arch
}

// expander is the variable expansion of cm's words that reports
// UndefinedVar for what it cannot match.
func (c *compiler) expander(b *build, cm *cmd, l *linter.Linter, lex *shell.Lex) func(string) (string, error) {
	return func(word string) (string, error) {
		w, unmatched, err := lex.ProcessWord(word, b)
		c.reportUnmatched(b, cm, l, unmatched)
		return w, err
	}
}

// reportUnmatched is UndefinedVar: a variable that is neither an ENV, nor
// an ARG in scope (declared with or without a value).
func (c *compiler) reportUnmatched(b *build, cm *cmd, l *linter.Linter, unmatched map[string]struct{}) {
	if len(unmatched) == 0 {
		return
	}
	for _, a := range b.args {
		delete(unmatched, a.key)
	}
	keys := b.Keys()
	for _, v := range sortedKeys(unmatched) {
		if _, ok := nonEnvArgs[v]; ok {
			continue
		}
		l.Run(&linter.RuleUndefinedVar, cm.Location(), linter.RuleUndefinedVar.Format(v, suggestion(v, keys)))
	}
}

// checkCommand runs the rules of one instruction, after its expansion and
// before it changes the stage.
func (c *compiler) checkCommand(b *build, cm *cmd, l *linter.Linter) {
	loc := cm.Location()
	switch x := cm.Command.(type) {
	case *instructions.EnvCommand:
		for _, e := range x.Env {
			if e.NoDelim {
				l.Run(&linter.RuleLegacyKeyValueFormat, loc, linter.RuleLegacyKeyValueFormat.Format(x.Name()))
			}
			checkSecretKey(l, "ENV", e.Key, loc)
		}
	case *instructions.LabelCommand:
		for _, kv := range x.Labels {
			if kv.NoDelim {
				l.Run(&linter.RuleLegacyKeyValueFormat, loc, linter.RuleLegacyKeyValueFormat.Format(x.Name()))
			}
		}
	case *instructions.ArgCommand:
		for _, a := range x.Args {
			checkSecretKey(l, "ARG", a.Key, loc)
		}
	case *instructions.CmdCommand:
		b.usedOnce(l, x, "cmd")
		c.checkShellForm(b, l, x.Name(), x.PrependShell, loc)
	case *instructions.EntrypointCommand:
		b.usedOnce(l, x, "entrypoint")
		c.checkShellForm(b, l, x.Name(), x.PrependShell, loc)
	case *instructions.HealthCheckCommand:
		b.usedOnce(l, x, "healthcheck")
	case *instructions.WorkdirCommand:
		// only the first WORKDIR of the build counts: fixing it fixes the rest
		if !b.workdirSet && !path.IsAbs(x.Path) {
			l.Run(&linter.RuleWorkdirRelativePath, loc, linter.RuleWorkdirRelativePath.Format(x.Path))
		}
		b.workdirSet = true
	case *instructions.ExposeCommand:
		for _, p := range x.Ports {
			words, err := b.lex.ProcessWords(p, b)
			if err != nil {
				return // dispatch reports it
			}
			for _, w := range words {
				checkPort(l, w, loc)
			}
		}
	case *instructions.CopyCommand:
		if cm.from == nil {
			c.checkIgnored(l, "Copy", x.SourcePaths, loc)
		}
	case *instructions.AddCommand:
		var local []string
		for _, src := range x.SourcePaths {
			if !isURL(src) && !isGit(src) {
				local = append(local, src)
			}
		}
		c.checkIgnored(l, "Add", local, loc)
	}
}

// checkShellForm is JSONArgsRecommended; a stage that set SHELL (or whose
// base image did) chose its shell on purpose.
func (c *compiler) checkShellForm(b *build, l *linter.Linter, name string, shellForm bool, loc []parser.Range) {
	if shellForm && len(b.cfg.Config.Shell) == 0 {
		l.Run(&linter.RuleJSONArgsRecommended, loc, linter.RuleJSONArgsRecommended.Format(name))
	}
}

// usedOnce is MultipleInstructionsDisallowed, reported at the earlier
// instruction: the one that has no effect.
func (b *build) usedOnce(l *linter.Linter, cmd instructions.Command, kind string) {
	if b.once == nil {
		b.once = map[string][]parser.Range{}
	}
	if prev, ok := b.once[kind]; ok {
		l.Run(&linter.RuleMultipleInstructionsDisallowed, prev, linter.RuleMultipleInstructionsDisallowed.Format(cmd.Name()))
	}
	b.once[kind] = cmd.Location()
}

// checkPort is ExposeProtoCasing and ExposeInvalidFormat, for a port that
// otherwise parses.
func checkPort(l *linter.Linter, raw string, loc []parser.Range) {
	ip, hostPort, containerPort := splitPortParts(raw)
	port, proto, _ := strings.Cut(containerPort, "/")
	switch strings.ToLower(proto) {
	case "", "tcp", "udp", "sctp":
	default:
		return
	}
	if port == "" {
		return
	}
	if proto != strings.ToLower(proto) {
		l.Run(&linter.RuleExposeProtoCasing, loc, linter.RuleExposeProtoCasing.Format(raw))
	}
	if ip != "" || hostPort != "" {
		l.Run(&linter.RuleExposeInvalidFormat, loc, linter.RuleExposeInvalidFormat.Format(raw))
	}
}

// checkIgnored is CopyIgnoredFile. As BuildKit, it is skipped when the
// .dockerignore re-includes anything ("!pattern"): whether a path is then
// excluded cannot be told from the patterns alone.
func (c *compiler) checkIgnored(l *linter.Linter, kw string, sources []string, loc []parser.Range) {
	m := c.ignoreMatcher()
	if m == nil || m.Exclusions() {
		return
	}
	for _, src := range sources {
		src = path.Clean(src)
		if src == "." || src == "/" {
			if !rootIgnored(m) {
				continue
			}
		}
		if ok, err := m.MatchesOrParentMatches(src); err == nil && ok {
			l.Run(&linter.RuleCopyIgnoredFile, loc, linter.RuleCopyIgnoredFile.Format(kw, src))
		}
	}
}

// ignoreMatcher compiles Options.Excludes once; nil without patterns (or
// with a broken one, which the context transfer reports).
func (c *compiler) ignoreMatcher() *patternmatcher.PatternMatcher {
	if c.ignore == nil && len(c.o.Excludes) > 0 {
		m, err := patternmatcher.New(c.o.Excludes)
		if err != nil {
			return nil
		}
		c.ignore = m
	}
	return c.ignore
}

// rootIgnored: only patterns that exclude every entry make "COPY . x" a
// copy of ignored files.
func rootIgnored(m *patternmatcher.PatternMatcher) bool {
	for _, p := range m.Patterns() {
		if p.Exclusion() {
			continue
		}
		switch p.String() {
		case "*", "**", "**/*":
			return true
		}
	}
	return false
}

var (
	// a secret-looking word as the whole name or its first or last part
	secretWords = regexp.MustCompile(`(?i)(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)`)
	secretAllow = regexp.MustCompile(`(?i)(?:_|^)(?:public|file|version)(?:_|$)`)
)

// checkSecretKey is SecretsUsedInArgOrEnv.
func checkSecretKey(l *linter.Linter, instruction, key string, loc []parser.Range) {
	if secretWords.MatchString(key) && !secretAllow.MatchString(key) {
		l.Run(&linter.RuleSecretsUsedInArgOrEnv, loc, linter.RuleSecretsUsedInArgOrEnv.Format(instruction, key))
	}
}

// referencePattern is distribution/reference's grammar: [domain[:port]/]path[:tag][@digest].
var referencePattern = func() *regexp.Regexp {
	const (
		alnum      = `[a-z0-9]+`
		separator  = `(?:[._]|__|[-]+)`
		component  = alnum + `(?:` + separator + alnum + `)*`
		domainPart = `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
		domain     = `(?:` + domainPart + `(?:\.` + domainPart + `)*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?`
		tag        = `[\w][\w.-]{0,127}`
		digest     = `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`
	)
	return regexp.MustCompile(`^((?:` + domain + `/)?` + component + `(?:/` + component + `)*)(?::` + tag + `)?(?:@` + digest + `)?$`)
}()

var hexID = regexp.MustCompile(`^[a-f0-9]{64}$`)

// validReference reports whether ref parses as an image reference, as
// reference.ParseNormalizedNamed decides it.
func validReference(ref string) bool {
	if hexID.MatchString(ref) {
		return false
	}
	m := referencePattern.FindStringSubmatch(ref)
	return m != nil && len(m[1]) <= 255
}

// suggestion is the option the build checks name for val, "" if none:
// BuildKit's, case-sensitive.
func suggestion(val string, options []string) string {
	s, _ := suggest.Search(val, options, true)
	return s
}

func sortedKeys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
