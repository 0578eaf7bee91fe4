package main

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Two builds at once on one store, each with a step that fails (exit 9) if
// it finds the other one inside the cache mount: sharing=locked must make
// the second wait, sharing=private must give it another directory.
func TestCacheMountSharingBetweenConcurrentBuilds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, sharing := range []string{"locked", "private"} {
		t.Run(sharing, func(t *testing.T) {
			ce := *e
			ce.t = t
			step := func(who string) string {
				return fmt.Sprintf("ARG BASE\nFROM $BASE\nRUN --mount=type=cache,target=/c,id=conc-%s,sharing=%s "+
					"sh -c 'echo %s; test ! -e /c/busy || exit 9; touch /c/busy; sleep 2; rm /c/busy'\n", sharing, sharing, who)
			}
			var wg sync.WaitGroup
			res := make([]result, 2)
			for i, who := range []string{"first", "second"} {
				dir := ce.context(map[string]string{"Dockerfile": step(who)})
				wg.Add(1)
				go func() {
					defer wg.Done()
					res[i] = ce.kiln("", "build", "--progress=plain", "--build-arg", "BASE="+e.base, dir)
				}()
			}
			wg.Wait()
			for i, r := range res {
				if r.code != 0 {
					t.Errorf("build %d with sharing=%s: exit %d\n%s", i, sharing, r.code, r.stderr)
				}
				if strings.Contains(r.stderr, "CACHED [2/2]") {
					t.Errorf("build %d did not run its step:\n%s", i, r.stderr)
				}
			}
		})
	}
}

func TestRunMountSSH(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	build := func(df string, args ...string) result {
		dir := e.context(map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\n" + df})
		return e.kiln("", append([]string{"build", "--progress=plain", "-t", "ssh", "--build-arg", "BASE=" + e.base}, append(args, dir)...)...)
	}
	r := build("RUN --mount=type=ssh test -S \"$SSH_AUTH_SOCK\" && echo \"$SSH_AUTH_SOCK\" > /sock-path\n"+
		"RUN --mount=type=ssh,id=deploy,target=/tmp/deploy.sock,required test -S /tmp/deploy.sock && echo $SSH_AUTH_SOCK > /deploy\n",
		"--ssh", "default="+sock, "--ssh", "deploy="+sock)
	if r.code != 0 {
		t.Fatalf("build with --ssh: %s", r.stderr)
	}
	fs := files(t, e.image("ssh"))
	if f := fs["/sock-path"]; f.data != "/run/buildkit/ssh_agent.0\n" {
		t.Errorf("SSH_AUTH_SOCK = %q, want BuildKit's /run/buildkit/ssh_agent.0", f.data)
	}
	if f := fs["/deploy"]; f.data != "/tmp/deploy.sock\n" {
		t.Errorf("SSH_AUTH_SOCK with a target = %q", f.data)
	}
	for _, p := range []string{"/run/buildkit", "/run/buildkit/ssh_agent.0", "/tmp/deploy.sock"} {
		if _, ok := fs[p]; ok {
			t.Errorf("%s left in the image", p)
		}
	}
	// Not given and optional: no socket, the step runs. Required: a clear error.
	if r := build("RUN --mount=type=ssh test ! -e /run/buildkit/ssh_agent.0 && echo none > /n\n"); r.code != 0 {
		t.Errorf("optional ssh mount without --ssh: exit %d\n%s", r.code, r.stderr)
	}
	r = build("RUN --mount=type=ssh,required=true echo never\n")
	if r.code == 0 || !strings.Contains(r.stderr, "no SSH agent socket was given") || !strings.Contains(r.stderr, "--ssh default") {
		t.Errorf("required ssh mount without --ssh: exit %d\n%s", r.code, r.stderr)
	}
	r = build("RUN echo x\n", "--ssh", "default="+filepath.Join(t.TempDir()))
	if r.code == 0 || !strings.Contains(r.stderr, "is not a socket") {
		t.Errorf("--ssh to a non-socket: exit %d\n%s", r.code, r.stderr)
	}
}
