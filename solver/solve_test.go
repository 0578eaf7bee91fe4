//go:build linux

package solver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/containerenv"
	"github.com/kiln-build/kiln/executor"
)

// The in-process tests of the scheduler: the real frontend, a fake store
// and a fake executor; nothing needs root or namespaces.

// A vertex reached by two paths (a diamond) runs once.
func TestEachVertexRunsOnce(t *testing.T) {
	h := newHarness(t)
	root := h.compile("FROM base AS common\nRUN echo common\n"+
		"FROM common AS a\nRUN echo a\nFROM common AS b\nRUN echo b\n"+
		"FROM base\nCOPY --from=a /x /a\nCOPY --from=b /x /b\n", nil)
	ex := &fakeExecutor{}
	if _, err := h.solve(t.Context(), ex, root, Options{}); err != nil {
		t.Fatal(err)
	}
	calls, _ := ex.snapshot()
	slices.Sort(calls)
	want := []string{"COPY /a", "COPY /b", "RUN echo a", "RUN echo b", "RUN echo common"}
	if !slices.Equal(calls, want) {
		t.Errorf("executed %q, want each once: %q", calls, want)
	}
}

// Two stages with the same step (same key, two vertices) execute it once.
func TestSharedKeyRunsOnce(t *testing.T) {
	h := newHarness(t)
	root := h.compile("FROM base AS one\nRUN echo same\nFROM base AS two\nRUN echo same\n"+
		"FROM base\nCOPY --from=one /x /1\nCOPY --from=two /x /2\n", nil)
	ex := &fakeExecutor{}
	var out strings.Builder
	p := NewProgress(&out)
	if _, err := h.solve(t.Context(), ex, root, Options{Progress: p}); err != nil {
		t.Fatal(err)
	}
	if n := ex.count("RUN echo same"); n != 1 {
		t.Errorf("the shared step ran %d times, want once", n)
	}
	if !strings.Contains(out.String(), "[one 2/2] RUN echo same") || !strings.Contains(out.String(), "[two 2/2] RUN echo same") {
		t.Errorf("both stages' steps should be shown:\n%s", out.String())
	}
}

// wide is four independent stages copied into a last one.
const wide = "FROM base AS s1\nRUN echo 1\nFROM base AS s2\nRUN echo 2\nFROM base AS s3\nRUN echo 3\nFROM base AS s4\nRUN echo 4\n" +
	"FROM base\nCOPY --from=s1 /x /1\nCOPY --from=s2 /x /2\nCOPY --from=s3 /x /3\nCOPY --from=s4 /x /4\n"

// --jobs 1 never runs two ops at once; --jobs 3 does run three (each RUN
// waits a while for others to join it, so that overlaps happen if allowed).
func TestJobsBoundsConcurrency(t *testing.T) {
	for _, jobs := range []int{1, 3} {
		t.Run(fmt.Sprint("jobs=", jobs), func(t *testing.T) {
			h := newHarness(t)
			ex := &fakeExecutor{}
			ex.hook = func(ctx context.Context, cmd string) error {
				deadline := time.Now().Add(100 * time.Millisecond)
				if jobs > 1 {
					deadline = time.Now().Add(10 * time.Second)
				}
				for time.Now().Before(deadline) {
					if _, m := ex.snapshot(); m >= jobs && jobs > 1 {
						return nil
					}
					time.Sleep(time.Millisecond)
				}
				return nil
			}
			if _, err := h.solve(t.Context(), ex, h.compile(wide, nil), Options{Jobs: jobs}); err != nil {
				t.Fatal(err)
			}
			calls, maxRun := ex.snapshot()
			if len(calls) != 8 {
				t.Errorf("executed %q, want 4 RUNs and 4 COPYs", calls)
			}
			if maxRun != jobs {
				t.Errorf("at most %d ops ran at once, want %d", maxRun, jobs)
			}
		})
	}
}

// A failing step cancels the steps running beside it, and Solve returns
// its error promptly, naming the step as the Dockerfile has it.
func TestFailingSiblingCancels(t *testing.T) {
	h := newHarness(t)
	root := h.compile("FROM base AS bad\nRUN exit 3\nFROM base AS slow\nRUN sleep forever\n"+
		"FROM base\nCOPY --from=bad /x /1\nCOPY --from=slow /x /2\n", nil)
	started := make(chan struct{})
	cancelled := make(chan struct{})
	ex := &fakeExecutor{hook: func(ctx context.Context, cmd string) error {
		switch cmd {
		case "sleep forever":
			close(started)
			select {
			case <-ctx.Done():
				close(cancelled)
				return ctx.Err()
			case <-time.After(time.Minute):
				return errors.New("never cancelled")
			}
		case "exit 3":
			select { // fail once the sibling runs
			case <-started:
			case <-time.After(10 * time.Second):
			}
			return &executor.ExitError{Code: 3}
		}
		return nil
	}}
	begin := time.Now()
	_, err := h.solve(t.Context(), ex, root, Options{Jobs: 4})
	if d := time.Since(begin); d > 10*time.Second {
		t.Errorf("Solve returned after %s", d)
	}
	var se *StepError
	if !errors.As(err, &se) || se.ExitCode != 3 {
		t.Fatalf("Solve = %v, want the failed step's error", err)
	}
	const want = `Dockerfile:2: RUN exit 3: process "/bin/sh -c exit 3" did not complete successfully: exit code: 3`
	if got := se.Error(); !strings.HasPrefix(got, want) {
		t.Errorf("error %q, want it to start with %q", got, want)
	}
	select {
	case <-cancelled:
	default:
		t.Error("the sibling step was not cancelled")
	}
	if n := ex.count("COPY /1") + ex.count("COPY /2"); n != 0 {
		t.Errorf("%d steps after the failure ran", n)
	}
}

// Cancelling the build stops a running step and returns at once.
func TestCancelReturnsPromptly(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ex := &fakeExecutor{hook: func(rctx context.Context, cmd string) error {
		cancel()
		<-rctx.Done()
		return rctx.Err()
	}}
	done := make(chan error, 1)
	go func() {
		_, err := h.solve(ctx, ex, h.compile("FROM base\nRUN sleep forever\nRUN echo after\n", nil), Options{})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Solve = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Solve did not return after its context was cancelled")
	}
	if n := ex.count("RUN echo after"); n != 0 {
		t.Error("a step after the cancelled one ran")
	}
}

// A second build on the same store executes nothing and gives the same
// layers.
func TestCachedStepsNotExecutedAgain(t *testing.T) {
	h := newHarness(t)
	df := "FROM base\nWORKDIR /src\nCOPY . .\nRUN --mount=type=cache,target=/root/.cache echo build\n"
	writeTree(t, h.context)
	first, err := h.solve(t.Context(), &fakeExecutor{}, h.compile(df, nil), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ex := &fakeExecutor{}
	var out strings.Builder
	second, err := h.solve(t.Context(), ex, h.compile(df, nil), Options{Progress: NewProgress(&out)})
	if err != nil {
		t.Fatal(err)
	}
	if calls, _ := ex.snapshot(); len(calls) != 0 {
		t.Errorf("the second build executed %q", calls)
	}
	if !slices.Equal(first, second) || len(first) != 4 {
		t.Errorf("layers %v, then %v: want the same 4", first, second)
	}
	if n := strings.Count(out.String(), " CACHED"); n != 4 {
		t.Errorf("%d steps cached, want 4 (FROM, WORKDIR, COPY, RUN):\n%s", n, out.String())
	}
}

// --no-cache-filter executes the steps of its stages only, by the stage
// name in any case, also in a one-stage Dockerfile (whose labels show no
// stage name).
func TestNoCacheFilterForcesOnlyItsStage(t *testing.T) {
	for _, tc := range []struct {
		name, df string
		filter   []string
		want     []string
	}{
		{"later stage", "FROM base AS deps\nRUN echo deps\nFROM deps AS app\nRUN echo app\n", []string{"APP"}, []string{"RUN echo app"}},
		{"base stage", "FROM base AS deps\nRUN echo deps\nFROM deps AS app\nRUN echo app\n", []string{"deps"}, []string{"RUN echo deps"}},
		{"unnamed stage by index", "FROM base\nRUN echo zero\nFROM base\nRUN echo one\n", []string{"stage-1"}, []string{"RUN echo one"}},
		{"one named stage", "FROM base AS only\nRUN echo only\n", []string{"Only"}, []string{"RUN echo only"}},
		{"another stage's name", "FROM base AS only\nRUN echo only\n", []string{"other"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if _, err := h.solve(t.Context(), &fakeExecutor{}, h.compile(tc.df, nil), Options{}); err != nil {
				t.Fatal(err)
			}
			ex := &fakeExecutor{}
			if _, err := h.solve(t.Context(), ex, h.compile(tc.df, nil), Options{NoCacheFilter: tc.filter}); err != nil {
				t.Fatal(err)
			}
			if calls, _ := ex.snapshot(); !slices.Equal(calls, tc.want) {
				t.Errorf("executed %q, want %q", calls, tc.want)
			}
		})
	}
}

// --explain-cache names what changed, by step slot (stage and step index),
// across builds recorded in the store.
func TestExplainAcrossBuilds(t *testing.T) {
	h := newHarness(t)
	build := func(df string, args map[string]string) string {
		t.Helper()
		var out strings.Builder
		if _, err := h.solve(t.Context(), &fakeExecutor{}, h.compile(df, args), Options{History: "t", Explain: true, Progress: NewProgress(&out)}); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	df := "FROM base AS app\nARG V=1\nRUN echo hi\n" // V is in the env, not the text
	if out := build(df, nil); !strings.Contains(out, "cache miss: no earlier build of this step") {
		t.Errorf("first build:\n%s", out)
	}
	if out := build(df, map[string]string{"V": "2"}); !strings.Contains(out, `cache miss: env/arg V changed: "1" → "2"`) {
		t.Errorf("after a build arg change:\n%s", out)
	}
	// A step added after it keeps its slot, and its text is compared, not
	// its label ("[2/2]" is now "[2/3]").
	out := build(df+"RUN echo more\n", map[string]string{"V": "3"})
	if !strings.Contains(out, `cache miss: env/arg V changed: "2" → "3"`) || strings.Contains(out, "instruction changed") {
		t.Errorf("after adding a step:\n%s", out)
	}
	out = build("FROM base AS app\nARG V=1\nRUN echo hi!\nRUN echo more\n", map[string]string{"V": "3"})
	if !strings.Contains(out, `cache miss: instruction changed: "RUN echo hi" → "RUN echo hi!"`) {
		t.Errorf("after changing the instruction:\n%s", out)
	}
}

// An older record (another kiln's, its slots and keys of another version)
// explains nothing.
func TestExplainOlderRecord(t *testing.T) {
	h := newHarness(t)
	if err := (fakeHistory{h.store}).WriteRecord(t.Context(), "t", "x", map[string]any{"steps": map[string]any{"[2/2]": map[string]any{"name": "[2/2] RUN echo 1"}}}); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if _, err := h.solve(t.Context(), &fakeExecutor{}, h.compile("FROM base\nRUN echo 1\n", nil), Options{History: "t", Explain: true, Progress: NewProgress(&out)}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "cache miss: the last build of this target was by an older kiln") {
		t.Errorf("output:\n%s", out.String())
	}
}

// A COPY from the context that misses the cache is told which files it can
// take from its last run (same slot, same op, same base).
func TestCopyReuseBySlot(t *testing.T) {
	h := newHarness(t)
	writeTree(t, h.context)
	df := "FROM base AS app\nCOPY . /ctx/\n"
	if _, err := h.solve(t.Context(), &fakeExecutor{}, h.compile(df, nil), Options{History: "t"}); err != nil {
		t.Fatal(err)
	}
	writeFile(t, h.context, "sub/b", "changed")
	ex := &fakeExecutor{}
	if _, err := h.solve(t.Context(), ex, h.compile(df, nil), Options{History: "t"}); err != nil {
		t.Fatal(err)
	}
	if len(ex.copies) != 1 || ex.copies[0].Options.Reuse == nil {
		t.Fatalf("the COPY was given nothing to reuse: %+v", ex.copies)
	}
	r := ex.copies[0].Options.Reuse
	if !r.Files["a"] || !r.Files["sub/c"] || r.Files["sub/b"] {
		t.Errorf("reusable files %v: want a and sub/c, not the changed sub/b", r.Files)
	}
}

// A RUN step's process gets its env in dag.RunEnv's order, whatever part
// of the build each variable comes from.
func TestRunStepEnv(t *testing.T) {
	h := newHarness(t)
	t.Setenv("KILN_TEST_TOKEN", "t0ken")
	df := "FROM base\nENV A=1\nARG B=2\nRUN --mount=type=ssh --mount=type=secret,id=tok,env=TOKEN env\n"
	ex := &fakeExecutor{}
	o := Options{Secrets: map[string]Secret{"tok": {Env: "KILN_TEST_TOKEN"}}}
	if _, err := h.solve(t.Context(), ex, h.compile(df, map[string]string{"HTTP_PROXY": "http://proxy"}), o); err != nil {
		t.Fatal(err)
	}
	want := []string{"PATH=" + containerenv.DefaultPath, "A=1", "B=2", "SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0", "HTTP_PROXY=http://proxy", "TOKEN=t0ken"}
	if got := ex.envs["env"]; !slices.Equal(got, want) {
		t.Errorf("env %q, want %q", got, want)
	}
}

// A step that fails in a build whose output goes nowhere still reports
// its output's last lines.
func TestStepErrorTail(t *testing.T) {
	h := newHarness(t)
	ex := &fakeExecutor{}
	ex.hook = func(ctx context.Context, cmd string) error { return &executor.ExitError{Code: 1} }
	_, err := NewWith(h.store.roles(), writingExecutor{ex}, Options{}).Solve(t.Context(), h.compile("FROM base\nRUN false\n", nil))
	var se *StepError
	if !errors.As(err, &se) || !slices.Equal(se.Tail, []string{"some output", "last line"}) {
		t.Fatalf("Solve = %#v, want a StepError with the output's tail", err)
	}
}

// writingExecutor prints two lines before running.
type writingExecutor struct{ *fakeExecutor }

func (w writingExecutor) Run(ctx context.Context, root executor.Rootfs, p executor.Process, o executor.Options) error {
	io.WriteString(p.Stdout, "some output\n")
	io.WriteString(p.Stderr, "last line") // no newline: flushed at the end
	return w.fakeExecutor.Run(ctx, root, p, o)
}
