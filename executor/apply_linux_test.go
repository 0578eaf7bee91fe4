package executor_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/executor"
	"github.com/kiln-build/kiln/executor/fscopy"
)

func TestApplyCopyFromDir(t *testing.T) {
	requireRoot(t)
	ctxDir := t.TempDir()
	writeFile(t, filepath.Join(ctxDir, "a.txt"), "A", 0o640)
	writeFile(t, filepath.Join(ctxDir, "sub/b.txt"), "B", 0o644)
	if err := os.Chown(filepath.Join(ctxDir, "a.txt"), 1234, 1234); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts fscopy.Options
		want []string
	}{
		{
			name: "context files are root's",
			opts: fscopy.Options{Sources: []string{"a.txt", "sub"}, Dest: "/app/", ContextOwner: true},
			want: []string{`app dir 0755 0:0`, `app/a.txt file 0640 0:0 "A"`, `app/b.txt file 0644 0:0 "B"`},
		},
		{
			name: "chown resolved in the destination",
			opts: fscopy.Options{Sources: []string{"a.txt"}, Dest: "/home/user/a", Chown: "user", ContextOwner: true},
			want: []string{`home dir 0755 0:0`, `home/user dir 0755 0:0`, `home/user/a file 0640 1000:1000 "A"`},
		},
		{
			// BuildKit's readUser: a name the destination does not know is 0.
			name: "unknown chown names are root",
			opts: fscopy.Options{Sources: []string{"a.txt"}, Dest: "/a", Chown: "nobody-here:nogroup-here", ContextOwner: true},
			want: []string{`a file 0640 0:0 "A"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := baseRootfs(t)
			err := executor.Apply(t.Context(), root, executor.FileOp{Copy: &executor.CopyOp{SrcDir: ctxDir, Options: tt.opts}})
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if d := diffLines(tt.want, tree(t, root.Upper)); d != "" {
				t.Error(d)
			}
		})
	}
}

func TestApplyCopyFromLowers(t *testing.T) {
	requireRoot(t)
	d := t.TempDir()
	l1, l2 := filepath.Join(d, "l1"), filepath.Join(d, "l2")
	writeFile(t, filepath.Join(l1, "src/x"), "x", 0o644)
	writeFile(t, filepath.Join(l1, "src/y"), "y", 0o644)
	mustMkdir(t, filepath.Join(l2, "src"), 0o750)
	writeFile(t, filepath.Join(l2, "src/z"), "z", 0o600)
	// l2 deletes /src/y: overlay whiteout.
	if err := unix.Mknod(filepath.Join(l2, "src/y"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		lowers []string
		opts   fscopy.Options
		want   []string
	}{
		{
			name:   "overlay of two layers (the contents' dest is made 0755)",
			lowers: []string{l1, l2},
			opts:   fscopy.Options{Sources: []string{"/src"}, Dest: "/dst"},
			want:   []string{`dst dir 0755 0:0`, `dst/x file 0644 0:0 "x"`, `dst/z file 0600 0:0 "z"`},
		},
		{
			name:   "single layer",
			lowers: []string{l1},
			opts:   fscopy.Options{Sources: []string{"/src/y"}, Dest: "/tmp/"},
			want:   []string{`tmp dir 0755 0:0`, `tmp/y file 0644 0:0 "y"`},
		},
	}
	before := append(tree(t, l1), tree(t, l2)...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := baseRootfs(t)
			err := executor.Apply(t.Context(), root, executor.FileOp{Copy: &executor.CopyOp{SrcLowers: tt.lowers, Options: tt.opts}})
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if d := diffLines(tt.want, tree(t, root.Upper)); d != "" {
				t.Error(d)
			}
			// The source layers are untouched.
			if d := diffLines(before, append(tree(t, l1), tree(t, l2)...)); d != "" {
				t.Errorf("source layers changed: %s", d)
			}
		})
	}
}

func TestApplyErrors(t *testing.T) {
	requireRoot(t)
	ctxDir := t.TempDir()
	writeFile(t, filepath.Join(ctxDir, "a"), "a", 0o644)
	writeFile(t, filepath.Join(ctxDir, "b"), "b", 0o644)
	tests := []struct {
		name    string
		op      executor.FileOp
		check   func(error) bool
		wantMsg string
	}{
		{
			name: "missing source in dir",
			op:   executor.FileOp{Copy: &executor.CopyOp{SrcDir: ctxDir, Options: fscopy.Options{Sources: []string{"missing"}, Dest: "/x"}}},
			check: func(err error) bool {
				var nf *fscopy.NotFoundError
				return errors.As(err, &nf) && nf.Source == "missing"
			},
			wantMsg: `"missing": not found`,
		},
		{
			name:    "empty source chain",
			op:      executor.FileOp{Copy: &executor.CopyOp{Options: fscopy.Options{Sources: []string{"/etc"}, Dest: "/x"}}},
			check:   func(err error) bool { var nf *fscopy.NotFoundError; return errors.As(err, &nf) },
			wantMsg: `"/etc": not found`,
		},
		{
			name:    "several sources to a file",
			op:      executor.FileOp{Copy: &executor.CopyOp{SrcDir: ctxDir, Options: fscopy.Options{Sources: []string{"a", "b"}, Dest: "/x"}}},
			check:   func(err error) bool { return errors.Is(err, fscopy.ErrDestNotDir) },
			wantMsg: fscopy.ErrDestNotDir.Error(),
		},
		{
			name:    "no operation",
			op:      executor.FileOp{},
			check:   func(err error) bool { return err != nil },
			wantMsg: "exactly one of Copy and Mkdir",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := baseRootfs(t)
			err := executor.Apply(t.Context(), root, tt.op)
			if !tt.check(err) {
				t.Fatalf("err = %v (%T), wrong kind", err, err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("err = %q, want it to contain %q", err, tt.wantMsg)
			}
			if got := tree(t, root.Upper); len(got) != 0 {
				t.Errorf("failed op left changes:\n%s", strings.Join(got, "\n"))
			}
		})
	}
}

func TestApplyMkdir(t *testing.T) {
	requireRoot(t)
	tests := []struct {
		name    string
		scratch bool
		op      executor.MkdirOp
		want    []string
	}{
		{"with owner", false, executor.MkdirOp{Path: "/a/b/c", Chown: "user", Mode: 0o750},
			[]string{"a dir 0750 1000:1000", "a/b dir 0750 1000:1000", "a/b/c dir 0750 1000:1000"}},
		{"existing dir untouched", false, executor.MkdirOp{Path: "/tmp", Mode: 0o700}, nil},
		{"below an existing dir", false, executor.MkdirOp{Path: "/tmp/new", Mode: 0o755},
			[]string{"tmp dir 0755 0:0", "tmp/new dir 0755 0:0"}},
		{"scratch", true, executor.MkdirOp{Path: "/app", Mode: 0o755}, []string{"app dir 0755 0:0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := newRootfs(t)
			if !tt.scratch {
				root = baseRootfs(t)
			}
			op := tt.op
			if err := executor.Apply(t.Context(), root, executor.FileOp{Mkdir: &op}); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if d := diffLines(tt.want, tree(t, root.Upper)); d != "" {
				t.Error(d)
			}
			if m := mountsUnder(t, root.Upper, os.TempDir()+"/kiln-exec-"); len(m) != 0 {
				t.Errorf("host mounts left:\n%s", strings.Join(m, "\n"))
			}
		})
	}
}
