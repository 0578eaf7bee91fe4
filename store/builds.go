//go:build linux

package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/kiln-build/kiln/digest"
)

// Builds are what builds leave behind: each build's step logs
// (logs/<build id>/<step>.log, collected by GC by age) and, by build name
// (a Dockerfile and target), the record of the last build's steps
// (builds/<sha256 hex of the name>.json and .sum) that the next build's
// --explain-cache and COPY reuse read.
type Builds struct {
	logs    string
	records string
	tmp     string
}

// NewLogs starts the logs of a new build. IDs sort by start time.
func (b *Builds) NewLogs() *BuildLogs {
	id := time.Now().UTC().Format("20060102T150405") + "-" + randomID()[:8]
	return &BuildLogs{ID: id, dir: filepath.Join(b.logs, id)}
}

// logDir is one build's log directory as GC and du see it.
type logDir struct {
	ID      string
	Path    string
	ModTime time.Time
}

// logDirs lists the builds' log directories.
func (b *Builds) logDirs() ([]logDir, error) {
	ents, err := os.ReadDir(b.logs)
	if err != nil {
		return nil, fmt.Errorf("listing logs: %w", err)
	}
	var out []logDir
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, logDir{ID: e.Name(), Path: filepath.Join(b.logs, e.Name()), ModTime: fi.ModTime()})
	}
	return out, nil
}

func (b *Builds) recordPath(name, ext string) string {
	return filepath.Join(b.records, digest.FromBytes([]byte(name)).Hex()+ext)
}

// ReadRecord loads the record of the last build named name into v (see
// solver's explain); it wraps ErrNotFound if there is none.
func (b *Builds) ReadRecord(ctx context.Context, name string, v any) error {
	return readJSON(b.recordPath(name, ".json"), v)
}

// RecordSum is the summary saved with the last record of the build name,
// or "" if there is none: a build whose summary is the same has nothing
// new to record.
func (b *Builds) RecordSum(ctx context.Context, name string) string {
	data, err := os.ReadFile(b.recordPath(name, ".sum"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// WriteRecord saves v, summarised by sum, as the record of the build
// name. The summary goes first and comes back last, so a killed write
// never leaves a summary that does not match its record. Neither is
// fsynced: a record only explains cache misses, and losing one to a power
// cut loses one explanation.
func (b *Builds) WriteRecord(ctx context.Context, name, sum string, v any) error {
	sp := b.recordPath(name, ".sum")
	if err := os.Remove(sp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("writing build record: %w", err)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("writing build record: %w", err)
	}
	if err := writeFile(b.tmp, b.recordPath(name, ".json"), data, atomicOnly); err != nil {
		return err
	}
	return writeFile(b.tmp, sp, []byte(sum+"\n"), atomicOnly)
}

// BuildLogs keeps one build's step logs under logs/<build-id>/<step>.log.
// Files are created on first use, so a fully cached build writes nothing.
type BuildLogs struct {
	ID  string
	dir string

	mu      sync.Mutex
	created bool
}

// Dir is the build's log directory.
func (l *BuildLogs) Dir() string { return l.dir }

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Path is where the log of step lives.
func (l *BuildLogs) Path(step string) string {
	return filepath.Join(l.dir, unsafeName.ReplaceAllString(step, "_")+".log")
}

// Create opens step's log for streaming writes. The caller closes it.
func (l *BuildLogs) Create(step string) (*os.File, error) {
	l.mu.Lock()
	if !l.created {
		if err := os.MkdirAll(l.dir, 0o700); err != nil {
			l.mu.Unlock()
			return nil, fmt.Errorf("creating build log dir: %w", err)
		}
		l.created = true
	}
	l.mu.Unlock()
	f, err := os.OpenFile(l.Path(step), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating log of step %s: %w", step, err)
	}
	return f, nil
}
