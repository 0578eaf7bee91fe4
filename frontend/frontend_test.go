package frontend

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/solver/dag"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// compileFile compiles testdata/<file> with the in-memory resolver.
func compileFile(t *testing.T, file string, o Options) (*Result, *memResolver, error) {
	t.Helper()
	df, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	r := newResolver()
	o.Dockerfile = df
	o.Filename = "Dockerfile"
	o.ContextDir = "/home/user/project"
	o.Platform = "linux/amd64"
	o.Resolver = r
	res, err := Compile(t.Context(), o)
	return res, r, err
}

func render(t *testing.T, res *Result) string {
	t.Helper()
	cfg, err := json.MarshalIndent(res.Config, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	sb.WriteString("# graph\n")
	sb.WriteString(summarize(res.Root))
	sb.WriteString("# config\n")
	sb.Write(cfg)
	sb.WriteString("\n# warnings\n")
	for _, w := range res.Warnings {
		sb.WriteString(w.String() + "\n")
	}
	return sb.String()
}

func TestCompileGolden(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		opts       Options
	}{
		{name: "basic", file: "basic.Dockerfile", opts: Options{Excludes: []string{"*.tmp", ".git"}}},
		{name: "args", file: "args.Dockerfile", opts: Options{BuildArgs: map[string]string{"FROM_CLI": "cli", "VERSION": "2.0", "NOT_DECLARED": "x", "HTTP_PROXY": "http://proxy"}}},
		{name: "multistage", file: "multistage.Dockerfile"},
		{name: "multistage-target", file: "multistage.Dockerfile", opts: Options{Target: "TEST"}},
		{name: "scratch", file: "scratch.Dockerfile"},
		{name: "expose", file: "expose.Dockerfile"},
		{name: "onbuild", file: "onbuild.Dockerfile"},
		{name: "heredoc", file: "heredoc.Dockerfile"},
		{name: "workdir", file: "workdir.Dockerfile"},
		{name: "copy", file: "copy.Dockerfile"},
		{name: "inherit", file: "inherit.Dockerfile"},
		{name: "shell", file: "shell.Dockerfile"},
		{name: "samestage", file: "samestage.Dockerfile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, _, err := compileFile(t, tc.file, tc.opts)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			got := render(t, res)
			golden := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs (-update to accept):\n--- got\n%s\n--- want\n%s", golden, got, want)
			}
		})
	}
}

// TestUnusedStagesNotCompiled: stages the target does not need are neither
// resolved nor in the graph; a stage used twice is one vertex; the resolver
// is asked once per ref.
func TestUnusedStagesNotCompiled(t *testing.T) {
	res, r, err := compileFile(t, "multistage.Dockerfile", Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"missing:image", "alpine"} {
		if r.calls[ref] != 0 {
			t.Errorf("resolver asked about %q from an unused stage", ref)
		}
	}
	for ref, n := range r.calls {
		if n != 1 {
			t.Errorf("resolver asked %d times about %q", n, ref)
		}
	}
	if s := summarize(res.Root); strings.Contains(s, "never") {
		t.Errorf("unused stage compiled:\n%s", s)
	}

	res, _, err = compileFile(t, "samestage.Dockerfile", Options{})
	if err != nil {
		t.Fatal(err)
	}
	// the final stage is FROM dep and copies from dep: one vertex, reached twice
	copyDep := res.Root.Inputs[0].Inputs[0].Inputs[0]
	if copyDep.Op.Kind() != "copy" || copyDep.Inputs[0] != copyDep.Inputs[1] {
		t.Fatalf("COPY --from=dep onto dep does not share the dep vertex: %+v", copyDep)
	}
	x, y := res.Root.Inputs[0], res.Root
	if x.Inputs[1] != y.Inputs[1] || x.Inputs[1].Op.Kind() != "local" {
		t.Errorf("the two context copies do not share one LocalOp vertex")
	}
}

func TestKeysDeterministic(t *testing.T) {
	files, err := filepath.Glob("testdata/*.Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			a, _, err := compileFile(t, filepath.Base(f), Options{})
			if err != nil {
				t.Fatal(err)
			}
			b, _, err := compileFile(t, filepath.Base(f), Options{})
			if err != nil {
				t.Fatal(err)
			}
			ka, kb := keyChain(t, a.Root), keyChain(t, b.Root)
			if !slices.Equal(ka, kb) {
				t.Errorf("key chains differ:\n%v\n%v", ka, kb)
			}
			if len(ka) == 0 {
				t.Fatal("no keys")
			}
		})
	}
}

// TestBuildArgChangesKeys: a build arg reaches RUN's env, so it changes the
// keys from the first RUN after its ARG, but not before.
func TestBuildArgChangesKeys(t *testing.T) {
	df := []byte("FROM busybox\nRUN echo before\nARG V=1\nRUN echo $V\n")
	keys := func(args map[string]string) []digest.Digest {
		res, err := Compile(t.Context(), Options{Dockerfile: df, Platform: "linux/amd64", Resolver: newResolver(), BuildArgs: args})
		if err != nil {
			t.Fatal(err)
		}
		return keyChain(t, res.Root)
	}
	a, b := keys(nil), keys(map[string]string{"V": "2"})
	if len(a) != 3 || len(b) != 3 {
		t.Fatalf("want 3 vertices, got %d and %d", len(a), len(b))
	}
	if a[1] != b[1] {
		t.Error("RUN before the ARG changed key")
	}
	if a[2] == b[2] {
		t.Error("RUN after the ARG kept its key")
	}
}

// TestCmdEntrypointTable checks every cell of the Dockerfile reference's
// CMD/ENTRYPOINT table, plus the reset of an inherited CMD.
func TestCmdEntrypointTable(t *testing.T) {
	cmds := map[string]string{"none": "", "exec": `CMD ["c","p"]`, "shell": "CMD c p"}
	eps := map[string]string{"none": "", "shell": "ENTRYPOINT e p", "exec": `ENTRYPOINT ["e","p"]`}
	for _, tc := range []struct {
		cmd, ep        string
		wantEntrypoint []string
		wantCmd        []string
	}{
		{"none", "none", nil, nil}, // nothing to run
		{"none", "shell", []string{"/bin/sh", "-c", "e p"}, nil},
		{"none", "exec", []string{"e", "p"}, nil},
		{"exec", "none", nil, []string{"c", "p"}},
		{"exec", "shell", []string{"/bin/sh", "-c", "e p"}, []string{"c", "p"}}, // sh ignores the extra args: runs "e p"
		{"exec", "exec", []string{"e", "p"}, []string{"c", "p"}},
		{"shell", "none", nil, []string{"/bin/sh", "-c", "c p"}},
		{"shell", "shell", []string{"/bin/sh", "-c", "e p"}, []string{"/bin/sh", "-c", "c p"}},
		{"shell", "exec", []string{"e", "p"}, []string{"/bin/sh", "-c", "c p"}},
	} {
		// both orders: a CMD of this stage survives a later ENTRYPOINT
		for _, order := range []string{"cmd-first", "ep-first"} {
			lines := []string{"FROM scratch"}
			if order == "cmd-first" {
				lines = append(lines, cmds[tc.cmd], eps[tc.ep])
			} else {
				lines = append(lines, eps[tc.ep], cmds[tc.cmd])
			}
			df := strings.Join(lines, "\n") + "\n"
			res, err := Compile(t.Context(), Options{Dockerfile: []byte(df), Platform: "linux/amd64"})
			if err != nil {
				t.Fatalf("%s/%s: %v", tc.cmd, tc.ep, err)
			}
			c := res.Config.Config
			if !slices.Equal(c.Entrypoint, tc.wantEntrypoint) || !slices.Equal(c.Cmd, tc.wantCmd) {
				t.Errorf("CMD %s, ENTRYPOINT %s (%s): got Entrypoint %q Cmd %q, want %q %q",
					tc.cmd, tc.ep, order, c.Entrypoint, c.Cmd, tc.wantEntrypoint, tc.wantCmd)
			}
		}
	}

	inherited := func(df string) ([]string, []string) {
		res, err := Compile(t.Context(), Options{Dockerfile: []byte(df), Platform: "linux/amd64", Resolver: newResolver()})
		if err != nil {
			t.Fatal(err)
		}
		return res.Config.Config.Entrypoint, res.Config.Config.Cmd
	}
	if ep, cmd := inherited("FROM busybox\nENTRYPOINT [\"e\"]\n"); !slices.Equal(ep, []string{"e"}) || cmd != nil {
		t.Errorf("ENTRYPOINT kept the base image's CMD: %q %q", ep, cmd)
	}
	if ep, cmd := inherited("FROM busybox\nENTRYPOINT []\n"); ep != nil || cmd != nil {
		t.Errorf("ENTRYPOINT [] = %q %q, want nil nil", ep, cmd)
	}
	if _, cmd := inherited("FROM busybox\nRUN true\n"); !slices.Equal(cmd, []string{"sh"}) {
		t.Errorf("base CMD not inherited: %q", cmd)
	}
	// a CMD from an earlier stage is inherited, not "set in this stage"
	if _, cmd := inherited("FROM busybox AS a\nCMD [\"x\"]\nFROM a\nENTRYPOINT [\"e\"]\n"); cmd != nil {
		t.Errorf("CMD of the base stage survived ENTRYPOINT: %q", cmd)
	}
}

// TestArgsNeverInConfig: ARG values reach RUN but never the image config.
func TestArgsNeverInConfig(t *testing.T) {
	res, _, err := compileFile(t, "args.Dockerfile", Options{BuildArgs: map[string]string{"FROM_CLI": "secret-ish"}})
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := json.Marshal(res.Config.Config.Env)
	if bytes.Contains(cfg, []byte("FROM_CLI")) || bytes.Contains(cfg, []byte("DERIVED")) {
		t.Errorf("ARG leaked into config env: %s", cfg)
	}
	run := res.Root.Op.(*dag.ExecOp)
	if !slices.Contains(run.Env, "FROM_CLI=secret-ish") || !slices.Contains(run.Env, "DERIVED=vfrom-env-1.36") {
		t.Errorf("RUN env misses ARG values: %q", run.Env)
	}
}

// The image's platform is what its base really is; only scratch (or a base
// that names none) takes FROM --platform's.
func TestImagePlatform(t *testing.T) {
	for _, tt := range []struct{ df, want string }{
		{"FROM busybox\n", "linux/amd64"},
		{"FROM --platform=linux/arm64 busybox\n", "linux/amd64"},
		{"FROM --platform=linux/arm64 scratch\n", "linux/arm64"},
		{"FROM --platform=linux/arm/v7 golang:1.22\n", "linux/arm/v7"},
		{"FROM --platform=linux/arm64 busybox AS b\nFROM b\n", "linux/amd64"},
	} {
		res, err := Compile(t.Context(), Options{Dockerfile: []byte(tt.df), Platform: "linux/amd64", Resolver: newResolver()})
		if err != nil {
			t.Fatalf("%q: %v", tt.df, err)
		}
		got := res.Config.OS + "/" + res.Config.Architecture
		if res.Config.Variant != "" {
			got += "/" + res.Config.Variant
		}
		if got != tt.want {
			t.Errorf("%q: platform %s, want %s", tt.df, got, tt.want)
		}
	}
}

func TestHealthStartInterval(t *testing.T) {
	for _, tt := range []struct {
		df   string
		want time.Duration
	}{
		{"FROM busybox\nHEALTHCHECK --start-interval=2s CMD true\n", 2 * time.Second},
		{"FROM busybox AS a\nHEALTHCHECK --interval=5s --start-interval=250ms CMD true\nFROM a\n", 250 * time.Millisecond},
		{"FROM busybox AS a\nHEALTHCHECK --start-interval=2s CMD true\nFROM a\nHEALTHCHECK NONE\n", 0},
		{"FROM busybox\n", 0},
	} {
		res, err := Compile(t.Context(), Options{Dockerfile: []byte(tt.df), Platform: "linux/amd64", Resolver: newResolver()})
		if err != nil {
			t.Fatalf("%q: %v", tt.df, err)
		}
		if res.HealthStartInterval != tt.want {
			t.Errorf("%q: start interval %v, want %v", tt.df, res.HealthStartInterval, tt.want)
		}
	}
}

func TestParserWarnings(t *testing.T) {
	df := "FROM scratch\nENV A=1 \\\n\n    B=2\n"
	res, err := Compile(t.Context(), Options{Dockerfile: []byte(df), Platform: "linux/amd64"})
	if err != nil {
		t.Fatal(err)
	}
	want := "NoEmptyContinuation: Empty continuation line (line 4)"
	if len(res.Warnings) != 1 || res.Warnings[0].String() != want {
		t.Errorf("Warnings = %q, want %q", res.Warnings, want)
	}
}
