package frontend

import (
	"errors"
	"fmt"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// Error is what every compile error is (use errors.As). Error() reads
// "Dockerfile:12: unknown instruction: RUNN (did you mean RUN?)".
type Error struct {
	File   string // as in Options.Filename
	Line   int    // 1-based; 0 when the error belongs to no line (e.g. --target)
	Source string // the offending line's text
	Msg    string
	Err    error // the underlying error, if any
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// errorf makes an *Error at a 1-based line.
func (c *compiler) errorf(line int, format string, a ...any) *Error {
	return c.errAt(line, fmt.Errorf(format, a...))
}

// errAt converts err into an *Error at line, unless it already is one or
// carries a BuildKit parser location, which then wins.
func (c *compiler) errAt(line int, err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	msg := err.Error()
	var le *parser.LocationError
	if errors.As(err, &le) {
		if inner := le.Unwrap(); inner != nil {
			msg = inner.Error()
		}
		if line <= 0 && len(le.Locations) > 0 && len(le.Locations[0]) > 0 {
			line = le.Locations[0][0].Start.Line
		}
	}
	// the lexer prints end-of-input as a replacement character
	msg = strings.ReplaceAll(msg, "unsupported modifier (\uFFFD) in substitution", "missing '}' in substitution")
	out := &Error{File: c.o.Filename, Line: line, Msg: msg, Err: err}
	if line > 0 && line <= len(c.lines) {
		out.Source = strings.TrimRight(c.lines[line-1], "\r")
	}
	return out
}

// unsupported is the error for Dockerfile features kiln does not build yet.
func (c *compiler) unsupported(line int, what string) *Error {
	return c.errorf(line, "%s is not supported yet", what)
}

// suggest returns the option closest to val (edit distance below 3, as
// BuildKit's suggest package), matching val's case, or "".
func suggest(val string, options []string) string {
	best, bestDist := "", 3
	lv := strings.ToLower(val)
	for _, o := range options {
		lo := strings.ToLower(o)
		if lo == lv {
			return ""
		}
		if d := editDistance(lv, lo); d < bestDist {
			best, bestDist = o, d
		}
	}
	switch {
	case val == strings.ToLower(val):
		return strings.ToLower(best)
	case val == strings.ToUpper(val):
		return strings.ToUpper(best)
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in runes.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// withSuggestion appends " (did you mean X?)" when one of options is close to val.
func withSuggestion(msg, val string, options []string) string {
	if s := suggest(val, options); s != "" {
		return msg + " (did you mean " + s + "?)"
	}
	return msg
}
