//go:build linux

package executor_test

import (
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/containerenv"
	"github.com/kiln-build/kiln/executor"
)

// ImageProcess applies docker run's overrides to an image's process.
func TestImageProcess(t *testing.T) {
	str := func(s string) *string { return &s }
	img := v1.Config{Entrypoint: []string{"/entry"}, Cmd: []string{"serve"}, Env: []string{"PATH=/bin", "A=1", "B=2"}, WorkingDir: "/app", User: "app"}
	bare := v1.Config{Cmd: []string{"sh"}}
	lookup := func(k string) (string, bool) {
		v, ok := map[string]string{"HOST_VAR": "from host"}[k]
		return v, ok
	}
	for _, tc := range []struct {
		name     string
		cfg      v1.Config
		o        executor.RunOverrides
		args     []string
		env      []string
		cwd, usr string
		err      string
	}{
		{name: "as the image says", cfg: img, args: []string{"/entry", "serve"}, env: img.Env, cwd: "/app", usr: "app"},
		{name: "args replace CMD", cfg: img, o: executor.RunOverrides{Args: []string{"check", "-v"}}, args: []string{"/entry", "check", "-v"}, env: img.Env, cwd: "/app", usr: "app"},
		{name: "--entrypoint drops CMD", cfg: img, o: executor.RunOverrides{Entrypoint: str("/other")}, args: []string{"/other"}, env: img.Env, cwd: "/app", usr: "app"},
		{name: "--entrypoint with args", cfg: img, o: executor.RunOverrides{Entrypoint: str("/other"), Args: []string{"x"}}, args: []string{"/other", "x"}, env: img.Env, cwd: "/app", usr: "app"},
		{name: `--entrypoint ""`, cfg: img, o: executor.RunOverrides{Entrypoint: str("")}, args: []string{"serve"}, env: img.Env, cwd: "/app", usr: "app"},
		{name: "-w and -u", cfg: img, o: executor.RunOverrides{Workdir: "/tmp", User: "0:0"}, args: []string{"/entry", "serve"}, env: img.Env, cwd: "/tmp", usr: "0:0"},
		{
			name: "env in place, appended, from the host, later wins", cfg: img,
			o:    executor.RunOverrides{Env: []string{"B=3", "C=4", "HOST_VAR", "UNSET_VAR", "C=5"}, LookupEnv: lookup},
			args: []string{"/entry", "serve"}, env: []string{"PATH=/bin", "A=1", "B=3", "C=5", "HOST_VAR=from host"}, cwd: "/app", usr: "app",
		},
		{name: "default PATH first", cfg: bare, o: executor.RunOverrides{Env: []string{"X=1"}}, args: []string{"sh"}, env: []string{"PATH=" + containerenv.DefaultPath, "X=1"}},
		{name: `--entrypoint "" over no ENTRYPOINT`, cfg: bare, o: executor.RunOverrides{Entrypoint: str("")}, args: []string{"sh"}, env: []string{"PATH=" + containerenv.DefaultPath}},
		{name: "no command", cfg: v1.Config{}, err: "no command specified"},
		{name: "no command after --entrypoint", cfg: v1.Config{Entrypoint: []string{"/e"}}, o: executor.RunOverrides{Entrypoint: str("")}, err: "no command specified"},
	} {
		p, err := executor.ImageProcess(tc.cfg, tc.o)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if !slices.Equal(p.Args, tc.args) || !slices.Equal(p.Env, tc.env) || p.Cwd != tc.cwd || p.User != tc.usr {
			t.Errorf("%s: args %q env %q cwd %q user %q; want %q %q %q %q", tc.name, p.Args, p.Env, p.Cwd, p.User, tc.args, tc.env, tc.cwd, tc.usr)
		}
	}
	if !slices.Equal(img.Env, []string{"PATH=/bin", "A=1", "B=2"}) {
		t.Errorf("the image's env changed: %q", img.Env)
	}
}
