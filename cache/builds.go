package cache

import (
	"path/filepath"
)

// ReadBuildRecord loads what the last build with this id recorded (see
// solver's explain); v is left as is if there is none.
func (s *Store) ReadBuildRecord(id string, v any) error {
	return readJSON(filepath.Join(s.root, "builds", digestOf([]byte(id)).Hex()+".json"), v)
}

// WriteBuildRecord saves v as the record of the build with this id.
func (s *Store) WriteBuildRecord(id string, v any) error {
	dir := filepath.Join(s.root, "builds")
	if err := mkdirAll(dir); err != nil {
		return err
	}
	return s.writeJSON(filepath.Join(dir, digestOf([]byte(id)).Hex()+".json"), v)
}
