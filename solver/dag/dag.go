package dag

import "fmt"

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

	// The rest is not part of the key. Name is the progress label, e.g.
	// "[build 2/5] RUN make"; the fields after it say the same as data, so
	// that nothing has to parse a label back.
	Name string
	Pos  Pos
	// Stage is the stage the step belongs to: its name (lower case), or
	// "stage-N" for the unnamed stage N, even in a one-stage Dockerfile
	// whose labels show none; "" for a vertex outside every stage (the
	// context, a heredoc, an image only copied from).
	Stage string
	// StepIndex is the step's 1-based place among its stage's numbered
	// steps (the 2 of "[build 2/5]"), StepCount their number (the 5); 0 for
	// a vertex that is not numbered.
	StepIndex, StepCount int
	// Text is the label without its "[build 2/5] " prefix: the instruction
	// as shown ("RUN make", "ONBUILD COPY . /"), or what an internal vertex
	// does ("load build context"). "" = Name.
	Text string
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
// new layer. Mounts may name further inputs by index.
type ExecOp struct {
	Args     []string `json:"args"`
	Env      []string `json:"env"`
	User     string   `json:"user"`
	Cwd      string   `json:"cwd"`
	Network  string   `json:"network"`            // "", "host" or "none"; "" means host
	Security string   `json:"security,omitempty"` // "" / "sandbox", or "insecure"
	Mounts   []Mount  `json:"mounts,omitempty"`
	Hostname string   `json:"hostname,omitempty"` // "" = the executor's default (buildkitsandbox)
	// ProxyEnv is passed to the process but kept out of the key and the
	// image: the undeclared proxy build args (HTTP_PROXY and friends).
	ProxyEnv []string `json:"-"`
}

// Mount is one RUN --mount. Which fields matter depends on Type.
type Mount struct {
	Type     string `json:"type"`             // "bind", "cache", "tmpfs", "secret", "ssh"
	Target   string `json:"target,omitempty"` // absolute path in the container
	Input    int    `json:"input"`            // bind/cache from: index into Vertex.Inputs (a LocalOp or a layered vertex); -1 = none
	Source   string `json:"source,omitempty"` // path inside the input (bind, cache with from)
	ReadOnly bool   `json:"readonly,omitempty"`
	ID       string `json:"id,omitempty"`      // cache id (default: Target), secret id
	Sharing  string `json:"sharing,omitempty"` // cache: "shared" (default), "private", "locked"
	Mode     uint32 `json:"mode,omitempty"`    // cache dir / secret file mode
	UID      uint32 `json:"uid,omitempty"`
	GID      uint32 `json:"gid,omitempty"`
	Size     int64  `json:"size,omitempty"`     // tmpfs bytes, 0 = default
	Required bool   `json:"required,omitempty"` // secret/ssh: fail if not provided
	Env      string `json:"env,omitempty"`      // secret: also (or only, if Target is "") expose as this env var
}

// CopyOp copies Sources from Inputs[1] (a LocalOp, or any layered vertex)
// onto Inputs[0] at Dest, as one new layer, with Docker's COPY semantics.
type CopyOp struct {
	Sources  []string `json:"sources"`           // relative to the source root; may hold wildcards
	Dest     string   `json:"dest"`              // absolute; a trailing "/" means "a directory"
	Chown    string   `json:"chown"`             // "user[:group]", names or ids, resolved in Inputs[0]; "" = 0:0
	Chmod    string   `json:"chmod"`             // octal, "" = keep
	Excludes []string `json:"excludes"`          // extra patterns (COPY --exclude)
	Parents  bool     `json:"parents,omitempty"` // COPY --parents: keep source paths (with the /./ pivot)
	Unpack   bool     `json:"unpack,omitempty"`  // ADD: extract local tar archives (plain, gzip, bzip2, xz, zstd)
	Link     bool     `json:"link,omitempty"`    // COPY --link (same result; recorded for the history)
	// Mtime, when set, is the modification time (Unix seconds) given to
	// copied files (ADD of a URL: Last-Modified).
	Mtime int64 `json:"mtime,omitempty"`
}

// InlineOp is a directory of files given inline (heredocs in COPY/ADD):
// like a LocalOp its result is a directory, materialised by the solver.
// No inputs.
type InlineOp struct {
	Files []InlineFile `json:"files"`
}

// InlineFile is one file of an InlineOp.
type InlineFile struct {
	Name string `json:"name"` // relative path
	Data string `json:"data"`
	Mode uint32 `json:"mode"` // 0 = 0644
}

// HTTPOp downloads URL (ADD https://...). Its result is a directory holding
// one file, Filename; ops that copy from it key on the downloaded content.
// No inputs.
type HTTPOp struct {
	URL      string `json:"url"`
	Checksum string `json:"checksum,omitempty"` // "sha256:<hex>": the download must match
	Filename string `json:"filename"`           // from the URL path, else "download"
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
func (*InlineOp) Kind() string  { return "inline" }
func (*HTTPOp) Kind() string    { return "http" }
