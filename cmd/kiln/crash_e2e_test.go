package main

import (
	"bytes"
	"context"
	"errors"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A build SIGKILLed at any moment leaves a store the next build uses
// without repair, and that build's image is right.
//
// Not parallel: the kills land 0-300 ms after each start, a span that
// covers the build's startup, pull and first steps only on a machine not
// busy with the other tests (there a build gets much less far in it).
func TestSIGKILLAtRandomPointsLeavesAUsableStore(t *testing.T) {
	e := newEnv(t)
	// The executor's temp dirs (kiln-exec-*) are made in TMPDIR, outside
	// the store, and a killed build leaves them: in a TMPDIR of the test's
	// own, not the host's /tmp.
	tmp := t.TempDir()
	e.extra = append(e.extra, "TMPDIR="+tmp)
	dir := e.context(map[string]string{
		"Dockerfile": `ARG BASE
FROM $BASE AS gen
RUN for i in $(seq 1 200); do echo "line $i" > /f$i; done
RUN sleep 0.05 && cat /f* > /all && rm /f1*
FROM $BASE
WORKDIR /app
COPY data/ ./data/
COPY --from=gen /all /app/all
RUN wc -l < /app/all > /app/count && rm -rf /app/data/b
`,
		"data/a":   "a\n",
		"data/b/c": "c\n",
	})
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	t.Logf("seed %d", seed)
	const kills = 20
	for i := 0; i < kills; i++ {
		args := []string{"build", "--progress=plain", "-t", "crash", "--build-arg", "BASE=" + e.base}
		if i%3 == 0 {
			args = append(args, "--no-cache") // so later rounds still have work to interrupt
		}
		cmd := e.command(context.Background(), append(args, dir)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.Intn(300)) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
	}
	r := e.mustKiln("build", "--progress=plain", "-t", "crash", "--build-arg", "BASE="+e.base, dir)
	for _, name := range tmpLeft(t, e.root) {
		if strings.HasSuffix(name, ".lk") { // a killed build's step or unpack dir
			t.Errorf("a killed build's temp dir was not cleaned: %s", name)
		}
	}
	fs := files(t, e.image("crash"))
	if got := strings.TrimSpace(fs["/app/count"].data); got != "200" {
		t.Errorf("/app/count = %q, want 200\n%s", got, r.stderr)
	}
	if _, ok := fs["/app/data/b/c"]; ok {
		t.Error("/app/data/b/c should be deleted")
	}
	if fs["/app/data/a"].data != "a\n" {
		t.Errorf("/app/data/a = %q", fs["/app/data/a"].data)
	}
	if out := e.mustKiln("run", "--rm", "crash", "cat", "/app/count"); strings.TrimSpace(out.stdout) != "200" {
		t.Errorf("run: %q", out.stdout)
	}
	// Nothing of the killed builds is left in the store's tmp once a build
	// has started with the store to itself (leftovers older than 10s go).
	check := e.mustKiln("store", "check")
	if !strings.Contains(check.stdout, "store is consistent") {
		t.Errorf("store check after crashes:\n%s%s", check.stdout, check.stderr)
	}

	// Damage a layer blob: check finds it, --repair removes what depends on
	// it, and the next build remakes it.
	blobs, err := filepath.Glob(filepath.Join(e.root, "blobs", "sha256", "*"))
	if err != nil || len(blobs) == 0 {
		t.Fatal("no blobs")
	}
	var victim string
	for _, b := range blobs {
		if fi, err := os.Stat(b); err == nil && fi.Size() > 200 {
			victim = b
			break
		}
	}
	if err := os.WriteFile(victim, []byte("damaged"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := e.kiln("", "store", "check"); r.code == 0 || !strings.Contains(r.stdout, filepath.Base(victim)) {
		t.Errorf("store check missed a damaged blob: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	e.mustKiln("store", "check", "--repair")
	if r := e.mustKiln("store", "check"); !strings.Contains(r.stdout, "store is consistent") {
		t.Errorf("after repair:\n%s", r.stdout)
	}
	e.mustKiln("pull", e.base)
	e.mustKiln("build", "-t", "crash", "--build-arg", "BASE="+e.base, dir)
	if out := e.mustKiln("run", "--rm", "crash", "cat", "/app/count"); strings.TrimSpace(out.stdout) != "200" {
		t.Errorf("run after repair: %q", out.stdout)
	}
	// The next operations swept what the killed builds left in TMPDIR.
	if left, _ := filepath.Glob(filepath.Join(tmp, "kiln-exec-*")); len(left) > 0 {
		t.Errorf("the killed builds left %d executor temp dirs in TMPDIR: %v", len(left), left)
	}
}

// sleepArg is a `sleep` argument no other process on the host uses: this
// package's tests are told apart by the base, a run of the package from
// another (a second go test on the host) by the pid.
func sleepArg(base int) string { return strconv.Itoa(base + os.Getpid()) }

// sleepers counts live processes running `sleep <arg>`.
func sleepers(arg string) int {
	n := 0
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && strings.HasSuffix(string(b), "sleep\x00"+arg+"\x00") {
			n++
		}
	}
	return n
}

// waitFor polls cond for up to d.
func waitFor(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); ; time.Sleep(50 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

// exited reports whether the child pid has exited (a zombie not yet waited
// for, or gone).
func exited(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')') // the state follows the command's name
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z'
}

// tmpLeft lists what is left in the store's tmp dir.
func tmpLeft(t *testing.T, root string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(root, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// The first failing step cancels the others: their processes are killed,
// their temp dirs removed, and the failure is what kiln reports.
func TestFirstFailureCancelsTheRest(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	slow := sleepArg(10_000_000)
	dir := e.context(map[string]string{
		"Dockerfile": `ARG BASE
FROM $BASE AS slow
RUN sleep ` + slow + `
FROM $BASE AS failing
RUN sleep 0.5 && exit 3
FROM $BASE
COPY --from=slow /etc/passwd /a
COPY --from=failing /etc/passwd /b
`,
	})
	r := e.kiln("", "build", "--jobs", "2", "--progress=plain", "--build-arg", "BASE="+e.base, dir)
	if r.code != 3 || !strings.Contains(r.stderr, "exit 3") {
		t.Errorf("exit %d, want the failing step's 3:\n%s", r.code, r.stderr)
	}
	if !waitFor(10*time.Second, func() bool { return sleepers(slow) == 0 }) {
		t.Error("the slow step's process outlived the build")
	}
	if left := tmpLeft(t, e.root); len(left) != 0 {
		t.Errorf("temp dirs left in the store: %v", left)
	}
}

// SIGINT and SIGTERM stop a build cleanly: its step's processes die, its
// temp dirs go, exit status 130, and the store is consistent and usable.
func TestSignalStopsABuildCleanly(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	step := sleepArg(20_000_000)
	dir := e.context(map[string]string{
		"Dockerfile": "ARG BASE\nFROM $BASE\nRUN echo before > /before\nARG N\nRUN echo $N && sleep " + step + "\n",
	})
	for i, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		cmd := e.command(context.Background(), "build", "--progress=plain", "--build-arg", "BASE="+e.base, "--build-arg", "N="+strconv.Itoa(i), dir)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Up to the step is a pull and a RUN: on a machine busy with the
		// other tests that may take a while, which is not what this checks.
		started := func() bool { return sleepers(step) == 1 }
		if !waitFor(2*time.Minute, func() bool { return started() || exited(cmd.Process.Pid) }) || !started() {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("%v: the step never started:\n%s", sig, out.String())
		}
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		var xe *exec.ExitError
		if !errors.As(err, &xe) || xe.ExitCode() != 130 {
			t.Errorf("%v: %v, want exit 130:\n%s", sig, err, out.String())
		}
		if sleepers(step) != 0 {
			t.Errorf("%v: the step's process outlived the build", sig)
		}
		if left := tmpLeft(t, e.root); len(left) != 0 {
			t.Errorf("%v: temp dirs left in the store: %v", sig, left)
		}
	}
	if r := e.mustKiln("store", "check"); !strings.Contains(r.stdout, "store is consistent") {
		t.Errorf("store check:\n%s", r.stdout)
	}
	// The step done before the signal is cached.
	r := e.mustKiln("build", "--progress=plain", "--build-arg", "BASE="+e.base, e.context(map[string]string{
		"Dockerfile": "ARG BASE\nFROM $BASE\nRUN echo before > /before\n",
	}))
	wantStatus(t, r.stderr, map[string]string{"[2/2] RUN echo before": "CACHED"})
}
