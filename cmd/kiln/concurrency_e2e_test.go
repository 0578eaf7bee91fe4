package main

import (
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Two kiln processes building on one store execute a shared step once.
func TestConcurrentBuildsShareAStep(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := e.context(map[string]string{
		"Dockerfile": "ARG BASE\nFROM $BASE\nRUN sleep 1 && date +%s%N > /stamp\n",
	})
	var wg sync.WaitGroup
	results := make([]result, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = e.kiln("", "build", "--progress=plain", "-t", "shared", "--build-arg", "BASE="+e.base, dir)
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.code != 0 {
			t.Fatalf("build %d: exit %d\n%s", i, r.code, r.stderr)
		}
	}
	doneRun := regexp.MustCompile(`(?m)^#(\d+) \[2/2\] RUN sleep 1`)
	executed := 0
	for _, r := range results {
		m := doneRun.FindStringSubmatch(r.stderr)
		if m == nil {
			t.Fatalf("no RUN step in output:\n%s", r.stderr)
		}
		if strings.Contains(r.stderr, "#"+m[1]+" DONE") {
			executed++
		}
	}
	if executed != 1 {
		t.Errorf("the shared RUN ran %d times, want once:\n%s\n----\n%s", executed, results[0].stderr, results[1].stderr)
	}
}

// Within one build, the same step reached through two stages runs once.
func TestSameStepInTwoStagesRunsOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := e.context(map[string]string{
		"Dockerfile": `ARG BASE
FROM $BASE AS a
RUN echo same > /x
FROM $BASE AS b
RUN echo same > /x
FROM $BASE
COPY --from=a /x /a
COPY --from=b /x /b
`,
	})
	r := e.mustKiln("build", "--progress=plain", "-t", "dedupe", "--build-arg", "BASE="+e.base, dir)
	if n := strings.Count(r.stderr, "RUN echo same > /x\n"); n != 2 {
		t.Fatalf("expected two RUN vertices in the output, got %d:\n%s", n, r.stderr)
	}
	step := regexp.MustCompile(`(?m)^#(\d+) \[\w+ 2/2\] RUN echo same`)
	done := 0
	for _, m := range step.FindAllStringSubmatch(r.stderr, -1) {
		if strings.Contains(r.stderr, "#"+m[1]+" DONE") {
			done++
		}
	}
	if done != 1 {
		t.Errorf("identical step executed %d times, want 1:\n%s", done, r.stderr)
	}
	fs := files(t, e.image("dedupe"))
	if fs["/a"].data != "same\n" || fs["/b"].data != "same\n" {
		t.Errorf("/a %q /b %q", fs["/a"].data, fs["/b"].data)
	}
}

// --jobs N bounds how many steps run at once: two independent one-second
// RUNs overlap with --jobs 2 and do not with --jobs 1. Judged from the
// times the steps themselves write, not from wall time.
func TestJobsLimitParallelSteps(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := e.context(map[string]string{
		"Dockerfile": `ARG BASE
FROM $BASE AS a
RUN echo a && cut -d' ' -f1 /proc/uptime > /start && sleep 1 && cut -d' ' -f1 /proc/uptime > /end
FROM $BASE AS b
RUN echo b && cut -d' ' -f1 /proc/uptime > /start && sleep 1 && cut -d' ' -f1 /proc/uptime > /end
FROM $BASE
COPY --from=a /start /a.start
COPY --from=a /end /a.end
COPY --from=b /start /b.start
COPY --from=b /end /b.end
`,
	})
	for _, tc := range []struct {
		jobs    string
		overlap bool
	}{{"2", true}, {"1", false}} {
		e.mustKiln("build", "--no-cache", "--jobs", tc.jobs, "-t", "jobs", "--build-arg", "BASE="+e.base, dir)
		fs := files(t, e.image("jobs"))
		ns := func(p string) float64 { // seconds since boot, to 10 ms
			n, err := strconv.ParseFloat(strings.TrimSpace(fs[p].data), 64)
			if err != nil {
				t.Fatalf("%s: %q", p, fs[p].data)
			}
			return n
		}
		as, ae, bs, be := ns("/a.start"), ns("/a.end"), ns("/b.start"), ns("/b.end")
		if overlap := as < be && bs < ae; overlap != tc.overlap {
			t.Errorf("--jobs %s: a ran %.2f..%.2f, b ran %.2f..%.2f: overlap %v, want %v", tc.jobs, as, ae, bs, be, overlap, tc.overlap)
		}
	}
}
