//go:build linux

package solver

import (
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"

	"github.com/kiln-build/kiln/solver/dag"
)

// A secret whose file cannot be written fails the step with an error that
// names the secret, instead of giving the RUN step a wrong (here: empty)
// file (issue 8: a shadowed err dropped the failure). The write is made
// to fail with a file size limit, in a child process so the limit and the
// ignored SIGXFSZ touch nothing else.
func TestSecretMountWriteFails(t *testing.T) {
	if os.Getenv("KILN_TEST_SECRET_CHILD") == "1" {
		signal.Ignore(syscall.SIGXFSZ)
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: 1, Max: 1}); err != nil {
			t.Fatal(err)
		}
		s := &Solver{opts: Options{Secrets: map[string]Secret{"tok": {Env: "KILN_TEST_SECRET_VALUE"}}}}
		m, _, cleanup, err := s.secretMount(dag.Mount{Type: "secret", ID: "tok", Target: "/run/secrets/tok"})
		if err == nil {
			cleanup()
			t.Fatalf("secret mount of an unwritable file succeeded: %+v", m)
		}
		os.Stdout.WriteString("ERR: " + err.Error() + "\n")
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSecretMountWriteFails$", "-test.v")
	cmd.Env = append(os.Environ(), "KILN_TEST_SECRET_CHILD=1", "KILN_TEST_SECRET_VALUE=s3cr3t-value", "TMPDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	got := string(out)
	if !strings.Contains(got, `ERR: secret "tok": making its file for /run/secrets/tok:`) || !strings.Contains(got, "file too large") {
		t.Errorf("want a clear error naming the secret, got:\n%s", got)
	}
	if strings.Contains(got, "s3cr3t-value") {
		t.Errorf("the error shows the secret's value:\n%s", got)
	}
}
