package dag

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// Pos is where in the Dockerfile a vertex comes from.
type Pos struct {
	File string `json:"file"`
	Line int    `json:"line"`
}

func (p Pos) String() string {
	if p.File == "" {
		return ""
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// Vertex is one step of a build. Its result is a filesystem: for every op
// but LocalOp, an ordered chain of layers.
type Vertex struct {
	Op     Op
	Inputs []*Vertex // what each Op means by Inputs[i] is documented on the Op
	Name   string    // progress label, e.g. "[build 2/5] RUN make"; not part of the key
	Pos    Pos       // not part of the key
}

// Op is one of the operations below, always as a pointer (&ExecOp{...});
// the set is closed.
type Op interface{ Kind() string }

// ScratchOp is the empty filesystem (FROM scratch). No inputs.
type ScratchOp struct{}

// ImageOp is a base image's filesystem: its layers, pulled into the store.
// No inputs. The key uses Digest only, never the tag.
type ImageOp struct {
	Ref      string `json:"-"`      // fully qualified reference, for pulling and progress
	Digest   string `json:"digest"` // manifest digest the reference resolved to
	Platform string `json:"platform"`
}

// LocalOp is a directory on the build host, normally the build context.
// No inputs. Its result is the directory itself, not layers; ops that read
// from it key on the content they select, never on the path.
type LocalOp struct {
	Name     string   `json:"name"`     // "context"
	Dir      string   `json:"-"`        // absolute host path
	Excludes []string `json:"excludes"` // .dockerignore patterns
}

// ExecOp runs a process over Inputs[0] and captures what it changed as one
// new layer.
type ExecOp struct {
	Args    []string `json:"args"`
	Env     []string `json:"env"`
	User    string   `json:"user"`
	Cwd     string   `json:"cwd"`
	Network string   `json:"network"` // "", "host" or "none"; "" means host
}

// CopyOp copies Sources from Inputs[1] (a LocalOp, or any layered vertex)
// onto Inputs[0] at Dest, as one new layer, with Docker's COPY semantics.
type CopyOp struct {
	Sources  []string `json:"sources"`  // relative to the source root; may hold wildcards
	Dest     string   `json:"dest"`     // absolute; a trailing "/" means "a directory"
	Chown    string   `json:"chown"`    // "user[:group]", names or ids, resolved in Inputs[0]; "" = 0:0
	Chmod    string   `json:"chmod"`    // octal, "" = keep
	Excludes []string `json:"excludes"` // extra patterns (COPY --exclude)
}

// MkdirOp creates Path (and its parents) on Inputs[0] as one new layer,
// unless it exists; WORKDIR uses it.
type MkdirOp struct {
	Path  string `json:"path"`
	Chown string `json:"chown"` // owner of created directories, as in CopyOp
	Mode  uint32 `json:"mode"`
}

func (*ScratchOp) Kind() string { return "scratch" }
func (*ImageOp) Kind() string   { return "image" }
func (*LocalOp) Kind() string   { return "local" }
func (*ExecOp) Kind() string    { return "exec" }
func (*CopyOp) Kind() string    { return "copy" }
func (*MkdirOp) Kind() string   { return "mkdir" }

// version changes whenever an Op's meaning changes, so old cache records
// are never reused for a new meaning.
const version = 1

// Digest is a "sha256:<hex>" string.
type Digest string

// Hex returns the hex part of d.
func (d Digest) Hex() string {
	if len(d) > 7 && d[:7] == "sha256:" {
		return string(d[7:])
	}
	return string(d)
}

// Key is the cache key of op applied to inputs with the given keys. content
// is the digest of the files the op selects from a LocalOp input, or "".
// Same op + same input keys + same content ⇒ same key.
func Key(op Op, inputs []Digest, content Digest) (Digest, error) {
	b, err := json.Marshal(struct {
		Version int      `json:"v"`
		Kind    string   `json:"kind"`
		Op      Op       `json:"op"`
		Inputs  []Digest `json:"inputs"`
		Content Digest   `json:"content,omitempty"`
	}{version, op.Kind(), op, inputs, content})
	if err != nil {
		return "", fmt.Errorf("encoding %s op: %w", op.Kind(), err)
	}
	sum := sha256.Sum256(b)
	return Digest("sha256:" + hex.EncodeToString(sum[:])), nil
}
