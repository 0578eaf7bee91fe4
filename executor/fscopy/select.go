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
}

type selector struct {
	root string
	pm   *patternmatcher.PatternMatcher // nil without excludes
}

func newSelector(root string, excludes []string) (*selector, error) {
	root, err := cleanRoot(root)
	if err != nil {
		return nil, err
	}
	s := &selector{root: root}
	if len(excludes) > 0 {
		if s.pm, err = patternmatcher.New(excludes); err != nil {
			return nil, fmt.Errorf("parsing exclude patterns: %w", err)
		}
	}
	return s, nil
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
				return nil, false, &NotFoundError{Source: src, ExcludedBy: s.excludedBy(rel)}
			}
			ms = append(ms, m)
			continue
		}
		wildcard = true
		cands, err := s.glob(rel)
		if err != nil {
			return nil, false, fmt.Errorf("source %q: %w", src, err)
		}
		for _, c := range cands {
			m, ok, err := s.resolve(ctx, c)
			if err != nil {
				return nil, false, err
			}
			if ok {
				ms = append(ms, m)
			}
		}
	}
	return ms, wildcard, nil
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
	fi, err := os.Lstat(litAbs)
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
	err := s.walk(ctx, n, true, findVisitor{})
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

// walk visits n and, for a directory, its selected descendants in lexical
// order. Symlinks below the top are never followed. An excluded directory
// is descended only when patterns may re-include something, and entered
// (lazily) only if something below it is selected.
func (s *selector) walk(ctx context.Context, n *node, excluded bool, v visitor) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !n.fi.IsDir() {
		if excluded {
			return nil
		}
		if err := s.enterPending(n.parent, v); err != nil {
			return err
		}
		return v.leaf(n)
	}
	if excluded && !s.reincludes() {
		return nil
	}
	if !excluded {
		if err := s.enterPending(n.parent, v); err != nil {
			return err
		}
		if err := v.enter(n); err != nil {
			return err
		}
		n.entered = true
	}
	ents, err := os.ReadDir(n.abs)
	if err != nil {
		return fmt.Errorf("reading source directory %s: %w", n.rel, err)
	}
	for _, e := range ents {
		abs := filepath.Join(n.abs, e.Name())
		fi, err := os.Lstat(abs)
		if err != nil {
			return fmt.Errorf("source %s: %w", path.Join(n.rel, e.Name()), err)
		}
		child := &node{parent: n, name: e.Name(), rel: path.Join(n.rel, e.Name()), abs: abs, fi: fi}
		ex, err := s.excluded(child.rel)
		if err != nil {
			return err
		}
		if err := s.walk(ctx, child, ex, v); err != nil {
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
