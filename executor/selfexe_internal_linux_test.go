package executor

import (
	"errors"
	"os"
	"os/exec"
	"testing"

	"golang.org/x/sys/unix"
)

// Both ways of starting the executor child give a binary that runs and
// cannot be written (CVE-2019-5736): the read-only mount refuses the open,
// the sealed memfd the write.
func TestSelfExeNotWritable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: open_tree of the binary")
	}
	for _, tc := range []struct {
		name string
		make func() (string, error)
	}{{"read-only mount", readOnlyExe}, {"sealed memfd", sealedExe}} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := tc.make()
			if err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(p, "-test.run=^$").CombinedOutput(); err != nil {
				t.Fatalf("running %s: %v: %s", p, err, out)
			}
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err == nil {
				_, err = f.Write([]byte("x"))
				f.Close()
			}
			if err == nil || !(errors.Is(err, unix.EROFS) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.ETXTBSY)) {
				t.Fatalf("writing %s: %v, want it refused", p, err)
			}
		})
	}
}
