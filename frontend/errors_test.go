package frontend

import (
	"errors"
	"testing"
)

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		name, df, target string
		want             string // Error()
		source           string // Error.Source
	}{
		{"unknown instruction", "FROM busybox\nRUNN make\n", "",
			"Dockerfile:2: unknown instruction: RUNN (did you mean RUN?)", "RUNN make"},
		{"unknown instruction lower case", "FROM busybox\ncopyy a b\n", "",
			"Dockerfile:2: unknown instruction: copyy (did you mean copy?)", "copyy a b"},
		{"unknown instruction no suggestion", "FROM busybox\nFROBNICATE x\n", "",
			"Dockerfile:2: unknown instruction: FROBNICATE", "FROBNICATE x"},
		{"unknown flag", "FROM busybox\nCOPY --fromm=a x y\n", "",
			"Dockerfile:2: unknown flag: --fromm (did you mean --from?)", "COPY --fromm=a x y"},
		{"unknown flag lists the flags", "FROM busybox\nCOPY --nope a b\n", "",
			"Dockerfile:2: unknown flag: --nope (COPY takes --chmod, --chown, --exclude, --from, --link, --parents)", "COPY --nope a b"},
		{"unknown flag of an instruction without flags", "FROM busybox\nUSER --x bob\n", "",
			"Dockerfile:2: unknown flag: --x (USER takes no flags)", "USER --x bob"},
		{"bad substitution", "FROM busybox\nENV A=${}\n", "",
			"Dockerfile:2: failed to process \"${}\": syntax error: bad substitution", "ENV A=${}"},
		{"bad substitution in FROM", "FROM busybox:${TAG\n", "",
			"Dockerfile:1: failed to process \"busybox:${TAG\": missing '}' in substitution", "FROM busybox:${TAG"},
		{"error in a continued instruction reports its first line", "FROM busybox\nCOPY --chmod=999 \\\n  a /a\n", "",
			"Dockerfile:2: invalid chmod parameter: '999'. it should be octal string and between 0 and 07777", "COPY --chmod=999 \\"},
		{"line numbers count continuation lines", "FROM busybox\nRUN echo \\\n  ok\nWORKDIR ${:x}\n", "",
			"Dockerfile:4: failed to process \"${:x}\": syntax error: bad substitution", "WORKDIR ${:x}"},
		{"undefined stage or image in --from", "FROM busybox\nCOPY --from=nosuchstage /x /y\n", "",
			"Dockerfile:2: --from=nosuchstage names no build stage of this Dockerfile, so it was taken as an image: nosuchstage: pull access denied, repository does not exist", "COPY --from=nosuchstage /x /y"},
		{"misspelt stage in --from", "FROM busybox AS build\nFROM busybox\nCOPY --from=biuld /x /y\n", "",
			"Dockerfile:3: --from=biuld names no build stage of this Dockerfile, so it was taken as an image: biuld: pull access denied, repository does not exist (did you mean build?)", "COPY --from=biuld /x /y"},
		{"misspelt stage in FROM", "FROM busybox AS build\nFROM biuld\n", "",
			"Dockerfile:2: biuld: pull access denied, repository does not exist (did you mean build?)", "FROM biuld"},
		{"circular reference", "FROM busybox AS a\nCOPY --from=b x y\nFROM busybox AS b\nCOPY --from=a x y\n", "",
			"Dockerfile:4: circular dependency detected on stage: a", "COPY --from=a x y"},
		{"self reference", "FROM busybox AS a\nCOPY --from=a x y\n", "",
			"Dockerfile:2: circular dependency detected on stage: a", "COPY --from=a x y"},
		{"forward reference", "FROM busybox AS a\nCOPY --from=b x y\nFROM busybox AS b\n", "a",
			"Dockerfile:2: cannot copy from stage \"b\", it needs to be defined before current stage \"a\"", "COPY --from=b x y"},
		{"invalid stage index", "FROM busybox\nCOPY --from=5 a b\n", "",
			"Dockerfile:2: invalid stage index 5: the stages are numbered from 0 to 0 in the order of their FROM", "COPY --from=5 a b"},
		{"variable in --from", "FROM busybox\nARG X=a\nCOPY --from=$X a b\n", "",
			"Dockerfile:3: variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround", "COPY --from=$X a b"},
		{"target not found", "FROM busybox AS build\nFROM busybox\n", "biuld",
			"Dockerfile: target stage \"biuld\" could not be found (did you mean build?)", ""},
		{"target not found, no close name", "FROM busybox AS build\nFROM busybox AS test\nFROM busybox\n", "release",
			"Dockerfile: target stage \"release\" could not be found: the named stages are build, test", ""},
		{"target not found, no named stage", "FROM busybox\n", "release",
			"Dockerfile: target stage \"release\" could not be found: no stage has a name (FROM image AS name)", ""},
		{"only global ARGs", "ARG A=1\n", "",
			"Dockerfile: dockerfile contains no stages to build: add a FROM instruction", ""},
		{"empty FROM", "ARG X\nFROM $X\n", "",
			"Dockerfile:2: base name ($X) should not be blank: give ARG X a default before the first FROM, or pass --build-arg X=IMAGE", "FROM $X"},
		{"FROM without image", "FROM\n", "",
			"Dockerfile:1: FROM requires either one or three arguments", "FROM"},
		{"bad stage name", "FROM busybox AS 1abc\n", "",
			"Dockerfile:1: invalid name for build stage: \"1abc\", name can't start with a number or contain symbols", "FROM busybox AS 1abc"},
		{"empty Dockerfile", "", "", "Dockerfile: the Dockerfile cannot be empty", ""},
		{"only comments", "# nothing\n\n", "", "Dockerfile:2: file with no instructions", ""},
		{"instruction before FROM", "RUN true\nFROM busybox\n", "",
			"Dockerfile:1: no build stage in current context: only ARG can come before the first FROM", "RUN true"},
		{"ADD git", "FROM busybox\nADD https://example.com/repo.git#main /src\n", "",
			"Dockerfile:2: ADD from a git repository (https://example.com/repo.git#main) is not supported yet", "ADD https://example.com/repo.git#main /src"},
		{"ADD bad checksum", "FROM busybox\nADD --checksum=md5:abc https://example.com/x /x\n", "",
			"Dockerfile:2: invalid checksum \"md5:abc\": use sha256:<64 hex digits>", "ADD --checksum=md5:abc https://example.com/x /x"},
		{"COPY URL", "FROM busybox\nCOPY https://example.com/x /x\n", "",
			"Dockerfile:2: source can't be a URL for COPY: use ADD to download it", "COPY https://example.com/x /x"},
		{"COPY heredoc mixed with a file", "FROM busybox\nCOPY <<EOF a.txt /x/\nhi\nEOF\n", "",
			"Dockerfile:2: COPY mixing heredocs with other sources is not supported yet", "COPY <<EOF a.txt /x/"},
		{"ssh mount with source", "FROM busybox\nRUN --mount=type=ssh,source=x ssh git@example.com\n", "",
			"Dockerfile:2: ssh does not support source", "RUN --mount=type=ssh,source=x ssh git@example.com"},
		{"cache mount without target", "FROM busybox\nRUN --mount=type=cache make\n", "",
			"Dockerfile:2: RUN --mount=type=cache needs a target", "RUN --mount=type=cache make"},
		{"mount from a later stage", "FROM busybox AS a\nRUN --mount=from=b,target=/b true\nFROM busybox AS b\nFROM a\n", "",
			"Dockerfile:2: cannot copy from stage \"b\", it needs to be defined before current stage \"a\"", "RUN --mount=from=b,target=/b true"},
		{"bad network", "FROM busybox\nRUN --network=bridge true\n", "",
			"Dockerfile:2: invalid network mode \"bridge\"", "RUN --network=bridge true"},
		{"bad chmod", "FROM busybox\nCOPY --chmod=999 a /a\n", "",
			"Dockerfile:2: invalid chmod parameter: '999'. it should be octal string and between 0 and 07777", "COPY --chmod=999 a /a"},
		{"bad symbolic chmod", "FROM busybox\nCOPY --chmod=u+y a /a\n", "",
			"Dockerfile:2: invalid chmod parameter: 'u+y': use an octal mode (0755) or chmod(1) symbolic clauses (u+x,go=rX)", "COPY --chmod=u+y a /a"},
		{"bad signal", "FROM busybox\nSTOPSIGNAL SIGBOGUS\n", "",
			"Dockerfile:2: invalid signal: SIGBOGUS", "STOPSIGNAL SIGBOGUS"},
		{"bad expose", "FROM busybox\nEXPOSE 80/foo\n", "",
			"Dockerfile:2: invalid port: \"80/foo\": invalid proto: foo", "EXPOSE 80/foo"},
		{"SHELL not JSON", "FROM busybox\nSHELL /bin/bash -c\n", "",
			"Dockerfile:2: SHELL requires the arguments to be in JSON form", "SHELL /bin/bash -c"},
		{"HEALTHCHECK bad type", "FROM busybox\nHEALTHCHECK RUN true\n", "",
			"Dockerfile:2: Unknown type \"RUN\" in HEALTHCHECK (try CMD)", "HEALTHCHECK RUN true"},
		{"unterminated heredoc", "FROM busybox\nRUN <<EOF\necho\n", "",
			"Dockerfile:2: unterminated heredoc", "RUN <<EOF"},
		{"ONBUILD ONBUILD", "FROM busybox\nONBUILD ONBUILD RUN x\n", "",
			"Dockerfile:2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed", "ONBUILD ONBUILD RUN x"},
		{"unknown base image", "FROM missing/image\n", "",
			"Dockerfile:1: missing/image: pull access denied, repository does not exist", "FROM missing/image"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(t.Context(), Options{
				Dockerfile: []byte(tc.df), Filename: "Dockerfile", Target: tc.target,
				Platform: "linux/amd64", Resolver: newResolver(),
			})
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %q is not an *Error", err, err)
			}
			if err.Error() != tc.want {
				t.Errorf("Error()\n got %q\nwant %q", err.Error(), tc.want)
			}
			if e.Source != tc.source {
				t.Errorf("Source = %q, want %q", e.Source, tc.source)
			}
		})
	}
}
