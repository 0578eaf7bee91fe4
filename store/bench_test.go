//go:build linux

package store

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/kiln-build/kiln/digest"
)

// writeTree makes n files of size bytes, half random (incompressible) and
// half text, in dir.
func writeTree(b *testing.B, dir string, n, size int) {
	b.Helper()
	r := rand.New(rand.NewSource(1))
	buf := make([]byte, size)
	for i := range n {
		sub := filepath.Join(dir, fmt.Sprintf("d%d", i%10))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		if i%2 == 0 {
			r.Read(buf)
		} else {
			for j := range buf {
				buf[j] = "kiln builds images\n"[j%19]
			}
		}
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%d", i)), buf, 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCommitDir is a step's commit: write the upper dir as a tar into
// sha256 (nothing is compressed or stored but the snapshot) and move the
// snapshot into place.
func BenchmarkMoveIn(b *testing.B) {
	for _, tc := range []struct{ files, size int }{{1000, 4 << 10}, {64, 256 << 10}} {
		b.Run(fmt.Sprintf("%dx%dKiB", tc.files, tc.size>>10), func(b *testing.B) {
			s, err := Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(tc.files * tc.size))
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				dir, err := s.Temp().Dir("bench-")
				if err != nil {
					b.Fatal(err)
				}
				writeTree(b, dir, tc.files, tc.size)
				os.WriteFile(filepath.Join(dir, "unique"), []byte(fmt.Sprint(i)), 0o644)
				b.StartTimer()
				if _, err := s.Layers().MoveIn(context.Background(), dir); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAutoGCCheck is what every build pays after it ends when there
// is nothing to collect.
func BenchmarkAutoGCCheck(b *testing.B) {
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	for i := range 50 {
		dir, _ := s.Temp().Dir("bench-")
		writeTree(b, dir, 20, 1024)
		os.WriteFile(filepath.Join(dir, "unique"), []byte(fmt.Sprint(i)), 0o644)
		l, err := s.Layers().MoveIn(context.Background(), dir)
		if err != nil {
			b.Fatal(err)
		}
		s.Records().Put(context.Background(), digest.FromBytes([]byte(fmt.Sprint(i))), []Layer{l})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, ran, err := s.GC().Auto(context.Background()); err != nil || ran {
			b.Fatal(ran, err)
		}
	}
}

// BenchmarkGzipLayer is what the first export of a built layer pays: its
// snapshot written as a tar, gzipped, hashed twice, stored as a blob.
func BenchmarkGzip(b *testing.B) {
	for _, tc := range []struct{ files, size int }{{1000, 4 << 10}, {64, 256 << 10}} {
		b.Run(fmt.Sprintf("%dx%dKiB", tc.files, tc.size>>10), func(b *testing.B) {
			s, err := Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(tc.files * tc.size))
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				dir, err := s.Temp().Dir("bench-")
				if err != nil {
					b.Fatal(err)
				}
				writeTree(b, dir, tc.files, tc.size)
				os.WriteFile(filepath.Join(dir, "unique"), []byte(fmt.Sprint(i)), 0o644)
				l, err := s.Layers().MoveIn(context.Background(), dir)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := s.Layers().Gzip(context.Background(), l); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
