package frontend

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// FuzzFrontend: no input panics, every failure is an *Error, and compiling
// the same input twice gives the same key chain.
func FuzzFrontend(f *testing.F) {
	files, err := filepath.Glob("testdata/*.Dockerfile")
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "")
	}
	f.Add([]byte("FROM busybox AS a\nCOPY --from=a x y\n"), "a")
	f.Add([]byte("# escape=`\nFROM busybox\nRUN echo `\n  hi\n"), "")
	f.Add([]byte("ARG X=${Y:-z}\nFROM $X\nONBUILD COPY --from=0 / /\n"), "")

	f.Fuzz(func(t *testing.T, df []byte, target string) {
		compile := func() *Result {
			r := newResolver()
			r.any = true
			res, err := Compile(t.Context(), Options{
				Dockerfile: df, Filename: "Dockerfile", ContextDir: "/ctx", Target: target,
				Platform: "linux/amd64", Resolver: r, BuildArgs: map[string]string{"A": "1"},
			})
			if err != nil {
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("error %T %q is not an *Error", err, err)
				}
				return nil
			}
			if res.Root == nil {
				t.Fatal("nil Root without an error")
			}
			return res
		}
		a, b := compile(), compile()
		if (a == nil) != (b == nil) {
			t.Fatal("same input compiled once and failed once")
		}
		if a == nil {
			return
		}
		if ka, kb := keyChain(t, a.Root), keyChain(t, b.Root); !slices.Equal(ka, kb) {
			t.Fatalf("key chains differ:\n%v\n%v", ka, kb)
		}
	})
}
