package dag

import (
	"testing"

	"github.com/kiln-build/kiln/digest"
)

func TestKeyStableAndSensitive(t *testing.T) {
	base := func() Op {
		return &ExecOp{Args: []string{"/bin/sh", "-c", "make"}, Env: []string{"PATH=/bin"}, User: "app", Cwd: "/src", Network: ""}
	}
	k0, err := Key(base(), []digest.Digest{"sha256:aa"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if k1, _ := Key(base(), []digest.Digest{"sha256:aa"}, ""); k1 != k0 {
		t.Fatalf("same op, different keys: %s %s", k0, k1)
	}
	changes := map[string]func() (Op, []digest.Digest, digest.Digest){
		"args": func() (Op, []digest.Digest, digest.Digest) {
			o := base().(*ExecOp)
			o.Args[2] = "make all"
			return o, []digest.Digest{"sha256:aa"}, ""
		},
		"env": func() (Op, []digest.Digest, digest.Digest) {
			o := base().(*ExecOp)
			o.Env = nil
			return o, []digest.Digest{"sha256:aa"}, ""
		},
		"user": func() (Op, []digest.Digest, digest.Digest) {
			o := base().(*ExecOp)
			o.User = ""
			return o, []digest.Digest{"sha256:aa"}, ""
		},
		"cwd": func() (Op, []digest.Digest, digest.Digest) {
			o := base().(*ExecOp)
			o.Cwd = "/"
			return o, []digest.Digest{"sha256:aa"}, ""
		},
		"network": func() (Op, []digest.Digest, digest.Digest) {
			o := base().(*ExecOp)
			o.Network = "none"
			return o, []digest.Digest{"sha256:aa"}, ""
		},
		"input":   func() (Op, []digest.Digest, digest.Digest) { return base(), []digest.Digest{"sha256:ab"}, "" },
		"content": func() (Op, []digest.Digest, digest.Digest) { return base(), []digest.Digest{"sha256:aa"}, "sha256:cc" },
		"kind": func() (Op, []digest.Digest, digest.Digest) {
			return &MkdirOp{Path: "/src"}, []digest.Digest{"sha256:aa"}, ""
		},
	}
	for name, f := range changes {
		op, in, c := f()
		k, err := Key(op, in, c)
		if err != nil {
			t.Fatal(err)
		}
		if k == k0 {
			t.Errorf("changing %s did not change the key", name)
		}
	}
}

func TestKeyIgnoresVolatileFields(t *testing.T) {
	a, _ := Key(&LocalOp{Name: "context", Dir: "/a"}, nil, "")
	b, _ := Key(&LocalOp{Name: "context", Dir: "/b"}, nil, "")
	if a != b {
		t.Error("LocalOp key depends on the host path")
	}
	c, _ := Key(&ImageOp{Ref: "x:1", Digest: "sha256:d"}, nil, "")
	d, _ := Key(&ImageOp{Ref: "y:2", Digest: "sha256:d"}, nil, "")
	if c != d {
		t.Error("ImageOp key depends on the tag, not only the digest")
	}
}
