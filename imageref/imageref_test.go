package imageref

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		ref, canonical, familiar, scheme string
	}{
		{"busybox", "docker.io/library/busybox:latest", "busybox:latest", "https"},
		{"user/app:1", "docker.io/user/app:1", "user/app:1", "https"},
		{"index.docker.io/library/hello:1", "docker.io/library/hello:1", "hello:1", "https"},
		{"127.0.0.1:5000/busybox", "127.0.0.1:5000/busybox:latest", "127.0.0.1:5000/busybox:latest", "http"},
		{"localhost:5000/x:2", "localhost:5000/x:2", "localhost:5000/x:2", "http"},
		{"[::1]:5000/x", "[::1]:5000/x:latest", "[::1]:5000/x:latest", "http"},
		{"example.com:5000/x", "example.com:5000/x:latest", "example.com:5000/x:latest", "https"},
		{"localhost", "docker.io/library/localhost:latest", "localhost:latest", "https"}, // a name, not a host
	} {
		r, err := Parse(tc.ref)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.ref, err)
			continue
		}
		if got := Canonical(r); got != tc.canonical {
			t.Errorf("Canonical(%q) = %q, want %q", tc.ref, got, tc.canonical)
		}
		if got := Familiar(Canonical(r)); got != tc.familiar {
			t.Errorf("Familiar(%q) = %q, want %q", tc.canonical, got, tc.familiar)
		}
		if got := r.Context().Scheme(); got != tc.scheme {
			t.Errorf("Parse(%q) speaks %s, want %s", tc.ref, got, tc.scheme)
		}
	}
	if _, err := Parse("Not A Ref"); err == nil {
		t.Error("Parse of an invalid reference succeeded")
	}
}

// Canonical spells a tag as containerd's io.containerd.image.name
// annotation does (registry, repository, tag).
func TestCanonicalIsContainerdName(t *testing.T) {
	for _, ref := range []string{"hello:1", "docker.io/library/hello:1", "quay.io/a/b:c", "127.0.0.1:5000/x/y:z"} {
		tag, err := name.NewTag(ref, name.WeakValidation)
		if err != nil {
			t.Fatal(err)
		}
		reg := tag.RegistryStr()
		if reg == name.DefaultRegistry {
			reg = "docker.io"
		}
		if want := reg + "/" + tag.RepositoryStr() + ":" + tag.TagStr(); Canonical(tag) != want {
			t.Errorf("Canonical(%s) = %s, want %s", ref, Canonical(tag), want)
		}
	}
}
