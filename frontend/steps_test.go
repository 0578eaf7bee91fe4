package frontend

import (
	"strings"
	"testing"

	"github.com/kiln-build/kiln/solver/dag"
)

// Every vertex says which stage and step it is as data, the same as its
// label shows: the solver never parses a label.
func TestVertexStepFields(t *testing.T) {
	type step struct {
		stage       string
		index, tot  int
		text, label string // label: the start of Name
	}
	for _, tc := range []struct {
		name, df string
		want     []step // in a depth-first walk, inputs first
	}{
		{
			name: "stages, triggers, internal vertices",
			df: "FROM busybox AS Base\nRUN a\nWORKDIR /w\nFROM base\nCOPY --from=alpine x /x\n" +
				"FROM onbuild-base AS app\nRUN <<EOF\necho\nEOF\nCOPY --from=1 /x /y\n",
			want: []step{
				{"app", 1, 5, "FROM docker.io/library/onbuild-base:latest@sha256:", "[app 1/5] FROM "},
				{"", 0, 0, "load build context", "[internal] load build context"},
				{"app", 2, 5, "ONBUILD COPY . /src", "[app 2/5] ONBUILD COPY . /src"},
				{"app", 3, 5, "ONBUILD RUN make -C /src", "[app 3/5] ONBUILD RUN"},
				{"app", 4, 5, "RUN <<EOF (echo)", "[app 4/5] RUN <<EOF"},
				{"base", 1, 3, "FROM docker.io/library/busybox:latest@sha256:", "[base 1/3] FROM"},
				{"base", 2, 3, "RUN a", "[base 2/3] RUN a"},
				{"base", 3, 3, "WORKDIR /w", "[base 3/3] WORKDIR /w"},
				{"", 0, 0, "", "FROM docker.io/library/alpine:latest@sha256:"}, // only copied from: no stage
				{"stage-1", 1, 1, "COPY --from=alpine x /x", "[stage-1 1/1] COPY"},
				{"app", 5, 5, "COPY --from=1 /x /y", "[app 5/5] COPY"},
			},
		},
		{
			// The label of a lone stage shows no name, the data still has it.
			name: "one named stage",
			df:   "FROM busybox AS only\nRUN a\n",
			want: []step{
				{"only", 1, 2, "FROM docker.io/library/busybox:latest@sha256:", "[1/2] FROM"},
				{"only", 2, 2, "RUN a", "[2/2] RUN a"},
			},
		},
		{
			name: "scratch and a heredoc",
			df:   "FROM scratch\nCOPY <<EOF /f\nhi\nEOF\n",
			want: []step{
				{"", 0, 0, "", "FROM scratch"},
				{"", 0, 0, "heredoc", "[internal] heredoc"},
				{"stage-0", 1, 1, "COPY <<EOF /f", "[1/1] COPY <<EOF /f"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Compile(t.Context(), Options{Dockerfile: []byte(tc.df), Platform: "linux/amd64", Resolver: newResolver(), ContextDir: "/ctx"})
			if err != nil {
				t.Fatal(err)
			}
			var got []*dag.Vertex
			seen := map[*dag.Vertex]bool{}
			var walk func(*dag.Vertex)
			walk = func(v *dag.Vertex) {
				if seen[v] {
					return
				}
				seen[v] = true
				for _, in := range v.Inputs {
					walk(in)
				}
				got = append(got, v)
			}
			walk(res.Root)
			if len(got) != len(tc.want) {
				t.Fatalf("%d vertices, want %d", len(got), len(tc.want))
			}
			for i, w := range tc.want {
				v := got[i]
				if v.Stage != w.stage || v.StepIndex != w.index || v.StepCount != w.tot ||
					!strings.HasPrefix(v.Text, w.text) || (w.text == "") != (v.Text == "") || !strings.HasPrefix(v.Name, w.label) {
					t.Errorf("vertex %d %q: stage %q %d/%d text %q, want %q %d/%d text %q label %q...",
						i, v.Name, v.Stage, v.StepIndex, v.StepCount, v.Text, w.stage, w.index, w.tot, w.text, w.label)
				}
				if v.Text != "" && !strings.HasSuffix(v.Name, v.Text) {
					t.Errorf("vertex %d: Name %q does not end with its Text %q", i, v.Name, v.Text)
				}
			}
		})
	}
}
