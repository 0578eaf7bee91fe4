package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The differential check builds every conformance case (testdata/e2e) and
// every dedicated case (testdata/differential) with kiln and with Debian's
// buildah, and compares the image configs and the flattened file trees. See
// docs/differential.md. Where the two differ, the case's entry in
// differentialCases says who is wrong, judged by BuildKit's documented
// behaviour; any other difference fails the test.

// buildahTable is the buildah release the known differences were recorded
// against: with another one a known difference that does not show up is only
// logged (the newer buildah may have fixed it), not an error.
const buildahTable = "1.28."

type whoIsWrong string

const (
	buildahDiffers whoIsWrong = "buildah" // buildah departs from BuildKit's behaviour
	kilnBug        whoIsWrong = "kiln"    // kiln departs from BuildKit's behaviour: to fix
)

// known is an expected difference: key is a config field ("config.User"),
// "layers", "build" (one builds, the other fails) or an image path ("/x").
type known struct {
	key string
	who whoIsWrong
	why string
}

type diffCase struct {
	unsupported string // buildah 1.28 lacks a feature the case needs: it must fail to build
	known       []known
}

// Reasons shared by several cases.
const (
	workdirLayer = "buildah 1.28 commits no layer for WORKDIR; BuildKit commits the mkdir of every WORKDIR but / as one"
	workdirDir   = "buildah 1.28 does not create the WORKDIR directory until a later RUN or COPY needs it; " +
		"BuildKit creates it at WORKDIR (mkdir -p, 0755, owned by the USER of that moment)"
)

// argOverEnv: BuildKit's ARG after an ENV of the same name.
const argOverEnv = "BuildKit gives RUN and variable expansion the value of an ARG declared after an ENV of the same name " +
	"(convert.go dispatchArg: state.AddEnv; checked with buildctl); buildah 1.28 keeps the ENV's"

// chmodParents: BuildKit's directories made for a COPY --chmod.
const chmodParents = "BuildKit creates the missing destination and parents of COPY --chmod with that mode " +
	"(fsutil#228, moby#49851); buildah 1.28 with 0755"

// each is the same difference at several keys.
func each(who whoIsWrong, why string, keys ...string) []known {
	var out []known
	for _, k := range keys {
		out = append(out, known{k, who, why})
	}
	return out
}

// differentialCases holds only the cases that are not plainly equal.
var differentialCases = map[string]diffCase{
	"e2e/001-from-scratch": {known: []known{
		{"config.WorkingDir", buildahDiffers, `BuildKit's scratch config has WorkingDir "/" (dockerfile2llb emptyImage); buildah leaves it empty`}}},
	"e2e/003-stage-name-any-case": {known: []known{
		{"build", buildahDiffers, "stage names are case-insensitive in BuildKit (AS Builder = --from=builder); buildah 1.28 finds no stage"}}},
	"e2e/025-subst-default":        {unsupported: "${VAR-default} (without the colon)"},
	"e2e/026-subst-empty-vs-unset": {unsupported: "${VAR-default} (without the colon)"},
	"e2e/027-subst-alternative":    {unsupported: "${VAR+alt} (without the colon)"},
	"e2e/028-subst-prefix-suffix":  {unsupported: "${VAR#pat} ${VAR##pat} ${VAR%pat} ${VAR%%pat}"},
	"e2e/029-subst-replace":        {unsupported: "${VAR/pat/repl} ${VAR//pat/repl}"},
	"e2e/032-subst-in-workdir": {known: []known{
		{"layers", buildahDiffers, workdirLayer},
		{"/opt", buildahDiffers, workdirDir},
		{"/opt/app", buildahDiffers, workdirDir},
		{"/opt/app/sub", buildahDiffers, workdirDir}}},
	"e2e/036-workdir-relative-chain": {known: []known{{"layers", buildahDiffers, workdirLayer}}},
	"e2e/037-workdir-owned-by-user": {known: []known{
		{"layers", buildahDiffers, workdirLayer},
		{"/data", buildahDiffers, workdirDir}}},
	"e2e/055-copy-chmod-symbolic": {unsupported: "symbolic COPY --chmod (dockerfile 1.14)"},
	"e2e/056-copy-relative-dest":  {known: []known{{"layers", buildahDiffers, workdirLayer}}},
	"e2e/053-copy-chown-unknown-user": {known: []known{{"build", buildahDiffers,
		"BuildKit resolves a --chown name missing from /etc/passwd to 0 (llbsolver/ops/user_linux.go readUser); buildah 1.28 fails"}}},
	"e2e/065-copy-heredoc":        {unsupported: "heredocs"},
	"e2e/067-add-unpack-false":    {unsupported: "ADD --unpack (dockerfile 1.17)"},
	"e2e/079-run-workdir-is-cwd":  {known: []known{{"layers", buildahDiffers, workdirLayer}}},
	"e2e/081-run-network-none":    {unsupported: "RUN --network"},
	"e2e/082-run-heredoc":         {unsupported: "heredocs"},
	"e2e/083-run-heredoc-shebang": {unsupported: "heredocs"},
	"e2e/087-run-mount-cache": {known: []known{{"/var/cache", buildahDiffers,
		"BuildKit removes the empty mount points of RUN --mount and the parents it made for them (executor MountStubsCleaner, recursive); " +
			"buildah 1.28 leaves the created parent /var/cache"}}},
	"e2e/109-layers-and-history": {known: []known{
		{"layers", buildahDiffers, workdirLayer},
		{"/w", buildahDiffers, workdirDir}}},
	"e2e/205-copy-parents":               {unsupported: "COPY --parents (dockerfile 1.20)"},
	"e2e/207-copy-exclude-per-source":    {unsupported: "COPY --exclude (dockerfile 1.19)"},
	"e2e/213-run-sandbox-hostname-arg":   {unsupported: "BUILDKIT_SANDBOX_HOSTNAME (a BuildKit build arg)"},
	"e2e/215-arg-after-env-wins-for-run": {known: []known{{"/v4", buildahDiffers, argOverEnv}}},
	"e2e/216-arg-env-expansion-order":    {known: each(buildahDiffers, argOverEnv, "/out", "config.Env", "config.Labels")},
	"e2e/217-run-env-order": {known: append(each(buildahDiffers, argOverEnv+"; and RUN's environment is ordered by when each name was last set (llb EnvList), "+
		"a child stage keeping its base stage's ARGs (/23 is $B$C)", "/env1", "/env2", "config.WorkingDir", "/23"),
		known{"config.Env", buildahDiffers, "BuildKit replaces a redefined variable in place (ENV PATH keeps its position); buildah 1.28 moves it to the end"},
		known{"layers", buildahDiffers, workdirLayer})},
	"e2e/212-copy-chmod-created-parents": {known: each(buildahDiffers, chmodParents, "/new", "/new/path")},
	"e2e/113-err-bad-substitution": {known: []known{
		{"build", buildahDiffers, "BuildKit rejects ${} as a bad substitution; buildah 1.28 accepts it"}}},

	"differential/01-copy-tree": {known: []known{
		{"/chmodded", buildahDiffers, chmodParents},
		{"/new", buildahDiffers, chmodParents},
		{"/new/parent", buildahDiffers, chmodParents}}},
	"differential/04-metadata": {known: []known{
		{"config.Env", buildahDiffers, "BuildKit replaces a redefined variable in place (ENV PATH keeps its position); buildah 1.28 moves it to the end"},
		{"config.Cmd", buildahDiffers, "BuildKit wraps a shell-form CMD in the SHELL of the stage; buildah 1.28 always uses /bin/sh -c"},
		{"config.ExposedPorts", buildahDiffers, "BuildKit expands EXPOSE 9000-9001/udp into one port each (convert_expose.go); buildah 1.28 stores the range as one key"},
		{"layers", buildahDiffers, workdirLayer},
		{"/home/user/w", buildahDiffers, workdirDir}}},
	"differential/05-volume-then-run": {known: []known{
		{"/data/f", buildahDiffers, "BuildKit keeps what a RUN writes under a VOLUME path; buildah 1.28 discards it, as the legacy builder did"},
		{"/data/g", buildahDiffers, "BuildKit keeps what a RUN writes under a VOLUME path; buildah 1.28 discards it, as the legacy builder did"}}},
	"differential/06-add-local-tar": {known: each(buildahDiffers,
		"BuildKit's ADD --chown owns every unpacked entry (go-archive Untar ChownOpts) and the directories the archive only implies "+
			"by root (0755); buildah 1.28 keeps the archive's owners and gives the implied ones the --chown owner",
		"/owned/other", "/owned/other/implicit", "/owned/other/implicit/f", "/owned/top", "/owned/top/link", "/owned/top/shared", "/owned/top/x")},
	"differential/07-user-workdir-copy": {known: []known{
		{"layers", buildahDiffers, workdirLayer},
		{"/home/user/app", buildahDiffers, workdirDir + "; buildah creates it at the COPY, as root"}}},
	"differential/09-stage-inherits-config": {known: []known{
		{"layers", buildahDiffers, workdirLayer},
		{"/srv", buildahDiffers, workdirDir + "; buildah creates it at the child's RUN, as USER user"}}},
	"differential/10-args-in-instructions": {known: []known{
		{"layers", buildahDiffers, workdirLayer},
		{"/opt/x/vol", buildahDiffers, "VOLUME creates no directory in BuildKit (config only); buildah 1.28 creates it at the next RUN"}}},
	"e2e/119-arg-targetstage": {known: []known{{"/ts", buildahDiffers,
		"BuildKit sets the automatic global ARG TARGETSTAGE to the --target stage (dockerfile2llb/platform.go defaultArgs); buildah 1.28 has no TARGETSTAGE"}}},
	"e2e/121-arg-inherited-by-child-stage": {known: []known{{"/v", buildahDiffers,
		"BuildKit carries a stage's ARGs into the stages built FROM it (convert.go dispatchState.init appends base.buildArgs and keeps its env); buildah 1.28 drops them"}}},
	"e2e/124-expose-range-and-proto-case": {known: []known{{"config.ExposedPorts", buildahDiffers,
		"BuildKit expands EXPOSE 8000-8002/udp into one port each and lower-cases 53/UDP (convert_expose.go parsePort); buildah 1.28 keeps both as written"}}},
	"e2e/125-shell-form-cmd-entrypoint-use-shell": {known: each(buildahDiffers,
		"BuildKit wraps a shell-form CMD and ENTRYPOINT in the SHELL of the stage (convert.go withShell); buildah 1.28 always uses /bin/sh -c",
		"config.Cmd", "config.Entrypoint")},
	"e2e/134-copy-exclude":            {unsupported: "COPY --exclude (dockerfile 1.19)"},
	"e2e/135-copy-chmod-symbolic-dir": {unsupported: "symbolic COPY --chmod (dockerfile 1.14)"},
	"e2e/136-copy-exclude-doublestar": {unsupported: "COPY --exclude (dockerfile 1.19)"},
	"e2e/137-copy-link":               {unsupported: "COPY --link (dockerfile 1.4)"},
	"e2e/139-copy-chmod-dir-contents": {known: []known{{"/cd", buildahDiffers,
		"BuildKit creates the missing destination of COPY --chmod with that mode (fsutil copy MkdirAll with ci.Mode); buildah 1.28 with 0755"}}},
	"e2e/145-add-exclude": {unsupported: "ADD --exclude (dockerfile 1.19)"},
	"e2e/146-add-link":    {unsupported: "ADD --link (dockerfile 1.4)"},
	"e2e/149-escape-directive-backtick": {known: []known{{"config.Env", buildahDiffers,
		"with # escape=` a backslash is a plain character in BuildKit (shell.NewLex with the escape token); buildah 1.28 still removes it from the ENV value (C:datadir)"}}},
	"e2e/152-heredoc-copy-tabs-and-chomp":   {unsupported: "heredocs"},
	"e2e/153-heredoc-run-chomp-forms":       {unsupported: "heredocs"},
	"e2e/154-heredoc-quotes-and-expansion":  {unsupported: "heredocs"},
	"e2e/155-heredoc-run-two-heredocs":      {unsupported: "heredocs"},
	"e2e/156-heredoc-run-pipes-and-fds":     {unsupported: "heredocs"},
	"e2e/157-heredoc-copy-several":          {unsupported: "heredocs"},
	"e2e/158-heredoc-add":                   {unsupported: "heredocs"},
	"e2e/161-run-mount-cache-sharing-modes": {unsupported: "RUN --mount=type=cache,sharing=private"},
	"e2e/163-run-mount-relative-target":     {unsupported: "a relative RUN --mount target (BuildKit joins it to the WORKDIR, convert_runmount.go)"},
	"e2e/165-run-mount-bind-rw-discarded": {known: []known{{"/s2", buildahDiffers,
		"BuildKit throws away what a RUN writes into a rw bind mount (reference: \"Written data will be discarded\"); buildah 1.28 writes into the source stage, and the next mount of it sees the change"}}},
	"e2e/166-run-mount-tmpfs-size": {unsupported: "RUN --mount=type=tmpfs,size="},
	"e2e/167-run-mount-secret-file-options": {known: []known{{"/etc/app", buildahDiffers,
		"BuildKit removes the empty mount points of RUN --mount and the parents it made for them (executor MountStubsCleaner, recursive); buildah 1.28 leaves the created parent /etc/app"}}},
	"e2e/168-run-mount-secret-env":              {unsupported: "RUN --mount=type=secret,env= (dockerfile 1.10)"},
	"e2e/171-run-network-default":               {unsupported: "RUN --network"},
	"e2e/172-run-security-sandbox":              {unsupported: "RUN --security"},
	"e2e/175-subst-required-no-colon-set-empty": {unsupported: "${VAR?message} (without the colon)"},
	"e2e/176-workdir-relative-first-warns":      {known: []known{{"layers", buildahDiffers, workdirLayer}}},
	"e2e/181-err-healthcheck-interval-too-short": {known: []known{{"build", buildahDiffers,
		"BuildKit rejects a HEALTHCHECK duration below 1ms (instructions/parse.go parseOptInterval); buildah 1.28 accepts --interval=1us"}}},
	"e2e/188-target-case-insensitive": {known: []known{{"build", buildahDiffers,
		"BuildKit finds the --target stage case-insensitively (convert.go findStateByName lower-cases); buildah 1.28 finds no stage BUILD"}}},
	"e2e/189-onbuild-copy-from-stage": {known: []known{{"build", buildahDiffers,
		"BuildKit resolves ONBUILD COPY --from against the stages of the Dockerfile the trigger runs in (dockerfile 1.11, initOnBuildTriggers); buildah 1.28 finds no stage helper"}}},
	"e2e/195-run-mount-secret-source-names-it": {unsupported: "RUN --mount=type=secret,source= (the secret named by source)"},
	"e2e/203-run-etc-hosts-provided": {known: []known{{"/s", buildahDiffers,
		"BuildKit gives RUN a generated /etc/hosts, \"127.0.0.1 localhost buildkitsandbox\" and the ::1 line (executor/oci/hosts.go); buildah 1.28 writes its own without them"}}},
	"e2e/204-run-sandbox-hostname": {known: []known{{"/name", buildahDiffers,
		"BuildKit's RUN host name is buildkitsandbox (executor/oci/hosts.go defaultHostname); buildah 1.28 uses the container ID"}}},
	"e2e/198-run-mount-cache-relative-target-id": {unsupported: "a relative RUN --mount target (buildah 1.28: \"invalid container path, must be an absolute path\")"},
	"e2e/199-run-mount-secret-id-with-slash":     {unsupported: "a secret id holding a slash (buildah 1.28 panics: index out of range)"},
}

// buildahStubs are files and directories buildah 1.28 creates in the rootfs
// as mount points for what it bind-mounts into every RUN container, and then
// commits into the layer. BuildKit removes such stubs after the step
// (executor/stubs.go, MountStubsCleaner), kiln does not leave them. They are
// ignored only in that exact form: present in buildah's image alone, empty.
var buildahStubs = map[string]byte{
	"/etc/hostname":    '0',
	"/etc/hosts":       '0',
	"/etc/resolv.conf": '0',
	"/run":             '5',
}

// builders is how many cases build at once (kiln, then buildah), ahead of
// the subtests that compare them: buildah spends much of a build waiting
// (runc, commits).
const builders = 4

// The builds of the cases are most of this test's time, the longest of the
// package: when every case is compared (-run names no subtest), they all
// start before t.Parallel, so they run beside all the other tests instead
// of waiting for this one's turn among them. (Only the test SIGKILLing
// builds at random points runs alone, and it comes first: see
// crash_e2e_test.go. A test kept serial must sort before this file.)
func TestDifferentialBuildah(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: kiln and buildah run build steps in new namespaces")
	}
	if _, err := exec.LookPath("buildah"); err != nil {
		t.Skip("no buildah (apt-get install buildah): " + err.Error())
	}
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("no runc for buildah's RUN steps (apt-get install runc): " + err.Error())
	}
	e, cases := caseEnv(t) // kiln's builds are TestConformance's
	bh := newBuildah(t, e.base)
	t.Logf("buildah %s, storage driver %s", bh.version, bh.driver)

	var runs []*caseRun
	for _, g := range []string{"../../testdata/e2e/*", "../../testdata/differential/*"} {
		m, err := filepath.Glob(filepath.Join(g, "Dockerfile"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range m {
			runs = append(runs, newCaseRun(t, e, filepath.Dir(f)))
		}
	}
	if len(runs) == 0 {
		t.Fatal("no cases")
	}
	bs := startBuilds(e, cases, bh, builders)
	// Registered after the temp dirs' cleanups, so it runs before them:
	// nothing may still build when they go.
	t.Cleanup(bs.close)
	if everySubtest() {
		bs.request(runs...)
	}
	t.Parallel()

	trees := &layerCache{layers: map[v1.Hash][]layerEntry{}}
	var results []string
	if out := os.Getenv("KILN_DIFFERENTIAL_REPORT"); out != "" {
		defer func() { writeReport(t, out, bh.version, results) }()
	}
	for i, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			bs.request(runs[i:min(i+builders, len(runs))]...)
			c := differentialCases[r.name]
			if c.unsupported != "" {
				// Still built: buildah must fail, or the entry is stale.
				c.known = append(c.known, known{"build", buildahDiffers, "buildah 1.28 lacks it: " + c.unsupported})
			}
			ce := *e
			ce.t = t
			defer func() { results = append(results, resultRow(t, r, c)) }()
			c.known = checkKnown(t, c.known, r.differences(t, &ce, trees), strings.HasPrefix(bh.version, buildahTable))
		})
	}
}

// everySubtest reports whether -run and -skip leave every subtest of the
// tests they select: -run names none (its pattern has no "/"), -skip is
// not given.
func everySubtest() bool {
	run, skip := flag.Lookup("test.run"), flag.Lookup("test.skip")
	return run != nil && !strings.Contains(run.Value.String(), "/") && skip != nil && skip.Value.String() == ""
}

// builds builds the cases requested, n at a time, in the order requested.
type builds struct {
	e     *env
	cases *caseStore
	bh    *buildah
	wg    sync.WaitGroup
	mu    sync.Mutex
	cond  *sync.Cond
	queue []*caseRun // requested, not yet started
	asked map[*caseRun]bool
	stop  bool
}

func startBuilds(e *env, cases *caseStore, bh *buildah, n int) *builds {
	bs := &builds{e: e, cases: cases, bh: bh, asked: map[*caseRun]bool{}}
	bs.cond = sync.NewCond(&bs.mu)
	for range n {
		bs.wg.Add(1)
		go bs.work()
	}
	return bs
}

// request queues the runs not requested yet.
func (bs *builds) request(runs ...*caseRun) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	for _, r := range runs {
		if !bs.asked[r] {
			bs.asked[r] = true
			bs.queue = append(bs.queue, r)
		}
	}
	bs.cond.Broadcast()
}

func (bs *builds) work() {
	defer bs.wg.Done()
	for {
		bs.mu.Lock()
		for len(bs.queue) == 0 && !bs.stop {
			bs.cond.Wait()
		}
		if bs.stop {
			left := bs.queue
			bs.queue = nil
			bs.mu.Unlock()
			for _, r := range left {
				r.err = errors.New("not built: the test ended first")
				close(r.done)
			}
			return
		}
		r := bs.queue[0]
		bs.queue = bs.queue[1:]
		bs.mu.Unlock()
		r.build(bs.e, bs.cases, bs.bh)
	}
}

// close drops the requests not started and waits for the builds under way.
func (bs *builds) close() {
	bs.mu.Lock()
	bs.stop = true
	bs.cond.Broadcast()
	bs.mu.Unlock()
	bs.wg.Wait()
}

// resultRow is the case's line in docs/differential.md; c.known holds the
// differences that occurred.
func resultRow(t *testing.T, r *caseRun, c diffCase) string {
	result := "same"
	switch {
	case !t.Failed() && r.fail != "" && len(c.known) == 0:
		result = "same: both reject it"
	case t.Failed():
		result = "**unexpected difference: the test fails**"
	case c.unsupported != "":
		result = "buildah 1.28 cannot build it: " + c.unsupported
	case len(c.known) > 0:
		var order []known // one line per reason, with all its keys
		at := map[known][]string{}
		for _, k := range c.known {
			r := known{who: k.who, why: k.why}
			if at[r] == nil {
				order = append(order, r)
			}
			at[r] = append(at[r], "`"+k.key+"`")
		}
		var parts []string
		for _, r := range order {
			who := "buildah differs"
			if r.who == kilnBug {
				who = "**kiln bug**"
			}
			parts = append(parts, fmt.Sprintf("%s at %s: %s", who, strings.Join(at[r], ", "), strings.TrimPrefix(r.why, "kiln bug: ")))
		}
		result = strings.Join(parts, "<br>")
	}
	return fmt.Sprintf("| %s | %s |", r.name, result)
}

// writeReport writes the results table (KILN_DIFFERENTIAL_REPORT=file), so
// docs/differential.md can show exactly what the test found.
func writeReport(t *testing.T, path, version string, rows []string) {
	text := fmt.Sprintf("Results of TestDifferentialBuildah against buildah %s:\n\n| case | result |\n|---|---|\n%s\n",
		version, strings.Join(rows, "\n"))
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Error(err)
	}
}

// caseRun is one case built by both, in the background.
type caseRun struct {
	dir, name, tag string
	ctx            string   // buildah's copy of the case
	args           []string // build flags, the same for both
	fail           string   // the build must fail (expect.json)
	done           chan struct{}
	kiln           result
	kilnTag        string // kiln's image in the case store
	bimg           v1.Image
	bud, err       error // buildah's build failed; something else did
}

func newCaseRun(t *testing.T, e *env, dir string) *caseRun {
	var x expectation
	if b, err := os.ReadFile(filepath.Join(dir, "expect.json")); err == nil {
		if err := json.Unmarshal(b, &x); err != nil {
			t.Fatalf("%s/expect.json: %v", dir, err)
		}
	}
	name := filepath.Base(filepath.Dir(dir)) + "/" + filepath.Base(dir)
	return &caseRun{
		dir:  dir,
		name: name,
		tag:  strings.ReplaceAll(name, "/", "-"),
		ctx:  copyContext(t, dir),
		args: append([]string{"--build-arg", "BASE=" + e.base}, x.Args...),
		fail: x.Fail,
		done: make(chan struct{}),
	}
}

// build builds the case with kiln (in the case store, unless
// TestConformance has), then with buildah.
func (r *caseRun) build(e *env, cases *caseStore, bh *buildah) {
	defer close(r.done)
	b := cases.build(e, r.dir)
	if b.err != nil {
		r.err = b.err
		return
	}
	r.kiln, r.kilnTag = b.res, b.tag
	r.bimg, r.bud, r.err = bh.build(r.tag, r.ctx, r.args)
}

// differences waits for the two builds and says how their results differ.
func (r *caseRun) differences(t *testing.T, e *env, trees *layerCache) []difference {
	<-r.done
	if r.err != nil {
		t.Fatal(r.err)
	}
	switch {
	case r.kiln.code != 0 && r.bud != nil:
		if r.fail == "" {
			t.Fatalf("both fail, but the case should build.\nkiln:\n%s\nbuildah: %v", r.kiln.stderr, r.bud)
		}
		return nil
	case r.kiln.code != 0:
		return []difference{{"build", fmt.Sprintf("kiln fails, buildah builds:\n%s", lastLines(r.kiln.stderr, 6))}}
	case r.bud != nil:
		return []difference{{"build", fmt.Sprintf("kiln builds, buildah fails: %v", r.bud)}}
	}
	kimg := e.image(r.kilnTag)
	kt, err := trees.tree(kimg)
	if err != nil {
		t.Fatalf("kiln's image: %v", err)
	}
	bt, err := trees.tree(r.bimg)
	if err != nil {
		t.Fatalf("buildah's image: %v", err)
	}
	var stubs []string
	diffs := append(compareConfigs(configOf(t, kimg), configOf(t, r.bimg)), compareTrees(kt, bt, &stubs)...)
	if len(stubs) > 0 {
		t.Logf("ignored buildah's RUN mount stubs %v", stubs)
	}
	return diffs
}

// difference is one way the two images differ; key as in known.
type difference struct{ key, detail string }

// checkKnown fails on every difference the table does not expect, and on
// every expected one that did not happen (with the table's buildah release).
func checkKnown(t *testing.T, want []known, got []difference, strict bool) []known {
	t.Helper()
	seen := map[string]bool{}
	var matched []known
	for _, d := range got {
		k, ok := lookupKnown(want, d.key)
		if !ok {
			t.Errorf("kiln and buildah differ at %s: %s", d.key, d.detail)
			continue
		}
		if !seen[k.key] {
			matched = append(matched, k)
		}
		seen[k.key] = true
		t.Logf("known %s difference at %s (%s): %s", k.who, d.key, k.why, d.detail)
	}
	for _, k := range want {
		if !seen[k.key] {
			if strict {
				t.Errorf("expected %s difference at %s did not occur (%s): update the table", k.who, k.key, k.why)
			} else {
				t.Logf("expected %s difference at %s did not occur with this buildah", k.who, k.key)
			}
		}
	}
	return matched
}

func lookupKnown(want []known, key string) (known, bool) {
	for _, k := range want {
		if k.key == key {
			return k, true
		}
	}
	return known{}, false
}
