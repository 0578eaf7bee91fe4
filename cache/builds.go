//go:build linux

package cache

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kiln-build/kiln/digest"
)

func (s *Store) buildRecordPath(id, ext string) string {
	return filepath.Join(s.root, "builds", digest.FromBytes([]byte(id)).Hex()+ext)
}

// ReadBuildRecord loads what the last build with this id recorded (see
// solver's explain); v is left as is if there is none.
func (s *Store) ReadBuildRecord(id string, v any) error {
	return readJSON(s.buildRecordPath(id, ".json"), v)
}

// BuildRecordSum is the summary saved with the last record of the build
// id, or "" if there is none: a build whose summary is the same has
// nothing new to record.
func (s *Store) BuildRecordSum(id string) string {
	b, err := os.ReadFile(s.buildRecordPath(id, ".sum"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// WriteBuildRecord saves v, summarised by sum, as the record of the build
// with this id. The summary goes first and comes back last, so a killed
// write never leaves a summary that does not match its record. Neither is
// fsynced: a record only explains cache misses, and losing one to a power
// cut loses one explanation.
func (s *Store) WriteBuildRecord(id, sum string, v any) error {
	if err := mkdirAll(filepath.Join(s.root, "builds")); err != nil {
		return err
	}
	sp := s.buildRecordPath(id, ".sum")
	if err := os.Remove(sp); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("writing build record: %w", err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("writing build record: %w", err)
	}
	if err := s.writeFileNoSync(s.buildRecordPath(id, ".json"), b); err != nil {
		return err
	}
	return s.writeFileNoSync(sp, []byte(sum+"\n"))
}
