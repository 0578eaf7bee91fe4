package main

import (
	"bytes"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A build SIGKILLed at any moment leaves a store the next build uses
// without repair, and that build's image is right.
func TestSIGKILLAtRandomPointsLeavesAUsableStore(t *testing.T) {
	e := newEnv(t)
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
		args := []string{"--root", e.root, "build", "--progress=plain", "-t", "crash", "--build-arg", "BASE=" + e.base}
		if i%3 == 0 {
			args = append(args, "--no-cache") // so later rounds still have work to interrupt
		}
		cmd := exec.Command(os.Args[0], append(args, dir)...)
		cmd.Env = append(os.Environ(), "KILN_TEST_MAIN=1")
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
}
