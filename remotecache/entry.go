//go:build linux

package remotecache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/store"
)

// Media types of a cache entry's config: the key's record, or a cache
// mount's description.
const (
	MediaTypeEntry = "application/vnd.kiln.cache.entry.v1+json"
	MediaTypeMount = "application/vnd.kiln.cache.mount.v1+json"
)

// Entry is what one cache key made, as another machine exported it.
type Entry struct {
	Key    digest.Digest `json:"key"`
	Layers []Layer       `json:"layers"` // the chain, bottom first
	// Slot, Step: the step that made the key, for --explain-cache on the
	// importing machine (Step is the solver's record, opaque here).
	Slot string          `json:"slot,omitempty"`
	Step json.RawMessage `json:"step,omitempty"`

	src *source // where it was found; nil for an entry to export
}

// Layer is one layer of an entry's chain: its uncompressed diffID and the
// blob the entry's manifest names for it.
type Layer struct {
	DiffID    digest.Digest `json:"diffID"`
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
	MediaType string        `json:"mediaType"`
}

// mountConfig is a cache mount entry's config.
type mountConfig struct {
	ID       string        `json:"id"`
	Platform string        `json:"platform"`
	DiffID   digest.Digest `json:"diffID"`
}

// Result is one step of a finished build, offered for export: its key,
// its layer chain in the store, and whether it is a step of the final
// image (mode=min exports only those).
type Result struct {
	Key    digest.Digest
	Layers []store.Layer
	Slot   string
	Step   json.RawMessage
	Final  bool
}

// tagPattern is the OCI distribution spec's tag grammar.
var tagPattern = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)

// naming turns keys, mount ids and slots into tags under a base tag (the
// cache reference's): "<base>-<key hex>", as much of the key as fits in
// 128 characters but never less than 32 hex digits.
type naming struct{ base string }

func newNaming(base string) (naming, error) {
	if !tagPattern.MatchString(base) {
		return naming{}, fmt.Errorf("cache tag %q is not a valid tag", base)
	}
	if len(base)+1+32 > 128 {
		return naming{}, fmt.Errorf("cache tag %q is too long: at most %d characters leave room for the keys", base, 128-33)
	}
	return naming{base: base}, nil
}

func (n naming) fit(prefix, hexs string) string {
	room := 128 - len(n.base) - len(prefix)
	if len(hexs) > room {
		hexs = hexs[:room]
	}
	return n.base + prefix + hexs
}

func (n naming) key(k digest.Digest) string { return n.fit("-", k.Hex()) }

func (n naming) mount(id, platform string) string {
	return n.fit("-mount-", sum(id + "\x00" + platform)[:32])
}

// slot is the tag of the last entry exported for a step slot: a hint for
// --explain-cache only, never used to decide a hit.
func (n naming) slot(slot string) string { return n.fit("-slot-", sum(slot)[:32]) }

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
