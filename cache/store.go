//go:build linux

package cache

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
	"sync"
	"syscall"

	"github.com/kiln-build/kiln/internal/atomicfile"
)

// ErrNotFound is wrapped by every lookup that finds nothing.
var ErrNotFound = errors.New("not found")

// Store is a local store rooted at one directory. It is safe for use by
// several goroutines and several processes at once.
type Store struct {
	root string

	tmpLocks sync.Map // temp dir → *os.File holding its flock (see TempDir)
	sizes    sync.Map // snapshot (diffID hex) → bytes on disk, of the ones this process made
}

// DefaultRoot is $KILN_ROOT, else /var/lib/kiln for root and
// ~/.local/share/kiln for everyone else.
func DefaultRoot() string {
	if r := os.Getenv("KILN_ROOT"); r != "" {
		return r
	}
	if os.Geteuid() == 0 {
		return "/var/lib/kiln"
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "kiln")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "kiln")
	}
	return filepath.Join(home, ".local", "share", "kiln")
}

var dirs = []string{"blobs/sha256", "snapshots", "layers", "keys", "images", "tmp", "containers", "logs"}

// Open opens (creating if needed) the store at root.
func Open(root string) (*Store, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", root, err)
	}
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(abs, d), 0o700); err != nil {
			return nil, fmt.Errorf("creating store %s: %w", abs, err)
		}
	}
	return &Store{root: abs}, nil
}

// Root is the store's directory.
func (s *Store) Root() string { return s.root }

// TempDir makes a fresh directory inside the store (same filesystem as
// snapshots, so it can be renamed into place). It stays flocked by this
// process until RemoveTemp (or exit), so that CleanTmp in another process
// removes it only once its owner is dead.
func (s *Store) TempDir(prefix string) (string, error) {
	d, err := os.MkdirTemp(filepath.Join(s.root, "tmp"), prefix)
	if err != nil {
		return "", fmt.Errorf("store temp dir: %w", err)
	}
	// Locked first, then named as locked: CleanTmp never sees a locked-
	// protocol dir that is not locked yet by a live owner.
	f, err := lockTmp(d)
	if err == nil {
		err = os.Rename(d, d+lockedTmpSuffix)
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		os.RemoveAll(d)
		return "", fmt.Errorf("store temp dir: %w", err)
	}
	d += lockedTmpSuffix
	s.tmpLocks.Store(d, f)
	return d, nil
}

// RemoveTemp removes a dir made by TempDir (if still there) and drops its
// lock.
func (s *Store) RemoveTemp(dir string) error {
	err := os.RemoveAll(dir)
	if f, ok := s.tmpLocks.LoadAndDelete(dir); ok {
		f.(*os.File).Close()
	}
	return err
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// writeJSON writes v to path atomically and durably.
func (s *Store) writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return s.writeFile(path, b)
}

// writeRecord writes v to path atomically, not durably: for the records
// about what builds make (see the package doc), which a power cut may lose
// or tear (readJSON takes a torn record for a missing one) but a killed
// process never does.
func (s *Store) writeRecord(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return s.writeFileNoSync(path, b)
}

// writeFile writes b to path atomically and durably (fsynced before the
// rename).
func (s *Store) writeFile(path string, b []byte) error {
	return s.writeFileSync(path, b, true)
}

// writeFileNoSync writes b to path atomically (temp file, rename), which
// is all a killed process needs; what a power cut may lose is the caller's
// to judge.
func (s *Store) writeFileNoSync(path string, b []byte) error {
	return s.writeFileSync(path, b, false)
}

func (s *Store) writeFileSync(path string, b []byte, sync bool) error {
	o := atomicfile.Options{TempDir: filepath.Join(s.root, "tmp"), Sync: sync}
	if err := atomicfile.WriteFile(path, o, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	}); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: %w", filepath.Base(path), ErrNotFound)
		}
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		// A torn or corrupt record is as good as missing: it gets rebuilt.
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

func mkdirAll(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	return nil
}
