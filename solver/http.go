//go:build linux

package solver

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/solver/dag"
)

// download fetches an HTTPOp's URL (ADD https://...) into a store temp dir
// as op.Filename, mode 0600 and mtime from Last-Modified, as BuildKit does,
// and returns the digest of its content, which is what copies from it key
// on: a changed remote file is a changed step.
func (s *Solver) download(ctx context.Context, v *dag.Vertex, op *dag.HTTPOp) (digest.Digest, error) {
	p := s.opts.Progress.Start(v)
	start := time.Now()
	d, err := s.fetch(ctx, v, op)
	if err != nil {
		p.Error(err)
		return "", stepError(v, err)
	}
	p.Done(time.Since(start))
	return d, nil
}

func (s *Solver) fetch(ctx context.Context, v *dag.Vertex, op *dag.HTTPOp) (digest.Digest, error) {
	dir, err := s.store.Scratch.Dir("download-")
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.dirs[v] = dir
	s.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, op.URL, nil)
	if err != nil {
		return "", fmt.Errorf("ADD %s: %w", op.URL, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("ADD %s: %w", op.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("ADD %s: the server answered %s", op.URL, resp.Status)
	}
	path := filepath.Join(dir, op.Filename)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("ADD %s: downloading: %w", op.URL, err)
	}
	sum := digest.FromHash(h)
	if op.Checksum != "" && digest.Digest(op.Checksum) != sum {
		return "", fmt.Errorf("ADD %s: checksum mismatch: --checksum says %s, the download is %s", op.URL, op.Checksum, sum)
	}
	if lm, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		os.Chtimes(path, lm, lm) //nolint:errcheck // the time is cosmetic
	}
	return sum, nil
}
