//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/executor"
	"github.com/kiln-build/kiln/executor/seccomp"
	"github.com/kiln-build/kiln/store"
)

type runFlags struct {
	rm          bool
	env         []string
	envFiles    []string
	workdir     string
	user        string
	entrypoint  string
	name        string
	hostname    string
	interactive bool
	tty         bool
	network     string
	pull        string
	securityOpt []string
}

func newRunCmd(g *globalFlags) *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a container from an image",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRun(cmd, g, f, args[0], args[1:])
		},
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false) // everything after IMAGE belongs to the container
	fl.BoolVar(&f.rm, "rm", false, "remove the container when it exits")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "set an environment variable (KEY=VALUE, or KEY to pass it from this environment)")
	fl.StringArrayVar(&f.envFiles, "env-file", nil, "read environment variables from a file")
	fl.StringVarP(&f.workdir, "workdir", "w", "", "working directory inside the container")
	fl.StringVarP(&f.user, "user", "u", "", "user[:group] to run as")
	fl.StringVar(&f.entrypoint, "entrypoint", "", "overwrite the image's ENTRYPOINT")
	fl.StringVar(&f.name, "name", "", "name the container")
	fl.StringVarP(&f.hostname, "hostname", "h", "", "container host name")
	fl.BoolVarP(&f.interactive, "interactive", "i", false, "keep stdin open")
	fl.BoolVarP(&f.tty, "tty", "t", false, "accepted for docker compatibility; no pseudo-terminal is allocated")
	fl.StringVar(&f.network, "network", "host", "network: host (share the host's) or none")
	fl.StringVar(&f.pull, "pull", "missing", "when to pull the image: always, missing or never")
	fl.StringArrayVar(&f.securityOpt, "security-opt", nil, "seccomp=unconfined|PROFILE.json, no-new-privileges[=true|false]")
	fl.Bool("help", false, "help for run")
	return cmd
}

func runRun(cmd *cobra.Command, g *globalFlags, f *runFlags, image string, args []string) error {
	ctx := cmd.Context()
	st, err := g.store()
	if err != nil {
		return err
	}
	if f.network != "host" && f.network != "none" {
		return fmt.Errorf("--network %q: use host or none", f.network)
	}
	opts := executor.Options{Network: f.network}
	if err := securityOpts(&opts, f.securityOpt); err != nil {
		return err
	}
	pulled, err := st.Images().Pull(ctx, image, runtime.GOOS+"/"+runtime.GOARCH, store.PullPolicy(f.pull))
	if err != nil {
		return fmt.Errorf("unable to find image %q: %w", image, err)
	}
	layers, cfg, err := st.Images().Layers(ctx, pulled.Digest)
	if err != nil {
		return err
	}
	lowers, err := st.Layers().EnsureDirs(ctx, layers) // fetches lazy layers
	if err != nil {
		return err
	}
	env, err := envFlags(f.envFiles, f.env)
	if err != nil {
		return err
	}
	o := executor.RunOverrides{Args: args, Env: env, LookupEnv: os.LookupEnv, Workdir: f.workdir, User: f.user}
	if cmd.Flags().Changed("entrypoint") {
		o.Entrypoint = &f.entrypoint
	}
	proc, err := executor.ImageProcess(cfg.Config, o)
	if err != nil {
		return err
	}

	ctr := &store.Container{Name: f.name, Image: image, Digest: pulled.Digest, Command: proc.Args}
	if err := st.Containers().Create(ctx, ctr); err != nil {
		return err
	}
	dir := st.Containers().Dir(ctr.ID)
	hostname := f.hostname
	if hostname == "" {
		hostname = ctr.ID[:12]
	}
	proc.Stdout, proc.Stderr = os.Stdout, os.Stderr
	if f.interactive {
		proc.Stdin = os.Stdin
	}
	ctr.Status, ctr.Pid = "running", os.Getpid()
	if err := st.Containers().Save(ctx, ctr); err != nil {
		return err
	}
	runErr := executor.Run(ctx, executor.Rootfs{
		Lowers: lowers,
		Upper:  dir + "/upper",
		Work:   dir + "/work",
	}, proc, withHostname(opts, hostname))

	ctr.Status, ctr.Pid, ctr.Finished = "exited", 0, time.Now().UTC()
	var xe *executor.ExitError
	switch {
	case runErr == nil:
	case errors.As(runErr, &xe):
		ctr.ExitCode = xe.Code
	default:
		ctr.ExitCode = 125
	}
	if f.rm {
		if err := st.Containers().Remove(ctx, ctr.ID); err != nil {
			fmt.Fprintf(os.Stderr, "warning: %v\n", err)
		}
	} else if err := st.Containers().Save(ctx, ctr); err != nil {
		fmt.Fprintf(os.Stderr, "warning: %v\n", err)
	}
	return runErr
}

func withHostname(o executor.Options, h string) executor.Options {
	o.Hostname = h
	return o
}

// securityOpts applies docker's --security-opt values: seccomp=unconfined
// or a profile file (docker's JSON format), and no-new-privileges. The
// colon forms docker also takes (seccomp:FILE) are accepted.
func securityOpts(o *executor.Options, vals []string) error {
	for _, v := range vals {
		k, val, ok := strings.Cut(v, "=")
		if !ok {
			k, val, ok = strings.Cut(v, ":")
		}
		switch k {
		case "seccomp":
			switch {
			case !ok || val == "":
				return fmt.Errorf("--security-opt %q: give seccomp=unconfined or seccomp=PROFILE.json", v)
			case val == "unconfined":
				o.SeccompUnconfined, o.Seccomp = true, nil
			case val == "builtin" || val == "default":
				o.SeccompUnconfined, o.Seccomp = false, nil
			default:
				b, err := os.ReadFile(val)
				if err != nil {
					return fmt.Errorf("--security-opt seccomp: %w", err)
				}
				if _, err := seccomp.Load(b, nil); err != nil {
					return fmt.Errorf("--security-opt seccomp=%s: %w", val, err)
				}
				o.SeccompUnconfined, o.Seccomp = false, b
			}
		case "no-new-privileges":
			on := true
			if ok {
				b, err := strconv.ParseBool(val)
				if err != nil {
					return fmt.Errorf("--security-opt %q: the value must be true or false", v)
				}
				on = b
			}
			o.NoNewPrivileges = on
		default:
			return fmt.Errorf("--security-opt %q: kiln supports seccomp=... and no-new-privileges (no AppArmor or SELinux labels)", v)
		}
	}
	return nil
}

// envFlags are the --env-file lines and -e values, in the order they
// apply: KEY=VALUE, or KEY to pass this environment's value.
func envFlags(files, flags []string) ([]string, error) {
	var env []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("--env-file: %w", err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			l = strings.TrimSpace(l)
			if l == "" || strings.HasPrefix(l, "#") {
				continue
			}
			env = append(env, l)
		}
	}
	return append(env, flags...), nil
}

func newPsCmd(g *globalFlags) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "ps",
		Short: "List containers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := g.store()
			if err != nil {
				return err
			}
			cs, err := st.Containers().List(cmd.Context())
			if err != nil {
				return err
			}
			w := newTable(os.Stdout)
			fmt.Fprintln(w, "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tNAMES")
			for _, c := range cs {
				if !all && c.Status != "running" {
					continue
				}
				status := c.Status
				if c.Status == "exited" {
					status = fmt.Sprintf("Exited (%d) %s ago", c.ExitCode, ago(c.Finished))
				}
				fmt.Fprintf(w, "%s\t%s\t%q\t%s ago\t%s\t%s\n", c.ID[:12], c.Image, strings.Join(c.Command, " "), ago(c.Created), status, c.Name)
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "show all containers (default shows just running)")
	return cmd
}

func newRmCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "rm CONTAINER...",
		Short: "Remove containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := g.store()
			if err != nil {
				return err
			}
			for _, a := range args {
				c, err := st.Containers().Get(cmd.Context(), a)
				if err != nil {
					return err
				}
				if c.Status == "running" {
					return fmt.Errorf("container %s is running", a)
				}
				if err := st.Containers().Remove(cmd.Context(), c.ID); err != nil {
					return err
				}
				fmt.Println(a)
			}
			return nil
		},
	}
}
