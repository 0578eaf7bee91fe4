package digest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
)

// Digest is "sha256:" followed by 64 lower-case hex digits.
type Digest string

const prefix = "sha256:"

// ErrInvalid is what Validate and Parse wrap.
var ErrInvalid = errors.New("invalid digest")

// FromBytes is the digest of b.
func FromBytes(b []byte) Digest {
	sum := sha256.Sum256(b)
	return NewFromHex(hex.EncodeToString(sum[:]))
}

// FromHash is the digest of what h, a sha256 hash (sha256.New), has
// read so far.
func FromHash(h hash.Hash) Digest { return NewFromHex(hex.EncodeToString(h.Sum(nil))) }

// FromReader is the digest of everything r gives, and its length.
func FromReader(r io.Reader) (Digest, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return "", n, err
	}
	return FromHash(h), n, nil
}

// NewFromHex is the digest whose hex part is hex (not checked: see
// Validate).
func NewFromHex(hex string) Digest { return Digest(prefix + hex) }

// Parse returns s as a Digest if it is a valid one.
func Parse(s string) (Digest, error) {
	d := Digest(s)
	return d, d.Validate()
}

// Hex returns the part of d after "sha256:", or d whole if it has no such
// prefix: a malformed digest read from disk gives a name nothing has.
func (d Digest) Hex() string { return strings.TrimPrefix(string(d), prefix) }

// Validate fails unless d is "sha256:" and 64 lower-case hex digits.
func (d Digest) Validate() error {
	h, ok := strings.CutPrefix(string(d), prefix)
	if !ok || len(h) != 2*sha256.Size || strings.Trim(h, "0123456789abcdef") != "" {
		return fmt.Errorf("%w %q", ErrInvalid, string(d))
	}
	return nil
}

func (d Digest) String() string { return string(d) }
