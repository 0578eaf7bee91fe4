package frontend

import (
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/solver/dag"
)

// copyArgs is what COPY and ADD share.
type copyArgs struct {
	sd       instructions.SourcesAndDest
	chown    string
	chmod    string
	link     bool
	excludes []string
	parents  bool
	add      bool
	unpack   bool
	text     string

	srcVertex *dag.Vertex // ADD of a URL: the download
	urlFile   string      // the downloaded file's name in it // the instruction's source, for its progress name
}

func (c *compiler) dispatchAdd(b *build, cm *cmd, x *instructions.AddCommand) error {
	a := copyArgs{
		sd: x.SourcesAndDest, chown: x.Chown, chmod: x.Chmod, link: x.Link,
		excludes: x.ExcludePatterns, add: true, text: x.String(),
		// Local tar archives are extracted unless --unpack=false; the
		// executor tells an archive by its content, not its name.
		unpack: x.Unpack == nil || *x.Unpack,
	}
	var urls int
	for _, src := range x.SourcePaths {
		switch {
		case isGit(src) || (isURL(src) && (strings.HasSuffix(strings.SplitN(src, "#", 2)[0], ".git") || strings.Contains(src, ".git#"))):
			return c.unsupported(cm.line, fmt.Sprintf("ADD from a git repository (%s)", src))
		case isURL(src):
			urls++
		}
	}
	if x.Checksum != "" && urls == 0 {
		return fmt.Errorf("checksum requires HTTP(S) or Git sources")
	}
	if urls > 0 {
		if len(x.SourcePaths) != 1 || cm.from != nil {
			return c.unsupported(cm.line, "ADD of a URL together with other sources")
		}
		if x.Checksum != "" && digest.Digest(x.Checksum).Validate() != nil {
			return fmt.Errorf("invalid checksum %q: use sha256:<64 hex digits>", x.Checksum)
		}
		u := x.SourcePaths[0]
		name := "download"
		if p, err := url.Parse(u); err == nil {
			if base := path.Base(p.Path); base != "/" && base != "." && base != "" {
				name = base
			}
		}
		a.urlFile = name
		a.srcVertex = &dag.Vertex{
			Op:   &dag.HTTPOp{URL: u, Checksum: x.Checksum, Filename: name},
			Name: "[internal] download " + u, Text: "download " + u, Pos: c.pos(cm.line),
		}
		// A download is extracted only when asked (--unpack=true).
		a.unpack = x.Unpack != nil && *x.Unpack
	}
	return c.dispatchCopy(b, cm, a)
}

func (c *compiler) dispatchCopy(b *build, cm *cmd, a copyArgs) error {
	kw := "COPY"
	if a.add {
		kw = "ADD"
	}
	var inline *dag.Vertex
	if len(a.sd.SourceContents) > 0 {
		if len(a.sd.SourcePaths) > 0 || cm.from != nil {
			return c.unsupported(cm.line, kw+" mixing heredocs with other sources")
		}
		op := &dag.InlineOp{}
		for _, sc := range a.sd.SourceContents {
			op.Files = append(op.Files, dag.InlineFile{Name: sourcePath(sc.Path), Data: sc.Data})
		}
		inline = &dag.Vertex{Op: op, Name: "[internal] heredoc", Text: "heredoc", Pos: c.pos(cm.line)}
		a.unpack = false
	}
	if err := checkChmod(a.chmod); err != nil {
		return err
	}
	if a.link && chownByName(a.chown) {
		return fmt.Errorf("--chown=%s: user and group names can't be resolved when used with --link, use numeric uid[:gid] instead", a.chown)
	}
	src := inline
	if a.srcVertex != nil {
		src = a.srcVertex
	}
	if src == nil {
		var err error
		if src, err = c.copyFrom(b, cm); err != nil {
			return err
		}
	}

	msg := kw
	if a.parents {
		msg += " --parents"
	}
	if a.chown != "" {
		msg += " --chown=" + a.chown
	}
	if a.chmod != "" {
		msg += " --chmod=" + a.chmod
	}
	sources := make([]string, 0, len(a.sd.SourcePaths))
	for _, sc := range a.sd.SourceContents {
		msg += " <<" + sc.Path
		sources = append(sources, sourcePath(sc.Path))
	}
	for _, s := range a.sd.SourcePaths {
		if !a.add && isURL(s) {
			return fmt.Errorf("source can't be a URL for COPY: use ADD to download it")
		}
		msg += " " + s
		if a.urlFile != "" {
			sources = append(sources, a.urlFile)
			continue
		}
		if a.parents {
			// The "/./" pivot must survive; the copier cleans each side.
			sources = append(sources, s)
			continue
		}
		sources = append(sources, sourcePath(s))
	}
	msg += " " + a.sd.DestPath

	b.layer(c, &dag.CopyOp{
		Sources:  sources,
		Dest:     destPath(b.cfg.Config.WorkingDir, a.sd.DestPath),
		Chown:    a.chown,
		Chmod:    a.chmod,
		Excludes: a.excludes,
		Parents:  a.parents,
		Unpack:   a.unpack,
	}, cm.line, b.title(a.text, false), src)
	b.history(msg+" # buildkit", true)
	return nil
}

// copyFrom is the vertex a COPY reads from: the shared build context, an
// earlier stage's result, or an image.
func (c *compiler) copyFrom(b *build, cm *cmd) (*dag.Vertex, error) {
	switch {
	case cm.from == nil:
		return c.contextVertex(), nil
	case cm.from.stage == b.s:
		return nil, fmt.Errorf("circular dependency detected on stage: %s", b.s.displayName())
	case cm.from.stage != nil:
		if cm.from.stage.index > b.s.index {
			return nil, fmt.Errorf("cannot copy from stage %q, it needs to be defined before current stage %q",
				cm.from.stage.displayName(), b.s.displayName())
		}
		sb, err := c.compileStage(cm.from.stage)
		if err != nil {
			return nil, err
		}
		return sb.vertex, nil
	default:
		return c.imageVertex(cm.from.image, c.stagePlatform(b.s), cm.line)
	}
}

// sourcePath makes a COPY source relative to its source root: a leading "/"
// or "../" cannot leave the root, and a trailing "/" means nothing.
func sourcePath(s string) string {
	p := strings.TrimPrefix(path.Clean("/"+s), "/")
	if p == "" {
		return "."
	}
	return p
}

// destPath makes a COPY destination absolute against the working
// directory, keeping a trailing "/" (or "/.") as "a directory".
func destPath(wd, p string) string {
	if p == "" || p == "." {
		p = "./"
	}
	return normalizePath(wd, p, true)
}

// normalizePath resolves p against parent (both slash paths) and cleans it;
// with keepSlash, a trailing "/" or "/." survives as a trailing "/".
func normalizePath(parent, p string, keepSlash bool) string {
	if parent == "" {
		parent = "/"
	}
	out := path.Join("/", parent, p)
	if path.IsAbs(p) {
		out = path.Clean(p)
	}
	if keepSlash && (strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.")) && out != "/" {
		out += "/"
	}
	return out
}

func checkChmod(chmod string) error {
	if chmod == "" {
		return nil
	}
	bad := fmt.Errorf("invalid chmod parameter: '%v'. it should be octal string and between 0 and 07777", chmod)
	p, err := strconv.ParseUint(chmod, 8, 32)
	if err == nil {
		if p > 0o7777 {
			return bad
		}
		return nil
	}
	if strings.Trim(chmod, "0123456789") == "" {
		return bad
	}
	if !symbolicMode.MatchString(chmod) {
		return fmt.Errorf("invalid chmod parameter: '%v': use an octal mode (0755) or chmod(1) symbolic clauses (u+x,go=rX)", chmod)
	}
	return nil
}

// symbolicMode is chmod(1)'s symbolic syntax: [ugoa]*[-+=]([rwxXst]*|[ugo]), comma-separated.
var symbolicMode = regexp.MustCompile(`^[ugoa]*([-+=]([rwxXst]*|[ugo]))+(,[ugoa]*([-+=]([rwxXst]*|[ugo]))+)*$`)

// chownByName reports whether "user[:group]" names a user or group rather
// than numeric ids.
func chownByName(chown string) bool {
	if chown == "" {
		return false
	}
	for _, part := range strings.SplitN(chown, ":", 2) {
		if _, err := strconv.ParseUint(part, 10, 32); err != nil {
			return true
		}
	}
	return false
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

func isGit(s string) bool {
	return strings.HasPrefix(s, "git@") || strings.HasPrefix(s, "git://") || strings.HasPrefix(s, "ssh://")
}
