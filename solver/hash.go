package solver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/executor/fscopy"
	"github.com/kiln-build/kiln/solver/dag"
)

// HashSelection digests exactly what a copy with o reads from dir: each
// selected path with its type, mode, link target and data. Owners and
// mtimes are left out: context files are copied as 0:0 and mtime alone
// changes nothing a build can see in the result's meaning.
func HashSelection(ctx context.Context, dir string, o fscopy.Options) (dag.Digest, error) {
	return hashSelection(ctx, dir, o, nil, nil)
}

// hashSelection is HashSelection with file sums taken from sc when it can
// vouch for them (sc may be nil), and each entry's description put in
// files (when not nil) so a later build can say which file changed.
func hashSelection(ctx context.Context, dir string, o fscopy.Options, sc *cache.StatCache, files map[string]string) (dag.Digest, error) {
	h := sha256.New()
	err := fscopy.Walk(ctx, dir, o, func(rel string, fi os.FileInfo) error {
		entry := fmt.Sprintf("%o", uint32(fi.Mode()))
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			t, err := os.Readlink(filepath.Join(dir, rel))
			if err != nil {
				return err
			}
			entry += fmt.Sprintf(" -> %q", t)
		case fi.Mode().IsRegular():
			p := filepath.Join(dir, rel)
			var sum string
			var err error
			if sc != nil {
				sum, err = sc.Sum(p, fi, func() (string, error) { return fileSum(p) })
			} else {
				sum, err = fileSum(p)
			}
			if err != nil {
				return err
			}
			entry += fmt.Sprintf(" %d %s", fi.Size(), sum)
		}
		fmt.Fprintf(h, "%q %s\n", rel, entry)
		if files != nil {
			files[rel] += entry
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return dag.Digest("sha256:" + hex.EncodeToString(h.Sum(nil))), nil
}

func fileSum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
