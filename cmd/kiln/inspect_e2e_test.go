package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/internal/testregistry"
)

// TestInspectHistoryImages checks inspect, history and images against the
// image's own config, and save of several images against load and skopeo.
func TestInspectHistoryImages(t *testing.T) {
	t.Parallel()
	e, _ := registryEnv(t)
	dir := e.context(map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\nENV GREETING=hello\nLABEL org.example.team=kiln\n" +
		"RUN echo a-file-made-by-a-step-with-a-rather-long-command-line > /made\nWORKDIR /work\nCMD [\"sh\", \"-c\", \"echo hi\"]\n"})
	e.mustKiln("build", "--progress=plain", "--build-arg", "BASE="+e.base, "-t", "insp:1", dir)
	e.mustKiln("tag", "insp:1", "insp:2")
	img := e.image("insp:1")
	cfg := configOf(t, img)
	id, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}

	var out []imageInspect
	if err := json.Unmarshal([]byte(e.mustKiln("inspect", "insp:1").stdout), &out); err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 {
		t.Fatalf("inspect gave %d images", len(out))
	}
	ii := out[0]
	if ii.Id != id.String() {
		t.Errorf("Id %s, want the config digest %s", ii.Id, id)
	}
	if !contains(ii.RepoTags, "insp:1") || !contains(ii.RepoTags, "insp:2") {
		t.Errorf("RepoTags %v", ii.RepoTags)
	}
	if ii.Architecture != cfg.Architecture || ii.Os != cfg.OS || ii.Created != cfg.Created.UTC().Format(time.RFC3339Nano) {
		t.Errorf("Architecture %s Os %s Created %s; config has %s %s %s", ii.Architecture, ii.Os, ii.Created, cfg.Architecture, cfg.OS, cfg.Created)
	}
	if ii.Config["WorkingDir"] != "/work" || !strings.Contains(toJSON(ii.Config["Env"]), "GREETING=hello") ||
		toJSON(ii.Config["Cmd"]) != `["sh","-c","echo hi"]` || toJSON(ii.Config["Labels"]) != `{"org.example.team":"kiln"}` {
		t.Errorf("Config %v", ii.Config)
	}
	if ii.RootFS.Type != "layers" || len(ii.RootFS.Layers) != len(cfg.RootFS.DiffIDs) || ii.RootFS.Layers[len(ii.RootFS.Layers)-1] != cfg.RootFS.DiffIDs[len(cfg.RootFS.DiffIDs)-1].String() {
		t.Errorf("RootFS %+v, config's diff IDs %v", ii.RootFS, cfg.RootFS.DiffIDs)
	}
	if ii.Size <= 0 || ii.Metadata.LastTagTime == "" {
		t.Errorf("Size %d LastTagTime %q", ii.Size, ii.Metadata.LastTagTime)
	}
	r := e.mustKiln("inspect", "-f", "{{.Id}} {{json .Config.Labels}} {{.Config.WorkingDir}}", "insp:2")
	if want := id.String() + ` {"org.example.team":"kiln"} /work` + "\n"; r.stdout != want {
		t.Errorf("inspect -f printed %q, want %q", r.stdout, want)
	}
	r = e.kiln("", "inspect", "no-such-image")
	if r.code != 1 || strings.TrimSpace(r.stdout) != "[]" || !strings.Contains(r.stderr, "no such image: no-such-image") {
		t.Errorf("inspect of a missing image: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}

	// history: newest first, one row per history entry, the layers'
	// sizes on the entries that made a layer.
	rows := lines(e.mustKiln("history", "--no-trunc", "insp:1").stdout)
	if len(rows) != len(cfg.History)+1 || !strings.HasPrefix(rows[0], "IMAGE") {
		t.Fatalf("history printed %d lines for %d entries:\n%s", len(rows), len(cfg.History), strings.Join(rows, "\n"))
	}
	if !strings.HasPrefix(rows[1], id.String()) || !strings.Contains(rows[1], "CMD") {
		t.Errorf("top row %q: want the image ID and the CMD step", rows[1])
	}
	for i, h := range cfg.History {
		row := rows[len(cfg.History)-i]
		if !strings.Contains(row, h.CreatedBy) {
			t.Errorf("row %q does not show %q", row, h.CreatedBy)
		}
		if i < len(cfg.History)-1 && !strings.HasPrefix(row, "<missing>") {
			t.Errorf("row %q: want <missing> as docker shows", row)
		}
	}
	short := lines(e.mustKiln("history", "insp:1").stdout)
	runRow := ""
	for _, l := range short {
		if strings.Contains(l, "RUN") {
			runRow = l
		}
	}
	if !strings.Contains(runRow, "…") || strings.Contains(runRow, "rather-long-command-line") || !strings.Contains(runRow, " ago") {
		t.Errorf("truncated RUN row %q", runRow)
	}
	raw := lines(e.mustKiln("history", "-H=false", "insp:1").stdout)
	layers, _ := img.Layers()
	var sizes []int64
	for _, l := range raw[1:] {
		f := regexp.MustCompile(`\s{2,}`).Split(l, -1)
		if _, err := time.Parse(time.RFC3339, f[1]); err != nil {
			t.Errorf("-H=false CREATED %q: %v", f[1], err)
		}
		n, err := strconv.ParseInt(f[3], 10, 64)
		if err != nil {
			t.Errorf("-H=false SIZE %q in %q: %v", f[3], l, err)
		}
		if n > 0 {
			sizes = append(sizes, n)
		}
	}
	if top, _ := layers[len(layers)-1].Size(); len(sizes) != len(layers) || sizes[0] != top {
		t.Errorf("non-empty sizes %v (newest first) for %d layers, the top one %d bytes", sizes, len(layers), top)
	}
	if q := lines(e.mustKiln("history", "-q", "insp:1").stdout); len(q) != len(cfg.History) || q[0] != id.Hex[:12] {
		t.Errorf("history -q: %v", q)
	}

	// images: -q, --no-trunc, --filter reference=, --digests.
	if q := lines(e.mustKiln("images", "-q", "--filter", "reference=insp:*").stdout); len(q) != 2 || q[0] != id.Hex[:12] {
		t.Errorf("images -q --filter reference=insp:*: %v", q)
	}
	if q := lines(e.mustKiln("images", "--filter", "reference=insp").stdout); len(q) != 3 {
		t.Errorf("images --filter reference=insp (all tags): %v", q)
	}
	if q := lines(e.mustKiln("images", "-q", "--no-trunc", "--filter", "reference=*:2").stdout); len(q) != 1 || q[0] != id.String() {
		t.Errorf("images -q --no-trunc --filter reference=*:2: %v", q)
	}
	reg := testregistry.Start(t, testregistry.Options{})
	pushed := strings.Fields(e.mustKiln("push", "insp:1", reg.Host+"/insp:1").stdout)[2]
	e.mustKiln("tag", "insp:1", reg.Host+"/insp:1")
	var digestCol string
	for _, l := range lines(e.mustKiln("images", "--digests").stdout) {
		if strings.HasPrefix(l, reg.Host+"/insp ") {
			digestCol = regexp.MustCompile(`\s{2,}`).Split(l, -1)[2]
		}
	}
	if digestCol != pushed {
		t.Errorf("images --digests shows %q for %s/insp, want %s", digestCol, reg.Host, pushed)
	}

	// save: two images in one archive, of each format.
	e.mustKiln("tag", e.base, "other:b")
	for _, format := range []string{"docker", "oci"} {
		archive := filepath.Join(t.TempDir(), "both.tar")
		e.mustKiln("save", "--format", format, "-o", archive, "insp:1", "other:b")
		f := envAt(t, t.TempDir())
		r := f.mustKiln("load", "-i", archive)
		if !strings.Contains(r.stdout, "insp:1") || !strings.Contains(r.stdout, "other:b") {
			t.Errorf("%s archive: load printed %q", format, r.stdout)
		}
		if got, _ := f.image("insp:1").ConfigName(); got != id {
			t.Errorf("%s archive: insp:1 loaded as %s, want %s", format, got, id)
		}
		if _, err := exec.LookPath("skopeo"); err == nil {
			// Each image of the archive by its name, as skopeo names them.
			src := map[string]string{"docker": "docker-archive:" + archive + ":docker.io/library/insp:1", "oci": "oci-archive:" + archive + ":1"}[format]
			out, err := exec.Command("skopeo", "inspect", "--config", src).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "GREETING=hello") {
				t.Errorf("skopeo inspect %s: %v\n%s", src, err, out)
			}
		}
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func lines(s string) []string {
	return strings.Split(strings.TrimRight(s, "\n"), "\n")
}
