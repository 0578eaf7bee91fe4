package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every RUN step and container runs under docker's default seccomp
// profile (issue 7: Seccomp was 0 and `unshare -Urm` worked in a RUN);
// kiln run takes --security-opt seccomp=unconfined|PROFILE.json and
// no-new-privileges as docker does.
func TestSeccomp(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := e.context(map[string]string{"Dockerfile": `ARG BASE
FROM $BASE
RUN grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; unshare -Urm true || echo unshare-refused; mkdir /made
`})
	r := e.mustKiln("build", "--progress=plain", "--build-arg", "BASE="+e.base, "-t", "sc", dir)
	if !strings.Contains(r.stderr, "Seccomp:\t2") || !strings.Contains(r.stderr, "unshare-refused") {
		t.Errorf("RUN is not under the default profile:\n%s", r.stderr)
	}
	status := "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status"
	profile := filepath.Join(t.TempDir(), "no-mkdir.json")
	if err := os.WriteFile(profile, []byte(`{"defaultAction": "SCMP_ACT_ALLOW",
 "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"defaultAction": "SCMP_ACT_BOGUS"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		fail bool // kiln refuses to start it
		want []string
	}{
		{"default", []string{status + "; unshare -U true || echo refused"}, false, []string{"Seccomp:\t2", "NoNewPrivs:\t0", "refused"}},
		{"unconfined", []string{"--security-opt", "seccomp=unconfined", status}, false, []string{"Seccomp:\t0"}},
		{"profile", []string{"--security-opt", "seccomp=" + profile, "mkdir /x || echo mkdir-refused"}, false, []string{"Permission denied", "mkdir-refused"}},
		{"no-new-privileges", []string{"--security-opt", "no-new-privileges", status}, false, []string{"NoNewPrivs:\t1", "Seccomp:\t2"}},
		{"bad profile", []string{"--security-opt", "seccomp=" + bad, "true"}, true, []string{"bad.json", "SCMP_ACT_BOGUS"}},
		{"unknown option", []string{"--security-opt", "apparmor=x", "true"}, true, []string{"apparmor=x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"run", "--rm"}, tc.args[:len(tc.args)-1]...)
			args = append(args, "sc", "sh", "-c", tc.args[len(tc.args)-1])
			r := e.kiln("", args...)
			out := r.stdout + r.stderr
			if (r.code != 0) != tc.fail {
				t.Errorf("exit %d\n%s", r.code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
