package imageref

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Parse parses ref as docker does and allows plain HTTP for registries on
// the loopback interface.
func Parse(ref string) (name.Reference, error) {
	opts := []name.Option{name.WeakValidation}
	if host := strings.SplitN(ref, "/", 2)[0]; strings.Contains(ref, "/") && isLoopback(host) {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return nil, fmt.Errorf("invalid image reference %q: %w", ref, err)
	}
	return r, nil
}

func isLoopback(host string) bool {
	h := host
	if i := strings.LastIndex(h, ":"); i >= 0 && !strings.HasSuffix(h, "]") {
		h = h[:i]
	}
	h = strings.Trim(h, "[]")
	return h == "localhost" || strings.HasPrefix(h, "127.") || h == "::1"
}

// Canonical is r's full name in docker's (and containerd's) spelling:
// "docker.io/library/busybox:latest".
func Canonical(r name.Reference) string {
	s := r.Name()
	if strings.HasPrefix(s, name.DefaultRegistry+"/") {
		s = "docker.io/" + strings.TrimPrefix(s, name.DefaultRegistry+"/")
	}
	return s
}

// Familiar shortens a canonical name the way docker prints it.
func Familiar(s string) string {
	s = strings.TrimPrefix(s, "docker.io/")
	return strings.TrimPrefix(s, "library/")
}
