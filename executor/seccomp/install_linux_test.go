package seccomp

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// childEnv makes the test binary the child of TestInstall: it reads a
// Filter as JSON on stdin, installs it and reports what its syscalls get.
const childEnv = "KILN_SECCOMP_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(installChild())
	}
	os.Exit(m.Run())
}

func errName(err error) string {
	var errno unix.Errno
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &errno):
		return unix.ErrnoName(errno)
	}
	return err.Error()
}

// seccompLine returns the value of a /proc status field.
func seccompLine(status []byte, field string) string {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "missing"
}

// installChild does what the executor's child does around Install, in the
// same order, and prints key=result lines.
func installChild() int {
	runtime.LockOSThread()
	var f Filter
	if err := json.NewDecoder(os.Stdin).Decode(&f); err != nil {
		fmt.Fprintln(os.Stderr, "decoding filter:", err)
		return 2
	}
	if err := f.Install(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	report := func(k, v string) { fmt.Printf("%s=%s\n", k, v) }
	status, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 4
	}
	report("thread-seccomp", seccompLine(status, "Seccomp"))
	// ENOENT, not a mount, if the filter let it through
	report("mount", errName(unix.Mount("none", "/nonexistent/kiln-seccomp-test", "tmpfs", 0, "")))
	report("unshare-user", errName(unix.Unshare(unix.CLONE_NEWUSER)))
	report("unshare-mnt", errName(unix.Unshare(unix.CLONE_NEWNS)))
	// EINVAL (size 0), not a new process, if the filter let it through
	_, _, errno := unix.RawSyscall(unix.SYS_CLONE3, 0, 0, 0)
	report("clone3", errName(errnoErr(errno)))
	report("pdeathsig", errName(unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0)))
	report("setgroups", errName(unix.Setgroups(nil)))
	report("setgid", errName(unix.Setgid(65534)))
	report("setuid", errName(unix.Setuid(65534)))
	out, err := exec.Command("/bin/cat", "/proc/self/status").Output()
	report("exec-cat", errName(err))
	report("exec-seccomp", seccompLine(out, "Seccomp"))
	report("exec-true", errName(exec.Command("/bin/true").Run()))
	return 0
}

func errnoErr(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

func TestInstall(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: a filter without no_new_privs needs CAP_SYS_ADMIN, as in the executor's child")
	}
	for _, bin := range []string{"/bin/true", "/bin/cat"} {
		if _, err := os.Stat(bin); err != nil {
			t.Skipf("needs %s: %v", bin, err)
		}
	}
	p, err := Default(dockerCaps)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stdin = bytes.NewReader(b)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v: %s", err, stderr.Bytes())
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		got[k] = v
	}
	want := map[string]string{
		"thread-seccomp": "2",
		"mount":          "EPERM",
		"unshare-user":   "EPERM",
		"unshare-mnt":    "EPERM",
		"clone3":         "ENOSYS",
		"pdeathsig":      "ok",
		"setgroups":      "ok",
		"setgid":         "ok",
		"setuid":         "ok",
		"exec-cat":       "ok",
		"exec-seccomp":   "2",
		"exec-true":      "ok",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: got %q, want %q", k, got[k], w)
		}
	}
}
