package frontend

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/solver/dag"
)

// compileDF compiles an in-memory Dockerfile with the test resolver.
func compileDF(t *testing.T, df string, o Options) (*Result, error) {
	t.Helper()
	o.Dockerfile = []byte(df)
	o.Filename = "Dockerfile"
	o.ContextDir = "/ctx"
	if o.Platform == "" {
		o.Platform = "linux/amd64"
	}
	o.Resolver = newResolver()
	return Compile(t.Context(), o)
}

func warningStrings(ws []Warning) []string {
	out := []string{}
	for _, w := range ws {
		out = append(out, w.String())
	}
	return out
}

// TestChecks: one Dockerfile in, exactly BuildKit's warnings out, for
// every rule, with the cases that must not warn next to the ones that must.
func TestChecks(t *testing.T) {
	for _, tc := range []struct {
		name string
		df   string
		opts Options
		want []string
	}{
		// JSONArgsRecommended
		{"shell-form CMD", "FROM busybox\nCMD echo hi\n", Options{},
			[]string{"JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals (line 2)"}},
		{"shell-form ENTRYPOINT", "FROM busybox\nENTRYPOINT exec server\n", Options{},
			[]string{"JSONArgsRecommended: JSON arguments recommended for ENTRYPOINT to prevent unintended behavior related to OS signals (line 2)"}},
		{"exec-form CMD and ENTRYPOINT", "FROM busybox\nENTRYPOINT [\"server\"]\nCMD [\"--port\", \"80\"]\n", Options{}, nil},
		{"shell form after SHELL", "FROM busybox\nSHELL [\"/bin/ash\", \"-c\"]\nCMD echo hi\n", Options{}, nil},
		{"shell form after a base stage's SHELL", "FROM busybox AS base\nSHELL [\"/bin/ash\", \"-c\"]\nFROM base\nENTRYPOINT echo hi\n", Options{}, nil},

		// StageNameCasing, FromAsCasing
		{"upper-case stage name", "FROM busybox AS Build\n", Options{},
			[]string{"StageNameCasing: Stage name 'Build' should be lowercase (line 1)"}},
		{"lower-case stage name", "FROM busybox AS build\n", Options{}, nil},
		{"FROM with lower-case as", "FROM busybox as build\n", Options{},
			[]string{"FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 1)"}},
		{"from with upper-case AS", "from busybox AS build\n", Options{},
			[]string{"FromAsCasing: 'AS' and 'from' keywords' casing do not match (line 1)"}},
		{"from as, both lower case", "from busybox as build\n", Options{}, nil},

		// DuplicateStageName, ReservedStageName
		{"duplicate stage name", "FROM busybox AS a\nRUN true\nFROM busybox AS a\n", Options{},
			[]string{`DuplicateStageName: Duplicate stage name "a", stage names should be unique (line 3)`}},
		{"distinct stage names", "FROM busybox AS a\nFROM busybox AS b\n", Options{}, nil},
		{"reserved stage names", "FROM busybox AS context\nFROM busybox AS scratch\nFROM busybox\n", Options{},
			[]string{`ReservedStageName: Stage name should not use the same name as reserved stage "context" (line 1)`,
				`ReservedStageName: Stage name should not use the same name as reserved stage "scratch" (line 2)`}},

		// UndefinedVar
		{"undefined variable", "FROM busybox\nENV A=$UNDEFINED\n", Options{},
			[]string{"UndefinedVar: Usage of undefined variable '$UNDEFINED' (line 2)"}},
		{"undefined variable with a suggestion", "FROM busybox\nARG VERSION=1\nLABEL v=${VERSON}\n", Options{},
			[]string{"UndefinedVar: Usage of undefined variable '$VERSON' (did you mean $VERSION?) (line 3)"}},
		{"undefined variable in an ARG default", "FROM busybox\nARG A=$B\n", Options{},
			[]string{"UndefinedVar: Usage of undefined variable '$B' (line 2)"}},
		{"a global ARG is not in scope in a stage", "ARG V=1\nFROM busybox\nWORKDIR /$V\n", Options{},
			[]string{"UndefinedVar: Usage of undefined variable '$V' (line 3)"}},
		{"defined variables", "FROM busybox\nENV A=1\nARG B\nARG C=2\nCOPY $A$B$C /x/$PATH\nRUN echo $NOT_EXPANDED_BY_THE_BUILDER\n", Options{}, nil},
		{"ARG from the base stage", "FROM busybox AS a\nARG X\nFROM a\nENV Y=$X\n", Options{}, nil},
		{"a --build-arg value does not declare the ARG", "FROM busybox\nENV A=$X\n", Options{BuildArgs: map[string]string{"X": "1"}},
			[]string{"UndefinedVar: Usage of undefined variable '$X' (line 2)", "One or more build-args [X] were not consumed"}},

		// UndefinedArgInFrom
		{"undeclared ARG in FROM", "FROM ${IMG:-busybox}\n", Options{},
			[]string{"UndefinedArgInFrom: FROM argument 'IMG' is not declared (line 1)"}},
		{"undeclared ARG in FROM with a suggestion", "ARG IMAGE=alpine\nFROM ${IMAGES:-busybox}\n", Options{},
			[]string{"UndefinedArgInFrom: FROM argument 'IMAGES' is not declared (did you mean IMAGE?) (line 2)"}},
		{"undeclared ARG in FROM --platform", "FROM --platform=${PLAT:-linux/amd64} busybox\n", Options{},
			[]string{"UndefinedArgInFrom: FROM argument 'PLAT' is not declared (line 1)"}},
		{"ARG declared without a value", "ARG IMG\nFROM ${IMG:-busybox}\n", Options{}, nil},

		// MultipleInstructionsDisallowed
		{"two CMDs", "FROM busybox\nCMD [\"a\"]\nCMD [\"b\"]\n", Options{},
			[]string{"MultipleInstructionsDisallowed: Multiple CMD instructions should not be used in the same stage because only the last one will be used (line 2)"}},
		{"three ENTRYPOINTs and two HEALTHCHECKs", "FROM busybox\nENTRYPOINT [\"a\"]\nHEALTHCHECK NONE\nENTRYPOINT [\"b\"]\nHEALTHCHECK CMD [\"true\"]\nENTRYPOINT [\"c\"]\n", Options{},
			[]string{"MultipleInstructionsDisallowed: Multiple ENTRYPOINT instructions should not be used in the same stage because only the last one will be used (line 2)",
				"MultipleInstructionsDisallowed: Multiple HEALTHCHECK instructions should not be used in the same stage because only the last one will be used (line 3)",
				"MultipleInstructionsDisallowed: Multiple ENTRYPOINT instructions should not be used in the same stage because only the last one will be used (line 4)"}},
		{"one CMD per stage", "FROM busybox AS a\nCMD [\"a\"]\nFROM a\nCMD [\"b\"]\n", Options{}, nil},

		// LegacyKeyValueFormat
		{"ENV and LABEL key value", "FROM busybox\nENV A 1\nLABEL maintainer me\n", Options{},
			[]string{`LegacyKeyValueFormat: "ENV key=value" should be used instead of legacy "ENV key value" format (line 2)`,
				`LegacyKeyValueFormat: "LABEL key=value" should be used instead of legacy "LABEL key value" format (line 3)`}},
		{"ENV and LABEL key=value", "FROM busybox\nENV A=1 B=\"2 3\"\nLABEL a=b\n", Options{}, nil},

		// MaintainerDeprecated
		{"MAINTAINER", "FROM busybox\nMAINTAINER me@example.com\n", Options{},
			[]string{"MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label (line 2)"}},

		// SecretsUsedInArgOrEnv
		{"secret names", "FROM busybox\nARG GITHUB_TOKEN\nENV DB_PASSWORD=x apikey=y\n", Options{},
			[]string{`SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ARG "GITHUB_TOKEN") (line 2)`,
				`SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ENV "DB_PASSWORD") (line 3)`,
				`SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ENV "apikey") (line 3)`}},
		{"names that only look like secrets", "FROM busybox\nARG PUBLIC_KEY\nARG KEY_FILE\nENV TOKENIZER=1 AUTHOR=me\n", Options{}, nil},
		{"global ARGs are not checked for secrets", "ARG TOKEN\nFROM busybox\n", Options{}, nil},

		// CopyIgnoredFile
		{"COPY and ADD of ignored files", "FROM busybox\nCOPY secret /s\nADD logs/app.log ./sub/../x.tmp /l/\nCOPY ok /ok\n",
			Options{Excludes: []string{"secret", "logs", "*.tmp"}},
			[]string{`CopyIgnoredFile: Attempting to Copy file "secret" that is excluded by .dockerignore (line 2)`,
				`CopyIgnoredFile: Attempting to Add file "logs/app.log" that is excluded by .dockerignore (line 3)`,
				`CopyIgnoredFile: Attempting to Add file "x.tmp" that is excluded by .dockerignore (line 3)`}},
		{"COPY --from is not from the context", "FROM busybox AS a\nFROM busybox\nCOPY --from=a secret /s\n", Options{Excludes: []string{"secret"}}, nil},
		{"a re-including .dockerignore disables the rule", "FROM busybox\nCOPY secret /s\n", Options{Excludes: []string{"secret", "!keep"}}, nil},
		{"COPY . of a partly ignored context", "FROM busybox\nCOPY . /\n", Options{Excludes: []string{"secret"}}, nil},
		{"COPY . of a wholly ignored context", "FROM busybox\nCOPY . /\n", Options{Excludes: []string{"*"}},
			[]string{`CopyIgnoredFile: Attempting to Copy file "." that is excluded by .dockerignore (line 2)`}},

		// WorkdirRelativePath
		{"relative WORKDIR first", "FROM busybox\nWORKDIR app\nWORKDIR sub\n", Options{},
			[]string{`WorkdirRelativePath: Relative workdir "app" can have unexpected results if the base image changes (line 2)`}},
		{"relative WORKDIR after an absolute one", "FROM busybox\nWORKDIR /app\nWORKDIR sub\n", Options{}, nil},
		{"relative WORKDIR after the base stage's", "FROM busybox AS a\nWORKDIR /app\nFROM a\nWORKDIR sub\n", Options{}, nil},
		{"relative WORKDIR over a base image's", "FROM golang:1.22\nWORKDIR src\n", Options{},
			[]string{`WorkdirRelativePath: Relative workdir "src" can have unexpected results if the base image changes (line 2)`}},

		// ExposeProtoCasing, ExposeInvalidFormat
		{"EXPOSE upper-case protocol and host mapping", "FROM busybox\nARG P=8080:80\nEXPOSE 53/UDP $P 127.0.0.1:443:443/tcp 22\n", Options{},
			[]string{`ExposeInvalidFormat: EXPOSE instruction should not define an IP address or host-port mapping, found '127.0.0.1:443:443/tcp' (line 3)`,
				`ExposeInvalidFormat: EXPOSE instruction should not define an IP address or host-port mapping, found '8080:80' (line 3)`,
				`ExposeProtoCasing: Defined protocol '53/UDP' in EXPOSE instruction should be lowercase (line 3)`}},
		{"EXPOSE plain ports", "FROM busybox\nEXPOSE 80 53/udp 8000-8010/tcp\n", Options{}, nil},

		// NoEmptyContinuation
		{"empty continuation line", "FROM busybox\nRUN echo a \\\n\n  b\n", Options{},
			[]string{"NoEmptyContinuation: Empty continuation line (line 4)"}},

		// ConsistentInstructionCasing
		{"one instruction against the majority", "FROM busybox\nrun true\nRUN true\nWorkdir /x\n", Options{},
			[]string{"ConsistentInstructionCasing: Command 'run' should match the case of the command majority (uppercase) (line 2)",
				"ConsistentInstructionCasing: Command 'Workdir' should match the case of the command majority (uppercase) (line 4)"}},
		{"lower-case majority", "from busybox\nrun true\nENV A=1\n", Options{},
			[]string{"ConsistentInstructionCasing: Command 'ENV' should match the case of the command majority (lowercase) (line 3)"}},

		// InvalidDefaultArgInFrom
		{"FROM empty without build args", "ARG IMG\nFROM $IMG\n", Options{BuildArgs: map[string]string{"IMG": "busybox"}},
			[]string{"InvalidDefaultArgInFrom: Default value for ARG $IMG results in empty or invalid base image name (line 2)"}},
		{"FROM invalid without build args", "ARG TAG\nFROM busybox:${TAG}\n", Options{BuildArgs: map[string]string{"TAG": "1.36"}},
			[]string{"InvalidDefaultArgInFrom: Default value for ARG busybox:${TAG} results in empty or invalid base image name (line 2)"}},
		{"FROM valid with the defaults", "ARG IMG=busybox\nARG TAG=1.36\nFROM $IMG:$TAG\n", Options{}, nil},

		// FromPlatformFlagConstDisallowed, RedundantTargetPlatform
		{"constant --platform", "FROM --platform=linux/amd64 busybox\n", Options{},
			[]string{`FromPlatformFlagConstDisallowed: FROM --platform flag should not use constant value "linux/amd64" (line 1)`}},
		{"constant --platform named by the stage", "FROM --platform=linux/amd64 busybox AS build-amd64\n", Options{}, nil},
		{"--platform=$TARGETPLATFORM", "FROM --platform=$TARGETPLATFORM busybox\n", Options{},
			[]string{"RedundantTargetPlatform: Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior (line 1)"}},
		{"--platform=$BUILDPLATFORM", "FROM --platform=$BUILDPLATFORM busybox\n", Options{}, nil},

		// InvalidBaseImagePlatform
		{"base image of another platform", "FROM busybox\n", Options{Platform: "linux/arm64"},
			[]string{`InvalidBaseImagePlatform: Base image busybox was pulled with platform "linux/amd64", expected "linux/arm64" for current build (line 1)`}},
		{"--from image of another platform", "FROM scratch\nCOPY --from=alpine /x /y\n", Options{Platform: "linux/arm64"},
			[]string{`InvalidBaseImagePlatform: Base image alpine was pulled with platform "linux/amd64", expected "linux/arm64" for current build (line 2)`}},
		{"base image of the platform", "FROM busybox\nCOPY --from=alpine /x /y\n", Options{}, nil},

		// InvalidDefinitionDescription is experimental: only when asked for
		{"experimental rule off", "# build: does not follow the format\nFROM busybox AS build\n", Options{}, nil},
		{"experimental rule on", "# check=experimental=InvalidDefinitionDescription\n\n# builds things\nFROM busybox AS build\n", Options{},
			[]string{"InvalidDefinitionDescription: Comment for FROM should follow the format: `# build <description>` (line 4)"}},

		// sorted by line, then rule
		{"several rules", "FROM busybox AS Build\nENV A 1\nMAINTAINER me\nCMD echo $A $B\n", Options{},
			[]string{"StageNameCasing: Stage name 'Build' should be lowercase (line 1)",
				`LegacyKeyValueFormat: "ENV key=value" should be used instead of legacy "ENV key value" format (line 2)`,
				"MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label (line 3)",
				"JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals (line 4)"}},
		// rules of the instructions cover the stages that are built
		{"unbuilt stage", "FROM busybox AS other\nCMD echo\nFROM busybox\nCMD [\"x\"]\n", Options{}, nil},
		{"unbuilt stage, parse-time rules", "FROM busybox AS Other\nMAINTAINER me\nFROM busybox\n", Options{},
			[]string{"StageNameCasing: Stage name 'Other' should be lowercase (line 1)",
				"MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label (line 2)"}},
		{"ONBUILD trigger, at its FROM", "FROM onbuild-base AS p\nONBUILD CMD echo x\nFROM p\n", Options{},
			[]string{"JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals (line 3)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := compileDF(t, tc.df, tc.opts)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			got := warningStrings(res.Warnings)
			if want := append([]string{}, tc.want...); !slices.Equal(got, want) {
				t.Errorf("warnings\n got %q\nwant %q", got, want)
			}
		})
	}
}

// TestCheckConfig: the check directive, the per-instruction check comment
// and BUILDKIT_DOCKERFILE_CHECK select the rules.
func TestCheckConfig(t *testing.T) {
	const body = "FROM busybox AS Build\nCMD echo\nMAINTAINER me\n"
	casing := func(line int) string {
		return fmt.Sprintf("StageNameCasing: Stage name 'Build' should be lowercase (line %d)", line)
	}
	jsonArgs := func(line int) string {
		return fmt.Sprintf("JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals (line %d)", line)
	}
	maintainer := func(line int) string {
		return fmt.Sprintf("MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label (line %d)", line)
	}
	all := []string{casing(1), jsonArgs(2), maintainer(3)}
	for _, tc := range []struct {
		name string
		df   string
		args map[string]string
		want []string
	}{
		{"no configuration", body, nil, all},
		{"skip one rule", "# check=skip=JSONArgsRecommended\n" + body, nil, []string{casing(2), maintainer(4)}},
		{"skip two rules, spaces around the directive", "# check = skip=StageNameCasing,MaintainerDeprecated\n" + body, nil, []string{jsonArgs(3)}},
		{"skip all", "# check=skip=all\n" + body, nil, nil},
		{"directive key is case-insensitive", "# CHECK=skip=all\n" + body, nil, nil},
		{"directive after an instruction is a comment", "FROM busybox AS Build\n# check=skip=all\nCMD echo\n", nil,
			[]string{casing(1)}},
		{"per-instruction skip", "FROM busybox AS Build\n# check=skip=JSONArgsRecommended\nCMD echo\nENTRYPOINT echo\n", nil,
			[]string{casing(1), "JSONArgsRecommended: JSON arguments recommended for ENTRYPOINT to prevent unintended behavior related to OS signals (line 4)"}},
		{"per-instruction skip of a FROM rule", "FROM busybox\n# check=skip=StageNameCasing\nFROM busybox AS Build\n", nil, nil},
		{"per-instruction skip all", "FROM busybox AS Build\n# a comment\n# check=skip=all\nMAINTAINER me\n", nil, []string{casing(1)}},
		{"build arg", body, map[string]string{checkArg: "skip=StageNameCasing,MaintainerDeprecated"}, []string{jsonArgs(2)}},
		{"build arg replaces the directive", "# check=skip=all\n" + body, map[string]string{checkArg: "skip=JSONArgsRecommended"},
			[]string{casing(2), maintainer(4)}},
		{"empty build arg replaces the directive", "# check=skip=all\n" + body, map[string]string{checkArg: ""}, []string{casing(2), jsonArgs(3), maintainer(4)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := compileDF(t, tc.df, Options{BuildArgs: tc.args})
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			if got, want := warningStrings(res.Warnings), append([]string{}, tc.want...); !slices.Equal(got, want) {
				t.Errorf("warnings\n got %q\nwant %q", got, want)
			}
		})
	}
}

// TestCheckErrors: error=true and Options.Check fail the build with every
// violation; bad configurations are errors that say the syntax.
func TestCheckErrors(t *testing.T) {
	const twoStages = "FROM busybox AS other\nCMD echo\nFROM busybox\nMAINTAINER me\n"
	for _, tc := range []struct {
		name  string
		df    string
		opts  Options
		want  string   // Error(); "" = no error
		rules []string // the violations the error carries
	}{
		{"error=true", "# check=error=true\nFROM busybox\nCMD echo\nMAINTAINER me\n", Options{},
			"Dockerfile: lint violation found for rules: JSONArgsRecommended, MaintainerDeprecated",
			[]string{"JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals (line 3)",
				"MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label (line 4)"}},
		{"error=true without violations", "# check=error=true\nFROM busybox\nCMD [\"x\"]\n", Options{}, "", nil},
		{"error=true with the violations skipped", "# check=skip=JSONArgsRecommended;error=true\nFROM busybox\nCMD echo\n", Options{}, "", nil},
		{"error=true from the build arg", "FROM busybox\nCMD echo\n", Options{BuildArgs: map[string]string{checkArg: "error=true"}},
			"Dockerfile: lint violation found for rules: JSONArgsRecommended",
			[]string{"JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals (line 2)"}},
		{"build arg error=false wins", "# check=error=true\nFROM busybox\nCMD echo\n", Options{BuildArgs: map[string]string{checkArg: "error=false"}}, "", nil},
		{"a normal build skips the unbuilt stage", twoStages, Options{BuildArgs: map[string]string{checkArg: "error=true"}},
			"Dockerfile: lint violation found for rules: MaintainerDeprecated",
			[]string{"MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label (line 4)"}},
		{"Check checks every stage", twoStages, Options{Check: true},
			"Dockerfile: lint violation found for rules: JSONArgsRecommended, MaintainerDeprecated",
			[]string{"JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals (line 2)",
				"MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label (line 4)"}},
		{"Check of a target checks what it needs", twoStages, Options{Check: true, Target: "other"},
			"Dockerfile: lint violation found for rules: JSONArgsRecommended, MaintainerDeprecated",
			[]string{"JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals (line 2)",
				"MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label (line 4)"}},
		{"Check without violations", "FROM busybox\nCMD [\"x\"]\n", Options{Check: true}, "", nil},
		{"Check ignores warnings that are no rule", "FROM busybox\n", Options{Check: true, BuildArgs: map[string]string{"X": "1"}}, "", nil},
		{"bad directive", "# check=skip=all;boom=1\nFROM busybox\n", Options{},
			`Dockerfile:1: failed to parse check options: invalid check option "boom" (use skip=Rule1,Rule2|all;error=true|false;experimental=Rule1,...|all)`, nil},
		{"bad error value", "# check=error=maybe\nFROM busybox\n", Options{},
			`Dockerfile:1: failed to parse check options: failed to parse check option "error=maybe": strconv.ParseBool: parsing "maybe": invalid syntax (use skip=Rule1,Rule2|all;error=true|false;experimental=Rule1,...|all)`, nil},
		{"bad build arg", "FROM busybox\n", Options{BuildArgs: map[string]string{checkArg: "skip"}},
			`Dockerfile: failed to parse BUILDKIT_DOCKERFILE_CHECK: invalid check option "skip" (use skip=Rule1,Rule2|all;error=true|false;experimental=Rule1,...|all)`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := compileDF(t, tc.df, tc.opts)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Compile: %v", err)
				}
				if res.Root == nil {
					t.Fatal("no graph")
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("%T is not an *Error", err)
			}
			if err.Error() != tc.want {
				t.Errorf("Error()\n got %q\nwant %q", err.Error(), tc.want)
			}
			if got, want := warningStrings(e.Warnings), append([]string{}, tc.rules...); !slices.Equal(got, want) {
				t.Errorf("violations\n got %q\nwant %q", got, want)
			}
		})
	}
}

// TestBuildArgCheckNotUnused: BUILDKIT_DOCKERFILE_CHECK is consumed by the
// frontend, not reported as an unused build arg.
func TestBuildArgCheckNotUnused(t *testing.T) {
	res, err := compileDF(t, "FROM busybox\n", Options{BuildArgs: map[string]string{checkArg: "skip=all", "OTHER": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := warningStrings(res.Warnings); !slices.Equal(got, []string{"One or more build-args [OTHER] were not consumed"}) {
		t.Errorf("warnings %q", got)
	}
}

func TestSyntaxDirective(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	for _, ref := range []string{
		"docker/dockerfile:1", "docker/dockerfile", "docker.io/docker/dockerfile:1.7", "docker/dockerfile:1.7-labs",
		"docker/dockerfile:labs", "docker/dockerfile@" + digest, "docker/dockerfile:1@" + digest,
		"docker/dockerfile-upstream:master", "docker.io/docker/dockerfile-upstream:1.8.0-labs", "index.docker.io/docker/dockerfile:1",
	} {
		t.Run("accept "+ref, func(t *testing.T) {
			res, err := compileDF(t, "# syntax="+ref+"\nFROM busybox\n", Options{})
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			if len(res.Warnings) != 0 {
				t.Errorf("warnings %q", warningStrings(res.Warnings))
			}
		})
	}
	for _, tc := range []struct{ name, df, want string }{
		{"other frontend", "# syntax=example.com/my/frontend:1\nFROM busybox\n",
			`Dockerfile:1: the syntax directive names the frontend image "example.com/my/frontend:1", but kiln implements the Dockerfile language itself and runs no frontend images: remove the line or use docker/dockerfile:1`},
		{"look-alike", "# syntax = docker/dockerfile-plus:1 extra\nFROM busybox\n",
			`Dockerfile:1: the syntax directive names the frontend image "docker/dockerfile-plus:1", but kiln implements the Dockerfile language itself and runs no frontend images: remove the line or use docker/dockerfile:1`},
		{"after a shebang and another directive", "#!/usr/bin/env kiln\n# escape=`\n# syntax=tonistiigi/dockerfile:x\nFROM busybox\n",
			`Dockerfile:3: the syntax directive names the frontend image "tonistiigi/dockerfile:x", but kiln implements the Dockerfile language itself and runs no frontend images: remove the line or use docker/dockerfile:1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := compileDF(t, tc.df, Options{})
			if err == nil || err.Error() != tc.want {
				t.Errorf("error\n got %v\nwant %s", err, tc.want)
			}
		})
	}
	// BUILDKIT_SYNTAX replaces the directive, as in BuildKit
	if _, err := compileDF(t, "# syntax=docker/dockerfile:1\nFROM busybox\n", Options{BuildArgs: map[string]string{"BUILDKIT_SYNTAX": "my/frontend"}}); err == nil ||
		!strings.Contains(err.Error(), `frontend image "my/frontend"`) {
		t.Errorf("BUILDKIT_SYNTAX=my/frontend: %v", err)
	}
	// a syntax line below the first instruction is only a comment
	if _, err := compileDF(t, "FROM busybox\n# syntax=my/frontend\nRUN true\n", Options{}); err != nil {
		t.Errorf("comment after FROM: %v", err)
	}
}

// TestEscapeDirective: with the escape directive set to a backtick, a
// backslash is a plain character and the backtick continues lines; the
// other directives still apply.
func TestEscapeDirective(t *testing.T) {
	df := "# escape=`\n# check=skip=JSONArgsRecommended\nFROM busybox\nENV DIR=C:\\data\nRUN echo a `\n    b\nCMD echo $DIR\n"
	res, err := compileDF(t, df, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if env := res.Config.Config.Env; !slices.Contains(env, `DIR=C:\data`) {
		t.Errorf("Env %q lacks DIR=C:\\data", env)
	}
	if got := warningStrings(res.Warnings); len(got) != 0 {
		t.Errorf("warnings %q", got)
	}
	if cmd := res.Config.Config.Cmd; !slices.Equal(cmd, []string{"/bin/sh", "-c", "echo $DIR"}) {
		t.Errorf("Cmd %q", cmd)
	}
	if run, ok := res.Root.Op.(*dag.ExecOp); !ok || !slices.Equal(run.Args, []string{"/bin/sh", "-c", "echo a     b"}) {
		t.Errorf("RUN = %+v, want the backtick continuation joined", res.Root.Op)
	}
}

// TestSnippet: compile errors render the Dockerfile around the offending
// instruction exactly as BuildKit prints a source location.
func TestSnippet(t *testing.T) {
	for _, tc := range []struct {
		name, df      string
		line, endLine int
		column        int
		want          string
	}{
		{"one line, context both sides", "FROM busybox\n\nRUNN echo hi\n", 3, 3, 1, `Dockerfile:3
--------------------
   1 |     FROM busybox
   2 |     
   3 | >>> RUNN echo hi
   4 |     
--------------------
`},
		{"first line, indented", "  FROMM busybox\nRUN true\nRUN true\nRUN true\nRUN true\n", 1, 1, 3, `Dockerfile:1
--------------------
   1 | >>>   FROMM busybox
   2 |     RUN true
   3 |     RUN true
--------------------
`},
		{"middle of a long file", "FROM busybox\nRUN 1\nRUN 2\nRUN 3\nCOPY --nope a b\nRUN 5\nRUN 6\nRUN 7\nRUN 8\n", 5, 5, 6, `Dockerfile:5
--------------------
   3 |     RUN 2
   4 |     RUN 3
   5 | >>> COPY --nope a b
   6 |     RUN 5
   7 |     RUN 6
--------------------
`},
		{"continued instruction", "FROM busybox\nRUN true\nCOPY --chmod=999 \\\n  a /a\nRUN true\nRUN true\n", 3, 4, 0, `Dockerfile:3
--------------------
   2 |     RUN true
   3 | >>> COPY --chmod=999 \
   4 | >>>   a /a
   5 |     RUN true
--------------------
`},
		{"heredoc", "FROM busybox\nRUN <<EOF\necho\n", 2, 3, 0, `Dockerfile:2
--------------------
   1 |     FROM busybox
   2 | >>> RUN <<EOF
   3 | >>> echo
   4 |     
--------------------
`},
		{"no line", "FROM busybox AS a\nFROM busybox\n", 0, 0, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{}
			if tc.line == 0 {
				o.Target = "nosuch"
			}
			_, err := compileDF(t, tc.df, o)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *Error", err)
			}
			if e.Line != tc.line || e.EndLine != tc.endLine || e.Column != tc.column {
				t.Errorf("Line, EndLine, Column = %d, %d, %d, want %d, %d, %d (%v)", e.Line, e.EndLine, e.Column, tc.line, tc.endLine, tc.column, err)
			}
			if got := e.Snippet(); got != tc.want {
				t.Errorf("Snippet()\n got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// TestCheckReport: the output of a check, as `docker build --check` prints
// it, and the one-line-per-warning summary of a build.
func TestCheckReport(t *testing.T) {
	df := "# check=error=true\nFROM busybox AS Build\nCMD echo \\\n  hi\n"
	_, err := compileDF(t, df, Options{BuildArgs: map[string]string{"UNUSED": "1"}})
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *Error", err)
	}
	want := `Check complete, 2 warnings have been found!

WARNING: StageNameCasing - https://docs.docker.com/go/dockerfile/rule/stage-name-casing/
Stage name 'Build' should be lowercase
Dockerfile:2
--------------------
   1 |     # check=error=true
   2 | >>> FROM busybox AS Build
   3 |     CMD echo \
   4 |       hi
--------------------

WARNING: JSONArgsRecommended - https://docs.docker.com/go/dockerfile/rule/json-args-recommended/
JSON arguments recommended for CMD to prevent unintended behavior related to OS signals
Dockerfile:3
--------------------
   2 |     FROM busybox AS Build
   3 | >>> CMD echo \
   4 | >>>   hi
   5 |     
--------------------
`
	if got := e.Snippet(); got != want {
		t.Errorf("report\n got:\n%s\nwant:\n%s", got, want)
	}

	res, err := compileDF(t, "FROM busybox AS Build\nCMD echo\n", Options{BuildArgs: map[string]string{"UNUSED": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	wantSummary := []string{
		" 3 warnings found (use kiln build --check for details):",
		" - StageNameCasing: Stage name 'Build' should be lowercase (line 1)",
		" - JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals (line 2)",
		" - One or more build-args [UNUSED] were not consumed",
	}
	if got := WarningSummary(res.Warnings); !slices.Equal(got, wantSummary) {
		t.Errorf("Summary\n got %q\nwant %q", got, wantSummary)
	}
	if got := WarningSummary(res.Warnings[:1]); len(got) != 2 || got[0] != " 1 warning found (use kiln build --check for details):" {
		t.Errorf("Summary of one: %q", got)
	}
	if got := WarningSummary(nil); got != nil {
		t.Errorf("WarningSummary(nil) = %q", got)
	}
	if got := CheckReport(res.Warnings[:1]); !strings.HasPrefix(got, "Check complete, 1 warning has been found!\n\nWARNING: StageNameCasing") {
		t.Errorf("CheckReport of one:\n%s", got)
	}
	if got := CheckReport(res.Warnings[2:]); got != "Check complete, no warnings found.\n" {
		t.Errorf("CheckReport of no rule violation: %q", got)
	}
}
