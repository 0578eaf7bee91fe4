//go:build linux

package exporter

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestExportFiles(t *testing.T) {
	img := testImage(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		output string
		check  func(t *testing.T, dest string, stdout []byte)
	}{
		{"type=oci,dest=" + dir + "/a.tar,name=hello:1", func(t *testing.T, dest string, _ []byte) {
			f, err := os.Open(dest)
			must(t, err)
			defer f.Close()
			layout := t.TempDir()
			untar(t, f, layout)
			checkLayout(t, layout, img, "1", "docker.io/library/hello:1")
		}},
		{"type=oci,dest=" + dir + "/layout,tar=false", func(t *testing.T, dest string, _ []byte) {
			checkLayout(t, dest, img, "latest", "")
		}},
		{"type=oci,dest=-,name=x:2", func(t *testing.T, _ string, stdout []byte) {
			layout := t.TempDir()
			untar(t, bytes.NewReader(stdout), layout)
			checkLayout(t, layout, img, "2", "docker.io/library/x:2")
		}},
		{"type=docker,dest=" + dir + "/d.tar,name=x:3", func(t *testing.T, dest string, _ []byte) {
			if _, err := os.Stat(dest); err != nil {
				t.Error(err)
			}
		}},
		{"-", func(t *testing.T, _ string, stdout []byte) {
			// The merged filesystem: etc/gone is whited out by layer 2.
			var names []string
			tr := tar.NewReader(bytes.NewReader(stdout))
			for {
				hdr, err := tr.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				must(t, err)
				names = append(names, hdr.Name)
			}
			for _, n := range []string{"etc/hello", "bin/tool"} {
				if !slices.Contains(names, n) {
					t.Errorf("filesystem tar lacks %s: %q", n, names)
				}
			}
			if slices.Contains(names, "etc/gone") || slices.Contains(names, "etc/.wh.gone") {
				t.Errorf("filesystem tar has the deleted file: %q", names)
			}
		}},
	} {
		t.Run(tc.output, func(t *testing.T) {
			out, err := ParseOutput(tc.output)
			must(t, err)
			var stdout bytes.Buffer
			must(t, Write(t.Context(), out, img, &stdout))
			if out.Dest != "-" && stdout.Len() > 0 {
				t.Errorf("Export to %s wrote %d bytes to stdout", out.Dest, stdout.Len())
			}
			tc.check(t, out.Dest, stdout.Bytes())
		})
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, ".tmp-*")); len(tmp) > 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

func TestExportLocal(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: files keep their owners")
	}
	dest := filepath.Join(t.TempDir(), "out")
	out, err := ParseOutput(dest)
	must(t, err)
	must(t, Write(t.Context(), out, testImage(t), nil))
	b, err := os.ReadFile(filepath.Join(dest, "etc", "hello"))
	if err != nil || string(b) != "hello\n" {
		t.Errorf("etc/hello: %q, %v", b, err)
	}
	if _, err := os.Lstat(filepath.Join(dest, "etc", "gone")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("etc/gone was deleted by a later layer but exists: %v", err)
	}
}

func TestExportFailureLeavesNoFile(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "x.tar")
	out, err := ParseOutput("type=docker,dest=" + dest + ",name=BAD NAME")
	must(t, err)
	if err := Write(t.Context(), out, testImage(t), nil); err == nil {
		t.Fatal("Write with an invalid name succeeded")
	}
	if ents, _ := os.ReadDir(filepath.Dir(dest)); len(ents) != 0 {
		t.Errorf("failed export left %v", ents)
	}
	if err := Write(t.Context(), Output{Type: TypeImage}, testImage(t), nil); err == nil {
		t.Error("Write of type=image succeeded; that one is Export's")
	}
}
