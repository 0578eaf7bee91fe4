package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
)

// Options say how a file is written.
type Options struct {
	// TempDir holds the temporary file: "" is the final file's directory.
	// It must be on the same filesystem, for the rename.
	TempDir string
	// Sync fsyncs the file before the rename: durable against a power
	// cut, not only atomic against a crash.
	Sync bool
	// Perm is the file's mode; 0 keeps the temporary file's 0600.
	Perm os.FileMode
}

// File is a file being written under a temporary name. Commit gives it its
// final name; Close without Commit removes it.
type File struct {
	f    *os.File
	o    Options
	done bool
}

// Create starts a file in o.TempDir (required: the final name is only
// given to Commit, as when it is the digest of what is written).
func Create(o Options) (*File, error) {
	if o.TempDir == "" {
		return nil, errors.New("atomicfile: Create needs a TempDir")
	}
	f, err := os.CreateTemp(o.TempDir, ".tmp-*")
	if err != nil {
		return nil, err
	}
	return &File{f: f, o: o}, nil
}

func (f *File) Write(p []byte) (int, error) { return f.f.Write(p) }

// Commit renames the file to path, after fsyncing it if o.Sync, and
// closes it. Whatever fails, the temporary file is gone afterwards.
func (f *File) Commit(path string) error {
	if f.done {
		return errors.New("atomicfile: Commit of a closed file")
	}
	f.done = true
	err := f.finish(path)
	if err != nil {
		os.Remove(f.f.Name())
	}
	return err
}

func (f *File) finish(path string) error {
	if f.o.Sync {
		if err := f.f.Sync(); err != nil {
			f.f.Close()
			return err
		}
	}
	if err := f.f.Close(); err != nil {
		return err
	}
	if f.o.Perm != 0 {
		if err := os.Chmod(f.f.Name(), f.o.Perm); err != nil {
			return err
		}
	}
	return os.Rename(f.f.Name(), path)
}

// Close abandons the file unless it was committed.
func (f *File) Close() error {
	if f.done {
		return nil
	}
	f.done = true
	f.f.Close()
	return os.Remove(f.f.Name())
}

// WriteFile writes path with what write writes, atomically.
func WriteFile(path string, o Options, write func(io.Writer) error) error {
	if o.TempDir == "" {
		o.TempDir = filepath.Dir(path)
	}
	f, err := Create(o)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := write(f); err != nil {
		return err
	}
	return f.Commit(path)
}
