//go:build linux

package cache

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"
)

// BuildLogs keeps one build's step logs under logs/<build-id>/<step>.log.
// Files are created on first use, so a fully cached build writes nothing.
type BuildLogs struct {
	ID  string
	dir string

	mu      sync.Mutex
	created bool
}

// NewBuildLogs starts the logs of a new build. IDs sort by start time.
func (s *Store) NewBuildLogs() *BuildLogs {
	id := time.Now().UTC().Format("20060102T150405") + "-" + randomID()[:8]
	return &BuildLogs{ID: id, dir: filepath.Join(s.root, "logs", id)}
}

// Dir is the build's log directory.
func (b *BuildLogs) Dir() string { return b.dir }

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Path is where the log of step lives.
func (b *BuildLogs) Path(step string) string {
	return filepath.Join(b.dir, unsafeName.ReplaceAllString(step, "_")+".log")
}

// Create opens step's log for streaming writes. The caller closes it.
func (b *BuildLogs) Create(step string) (*os.File, error) {
	b.mu.Lock()
	if !b.created {
		if err := os.MkdirAll(b.dir, 0o700); err != nil {
			b.mu.Unlock()
			return nil, fmt.Errorf("creating build log dir: %w", err)
		}
		b.created = true
	}
	b.mu.Unlock()
	f, err := os.OpenFile(b.Path(step), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating log of step %s: %w", step, err)
	}
	return f, nil
}

// LogDir is one build's log directory as GC and du see it.
type LogDir struct {
	ID      string
	Path    string
	ModTime time.Time
}

// LogDirs lists the builds' log directories.
func (s *Store) LogDirs() ([]LogDir, error) {
	ents, err := os.ReadDir(filepath.Join(s.root, "logs"))
	if err != nil {
		return nil, fmt.Errorf("listing logs: %w", err)
	}
	var out []LogDir
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, LogDir{ID: e.Name(), Path: filepath.Join(s.root, "logs", e.Name()), ModTime: fi.ModTime()})
	}
	return out, nil
}
