//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/store"
)

const outputsDockerfile = `ARG BASE
FROM $BASE
COPY . /app/
RUN mkdir -p /out && echo built > /out/x && echo hi > /x
`

// reproContext is a build context with fixed content and file times of
// its own (at, for every file and dir), as two checkouts of one commit.
func reproContext(t *testing.T, e *env, at time.Time) string {
	dir := e.context(map[string]string{"Dockerfile": outputsDockerfile, "a.txt": "alpha\n", "sub/b.txt": "beta\n"})
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, at, at)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

type buildMetadata struct {
	Digest     string        `json:"containerimage.digest"`
	Config     string        `json:"containerimage.config.digest"`
	Descriptor v1.Descriptor `json:"containerimage.descriptor"`
	Names      string        `json:"image.name"`
}

func readMetadata(t *testing.T, p string) buildMetadata {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var md buildMetadata
	if err := json.Unmarshal(b, &md); err != nil {
		t.Fatalf("metadata file %s: %v\n%s", p, err, b)
	}
	return md
}

// TestReproducibleImage: two builds of one Dockerfile in two empty stores,
// from two contexts whose files have different times, with
// SOURCE_DATE_EPOCH and rewrite-timestamp=true, give one manifest digest;
// the base layer is the pulled blob, byte for byte.
func TestReproducibleImage(t *testing.T) {
	t.Parallel()
	var digests, archives, kept, keptDigests []string
	for i, at := range []time.Time{time.Now().Add(-time.Hour), time.Now().Add(-5 * time.Minute)} {
		e := newEnv(t)
		ctxDir := reproContext(t, e, at)
		out := t.TempDir()
		e.mustKiln("build", "--progress=plain", "--build-arg", "BASE="+e.base, "--build-arg", "SOURCE_DATE_EPOCH=1700000000",
			"-o", "type=oci,dest="+out+"/img.tar,rewrite-timestamp=true", "--metadata-file", out+"/md.json",
			"-o", fmt.Sprintf("type=registry,name=%s/repro-%d:1,rewrite-timestamp=true", e.reg, i), ctxDir)
		md := readMetadata(t, out+"/md.json")
		// The push is the same image as the archive.
		raw := skopeo(t, "inspect", "--tls-verify=false", "--raw", fmt.Sprintf("docker://%s/repro-%d:1", e.reg, i))
		if d := digest.FromBytes([]byte(raw)); string(d) != md.Digest {
			t.Errorf("build %d pushed manifest %s, wrote %s", i+1, d, md.Digest)
		}
		t.Logf("build %d: manifest %s", i+1, md.Digest)
		digests = append(digests, md.Digest)
		archives = append(archives, out+"/img.tar")
		// The same build without rewrite-timestamp keeps the context's times.
		e.mustKiln("build", "--progress=plain", "--build-arg", "BASE="+e.base, "--build-arg", "SOURCE_DATE_EPOCH=1700000000",
			"-o", "type=oci,dest="+out+"/kept.tar", "--metadata-file", out+"/kept.json", ctxDir)
		kept = append(kept, out+"/kept.tar")
		keptDigests = append(keptDigests, readMetadata(t, out+"/kept.json").Digest)
	}
	// Without rewrite-timestamp the context's times make the digests
	// differ, in file times only: image diff says so with --timestamps.
	if keptDigests[0] == keptDigests[1] {
		t.Errorf("without rewrite-timestamp the builds still agree (%s): the contexts' times do not reach the layers", keptDigests[0])
	}
	e0 := newEnv(t)
	if r := e0.kiln("", "image", "diff", "oci-archive:"+kept[0], "oci-archive:"+kept[1]); r.code != 0 {
		t.Errorf("image diff (semantic) of builds differing in times only: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := e0.kiln("", "image", "diff", "--timestamps", "oci-archive:"+kept[0], "oci-archive:"+kept[1]); r.code != 1 || !strings.Contains(r.stdout, "/app/a.txt: mtime") {
		t.Errorf("image diff --timestamps: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if digests[0] != digests[1] {
		e := newEnv(t)
		r := e.kiln("", "image", "diff", "oci-archive:"+archives[0], "oci-archive:"+archives[1])
		t.Fatalf("the two builds differ: %s vs %s\nkiln image diff:\n%s%s", digests[0], digests[1], r.stdout, r.stderr)
	}
	// The base layer passes through: its digest in the archive is the registry's.
	e := newEnv(t)
	ref, err := name.ParseReference(e.base)
	if err != nil {
		t.Fatal(err)
	}
	base, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	bm, err := base.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	raw := skopeo(t, "inspect", "--raw", "oci-archive:"+archives[0])
	var m v1.Manifest
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatal(err)
	}
	if got, want := m.Layers[0].Digest, bm.Layers[0].Digest; got != want {
		t.Errorf("base layer in the archive is %s, pulled %s", got, want)
	}
	if d := digest.FromBytes([]byte(raw)); string(d) != digests[0] {
		t.Errorf("skopeo reads manifest %s, metadata says %s", d, digests[0])
	}
}

func skopeo(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Skip("skopeo is not installed")
	}
	out, err := exec.Command("skopeo", append([]string{"--insecure-policy"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestOutputsRealClients writes every image output of one build and has
// the tools that read them in the wild read them.
func TestOutputsRealClients(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctxDir := e.context(map[string]string{"Dockerfile": outputsDockerfile, "a.txt": "alpha\n"})
	out := t.TempDir()
	e.mustKiln("build", "--progress=plain", "--build-arg", "BASE="+e.base, "-t", "outs:1",
		"--label", "team=kiln", "--annotation", "org.example.note=hello", "--iidfile", out+"/iid", "--metadata-file", out+"/md.json",
		"-o", "type=oci,dest="+out+"/oci.tar,annotation.org.example.kind=archive",
		"-o", "type=oci,dest="+out+"/zstd,tar=false,compression=zstd,compression-level=9",
		"-o", "type=oci,dest="+out+"/layout,tar=false",
		"-o", "type=oci,dest="+out+"/forced,tar=false,compression=zstd,force-compression=true",
		"-o", "type=oci,dest="+out+"/docker-types.tar,oci-mediatypes=false",
		"-o", "type=docker,dest="+out+"/docker.tar",
		"-o", "type=local,dest="+out+"/fs",
		"-o", "type=tar,dest="+out+"/fs.tar",
		ctxDir)

	// --iidfile and --metadata-file against the store.
	st, err := store.Open(e.root)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := st.Names().Get(t.Context(), "outs:1")
	if err != nil {
		t.Fatal(err)
	}
	id, err := st.Images().ID(t.Context(), rec.Digest)
	if err != nil {
		t.Fatal(err)
	}
	iid, err := os.ReadFile(out + "/iid")
	if err != nil {
		t.Fatal(err)
	}
	if string(iid) != string(id) {
		t.Errorf("--iidfile has %q, the store's image ID is %s", iid, id)
	}
	md := readMetadata(t, out+"/md.json")
	if md.Config != string(id) || md.Names != "outs:1" || md.Descriptor.Digest.String() != md.Digest || md.Descriptor.Size == 0 {
		t.Errorf("metadata %+v, want config %s and name outs:1", md, id)
	}

	// The OCI archive: skopeo reads it; labels in the config, annotations
	// (the flag's and the output's) in the manifest; the metadata names it.
	var insp struct{ Labels map[string]string }
	if err := json.Unmarshal([]byte(skopeo(t, "inspect", "oci-archive:"+out+"/oci.tar")), &insp); err != nil {
		t.Fatal(err)
	}
	if insp.Labels["team"] != "kiln" {
		t.Errorf("labels %v, want team=kiln", insp.Labels)
	}
	raw := skopeo(t, "inspect", "--raw", "oci-archive:"+out+"/oci.tar")
	var m v1.Manifest
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatal(err)
	}
	if m.Annotations["org.example.note"] != "hello" || m.Annotations["org.example.kind"] != "archive" {
		t.Errorf("manifest annotations %v", m.Annotations)
	}
	if d := digest.FromBytes([]byte(raw)); string(d) != md.Digest {
		t.Errorf("metadata digest %s, the archive's manifest is %s", md.Digest, d)
	}

	// zstd layout: the layers built here are zstd, the base passes
	// through as gzip; skopeo copies it (checking every blob).
	raw = skopeo(t, "inspect", "--raw", "oci:"+out+"/zstd")
	var zm v1.Manifest
	if err := json.Unmarshal([]byte(raw), &zm); err != nil {
		t.Fatal(err)
	}
	if n := len(zm.Layers); n < 2 || zm.Layers[0].MediaType != "application/vnd.oci.image.layer.v1.tar+gzip" || zm.Layers[n-1].MediaType != "application/vnd.oci.image.layer.v1.tar+zstd" {
		t.Errorf("zstd layout layers %+v", zm.Layers)
	}
	skopeo(t, "copy", "oci:"+out+"/zstd", "oci-archive:"+out+"/zstd-copy.tar")
	// force-compression: the base layer too.
	var fm v1.Manifest
	if err := json.Unmarshal([]byte(skopeo(t, "inspect", "--raw", "oci:"+out+"/forced")), &fm); err != nil {
		t.Fatal(err)
	}
	for i, l := range fm.Layers {
		if l.MediaType != "application/vnd.oci.image.layer.v1.tar+zstd" {
			t.Errorf("force-compression=true: layer %d is %s", i, l.MediaType)
		}
	}
	skopeo(t, "copy", "oci:"+out+"/forced", "dir:"+t.TempDir())

	// --push: the registry serves what the metadata names.
	pushed := e.reg + "/kiln-outputs:1"
	e.mustKiln("build", "--progress=plain", "--build-arg", "BASE="+e.base, "-t", pushed, "--push", "--metadata-file", out+"/push.json", ctxDir)
	pmd := readMetadata(t, out+"/push.json")
	praw := skopeo(t, "inspect", "--tls-verify=false", "--raw", "docker://"+pushed)
	if d := digest.FromBytes([]byte(praw)); string(d) != pmd.Digest || pmd.Names != pushed {
		t.Errorf("pushed manifest %s, metadata %+v", d, pmd)
	}
	skopeo(t, "copy", "--src-tls-verify=false", "docker://"+pushed, "oci:"+t.TempDir()+":x")
	var ii []struct{ RepoDigests []string }
	if err := json.Unmarshal([]byte(e.mustKiln("inspect", pushed).stdout), &ii); err != nil {
		t.Fatal(err)
	}
	if want := e.reg + "/kiln-outputs@" + pmd.Digest; len(ii) != 1 || !slices.Contains(ii[0].RepoDigests, want) {
		t.Errorf("RepoDigests after build --push: %v, want %s", ii, want)
	}

	// No output: the metadata describes the stored image.
	e.mustKiln("build", "--progress=plain", "--build-arg", "BASE="+e.base, "-t", "outs:2", "--metadata-file", out+"/stored.json", ctxDir)
	smd := readMetadata(t, out+"/stored.json")
	if rec2, err := st.Names().Get(t.Context(), "outs:2"); err != nil || smd.Digest != string(rec2.Digest) || smd.Descriptor.Annotations["config.digest"] != smd.Config || smd.Names != "outs:2" {
		t.Errorf("metadata of a stored image %+v, store %+v %v", smd, rec2, err)
	}

	// kiln image diff: the gzip and zstd layouts of one image are equal;
	// the store's two images differ in the label only.
	if r := e.kiln("", "image", "diff", "oci:"+out+"/layout", "oci:"+out+"/zstd"); r.code != 0 || r.stdout != "" {
		t.Errorf("image diff of one image in gzip and zstd: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r := e.kiln("", "image", "diff", "outs:1", pushed)
	if r.code != 1 || strings.TrimSpace(r.stdout) != `config.config.Labels: only in A: {"team":"kiln"}` {
		t.Errorf("image diff outs:1 %s: exit %d\n%s%s", pushed, r.code, r.stdout, r.stderr)
	}
	if r := e.kiln("", "image", "diff", "oci:"+out+"/nothing", "outs:1"); r.code != 2 {
		t.Errorf("image diff of a missing layout: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// Docker media types when oci-mediatypes=false.
	raw = skopeo(t, "inspect", "--raw", "oci-archive:"+out+"/docker-types.tar")
	var dm v1.Manifest
	if err := json.Unmarshal([]byte(raw), &dm); err != nil {
		t.Fatal(err)
	}
	if dm.MediaType != "application/vnd.docker.distribution.manifest.v2+json" || dm.Config.MediaType != "application/vnd.docker.container.image.v1+json" || dm.Layers[len(dm.Layers)-1].MediaType != "application/vnd.docker.image.rootfs.diff.tar.gzip" {
		t.Errorf("oci-mediatypes=false manifest: %s", raw)
	}

	// umoci unpacks the layout.
	if _, err := exec.LookPath("umoci"); err == nil {
		bundle := filepath.Join(t.TempDir(), "bundle")
		if b, err := exec.Command("umoci", "unpack", "--image", out+"/layout:1", bundle).CombinedOutput(); err != nil {
			t.Errorf("umoci unpack: %v\n%s", err, b)
		} else if b, err := os.ReadFile(bundle + "/rootfs/out/x"); err != nil || string(b) != "built\n" {
			t.Errorf("umoci's rootfs /out/x = %q, %v", b, err)
		}
	}

	// podman loads the docker archive and runs it.
	if _, err := exec.LookPath("podman"); err == nil {
		root, run := t.TempDir(), t.TempDir()
		podman := func(args ...string) (string, error) {
			b, err := exec.Command("podman", append([]string{"--runtime", "runc", "--cgroup-manager", "cgroupfs", "--events-backend", "file",
				"--storage-driver", "vfs", "--root", root, "--runroot", run}, args...)...).CombinedOutput()
			return string(b), err
		}
		if b, err := podman("load", "-i", out+"/docker.tar"); err != nil {
			t.Errorf("podman load: %v\n%s", err, b)
		} else if b, err := podman("run", "--rm", "--network", "none", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096", "localhost/outs:1", "cat", "/x"); err != nil || !strings.Contains(b, "hi") {
			t.Errorf("podman run: %v\n%s", err, b)
		}
	}

	// The filesystem outputs.
	if b, err := os.ReadFile(out + "/fs/out/x"); err != nil || string(b) != "built\n" {
		t.Errorf("type=local /out/x = %q, %v", b, err)
	}
	if b, err := exec.Command("tar", "-tf", out+"/fs.tar", "out/x").CombinedOutput(); err != nil {
		t.Errorf("type=tar has no out/x: %v\n%s", err, b)
	}
}

// TestOutputErrors: bad --output values fail before anything is built,
// naming the key and the valid ones.
func TestOutputErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctxDir := e.context(map[string]string{"Dockerfile": "FROM " + e.base + "\n"})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-o", "type=oci,dest=x.tar,colour=red"}, `unknown key "colour" for type=oci (valid: dest, tar, name,`},
		{[]string{"-o", "type=oci,dest=x.tar,rewrite-timestamp=true"}, "needs SOURCE_DATE_EPOCH"},
		{[]string{"--push"}, "--push needs a name"},
		{[]string{"--label", "nolabel"}, "expected KEY=VALUE"},
	} {
		r := e.kiln("", append(append([]string{"build", "--progress=plain"}, tc.args...), ctxDir)...)
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("kiln build %v: exit %d, stderr %q; want an error containing %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}
