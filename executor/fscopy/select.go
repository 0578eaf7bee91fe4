//go:build linux

package fscopy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/patternmatcher"
)

// node is one entry of a source tree being walked.
type node struct {
	parent  *node
	name    string // base name; for a top node, the name the source was given by
	rel     string // slash path relative to srcRoot where it really is
	abs     string
	fi      os.FileInfo // from Lstat
	entered bool        // enter was called (excluded dirs are entered lazily)

	// Set by the copier.
	dest    string // where it goes in destRoot
	created bool   // the copier created this directory
	remeta  bool   // an existing directory that takes the source's metadata
	refs    int32  // created dir: the walk + copies still writing into it (atomic)
}

// visitor receives the selected entries: enter and leave around a
// directory's children, leaf for everything else.
type visitor interface {
	enter(n *node) error
	leave(n *node) error
	leaf(n *node) error
}

// match is one selected source.
type match struct {
	lit      string // source path as named (matched), for the destination base name
	node     *node  // what gets copied: the target when lit is a symlink
	excluded bool   // node is an excluded directory with re-included children
	link     os.FileInfo
	linkRel  string
	scope    *scope // the patterns that apply below node, relative to it
}

// scope holds the patterns that apply to the entries below one selected
// source, matched against their paths relative to it, as BuildKit's copy
// does: COPY --exclude patterns, and the include pattern of COPY --parents.
type scope struct {
	base    string                         // the source's rel; entries' paths are taken relative to it
	exclude *patternmatcher.PatternMatcher // nil: none
	include *patternmatcher.PatternMatcher // nil: everything
	incComp []string                       // the include pattern's components, to prune the walk
}

// within is rel relative to the scope's base.
func (sc *scope) within(rel string) string {
	if sc == nil || sc.base == "." {
		return rel
	}
	if rel == sc.base {
		return "."
	}
	return strings.TrimPrefix(rel, sc.base+"/")
}

// mayIncludeBelow reports whether the include pattern can match something
// below the directory r (relative to the base) that it does not match.
func (sc *scope) mayIncludeBelow(r string) bool {
	comps := strings.Split(r, "/")
	for i, c := range comps {
		if i >= len(sc.incComp) {
			return false
		}
		p := sc.incComp[i]
		if p == "**" {
			return true
		}
		if ok, _ := filepath.Match(p, c); !ok {
			return false
		}
	}
	return len(comps) < len(sc.incComp)
}

type selector struct {
	root    string
	pm      *patternmatcher.PatternMatcher // nil without excludes
	srcEx   *patternmatcher.PatternMatcher // Options.SourceExcludes; nil without
	parents bool                           // COPY --parents
}

func newSelector(root string, o Options) (*selector, error) {
	root, err := cleanRoot(root)
	if err != nil {
		return nil, err
	}
	s := &selector{root: root, parents: o.Parents}
	if len(o.Excludes) > 0 {
		if s.pm, err = patternmatcher.New(o.Excludes); err != nil {
			return nil, fmt.Errorf("parsing exclude patterns: %w", err)
		}
	}
	if len(o.SourceExcludes) > 0 {
		if s.srcEx, err = patternmatcher.New(o.SourceExcludes); err != nil {
			return nil, fmt.Errorf("parsing --exclude patterns: %w", err)
		}
	}
	return s, nil
}

// state says whether the entry rel (below the source of sc) is selected
// and, for a directory that is not, whether something below it may be.
func (s *selector) state(sc *scope, rel string, dir bool) (sel, descend bool, err error) {
	exRoot, err := s.excluded(rel)
	if err != nil {
		return false, false, err
	}
	r := sc.within(rel)
	exSrc, inc := false, true
	if r != "." && sc != nil {
		if sc.exclude != nil {
			if exSrc, err = sc.exclude.MatchesOrParentMatches(r); err != nil {
				return false, false, fmt.Errorf("matching %s against --exclude patterns: %w", r, err)
			}
		}
		if sc.include != nil {
			if inc, err = sc.include.MatchesOrParentMatches(r); err != nil {
				return false, false, fmt.Errorf("matching %s against --parents pattern: %w", r, err)
			}
		}
	}
	sel = !exRoot && !exSrc && inc
	if sel || !dir {
		return sel, false, nil
	}
	descend = (!exRoot || s.reincludes()) &&
		(!exSrc || sc.exclude.Exclusions()) &&
		(inc || sc.mayIncludeBelow(r))
	return false, descend, nil
}

func (s *selector) excluded(rel string) (bool, error) {
	if s.pm == nil || rel == "." {
		return false, nil
	}
	ex, err := s.pm.MatchesOrParentMatches(rel)
	if err != nil {
		return false, fmt.Errorf("matching %s against exclude patterns: %w", rel, err)
	}
	return ex, nil
}

// excludedBy names the exclude pattern that hides rel, a literal source
// that was not found, so the error can say why; "" when rel really is
// missing. Only error paths call it.
func (s *selector) excludedBy(rel string) string {
	if s.pm == nil || rel == "." {
		return ""
	}
	parent, err := securejoin.SecureJoin(s.root, path.Dir(rel))
	if err != nil {
		return ""
	}
	if _, err := os.Lstat(filepath.Join(parent, path.Base(rel))); err != nil {
		return ""
	}
	// The last pattern that matches decides, as in .dockerignore.
	by := ""
	for _, p := range s.pm.Patterns() {
		one, err := patternmatcher.New([]string{strings.TrimPrefix(p.String(), "!")})
		if err != nil {
			continue
		}
		if m, err := one.MatchesOrParentMatches(rel); err == nil && m {
			by = ""
			if !p.Exclusion() {
				by = p.String()
			}
		}
	}
	return by
}

// relOf returns abs (inside the root, symlink-free) relative to the root.
func (s *selector) relOf(abs string) string {
	r, err := filepath.Rel(s.root, abs)
	if err != nil || strings.HasPrefix(r, "..") {
		return "." // cannot happen for SecureJoin output; be safe
	}
	return filepath.ToSlash(r)
}

// expand resolves sources, in order, into matches. wildcard reports
// whether any source held a wildcard.
func (s *selector) expand(ctx context.Context, sources []string) (ms []match, wildcard bool, err error) {
	for _, src := range sources {
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		sc := &scope{exclude: s.srcEx}
		lit := src
		if s.parents {
			// COPY --parents: the part after a "/./" pivot (else all of
			// it) is kept below the destination; what comes before it is
			// the directory whose contents are copied, as BuildKit does.
			parent, pattern, ok := strings.Cut(src, "/./")
			if !ok {
				parent, pattern = "/", src
			}
			pattern = strings.TrimPrefix(path.Clean("/"+pattern), "/")
			if pattern != "" {
				pm, err := patternmatcher.New([]string{pattern})
				if err != nil {
					return nil, false, fmt.Errorf("source %q: %w", src, err)
				}
				sc.include, sc.incComp = pm, strings.Split(pattern, "/")
			}
			src = parent
			if !containsWildcards(parent) && !containsWildcards(pattern) && pattern != "" {
				// Without wildcards the path must exist.
				req := strings.TrimPrefix(path.Clean("/"+parent+"/"+pattern), "/")
				if _, ok, err := s.resolve(ctx, req); err != nil {
					return nil, false, err
				} else if !ok {
					return nil, false, &NotFoundError{Source: lit, ExcludedBy: s.excludedBy(req)}
				}
			}
		}
		rel := strings.TrimPrefix(path.Clean("/"+src), "/")
		if rel == "" {
			rel = "."
		}
		if !containsWildcards(rel) {
			m, ok, err := s.resolve(ctx, rel)
			if err != nil {
				return nil, false, err
			}
			if !ok {
				return nil, false, &NotFoundError{Source: lit, ExcludedBy: s.excludedBy(rel)}
			}
			m.scope = sc.at(m.node.rel)
			ms = append(ms, m)
			continue
		}
		wildcard = true
		cands, err := s.glob(rel)
		if err != nil {
			return nil, false, fmt.Errorf("source %q: %w", lit, err)
		}
		for _, c := range cands {
			m, ok, err := s.resolve(ctx, c)
			if err != nil {
				return nil, false, err
			}
			if ok {
				m.scope = sc.at(m.node.rel)
				ms = append(ms, m)
			}
		}
	}
	return ms, wildcard, nil
}

// at is sc for a source found at rel.
func (sc *scope) at(rel string) *scope {
	c := *sc
	c.base = rel
	return &c
}

// resolve looks up one literal source path. A symlink is followed inside
// the root, as BuildKit does for COPY sources; a dangling one is taken as
// the link itself. ok is false when the path is missing or excluded.
func (s *selector) resolve(ctx context.Context, lit string) (m match, ok bool, err error) {
	litAbs := s.root
	if lit != "." {
		parent, err := securejoin.SecureJoin(s.root, path.Dir(lit))
		if err != nil {
			return match{}, false, fmt.Errorf("resolving source %s: %w", lit, err)
		}
		litAbs = filepath.Join(parent, path.Base(lit))
	}
	lstat := os.Lstat
	if lit == "." {
		// The root is the directory the build named (a build context
		// given through a symlink to it, say), not a source symlink.
		lstat = os.Stat
	}
	fi, err := lstat(litAbs)
	if err != nil {
		if securejoin.IsNotExist(err) {
			return match{}, false, nil
		}
		return match{}, false, fmt.Errorf("source %s: %w", lit, err)
	}
	m = match{lit: lit}
	abs := litAbs
	if fi.Mode()&os.ModeSymlink != 0 {
		if ex, err := s.excluded(s.relOf(litAbs)); err != nil || ex {
			return match{}, false, err
		}
		target, err := securejoin.SecureJoin(s.root, lit)
		if err != nil {
			return match{}, false, fmt.Errorf("resolving source %s: %w", lit, err)
		}
		tfi, err := os.Lstat(target)
		switch {
		case err == nil:
			m.link, m.linkRel = fi, s.relOf(litAbs)
			abs, fi = target, tfi
		case !securejoin.IsNotExist(err):
			return match{}, false, fmt.Errorf("source %s: %w", lit, err)
		}
	}
	rel := s.relOf(abs)
	ex, err := s.excluded(rel)
	if err != nil {
		return match{}, false, err
	}
	m.node = &node{name: path.Base(lit), rel: rel, abs: abs, fi: fi}
	if ex {
		// An excluded directory still exists if a "!pattern" re-includes
		// something below it, as with .dockerignore.
		if !fi.IsDir() || !s.reincludes() {
			return match{}, false, nil
		}
		has, err := s.hasSelected(ctx, m.node)
		if err != nil || !has {
			return match{}, false, err
		}
		m.node = &node{name: m.node.name, rel: rel, abs: abs, fi: fi}
		m.excluded = true
	}
	return m, true, nil
}

func (s *selector) reincludes() bool { return s.pm != nil && s.pm.Exclusions() }

var errFound = errors.New("found")

type findVisitor struct{}

func (findVisitor) enter(*node) error { return errFound }
func (findVisitor) leave(*node) error { return nil }
func (findVisitor) leaf(*node) error  { return errFound }

// hasSelected reports whether the excluded directory n has a re-included
// descendant.
func (s *selector) hasSelected(ctx context.Context, n *node) (bool, error) {
	err := s.walk(ctx, nil, n, false, true, findVisitor{})
	if errors.Is(err, errFound) {
		return true, nil
	}
	return false, err
}

// glob expands a wildcard source component by component, following
// directory symlinks inside the root, in lexical order. It returns the
// candidate paths as named; they may not exist.
func (s *selector) glob(pattern string) ([]string, error) {
	cands := []string{"."}
	wild := false // like BuildKit, match every component after the first wildcard one
	for _, comp := range strings.Split(pattern, "/") {
		if !wild && containsWildcards(comp) && cands[0] != "." {
			// The directory before the first wildcard must exist, as in
			// BuildKit (fsutil ResolveWildcards walks it): a wildcard may
			// match nothing, a missing directory is a mistake.
			abs, err := securejoin.SecureJoin(s.root, cands[0])
			if err != nil {
				return nil, fmt.Errorf("resolving %s: %w", cands[0], err)
			}
			if _, err := os.Stat(abs); err != nil {
				return nil, &NotFoundError{Source: cands[0], ExcludedBy: s.excludedBy(cands[0])}
			}
		}
		wild = wild || containsWildcards(comp)
		var next []string
		for _, dir := range cands {
			if !wild || !strings.ContainsAny(comp, `*?[\`) {
				next = append(next, path.Join(dir, comp))
				continue
			}
			if _, err := filepath.Match(comp, ""); err != nil {
				return nil, fmt.Errorf("bad pattern %q: %w", comp, err)
			}
			abs, err := securejoin.SecureJoin(s.root, dir)
			if err != nil {
				return nil, fmt.Errorf("resolving %s: %w", dir, err)
			}
			ents, err := os.ReadDir(abs)
			if err != nil {
				continue // missing or not a directory: no match below
			}
			for _, e := range ents {
				if ok, _ := filepath.Match(comp, e.Name()); ok {
					next = append(next, path.Join(dir, e.Name()))
				}
			}
		}
		cands = next
	}
	return cands, nil
}

// containsWildcards is BuildKit's test: an unescaped *, ? or [.
func containsWildcards(name string) bool {
	for i := 0; i < len(name); i++ {
		switch name[i] {
		case '\\':
			i++
		case '*', '?', '[':
			return true
		}
	}
	return false
}

// walk visits n, if sel, and, for a directory that is selected or worth
// descending, its selected descendants in lexical order. Symlinks below
// the top are never followed. A directory that is not selected itself (an
// excluded one with re-included children, or a parent of what a --parents
// pattern includes) is entered lazily, only if something below it is.
func (s *selector) walk(ctx context.Context, sc *scope, n *node, sel, descend bool, v visitor) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !n.fi.IsDir() {
		if !sel {
			return nil
		}
		if err := s.enterPending(n.parent, v); err != nil {
			return err
		}
		return v.leaf(n)
	}
	if !sel && !descend {
		return nil
	}
	if sel {
		if err := s.enterPending(n.parent, v); err != nil {
			return err
		}
		if err := v.enter(n); err != nil {
			return err
		}
		n.entered = true
	}
	ents, err := readDirStat(n.abs)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) && pe.Op == "lstat" {
			return fmt.Errorf("source %s: %w", path.Join(n.rel, path.Base(pe.Path)), err)
		}
		return fmt.Errorf("reading source directory %s: %w", n.rel, err)
	}
	for _, fi := range ents {
		name := fi.Name()
		rel := name
		if n.rel != "." {
			rel = n.rel + "/" + name
		}
		child := &node{parent: n, name: name, rel: rel, abs: n.abs + "/" + name, fi: fi}
		csel, cdesc, err := s.state(sc, child.rel, fi.IsDir())
		if err != nil {
			return err
		}
		if err := s.walk(ctx, sc, child, csel, cdesc, v); err != nil {
			return err
		}
	}
	if n.entered {
		return v.leave(n)
	}
	return nil
}

// enterPending enters the not yet entered (excluded) ancestors of a
// selected entry, outermost first.
func (s *selector) enterPending(n *node, v visitor) error {
	var chain []*node
	for ; n != nil && !n.entered; n = n.parent {
		chain = append(chain, n)
	}
	for i := len(chain) - 1; i >= 0; i-- {
		if err := v.enter(chain[i]); err != nil {
			return err
		}
		chain[i].entered = true
	}
	return nil
}
