package frontend

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports keeps the frontend off the heavy BuildKit packages and off
// every kiln package but solver/dag.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		switch {
		case strings.Contains(p, "dockerfile2llb"), strings.Contains(p, "buildkit/client/llb"), strings.Contains(p, "buildkit/solver/pb"):
			t.Errorf("imports %s", p)
		case strings.HasPrefix(p, "github.com/kiln-build/kiln/") && p != "github.com/kiln-build/kiln/solver/dag" && p != "github.com/kiln-build/kiln/frontend":
			t.Errorf("imports %s", p)
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
