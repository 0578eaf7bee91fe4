package frontend

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/solver/dag"
)

// memResolver is the injected image resolver, in memory: a fixed set of
// images, anything else "not found". It counts calls per ref.
type memResolver struct {
	images map[string]memImage
	mu     sync.Mutex
	calls  map[string]int
	// any resolves every ref not in images to a made-up image (fuzzing).
	any bool
}

type memImage struct {
	canonical string
	cfg       v1.ConfigFile
}

func fakeDigest(s string) digest.Digest {
	return digest.FromBytes([]byte(s))
}

func (r *memResolver) Resolve(ctx context.Context, ref, platform string) (string, digest.Digest, *v1.ConfigFile, error) {
	r.mu.Lock()
	if r.calls == nil {
		r.calls = map[string]int{}
	}
	r.calls[ref]++
	r.mu.Unlock()
	img, ok := r.images[ref]
	if !ok {
		if !r.any || strings.Contains(ref, "missing") {
			return "", "", nil, fmt.Errorf("pull access denied, repository does not exist")
		}
		img = memImage{canonical: "docker.io/library/" + ref}
	}
	cfg := img.cfg // a copy: Compile must not write through the pointer either way
	return img.canonical, fakeDigest(img.canonical + "|" + platform), &cfg, nil
}

func baseHistory(s string) []v1.History {
	return []v1.History{{CreatedBy: "/bin/sh -c #(nop) ADD file:" + s + " in / "}, {CreatedBy: `/bin/sh -c #(nop)  CMD ["sh"]`, EmptyLayer: true}}
}

func newResolver() *memResolver {
	plain := func(name string) memImage {
		return memImage{canonical: name, cfg: v1.ConfigFile{
			Architecture: "amd64", OS: "linux",
			Config:  v1.Config{Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, Cmd: []string{"sh"}},
			History: baseHistory(name),
			RootFS:  v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{{Algorithm: "sha256", Hex: strings.Repeat("a", 64)}}},
		}}
	}
	return &memResolver{images: map[string]memImage{
		"busybox":      plain("docker.io/library/busybox:latest"),
		"busybox:1.36": plain("docker.io/library/busybox:1.36"),
		"alpine":       plain("docker.io/library/alpine:latest"),
		"alpine:3.19":  plain("docker.io/library/alpine:3.19"),
		"golang:1.22": {canonical: "docker.io/library/golang:1.22", cfg: v1.ConfigFile{
			Config: v1.Config{Env: []string{"PATH=/usr/local/go/bin:/usr/bin:/bin", "GOLANG_VERSION=1.22.0"}, WorkingDir: "/go"},
		}},
		"onbuild-base": {canonical: "docker.io/library/onbuild-base:latest", cfg: v1.ConfigFile{
			Config: v1.Config{OnBuild: []string{"COPY . /src", "RUN make -C /src"}},
		}},
		"configured": {canonical: "registry.example.com/configured:latest", cfg: v1.ConfigFile{
			Author: "base author",
			Config: v1.Config{
				Env:          []string{"FOO=bar"}, // no PATH: the default is added
				WorkingDir:   "/work",
				User:         "nobody",
				Cmd:          []string{"base-cmd"},
				Entrypoint:   []string{"base-entry"},
				Labels:       map[string]string{"base": "yes"},
				ExposedPorts: map[string]struct{}{"22/tcp": {}},
				Volumes:      map[string]struct{}{"/base": {}},
				StopSignal:   "SIGQUIT",
			},
			History: baseHistory("configured"),
		}},
	}}
}

// summarize prints the graph under root, inputs before the vertices that
// use them, one line per distinct vertex: "vN kind op-json extra <- inputs | name @ pos".
func summarize(root *dag.Vertex) string {
	ids := map[*dag.Vertex]string{}
	var sb strings.Builder
	var walk func(v *dag.Vertex)
	walk = func(v *dag.Vertex) {
		if _, ok := ids[v]; ok {
			return
		}
		for _, in := range v.Inputs {
			walk(in)
		}
		id := fmt.Sprintf("v%d", len(ids))
		ids[v] = id
		op, _ := json.Marshal(v.Op)
		fmt.Fprintf(&sb, "%s %s %s", id, v.Op.Kind(), op)
		switch o := v.Op.(type) {
		case *dag.ImageOp:
			fmt.Fprintf(&sb, " ref=%s", o.Ref)
		case *dag.LocalOp:
			fmt.Fprintf(&sb, " dir=%s", o.Dir)
		}
		if len(v.Inputs) > 0 {
			sb.WriteString(" <-")
			for _, in := range v.Inputs {
				sb.WriteString(" " + ids[in])
			}
		}
		fmt.Fprintf(&sb, " | %s @ %s\n", v.Name, v.Pos)
	}
	walk(root)
	return sb.String()
}

// keyChain computes dag.Key for every vertex under root (a LocalOp's
// selected content taken as ""), in the order summarize prints them.
func keyChain(t testing.TB, root *dag.Vertex) []digest.Digest {
	keys := map[*dag.Vertex]digest.Digest{}
	var out []digest.Digest
	var walk func(v *dag.Vertex) digest.Digest
	walk = func(v *dag.Vertex) digest.Digest {
		if k, ok := keys[v]; ok {
			return k
		}
		var in []digest.Digest
		for _, i := range v.Inputs {
			in = append(in, walk(i))
		}
		k, err := dag.Key(v.Op, in, "")
		if err != nil {
			t.Fatalf("key of %s: %v", v.Name, err)
		}
		keys[v] = k
		out = append(out, k)
		return k
	}
	walk(root)
	return out
}
