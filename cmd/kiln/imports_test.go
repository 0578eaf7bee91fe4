package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportGraph keeps the package graph as designed: cmd → frontend/solver
// → cache/executor/exporter, never back up, and no BuildKit solver or LLB.
func TestImportGraph(t *testing.T) {
	const mod = "github.com/kiln-build/kiln/"
	forbidden := map[string][]string{
		"frontend/...": {"solver", "cache", "executor", "exporter", "cmd"},
		"solver/...":   {"frontend", "cmd"},
		"cache/...":    {"solver", "frontend", "executor", "exporter", "cmd"},
		"executor/...": {"solver", "frontend", "cache", "exporter", "cmd"},
		"exporter/...": {"solver", "frontend", "executor", "cmd"},
	}
	allowed := map[string]bool{mod + "solver/dag": true, mod + "cache/layer": true}
	for pkgs, bad := range forbidden {
		out, err := exec.Command("go", "list", "-deps", "-test=false", "./../../"+pkgs).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkgs, err)
		}
		own := strings.TrimSuffix(pkgs, "/...")
		for _, dep := range strings.Fields(string(out)) {
			if strings.Contains(dep, "buildkit/") && (strings.Contains(dep, "dockerfile2llb") || strings.Contains(dep, "client/llb") || strings.Contains(dep, "solver/pb")) {
				t.Errorf("%s depends on %s: only BuildKit's parser, instructions and shell may be used", pkgs, dep)
			}
			if !strings.HasPrefix(dep, mod) || allowed[dep] || strings.HasPrefix(dep, mod+own) {
				continue
			}
			for _, b := range bad {
				if strings.HasPrefix(dep, mod+b) {
					t.Errorf("%s imports %s: imports flow cmd → frontend/solver → cache/executor/exporter", pkgs, dep)
				}
			}
		}
	}
}
