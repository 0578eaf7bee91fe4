//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/moby/patternmatcher/ignorefile"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/frontend"
	"github.com/kiln-build/kiln/imageref"
	"github.com/kiln-build/kiln/solver"
	"github.com/kiln-build/kiln/store"
)

type buildFlags struct {
	tags      []string
	file      string
	buildArgs []string
	target    string
	outputs   []string
	progress  string
	noCache   bool
	pull      string
	platform  string
	quiet     bool
	jobs      int
	explain   bool

	noCacheFilter []string
	secrets       []string
	ssh           []string
	trace         string
	check         bool
	cache         cacheFlags // --cache-from, --cache-to (build_cache.go)
	out           outputFlags
}

func newBuildCmd(g *globalFlags) *cobra.Command {
	f := &buildFlags{}
	cmd := &cobra.Command{
		Use:   "build [OPTIONS] PATH",
		Short: "Build an image from a Dockerfile",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBuild(cmd, g, f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&f.tags, "tag", "t", nil, `name and optionally a tag ("name:tag")`)
	fl.StringVarP(&f.file, "file", "f", "", `name of the Dockerfile (default "PATH/Dockerfile"; "-" reads stdin)`)
	fl.StringArrayVar(&f.buildArgs, "build-arg", nil, "set a build-time variable (KEY=VALUE, or KEY to take it from the environment)")
	fl.StringVar(&f.target, "target", "", "build this stage (default: the last one)")
	fl.StringArrayVarP(&f.outputs, "output", "o", nil, `output destination: "type=oci,dest=FILE", "type=docker,dest=FILE", "type=image" (the local store, default)`)
	f.out.register(cmd)
	fl.StringVar(&f.progress, "progress", "auto", "progress output: auto, tty, plain, rawjson or quiet (only the image ID, on stdout)")
	fl.StringVar(&f.trace, "trace", "", "write a trace of the build's steps to FILE (Chrome trace-event JSON, for Perfetto)")
	fl.BoolVar(&f.noCache, "no-cache", false, "do not use the cache")
	fl.StringVar(&f.pull, "pull", "missing", "when to pull base images: always, missing or never")
	fl.Lookup("pull").NoOptDefVal = "always"
	fl.StringVar(&f.platform, "platform", runtime.GOOS+"/"+runtime.GOARCH, "target platform (only the host's is supported)")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "print only the image ID")
	fl.IntVar(&f.jobs, "jobs", 0, "steps executed at once (default: number of CPUs)")
	fl.BoolVar(&f.explain, "explain-cache", false, "say, for each step that misses the cache, what changed since the last build of this Dockerfile and target")
	fl.BoolVar(&f.explain, "explain", false, "same as --explain-cache")
	fl.StringArrayVar(&f.ssh, "ssh", nil, `an SSH agent socket for RUN --mount=type=ssh: "default" ($SSH_AUTH_SOCK), "ID" or "ID=SOCKET"`)
	fl.StringArrayVar(&f.secrets, "secret", nil, `a secret for RUN --mount=type=secret: "id=ID,src=FILE", "id=ID,env=VAR" or "id=ID" (the env var ID)`)
	fl.StringSliceVar(&f.noCacheFilter, "no-cache-filter", nil, "do not use the cache for these stages (comma-separated names)")
	fl.BoolVar(&f.check, "check", false, "only run the build checks: print every violation, exit 1 if there is any; no step runs")
	f.cache.register(cmd)
	return cmd
}

func runBuild(cmd *cobra.Command, g *globalFlags, f *buildFlags, contextArg string) (err error) {
	ctx := cmd.Context()
	start := time.Now()
	contextDir, err := filepath.Abs(contextArg)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(contextDir); err != nil || !fi.IsDir() {
		return fmt.Errorf("build context %q is not a directory", contextArg)
	}
	if host := runtime.GOOS + "/" + runtime.GOARCH; f.platform != host {
		return fmt.Errorf("--platform %s: only the host platform %s can be built on this machine", f.platform, host)
	}
	policy := store.PullPolicy(f.pull)
	switch policy {
	case store.PullAlways, store.PullMissing, store.PullNever:
	case "true":
		policy = store.PullAlways
	case "false":
		policy = store.PullMissing
	default:
		return fmt.Errorf("--pull %q: use always, missing or never", f.pull)
	}
	outs, err := parseOutputs(f.outputs, &f.out, f.tags)
	if err != nil {
		return err
	}
	labels, err := parseLabels(f.out.labels)
	if err != nil {
		return err
	}

	dockerfile, dfName, err := readDockerfile(f.file, contextDir)
	if err != nil {
		return err
	}
	excludes, err := readDockerignore(contextDir, f.file, dfName)
	if err != nil {
		return err
	}
	buildArgs, err := parseBuildArgs(f.buildArgs)
	if err != nil {
		return err
	}
	epoch, err := solver.SourceDateEpoch(buildArgs, os.Getenv("SOURCE_DATE_EPOCH"))
	if err != nil {
		return err
	}
	secrets, err := parseSecrets(f.secrets)
	if err != nil {
		return err
	}
	sshSocks, err := parseSSH(f.ssh)
	if err != nil {
		return err
	}

	st, err := g.store()
	if err != nil {
		return err
	}
	progress, err := newBuildProgress(st, f.progress, f.trace, f.quiet, start)
	if err != nil {
		return err
	}
	defer func() {
		if terr := progress.end(); terr != nil && err == nil {
			err = terr
		}
	}()

	res, err := frontend.Compile(ctx, frontend.Options{
		Dockerfile: dockerfile,
		Filename:   dfName,
		ContextDir: contextDir,
		Excludes:   excludes,
		BuildArgs:  buildArgs,
		Target:     f.target,
		Platform:   f.platform,
		Resolver:   &solver.Resolver{Images: st.Images(), Policy: policy, Progress: progress.Progress},
		Check:      f.check,
	})
	if err != nil {
		return err
	}
	if f.check { // no violation, or Compile would have failed
		progress.Printf("%s", frontend.CheckReport(res.Warnings))
		return nil
	}
	for _, l := range frontend.WarningSummary(res.Warnings) {
		progress.Printf("%s\n", l)
	}
	buildCfg, err := st.Config().Build()
	if err != nil {
		return err
	}
	bc, err := newBuildCache(ctx, st, f.platform, f.cache)
	if err != nil {
		return err
	}
	s := solver.New(st, solver.Options{
		Remote: bc.remote(), Produced: bc.produced(ctx),
		Jobs: f.jobs, NoCache: f.noCache, Progress: progress.Progress,
		History: buildHistoryID(contextDir, f.file, f.target, f.tags), Explain: f.explain,
		NoCacheFilter: f.noCacheFilter,
		Secrets:       secrets,
		SSH:           sshSocks,
		Build:         buildCfg,
	})
	layers, err := s.Solve(ctx, res.Root)
	if err != nil {
		return err
	}
	applyLabels(&res.Config, labels)
	img := solver.Image{Config: res.Config, Extras: store.ConfigExtras{HealthStartInterval: res.HealthStartInterval}, Layers: layers}
	manifest, err := solver.CommitImage(ctx, st.Records(), st.Images(), img, solver.CommitOptions{NoCache: f.noCache, Epoch: epoch})
	if err != nil {
		return err
	}
	if err := bc.export(ctx, s, res.Root, progress); err != nil {
		return err
	}
	id, err := st.Images().ID(ctx, manifest)
	if err != nil {
		return err
	}
	progress.Printf("writing image %s done\n", id)
	for _, t := range f.tags {
		if err := st.Names().TagAtomic(ctx, t, manifest); err != nil {
			return fmt.Errorf("tagging %s: %w", t, err)
		}
		progress.Printf("naming to %s done\n", canonical(t))
	}
	name := ""
	if len(f.tags) > 0 {
		name = f.tags[0]
	}
	if err := exportAll(ctx, st, manifest, outs, name, epoch, &f.out, progress); err != nil {
		return err
	}
	progress.Finish()
	if f.quiet || f.progress == "quiet" {
		fmt.Println(id)
	}
	var gcReport io.Writer = os.Stderr
	if f.quiet || f.progress == "quiet" || f.progress == "rawjson" {
		gcReport = nil
	}
	autoGC(ctx, g, st, gcReport)
	return nil
}

func canonical(ref string) string {
	r, err := imageref.Parse(ref)
	if err != nil {
		return ref
	}
	return imageref.Canonical(r)
}

// readDockerfile returns the Dockerfile's bytes and the name to show in
// errors. Without -f it is CONTEXT/Dockerfile, read only from inside the
// context (see readInRoot): the context is the build's input, perhaps a
// repository just cloned, and must not make kiln read or print a host
// file. -f may name a file anywhere, as docker allows, but it too must be
// a regular file of at most maxDockerfileSize, its symlinks followed only
// within its directory (BuildKit syncs that directory and reads the file
// in it).
func readDockerfile(file, contextDir string) ([]byte, string, error) {
	if file == "-" {
		b, err := io.ReadAll(os.Stdin)
		return b, "Dockerfile", err
	}
	f := contextFile(contextDir, "Dockerfile", "copy the file into the context or name it with -f")
	if file != "" {
		f = flagFile(file, "-f "+file, "its directory", "name the file it points to with -f")
	}
	b, err := readInRoot(f)
	if err != nil {
		if err == errNotInRoot {
			path := file
			if path == "" {
				path = filepath.Join(contextDir, "Dockerfile")
			}
			return nil, "", fmt.Errorf("failed to read Dockerfile: %s does not exist (use -f to name another file)", path)
		}
		return nil, "", err
	}
	return b, filepath.Base(f.name), nil
}

// readDockerignore reads <Dockerfile>.dockerignore beside the Dockerfile if
// there is one, else the context's .dockerignore, each as readDockerfile
// reads the Dockerfile: from inside the context (or, for the one beside an
// -f Dockerfile, inside that file's directory), a regular file, bounded.
func readDockerignore(contextDir, file, dfName string) ([]string, error) {
	var candidates []rootedFile
	switch file {
	case "":
		candidates = append(candidates, contextFile(contextDir, "Dockerfile.dockerignore", "copy the file into the context"))
	case "-":
	default:
		ign := filepath.Clean(file) + ".dockerignore"
		candidates = append(candidates, flagFile(ign, ign, "the Dockerfile's directory", "copy the file there"))
	}
	candidates = append(candidates, contextFile(contextDir, ".dockerignore", "copy the file into the context"))
	for _, c := range candidates {
		b, err := readInRoot(c)
		if errors.Is(err, errNotInRoot) {
			continue
		}
		if err != nil {
			return nil, err
		}
		pats, err := ignorefile.ReadAll(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", c.full, err)
		}
		return pats, nil
	}
	return nil, nil
}

func parseBuildArgs(args []string) (map[string]string, error) {
	m := map[string]string{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if k == "" {
			return nil, fmt.Errorf("--build-arg %q: expected KEY=VALUE", a)
		}
		if !ok {
			ev, set := os.LookupEnv(k)
			if !set {
				continue // docker skips an unset KEY-only arg
			}
			v = ev
		}
		m[k] = v
	}
	return m, nil
}

// buildHistoryID names a build for --explain-cache: the same Dockerfile,
// target and tags compare with their own last build.
func buildHistoryID(contextDir, file, target string, tags []string) string {
	df := file
	if df == "" {
		df = filepath.Join(contextDir, "Dockerfile")
	} else if df != "-" {
		if abs, err := filepath.Abs(df); err == nil {
			df = abs
		}
	} else {
		df = "stdin:" + contextDir
	}
	tags = slices.Sorted(slices.Values(tags))
	return df + "\x00" + target + "\x00" + strings.Join(tags, ",")
}

// parseSSH reads --ssh values in docker build syntax: "ID" (the agent of
// $SSH_AUTH_SOCK) or "ID=SOCKET". Only agent sockets are forwarded, not
// key files: the agent keeps the keys out of the build.
func parseSSH(vals []string) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range vals {
		id, sock, ok := strings.Cut(v, "=")
		if !ok || sock == "" {
			sock = os.Getenv("SSH_AUTH_SOCK")
			if sock == "" {
				return nil, fmt.Errorf("--ssh %s: SSH_AUTH_SOCK is not set; start an agent (eval $(ssh-agent); ssh-add) or give --ssh %s=SOCKET", v, id)
			}
		}
		if strings.Contains(sock, ",") {
			return nil, fmt.Errorf("--ssh %s: only one agent socket per id is supported", v)
		}
		fi, err := os.Stat(sock)
		if err != nil {
			return nil, fmt.Errorf("--ssh %s: %w", v, err)
		}
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("--ssh %s: %s is not a socket: kiln forwards an SSH agent, not key files (ssh-add the key to an agent)", v, sock)
		}
		abs, err := filepath.Abs(sock)
		if err != nil {
			return nil, fmt.Errorf("--ssh %s: %w", v, err)
		}
		out[id] = abs
	}
	return out, nil
}

// parseSecrets reads --secret values in docker buildx syntax.
func parseSecrets(vals []string) (map[string]solver.Secret, error) {
	out := map[string]solver.Secret{}
	for _, v := range vals {
		var id, typ, src, env string
		for _, kv := range strings.Split(v, ",") {
			k, val, ok := strings.Cut(kv, "=")
			if !ok {
				return nil, fmt.Errorf("--secret %q: expected key=value pairs", v)
			}
			switch strings.ToLower(k) {
			case "id":
				id = val
			case "type":
				typ = val
			case "src", "source":
				src = val
			case "env":
				env = val
			default:
				return nil, fmt.Errorf("--secret %q: unknown key %q (use id, src, env or type)", v, k)
			}
		}
		if id == "" {
			return nil, fmt.Errorf("--secret %q: id is required", v)
		}
		switch {
		case typ == "env" && src != "":
			env, src = src, ""
		case src == "" && env == "":
			env = id
		}
		if src != "" {
			if _, err := os.Stat(src); err != nil {
				return nil, fmt.Errorf("--secret %s: %w", id, err)
			}
			if abs, err := filepath.Abs(src); err == nil {
				src = abs
			}
		}
		out[id] = solver.Secret{File: src, Env: env}
	}
	return out, nil
}
