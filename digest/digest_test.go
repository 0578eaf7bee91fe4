package digest

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// The digest of nothing, as sha256sum prints it.
const empty = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

func TestMake(t *testing.T) {
	if got := FromBytes(nil); got != empty {
		t.Errorf("FromBytes(nil) = %s, want %s", got, empty)
	}
	h := sha256.New()
	h.Write([]byte("hello"))
	if got, want := FromHash(h), FromBytes([]byte("hello")); got != want {
		t.Errorf("FromHash = %s, FromBytes = %s", got, want)
	}
	d, n, err := FromReader(strings.NewReader("hello"))
	if err != nil || n != 5 || d != FromBytes([]byte("hello")) {
		t.Errorf("FromReader = %s, %d, %v", d, n, err)
	}
	if got := NewFromHex(empty[len("sha256:"):]); got != empty {
		t.Errorf("NewFromHex = %s", got)
	}
}

func TestValidate(t *testing.T) {
	hex64 := strings.Repeat("0a", 32)
	for s, ok := range map[string]bool{
		empty:                              true,
		"sha256:" + hex64:                  true,
		"sha256:" + strings.ToUpper(hex64): false, // OCI digests are lower case
		"sha256:" + hex64[:63]:             false,
		"sha256:" + hex64 + "0":            false,
		"sha256:" + hex64[:63] + "g":       false,
		"sha512:" + hex64:                  false,
		hex64:                              false,
		"":                                 false,
	} {
		err := Digest(s).Validate()
		if (err == nil) != ok || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("Validate(%q) = %v, want ok %v", s, err, ok)
		}
		if _, perr := Parse(s); (perr == nil) != ok {
			t.Errorf("Parse(%q) = %v", s, perr)
		}
	}
}

// Hex never panics: the store makes file names of digests read from
// records on disk, which may be torn or corrupt.
func TestHex(t *testing.T) {
	for d, want := range map[Digest]string{
		empty:       empty[7:],
		"sha256:ab": "ab",
		"abc":       "abc",
		"":          "",
	} {
		if got := d.Hex(); got != want {
			t.Errorf("%q.Hex() = %q, want %q", d, got, want)
		}
	}
}

// On disk and in cache keys a digest is the plain JSON string; an empty
// one is omitted by omitempty (the cache keys rely on it).
func TestJSON(t *testing.T) {
	b, err := json.Marshal(struct {
		D Digest `json:"d"`
		E Digest `json:"e,omitempty"`
	}{D: empty})
	if err != nil || string(b) != `{"d":"`+empty+`"}` {
		t.Errorf("Marshal = %s, %v", b, err)
	}
}
