package main

import (
	"regexp"
	"strings"
	"testing"
)

// ranStep matches the plain progress line of a started RUN step.
var ranStep = regexp.MustCompile(`(?m)^#\d+ \[\d+/\d+\] RUN `)

// TestCheckWarnings: a build prints BuildKit's warning summary and goes
// on; BUILDKIT_DOCKERFILE_CHECK silences it without counting as unused.
func TestCheckWarnings(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := e.context(map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE AS Build\nRUN echo step-output-$((6*7))\nCMD echo hi\n"})
	r := e.mustKiln("build", "--progress=plain", "--build-arg", "BASE="+e.base, dir)
	want := ` 3 warnings found (use kiln build --check for details):
 - InvalidDefaultArgInFrom: Default value for ARG $BASE results in empty or invalid base image name (line 2)
 - StageNameCasing: Stage name 'Build' should be lowercase (line 2)
 - JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals (line 4)
`
	if !strings.Contains(r.stderr, want) {
		t.Errorf("build output lacks\n%s\n--- got:\n%s", want, r.stderr)
	}
	if !strings.Contains(r.stderr, "step-output-42") {
		t.Errorf("the build did not run its step:\n%s", r.stderr)
	}

	r = e.mustKiln("build", "--progress=plain", "--build-arg", "BASE="+e.base, "--build-arg", "BUILDKIT_DOCKERFILE_CHECK=skip=all", dir)
	if strings.Contains(r.stderr, "warning") {
		t.Errorf("skip=all still warns:\n%s", r.stderr)
	}
}

// TestCheckFlag: --check evaluates the checks and builds nothing: exit 1
// with the report when something is wrong, 0 when nothing is.
func TestCheckFlag(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bad := e.context(map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE AS Build\nRUN echo step-output-$((6*7))\nCMD echo hi\n"})
	r := e.kiln("", "build", "--check", "--progress=plain", "--build-arg", "BASE="+e.base, bad)
	if r.code != 1 {
		t.Fatalf("--check with violations: exit %d, want 1\n%s", r.code, r.stderr)
	}
	for _, want := range []string{
		"Check complete, 3 warnings have been found!\n",
		"\nWARNING: StageNameCasing - https://docs.docker.com/go/dockerfile/rule/stage-name-casing/\nStage name 'Build' should be lowercase\nDockerfile:2\n",
		"   2 | >>> FROM $BASE AS Build\n",
		"\nWARNING: JSONArgsRecommended - https://docs.docker.com/go/dockerfile/rule/json-args-recommended/\n",
		"   4 | >>> CMD echo hi\n",
		"ERROR: Dockerfile: lint violation found for rules: InvalidDefaultArgInFrom, JSONArgsRecommended, StageNameCasing\n",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("--check output lacks %q:\n%s", want, r.stderr)
		}
	}
	if ranStep.MatchString(r.stderr) || strings.Contains(r.stderr, "step-output-42") {
		t.Errorf("--check ran a step:\n%s", r.stderr)
	}

	good := e.context(map[string]string{"Dockerfile": "ARG BASE=" + e.base + "\nFROM $BASE\nRUN echo step-output-$((6*7))\nCMD [\"sh\"]\n"})
	r = e.kiln("", "build", "--check", "--progress=plain", "-t", "checked:1", good)
	if r.code != 0 || !strings.Contains(r.stderr, "Check complete, no warnings found.") {
		t.Fatalf("--check without violations: exit %d\n%s", r.code, r.stderr)
	}
	if ranStep.MatchString(r.stderr) || strings.Contains(r.stderr, "step-output-42") {
		t.Errorf("--check ran a step:\n%s", r.stderr)
	}
	if img := e.kiln("", "images"); strings.Contains(img.stdout, "checked") {
		t.Errorf("--check tagged an image:\n%s", img.stdout)
	}
	// The step was neither run nor cached by the checks: a real build runs it.
	r = e.mustKiln("build", "--progress=plain", good)
	if !ranStep.MatchString(r.stderr) || !strings.Contains(r.stderr, "step-output-42") || strings.Contains(r.stderr, "warning") {
		t.Errorf("build after --check:\n%s", r.stderr)
	}

	// error=true in the Dockerfile fails a normal build the same way.
	strict := e.context(map[string]string{"Dockerfile": "# check=error=true\nARG BASE=" + e.base + "\nFROM $BASE\nRUN echo step-output-$((6*7))\nMAINTAINER me\n"})
	r = e.kiln("", "build", "--progress=plain", strict)
	if r.code != 1 || !strings.Contains(r.stderr, "WARNING: MaintainerDeprecated - https://docs.docker.com/go/dockerfile/rule/maintainer-deprecated/\nMaintainer instruction is deprecated in favor of using label\nDockerfile:5\n") ||
		!strings.Contains(r.stderr, "ERROR: Dockerfile: lint violation found for rules: MaintainerDeprecated\n") {
		t.Errorf("error=true: exit %d\n%s", r.code, r.stderr)
	}
	if ranStep.MatchString(r.stderr) || strings.Contains(r.stderr, "step-output-42") {
		t.Errorf("error=true ran a step:\n%s", r.stderr)
	}
}

// TestCheckErrorSnippet: a compile error shows the Dockerfile around the
// offending line before the message, as BuildKit does.
func TestCheckErrorSnippet(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := e.context(map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\n\nRUNN echo hi\n"})
	r := e.kiln("", "build", "--progress=plain", "--build-arg", "BASE="+e.base, dir)
	want := `Dockerfile:4
--------------------
   2 |     FROM $BASE
   3 |     
   4 | >>> RUNN echo hi
   5 |     
--------------------
ERROR: Dockerfile:4: unknown instruction: RUNN (did you mean RUN?)
`
	if r.code != 1 || !strings.HasSuffix(r.stderr, want) {
		t.Errorf("exit %d, stderr does not end with\n%s--- got:\n%s", r.code, want, r.stderr)
	}
}
