package frontend

import (
	"fmt"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/kiln-build/kiln/solver/dag"
)

var defaultShell = []string{"/bin/sh", "-c"}

// dispatch applies one instruction to the stage: variables are expanded
// in exactly the instructions BuildKit expands, then one small function
// per instruction updates the filesystem chain and the config.
func (c *compiler) dispatch(b *build, cm *cmd) error {
	b.trig = cm.onbuild
	lint := c.lint.WithMergedConfigFromComments(cm.Comments())
	expand := c.expander(b, cm, lint, b.lex)
	if _, isArg := cm.Command.(*instructions.ArgCommand); !isArg {
		if ex, ok := cm.Command.(instructions.SupportsSingleWordExpansion); ok {
			if err := ex.Expand(expand); err != nil {
				return c.errAt(cm.line, err)
			}
		}
	}
	// Heredoc contents (COPY <<EOF with an unquoted word): variables are
	// expanded, quotes kept, as BuildKit does.
	if ex, ok := cm.Command.(instructions.SupportsSingleWordExpansionRaw); ok {
		lex := shell.NewLex('\\')
		lex.SkipProcessQuotes = true
		if err := ex.ExpandRaw(c.expander(b, cm, lint, lex)); err != nil {
			return c.errAt(cm.line, err)
		}
	}
	c.checkCommand(b, cm, lint)
	var err error
	switch x := cm.Command.(type) {
	case *instructions.ArgCommand:
		err = c.dispatchArg(b, x, expand)
	case *instructions.EnvCommand:
		msg := "ENV"
		for _, e := range x.Env {
			msg += " " + e.String()
			b.cfg.Config.Env = envSet(b.cfg.Config.Env, e.Key, e.Value)
			b.env = envAppend(b.env, e.Key, e.Value)
		}
		b.history(msg, false)
	case *instructions.RunCommand:
		err = c.dispatchRun(b, cm, x)
	case *instructions.WorkdirCommand:
		wd := normalizePath(b.cfg.Config.WorkingDir, x.Path, false)
		b.cfg.Config.WorkingDir = wd
		if wd == "/" {
			b.history("WORKDIR "+wd, false)
			break
		}
		b.layer(c, &dag.MkdirOp{Path: wd, Chown: b.cfg.Config.User, Mode: 0o755}, cm.line, b.title(x.String(), false))
		b.history("WORKDIR "+wd, true)
	case *instructions.CopyCommand:
		err = c.dispatchCopy(b, cm, copyArgs{
			sd: x.SourcesAndDest, chown: x.Chown, chmod: x.Chmod, link: x.Link,
			excludes: x.ExcludePatterns, parents: x.Parents, text: x.String(),
		})
	case *instructions.AddCommand:
		err = c.dispatchAdd(b, cm, x)
	case *instructions.CmdCommand:
		args := b.withShell(x.ShellDependantCmdLine)
		b.cfg.Config.Cmd = args
		b.cfg.Config.ArgsEscaped = true
		b.cmdSet = true
		b.history(fmt.Sprintf("CMD %q", args), false)
	case *instructions.EntrypointCommand:
		args := b.withShell(x.ShellDependantCmdLine)
		b.cfg.Config.Entrypoint = args
		if !b.cmdSet {
			b.cfg.Config.Cmd = nil // an inherited CMD does not survive a new ENTRYPOINT
		}
		b.history(fmt.Sprintf("ENTRYPOINT %q", args), false)
	case *instructions.UserCommand:
		b.cfg.Config.User = x.User
		b.history("USER "+x.User, false)
	case *instructions.LabelCommand:
		msg := "LABEL"
		if b.cfg.Config.Labels == nil {
			b.cfg.Config.Labels = map[string]string{}
		}
		for _, l := range x.Labels {
			b.cfg.Config.Labels[l.Key] = l.Value
			msg += " " + l.String()
		}
		b.history(msg, false)
	case *instructions.ExposeCommand:
		err = c.dispatchExpose(b, x)
	case *instructions.VolumeCommand:
		if b.cfg.Config.Volumes == nil {
			b.cfg.Config.Volumes = map[string]struct{}{}
		}
		for _, v := range x.Volumes {
			if v == "" {
				return c.errorf(cm.line, "VOLUME specified can not be an empty string")
			}
			b.cfg.Config.Volumes[v] = struct{}{}
		}
		b.history(fmt.Sprintf("VOLUME %v", x.Volumes), false)
	case *instructions.StopSignalCommand:
		if err := checkSignal(x.Signal); err != nil {
			return c.errAt(cm.line, err)
		}
		b.cfg.Config.StopSignal = x.Signal
		b.history("STOPSIGNAL "+x.Signal, false)
	case *instructions.ShellCommand:
		b.cfg.Config.Shell = slices.Clone(x.Shell)
		b.history(fmt.Sprintf("SHELL %v", x.Shell), false)
	case *instructions.HealthCheckCommand:
		h := x.Health
		b.cfg.Config.Healthcheck = healthConfig(h.Test, h.Interval, h.Timeout, h.StartPeriod, h.Retries)
		b.healthStart = h.StartInterval
		b.history(fmt.Sprintf("HEALTHCHECK %+v", *h), false)
	case *instructions.MaintainerCommand:
		b.cfg.Author = x.Maintainer
		b.history("MAINTAINER "+x.Maintainer, false)
	case *instructions.OnbuildCommand:
		// stored for images built FROM this one; BuildKit records no history for it
		b.cfg.Config.OnBuild = append(b.cfg.Config.OnBuild, x.Expression)
	default:
		err = fmt.Errorf("unsupported instruction %s", strings.ToUpper(cm.Name()))
	}
	if err != nil {
		return c.errAt(cm.line, err)
	}
	return nil
}

// title is an instruction's progress text: its source with variables
// expanded where possible and the keyword upper-cased, as BuildKit shows it.
func (b *build) title(src string, raw bool) string {
	lex := *b.lex
	if raw { // RUN: keep quotes and escapes, leave unset variables alone
		lex.RawQuotes, lex.RawEscapes, lex.SkipUnsetEnv = true, true, true
	}
	if w, _, err := lex.ProcessWord(src, b); err == nil {
		src = w
	}
	kw, rest, ok := strings.Cut(src, " ")
	if !ok {
		return strings.ToUpper(kw)
	}
	return strings.ToUpper(kw) + " " + rest
}

// withShell turns a shell-form command line into SHELL + [line].
func (b *build) withShell(c instructions.ShellDependantCmdLine) []string {
	if !c.PrependShell {
		return slices.Clone(c.CmdLine)
	}
	sh := defaultShell
	if len(b.cfg.Config.Shell) > 0 {
		sh = b.cfg.Config.Shell
	}
	return append(slices.Clone(sh), strings.Join(c.CmdLine, " "))
}

func (c *compiler) dispatchArg(b *build, x *instructions.ArgCommand, expand func(string) (string, error)) error {
	parts := make([]string, 0, len(x.Args))
	for _, a := range x.Args {
		c.used[a.Key] = true
		bv, hasValue := c.o.BuildArgs[a.Key]
		var val *string
		switch {
		case hasValue:
			val = &bv
		case a.Value != nil:
			v, err := expand(*a.Value)
			if err != nil {
				return err
			}
			val = &v
		default: // a redeclared global ARG takes the global value
			if v, ok := c.global.Get(a.Key); ok {
				val = &v
			}
		}
		b.args = append(b.args, stageArg{key: a.Key, val: val})
		if _, skip := nonEnvArgs[a.Key]; val != nil && !skip {
			b.env = envAppend(b.env, a.Key, *val) // even over an ENV, as BuildKit's AddEnv
		}
		p := a.Key
		if val != nil {
			p += "=" + *val
		}
		parts = append(parts, p)
	}
	b.history("ARG "+strings.Join(parts, " "), false)
	return nil
}

func (c *compiler) dispatchRun(b *build, cm *cmd, x *instructions.RunCommand) error {
	mounts, extra, err := c.runMounts(b, cm, x)
	if err != nil {
		return err
	}
	for _, d := range instructions.GetDevices(x) {
		if d.Required {
			return c.errorf(cm.line, "RUN --device=%s,required: kiln has no CDI device support; drop \"required\" to build without the device", d.Name)
		}
		// As BuildKit does with an optional device it cannot provide.
		c.other = append(c.other, Warning{Message: fmt.Sprintf("RUN --device=%s (line %d): no CDI device support, the step runs without it", d.Name, cm.line), src: c.source()})
	}
	if instructions.GetSecurity(x) == instructions.SecurityInsecure {
		return c.unsupported(cm.line, "RUN --security=insecure")
	}
	title := b.title(x.String(), true)
	line := x.ShellDependantCmdLine
	script := "" // a heredoc with a shebang, run as a file by the shell
	if len(x.Files) > 0 {
		if len(line.CmdLine) != 1 || !line.PrependShell {
			return fmt.Errorf("parsing produced an invalid run command: %v", line.CmdLine)
		}
		if h := parser.MustParseHeredoc(line.CmdLine[0]); h != nil {
			data := x.Files[0].Data
			if x.Files[0].Chomp {
				data = parser.ChompHeredocContent(data)
			}
			if strings.HasPrefix(data, "#!") {
				// As BuildKit: the script is a file run by its interpreter,
				// mounted from a heredoc source at /dev/pipes/NAME.
				name := sourcePath(h.Name)
				inl := &dag.Vertex{
					Op:   &dag.InlineOp{Files: []dag.InlineFile{{Name: name, Data: data, Mode: 0o755}}},
					Name: "[internal] heredoc", Text: "heredoc", Pos: c.pos(cm.line),
				}
				mounts = append(mounts, dag.Mount{Type: "bind", Input: 1 + len(extra), Source: name, Target: "/dev/pipes/" + name, ReadOnly: true})
				extra = append(extra, inl)
				script = "/dev/pipes/" + name
			}
			line.CmdLine = []string{data} // the body is the script
			if script != "" {
				// BuildKit's command is the shell running the file
				// (`/bin/sh -c /dev/pipes/EOF`), so the kernel runs its #!.
				line.CmdLine = []string{script}
			}
			title += " (" + summarizeHeredoc(x.Files[0].Data) + ")"
		} else {
			var sb strings.Builder
			sb.WriteString(line.CmdLine[0])
			for _, f := range x.Files {
				sb.WriteString("\n" + f.Data + f.Name)
			}
			line.CmdLine = []string{sb.String()}
		}
	}
	args := b.withShell(line)
	network := instructions.GetNetwork(x)
	if network == instructions.NetworkDefault {
		network = ""
	}
	cwd := b.cfg.Config.WorkingDir
	if cwd == "" {
		cwd = "/"
	}
	b.layer(c, &dag.ExecOp{
		Args:     args,
		Env:      b.runEnv(), // dag.RunEnv adds the ssh socket, proxies and secrets
		User:     b.cfg.Config.User,
		Cwd:      cwd,
		Network:  network,
		Mounts:   mounts,
		Hostname: c.o.BuildArgs["BUILDKIT_SANDBOX_HOSTNAME"], // BuildKit's built-in arg, no ARG needed
		ProxyEnv: c.proxyEnv(b),
	}, cm.line, title, extra...)
	b.history("RUN "+runCommandString(args, b)+" # buildkit", true)
	return nil
}

// runCommandString is RUN's history text: "|N K=v ... " for the ARGs in
// scope, then the command, as BuildKit writes it.
func runCommandString(args []string, b *build) string {
	var env []string
	idx := map[string]int{}
	for _, a := range b.args {
		v, ok := b.Get(a.key)
		if !ok && a.val != nil {
			v = *a.val
		}
		if i, ok := idx[a.key]; ok {
			env[i] = a.key + "=" + v
			continue
		}
		idx[a.key] = len(env)
		env = append(env, a.key+"="+v)
	}
	if len(env) > 0 {
		env = append([]string{fmt.Sprintf("|%d", len(env))}, env...)
	}
	return strings.Join(append(env, args...), " ")
}

func summarizeHeredoc(doc string) string {
	doc = strings.TrimSpace(doc)
	lines := strings.Split(strings.ReplaceAll(doc, "\r\n", "\n"), "\n")
	if len(lines) > 1 {
		return lines[0] + "..."
	}
	return lines[0]
}

func (c *compiler) dispatchExpose(b *build, x *instructions.ExposeCommand) error {
	var ports []string
	for _, p := range x.Ports {
		words, err := b.lex.ProcessWords(p, b)
		if err != nil {
			return err
		}
		for _, w := range words {
			ps, err := parsePort(w)
			if err != nil {
				return err
			}
			ports = append(ports, ps...)
		}
	}
	if b.cfg.Config.ExposedPorts == nil {
		b.cfg.Config.ExposedPorts = map[string]struct{}{}
	}
	for _, p := range ports {
		b.cfg.Config.ExposedPorts[p] = struct{}{}
	}
	b.history(fmt.Sprintf("EXPOSE %v", ports), false)
	return nil
}

var _ shell.EnvGetter = (*build)(nil)
