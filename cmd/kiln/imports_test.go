package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// tierOf puts every kiln package in the tier it belongs to; a package that
// is in none fails TestImportGraph until it is given one.
var tierOf = map[string]string{
	"cmd/kiln":              "cmd",
	"cmd/kiln-busybox":      "cmd",
	"cmd/kiln-registry":     "cmd",
	"frontend":              "frontend",
	"solver":                "solver",
	"solver/dag":            "dag",
	"store":                 "store",
	"executor":              "executor",
	"executor/seccomp":      "executor",
	"exporter":              "exporter",
	"internal/busybox":      "fixture",     // the busybox base image and registry of tests and the demo
	"internal/testregistry": "fixture",     // docker-registry (htpasswd, TLS) and a fault proxy, for tests
	"remotecache":           "remotecache", // the build cache shared across machines (--cache-from/--cache-to)
	// Leaves: each does one job that several tiers share, and imports
	// nothing of kiln's but other leaves.
	"digest":              "leaf",
	"containerenv":        "leaf",
	"imageref":            "leaf",
	"registry":            "leaf", // how kiln reaches registries: credentials, TLS, mirrors, retries
	"layer":               "leaf",
	"xattr":               "leaf",
	"imagediff":           "leaf", // kiln image diff: two images compared, as diffoci --semantic
	"executor/fscopy":     "leaf", // COPY's selection: what the solver hashes is what the executor copies
	"executor/user":       "leaf",
	"internal/atomicfile": "leaf",
	"internal/ctxio":      "leaf",
}

// mayImport is the tiers each tier may import besides its own: the data
// flows Dockerfile → frontend → dag → solver (→ store, executor) →
// exporter, and cmd wires them together; nothing imports back up.
var mayImport = map[string][]string{
	"cmd":         {"frontend", "solver", "dag", "store", "executor", "exporter", "remotecache", "fixture", "leaf"},
	"frontend":    {"dag", "leaf"},
	"solver":      {"dag", "store", "executor", "leaf"},
	"dag":         {"leaf"},
	"store":       {"leaf"},
	"executor":    {"leaf"},
	"exporter":    {"leaf"},
	"remotecache": {"store", "leaf"},
	"fixture":     {"leaf"},
	"leaf":        nil,
}

// buildkitAllowed are the BuildKit packages kiln may import, from the
// frontend only: the Dockerfile parser and its helpers. The rest of
// BuildKit (dockerfile2llb, client/llb, solver/pb: some 290 packages)
// never enters the build.
var buildkitAllowed = []string{
	"frontend/dockerfile/parser",
	"frontend/dockerfile/instructions",
	"frontend/dockerfile/shell",
	"frontend/dockerfile/command",
	"frontend/dockerfile/linter",
	"util/suggest",
}

// TestImportGraph fails on every import between kiln packages that
// mayImport does not allow, and on BuildKit imports beyond the parser's.
func TestImportGraph(t *testing.T) {
	t.Parallel()
	const mod = "github.com/kiln-build/kiln"
	const buildkit = "github.com/moby/buildkit/"
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, mod+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		imports := strings.Fields(line)
		pkg := strings.TrimPrefix(imports[0], mod+"/")
		tier, ok := tierOf[pkg]
		if !ok {
			t.Errorf("%s is in no tier: add it to tierOf", pkg)
			continue
		}
		for _, imp := range imports[1:] {
			if rest, ok := strings.CutPrefix(imp, buildkit); ok {
				if tier != "frontend" || !slices.Contains(buildkitAllowed, rest) {
					t.Errorf("%s imports %s: only the frontend imports BuildKit, and only %s", pkg, imp, strings.Join(buildkitAllowed, ", "))
				}
				continue
			}
			dep, ok := strings.CutPrefix(imp, mod+"/")
			if !ok {
				continue
			}
			to, known := tierOf[dep]
			if known && (to == tier || slices.Contains(mayImport[tier], to)) {
				continue
			}
			if !known {
				to = "no tier"
			}
			t.Errorf("%s (%s) imports %s (%s): %s may import only %s", pkg, tier, dep, to, tier, strings.Join(append([]string{tier}, mayImport[tier]...), ", "))
		}
	}

	// What the allowed BuildKit packages pull in must not bring the rest.
	deps, err := exec.Command("go", "list", "-deps", mod+"/...").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(deps)) {
		for _, bad := range []string{"dockerfile2llb", "client/llb", "solver/pb"} {
			if strings.HasPrefix(dep, buildkit) && strings.Contains(dep, bad) {
				t.Errorf("the build depends on %s: only BuildKit's parser, instructions, shell, command and linter may be used", dep)
			}
		}
	}
}
