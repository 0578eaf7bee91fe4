//go:build linux

package store

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/kiln-build/kiln/internal/atomicfile"
)

// The file helpers every role writes with. Each write is atomic (a temp
// file in tmp, renamed into place); durable ones are fsynced first. What a
// build makes is written atomically only (see the package doc).

const (
	durable    = true
	atomicOnly = false
)

// writeJSON writes v to path, indented.
func writeJSON(tmp, path string, v any, sync bool) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return writeFile(tmp, path, b, sync)
}

// writeFile writes b to path.
func writeFile(tmp, path string, b []byte, sync bool) error {
	o := atomicfile.Options{TempDir: tmp, Sync: sync}
	if err := atomicfile.WriteFile(path, o, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	}); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// readJSON reads the record at path into v. A missing, torn or corrupt
// record wraps ErrNotFound: it is as good as missing, and gets rebuilt.
func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: %w", filepath.Base(path), ErrNotFound)
		}
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: corrupt record (%v): %w", path, err, ErrNotFound)
	}
	return nil
}

// renameDir moves a finished temp dir into place. If another process got
// there first the existing one wins and ours is removed.
func renameDir(from, to string) error {
	err := os.Rename(from, to)
	if err == nil {
		return nil
	}
	if errors.Is(err, syscall.EEXIST) || errors.Is(err, syscall.ENOTEMPTY) {
		return os.RemoveAll(from)
	}
	return fmt.Errorf("committing %s: %w", to, err)
}

// removeDir renames dir into tmp (as name) before removing it, so that a
// half-removed dir is never seen under its own name.
func removeDir(tmp, name, dir string) error {
	t := filepath.Join(tmp, name)
	if err := os.Rename(dir, t); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("removing %s: %w", dir, err)
	}
	if err := os.RemoveAll(t); err != nil {
		return fmt.Errorf("removing %s: %w", dir, err)
	}
	return nil
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
