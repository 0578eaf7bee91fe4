//go:build linux

package solver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/kiln-build/kiln/executor/fscopy"
)

// BenchmarkHashSelection is a COPY's context check: walk the selection
// and hash every file (what a fully cached rebuild pays per COPY).
func BenchmarkHashSelection(b *testing.B) {
	for _, tc := range []struct{ files, size int }{{3000, 1 << 10}, {4, 16 << 20}} {
		b.Run(fmt.Sprintf("%dx%dKiB", tc.files, tc.size>>10), func(b *testing.B) {
			dir := b.TempDir()
			buf := make([]byte, tc.size)
			for i := range tc.files {
				sub := filepath.Join(dir, fmt.Sprintf("d%d", i%30))
				os.MkdirAll(sub, 0o755)
				buf[0] = byte(i)
				if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%d", i)), buf, 0o644); err != nil {
					b.Fatal(err)
				}
			}
			o := fscopy.Options{Sources: []string{"."}, Dest: "/ctx/", ContextOwner: true}
			b.SetBytes(int64(tc.files * tc.size))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := HashSelection(context.Background(), dir, o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
