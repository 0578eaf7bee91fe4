package dag

import (
	"slices"
	"testing"

	"github.com/kiln-build/kiln/containerenv"
)

func TestRunEnv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		op      ExecOp
		secrets []string
		want    []string
	}{
		{
			name: "stage env only",
			op:   ExecOp{Env: []string{"PATH=" + containerenv.DefaultPath, "A=1"}},
			want: []string{"PATH=" + containerenv.DefaultPath, "A=1"},
		},
		{
			name: "nothing",
			want: []string{},
		},
		{
			name: "ssh mount: its target after the stage env",
			op: ExecOp{Env: []string{"A=1"}, Mounts: []Mount{
				{Type: "cache", Target: "/c"},
				{Type: "ssh", Target: "/run/buildkit/ssh_agent.0"},
				{Type: "ssh", Target: "/tmp/deploy.sock"},
			}},
			want: []string{"A=1", "SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0"},
		},
		{
			name: "ssh mount, SSH_AUTH_SOCK set by ENV",
			op:   ExecOp{Env: []string{"SSH_AUTH_SOCK=/mine", "A=1"}, Mounts: []Mount{{Type: "ssh", Target: "/run/buildkit/ssh_agent.0"}}},
			want: []string{"SSH_AUTH_SOCK=/mine", "A=1"},
		},
		{
			name: "a variable named like it is not it",
			op:   ExecOp{Env: []string{"SSH_AUTH_SOCKET=/x"}, Mounts: []Mount{{Type: "ssh", Target: "/s"}}},
			want: []string{"SSH_AUTH_SOCKET=/x", "SSH_AUTH_SOCK=/s"},
		},
		{
			name: "proxy args, then secrets, last",
			op: ExecOp{Env: []string{"A=1"}, ProxyEnv: []string{"HTTP_PROXY=http://p", "no_proxy=x"},
				Mounts: []Mount{{Type: "ssh", Target: "/s"}}},
			secrets: []string{"TOKEN=t"},
			want:    []string{"A=1", "SSH_AUTH_SOCK=/s", "HTTP_PROXY=http://p", "no_proxy=x", "TOKEN=t"},
		},
		{
			name:    "a name set twice is passed twice, in order",
			op:      ExecOp{Env: []string{"A=1"}, ProxyEnv: []string{"A=2"}},
			secrets: []string{"A=3"},
			want:    []string{"A=1", "A=2", "A=3"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := slices.Clone(tc.op.Env)
			got := RunEnv(&tc.op, tc.secrets)
			if !slices.Equal(got, tc.want) {
				t.Errorf("RunEnv = %q, want %q", got, tc.want)
			}
			if !slices.Equal(tc.op.Env, env) {
				t.Errorf("RunEnv changed op.Env to %q", tc.op.Env)
			}
		})
	}
}
