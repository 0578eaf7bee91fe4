package dag

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/containerenv"
	"github.com/kiln-build/kiln/digest"
)

var update = flag.Bool("update", false, "rewrite testdata/keys.golden (only allowed together with a version bump)")

const goldenFile = "testdata/keys.golden"

var (
	goldenInputs  = []digest.Digest{digest.NewFromHex(strings.Repeat("a", 64)), digest.NewFromHex(strings.Repeat("b", 64))}
	goldenContent = digest.NewFromHex(strings.Repeat("c", 64))
)

// goldenOps is one instance of every Op with every field set, so that a
// change to any field's encoding changes a golden key (TestGoldenOpsComplete
// keeps it that way when a field or an op is added).
func goldenOps() []Op {
	return []Op{
		&ScratchOp{},
		&ImageOp{Ref: "docker.io/library/busybox:1.36", Digest: "sha256:" + strings.Repeat("1", 64), Platform: "linux/arm64/v8"},
		&LocalOp{Name: "context", Dir: "/home/dev/src", Excludes: []string{"*.md", "!README.md"}},
		&ExecOp{
			Args: []string{"/bin/sh", "-c", "make all"}, Env: []string{"PATH=" + containerenv.DefaultPath, "GOFLAGS=-mod=vendor"},
			User: "app:staff", Cwd: "/src", Network: "none", Security: "insecure",
			Mounts: []Mount{{
				Type: "cache", Target: "/root/.cache", Input: 1, Source: "sub", ReadOnly: true,
				ID: "gocache", Sharing: "locked", Mode: 0o700, UID: 1000, GID: 1001, Size: 1 << 20,
				Required: true, Env: "TOKEN",
			}},
			Hostname: "builder", ProxyEnv: []string{"HTTP_PROXY=http://proxy:3128"},
		},
		&CopyOp{
			Sources: []string{"src/", "go.*"}, Dest: "/app/", Chown: "app:staff", Chmod: "0750",
			Excludes: []string{"*.tmp"}, Parents: true, Unpack: true, Link: true, Mtime: 1700000000,
		},
		&MkdirOp{Path: "/app/data", Chown: "1000:1001", Mode: 0o750},
		&InlineOp{Files: []InlineFile{{Name: "bin/run.sh", Data: "#!/bin/sh\necho hi\n", Mode: 0o755}}},
		&HTTPOp{URL: "https://example.com/a.tar.gz", Checksum: "sha256:" + strings.Repeat("2", 64), Filename: "a.tar.gz"},
	}
}

// TestKeyGolden pins the key of every op. If it fails, what a key means
// changed: old stores hold results under keys that would now be hits for
// something else. Bump keyVersion (an Op's fields or meaning, the key's
// encoding) or ExecVersion (what the executor or fscopy make of an op) in
// key.go, then regenerate with `go test ./solver/dag -run TestKeyGolden
// -update`; -update refuses to record new keys under the old versions.
func TestKeyGolden(t *testing.T) {
	got := goldenText(t)
	want, err := os.ReadFile(goldenFile)
	if err != nil && !*update {
		t.Fatal(err)
	}
	if bytes.Equal(got, want) {
		return
	}
	sameVersions := err == nil && firstLine(got) == firstLine(want)
	if *update {
		if sameVersions {
			t.Fatalf("keys changed under the same versions (%s): bump keyVersion or ExecVersion in key.go first", firstLine(got))
		}
		if err := os.WriteFile(goldenFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if sameVersions {
		t.Errorf("keys changed but keyVersion and ExecVersion did not: bump one in key.go, then run with -update\n--- %s\n%s\n--- now\n%s", goldenFile, want, got)
	} else {
		t.Errorf("versions changed: run with -update to record the new keys\n--- %s\n%s\n--- now\n%s", goldenFile, want, got)
	}
}

func firstLine(b []byte) string {
	l, _, _ := bytes.Cut(b, []byte("\n"))
	return string(l)
}

// goldenText is the golden file: the versions, then each op's kind, key
// and encoding (so that a diff shows what changed).
func goldenText(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	fmt.Fprintf(&b, "keyVersion %d, ExecVersion %d\n", keyVersion, ExecVersion)
	b.WriteString("# The keys of goldenOps (key_test.go). New keys here need a version bump in key.go.\n")
	for _, op := range goldenOps() {
		k, err := Key(op, goldenInputs, goldenContent)
		if err != nil {
			t.Fatal(err)
		}
		enc, err := json.Marshal(op)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %s\n  %s\n", op.Kind(), k, enc)
	}
	return b.Bytes()
}

// TestGoldenOpsComplete fails when an op type or a field is added without
// being set in goldenOps, which would let its encoding change unnoticed.
func TestGoldenOpsComplete(t *testing.T) {
	have := map[string]bool{}
	for _, op := range goldenOps() {
		name := reflect.TypeOf(op).Elem().Name()
		have[name] = true
		for _, p := range zeroFields(reflect.ValueOf(op).Elem(), name) {
			t.Errorf("goldenOps: %s is not set", p)
		}
	}
	for _, name := range opTypes(t) {
		if !have[name] {
			t.Errorf("goldenOps has no %s", name)
		}
	}
}

// zeroFields lists the paths of v's zero fields, looking into structs and
// the elements of slices (which must not be empty).
func zeroFields(v reflect.Value, path string) []string {
	switch v.Kind() {
	case reflect.Struct:
		var out []string
		for i := range v.NumField() {
			out = append(out, zeroFields(v.Field(i), path+"."+v.Type().Field(i).Name)...)
		}
		return out
	case reflect.Slice:
		if v.Len() == 0 {
			return []string{path}
		}
		var out []string
		for i := range v.Len() {
			out = append(out, zeroFields(v.Index(i), fmt.Sprintf("%s[%d]", path, i))...)
		}
		return out
	}
	if v.IsZero() {
		return []string{path}
	}
	return nil
}

// opTypes are the types in this package with a Kind method: the ops.
func opTypes(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range af.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv == nil || fd.Name.Name != "Kind" {
				continue
			}
			if star, ok := fd.Recv.List[0].Type.(*ast.StarExpr); ok {
				if id, ok := star.X.(*ast.Ident); ok {
					out = append(out, id.Name)
				}
			}
		}
	}
	if len(out) < 8 {
		t.Fatalf("found only %d op types: %q", len(out), out)
	}
	return out
}

// TestKeyCoversEveryField zeroes each field of each golden op in turn: the
// key must change unless the field is `json:"-"` (volatile: a host path, a
// tag, proxy settings), and then it must not.
func TestKeyCoversEveryField(t *testing.T) {
	for i, op := range goldenOps() {
		k0, err := Key(op, goldenInputs, goldenContent)
		if err != nil {
			t.Fatal(err)
		}
		name := reflect.TypeOf(op).Elem().Name()
		for _, f := range leafFields(reflect.ValueOf(op).Elem(), name, true) {
			changed := goldenOps()[i]
			f.zero(reflect.ValueOf(changed).Elem())
			k, err := Key(changed, goldenInputs, goldenContent)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case f.keyed && k == k0:
				t.Errorf("%s is not in the key", f.path)
			case !f.keyed && k != k0:
				t.Errorf("%s is json:\"-\" but changes the key", f.path)
			}
		}
	}
	// Inputs, content and the kind are in the key too.
	base := &MkdirOp{Path: "/a"}
	k0, _ := Key(base, goldenInputs, goldenContent)
	for what, k := range map[string]func() (digest.Digest, error){
		"inputs": func() (digest.Digest, error) { return Key(base, goldenInputs[:1], goldenContent) },
		"order": func() (digest.Digest, error) {
			return Key(base, []digest.Digest{goldenInputs[1], goldenInputs[0]}, goldenContent)
		},
		"content": func() (digest.Digest, error) { return Key(base, goldenInputs, "") },
	} {
		if got, err := k(); err != nil || got == k0 {
			t.Errorf("changing the %s does not change the key (%v)", what, err)
		}
	}
}

// Each version changes the keys it covers: keyVersion every key,
// ExecVersion those of the ops the executor runs, and no other.
func TestVersionsScope(t *testing.T) {
	executed := map[string]bool{"exec": true, "copy": true, "mkdir": true}
	for _, op := range goldenOps() {
		k0, err := Key(op, goldenInputs, goldenContent)
		if err != nil {
			t.Fatal(err)
		}
		kv, _ := keyAt(keyVersion+1, ExecVersion, op, goldenInputs, goldenContent)
		ev, _ := keyAt(keyVersion, ExecVersion+1, op, goldenInputs, goldenContent)
		if kv == k0 {
			t.Errorf("%s: keyVersion is not in its key", op.Kind())
		}
		if (ev != k0) != executed[op.Kind()] {
			t.Errorf("%s: ExecVersion in its key: %v, want %v", op.Kind(), ev != k0, executed[op.Kind()])
		}
	}
}

type leafField struct {
	path  string
	keyed bool
	zero  func(op reflect.Value) // zeroes this field in another instance
}

// leafFields lists the fields under v, each with a way to zero it in a
// fresh copy of the op; the elements of slices of structs are entered too.
func leafFields(v reflect.Value, path string, keyed bool) []leafField {
	var out []leafField
	for i := range v.NumField() {
		sf := v.Type().Field(i)
		tag, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		fkeyed := keyed && tag != "-"
		fpath := path + "." + sf.Name
		fv := v.Field(i)
		if fv.IsZero() {
			continue // TestGoldenOpsComplete reports it
		}
		out = append(out, leafField{fpath, fkeyed, func(op reflect.Value) { op.Field(i).SetZero() }})
		if fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.Struct {
			for j := range fv.Len() {
				for _, sub := range leafFields(fv.Index(j), fmt.Sprintf("%s[%d]", fpath, j), fkeyed) {
					out = append(out, leafField{sub.path, sub.keyed, func(op reflect.Value) {
						sub.zero(op.Field(i).Index(j))
					}})
				}
			}
		}
	}
	return out
}
