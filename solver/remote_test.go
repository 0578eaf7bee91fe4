//go:build linux

package solver

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/store"
)

// storeRemote serves another fake store's records as a remote cache, and
// counts what is fetched.
type storeRemote struct {
	from *fakeStore
	fail error // every Fetch fails with it

	mu      sync.Mutex
	fetched []digest.Digest
}

func (r *storeRemote) Lookup(ctx context.Context, key digest.Digest) (RemoteEntry, bool) {
	layers, err := fakeRecords{r.from}.Lookup(ctx, key)
	if err != nil {
		return RemoteEntry{}, false
	}
	return RemoteEntry{Key: key, Handle: layers}, true
}

func (r *storeRemote) LookupSlot(ctx context.Context, slot string) (RemoteEntry, bool) {
	return RemoteEntry{}, false
}

func (r *storeRemote) Fetch(ctx context.Context, e RemoteEntry) ([]store.Layer, error) {
	r.mu.Lock()
	r.fetched = append(r.fetched, e.Key)
	r.mu.Unlock()
	if r.fail != nil {
		return nil, r.fail
	}
	return e.Handle.([]store.Layer), nil
}

func (r *storeRemote) ImportMount(ctx context.Context, id, dir string) (bool, error) {
	return false, nil
}

func (r *storeRemote) Sources() []string { return []string{"test"} }

const twoStages = "FROM base AS deps\nRUN echo deps\nFROM base\nCOPY --from=deps /x /deps\nCOPY app.txt /app.txt\nRUN echo app\n"

// Machine B, an empty store with the same sources in another directory,
// imports A's results: no step runs, only the final step's entry is
// fetched, and the layers are A's.
func TestRemoteHitSkipsInputs(t *testing.T) {
	a, b := newHarness(t), newHarness(t)
	for _, h := range []*harness{a, b} {
		writeFile(t, h.context, "app.txt", "v1")
	}
	want, err := a.solve(t.Context(), &fakeExecutor{}, a.compile(twoStages, nil), Options{})
	if err != nil {
		t.Fatal(err)
	}
	remote := &storeRemote{from: a.store}
	ex := &fakeExecutor{}
	got, err := b.solve(t.Context(), ex, b.compile(twoStages, nil), Options{Remote: remote})
	if err != nil {
		t.Fatal(err)
	}
	if calls, _ := ex.snapshot(); len(calls) != 0 {
		t.Errorf("machine B executed %q", calls)
	}
	if len(remote.fetched) != 1 {
		t.Errorf("fetched %d entries, want only the final step's", len(remote.fetched))
	}
	if !slices.Equal(got, want) {
		t.Errorf("layers %v, want A's %v", got, want)
	}
	// Now in B's store: a second build is a local hit, nothing fetched.
	if _, err := b.solve(t.Context(), ex, b.compile(twoStages, nil), Options{Remote: remote}); err != nil || len(remote.fetched) != 1 {
		t.Errorf("second build: %v, %d fetches", err, len(remote.fetched))
	}
}

// An entry that cannot be fetched is a miss: the step's inputs are solved
// and it runs, as without a remote cache.
func TestRemoteFetchFailureRunsTheStep(t *testing.T) {
	a, b := newHarness(t), newHarness(t)
	for _, h := range []*harness{a, b} {
		writeFile(t, h.context, "app.txt", "v1")
	}
	if _, err := a.solve(t.Context(), &fakeExecutor{}, a.compile(twoStages, nil), Options{}); err != nil {
		t.Fatal(err)
	}
	remote := &storeRemote{from: a.store, fail: errors.New("registry went away")}
	ex := &fakeExecutor{}
	if _, err := b.solve(t.Context(), ex, b.compile(twoStages, nil), Options{Remote: remote}); err != nil {
		t.Fatal(err)
	}
	calls, _ := ex.snapshot()
	slices.Sort(calls)
	if want := []string{"COPY /app.txt", "COPY /deps", "RUN echo app", "RUN echo deps"}; !slices.Equal(calls, want) {
		t.Errorf("executed %q, want %q", calls, want)
	}
}

// A changed context file misses from that step on; the steps before it
// and the other stage are still hits.
func TestRemotePartialHit(t *testing.T) {
	a, b := newHarness(t), newHarness(t)
	writeFile(t, a.context, "app.txt", "v1")
	writeFile(t, b.context, "app.txt", "v2")
	if _, err := a.solve(t.Context(), &fakeExecutor{}, a.compile(twoStages, nil), Options{}); err != nil {
		t.Fatal(err)
	}
	remote := &storeRemote{from: a.store}
	ex := &fakeExecutor{}
	if _, err := b.solve(t.Context(), ex, b.compile(twoStages, nil), Options{Remote: remote}); err != nil {
		t.Fatal(err)
	}
	calls, _ := ex.snapshot()
	slices.Sort(calls)
	if want := []string{"COPY /app.txt", "RUN echo app"}; !slices.Equal(calls, want) {
		t.Errorf("executed %q, want %q", calls, want)
	}
}

// CacheResults offer every step built, the final stage's marked: what
// mode=min and mode=max export.
func TestCacheResultsMarkFinalSteps(t *testing.T) {
	h := newHarness(t)
	writeFile(t, h.context, "app.txt", "v1")
	root := h.compile(twoStages, nil)
	s := NewWith(h.store.roles(), &fakeExecutor{}, Options{History: "test"})
	if _, err := s.Solve(t.Context(), root); err != nil {
		t.Fatal(err)
	}
	final := map[string]bool{}
	for _, r := range s.CacheResults(root) {
		final[r.Slot] = r.Final
		if len(r.Step) == 0 {
			t.Errorf("%s: no step record for explain", r.Slot)
		}
	}
	want := map[string]bool{"[deps 2]": false, "[stage-1 2]": true, "[stage-1 3]": true, "[stage-1 4]": true}
	if len(final) != len(want) {
		t.Errorf("results %v, want %v", final, want)
	}
	for sl, f := range want {
		if got, ok := final[sl]; !ok || got != f {
			t.Errorf("%s: final=%v (present %v), want %v", sl, got, ok, f)
		}
	}
}

// A miss is explained against the step the remote cache last exported in
// the same slot.
func TestExplainAgainstRemoteEntry(t *testing.T) {
	a, b := newHarness(t), newHarness(t)
	writeFile(t, a.context, "app.txt", "v1")
	writeFile(t, b.context, "app.txt", "v2")
	sa := NewWith(a.store.roles(), &fakeExecutor{}, Options{History: "a"})
	ra := a.compile(twoStages, nil)
	if _, err := sa.Solve(t.Context(), ra); err != nil {
		t.Fatal(err)
	}
	slots := &slotRemote{storeRemote: storeRemote{from: a.store}, steps: map[string][]byte{}}
	for _, r := range sa.CacheResults(ra) {
		slots.steps[r.Slot] = r.Step
	}
	var out strings.Builder
	_, err := NewWith(b.store.roles(), &fakeExecutor{}, Options{History: "b", Explain: true, Remote: slots, Progress: NewProgress(&out)}).
		Solve(t.Context(), b.compile(twoStages, nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"the last export of step [stage-1 3] differs: context files modified: app.txt",
		"the last export of step [stage-1 4] differs: input changed: [stage-1 3/4] COPY app.txt /app.txt",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// slotRemote is a storeRemote that also knows each slot's last step.
type slotRemote struct {
	storeRemote
	steps map[string][]byte
}

func (r *slotRemote) LookupSlot(ctx context.Context, slot string) (RemoteEntry, bool) {
	st, ok := r.steps[slot]
	return RemoteEntry{Step: st}, ok
}
