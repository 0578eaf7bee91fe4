package frontend

import (
	"errors"
	"fmt"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/util/suggest"
)

// Error is what every compile error is (use errors.As). Error() reads
// "Dockerfile:12: unknown instruction: RUNN (did you mean RUN?)".
type Error struct {
	File    string // as in Options.Filename
	Line    int    // 1-based; 0 when the error belongs to no line (e.g. --target)
	EndLine int    // the instruction's last line (continuations, heredocs); Line if one line
	Column  int    // 1-based column of the offending token where known, else 0
	Source  string // the offending line's text
	Msg     string
	Err     error // the underlying error, if any

	// Warnings are every build-check violation, for the error of a
	// failed check ("lint violation found for rules: ...").
	Warnings []Warning

	src *source // the Dockerfile, for Snippet
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
	endLine, column := 0, 0
	var le *parser.LocationError
	if errors.As(err, &le) {
		if inner := le.Unwrap(); inner != nil {
			msg = inner.Error()
		}
		if line <= 0 && len(le.Locations) > 0 && len(le.Locations[0]) > 0 {
			loc := le.Locations[0]
			line = loc[0].Start.Line
			for _, r := range loc {
				endLine = max(endLine, r.Start.Line, r.End.Line)
			}
			if ch := loc[0].Start.Character; ch > 0 {
				column = ch + 1 // BuildKit's characters count from 0
			}
		}
	}
	// the lexer prints end-of-input as a replacement character
	msg = strings.ReplaceAll(msg, "unsupported modifier (\uFFFD) in substitution", "missing '}' in substitution")
	out := &Error{File: c.o.Filename, Line: line, Msg: msg, Err: err, src: c.source()}
	if line > 0 && line <= len(c.lines) {
		out.Source = strings.TrimRight(c.lines[line-1], "\r")
		out.Msg = explainFlagError(out.Msg, out.Source)
		if endLine < line {
			endLine = max(line, c.endLines[line])
		}
		out.EndLine = endLine
		if column == 0 {
			column = tokenColumn(out.Source, msg)
		}
		out.Column = column
	}
	return out
}

// tokenColumn finds, for the errors that name one token of the line (an
// unknown instruction or flag), the 1-based column of that token.
func tokenColumn(line, msg string) int {
	var tok string
	switch {
	case strings.HasPrefix(msg, "unknown instruction: "):
		tok, _, _ = strings.Cut(strings.TrimPrefix(msg, "unknown instruction: "), " ")
	case strings.HasPrefix(msg, "unknown flag: "):
		tok, _, _ = strings.Cut(strings.TrimPrefix(msg, "unknown flag: "), " ")
	default:
		return 0
	}
	if i := strings.Index(line, tok); tok != "" && i >= 0 {
		return i + 1
	}
	return 0
}

// instructionFlags are the flags each instruction takes (BuildKit's
// instructions/parse.go), for saying which ones exist.
var instructionFlags = map[string][]string{
	"ADD":         {"checksum", "chmod", "chown", "exclude", "keep-git-dir", "link", "unpack"},
	"COPY":        {"chmod", "chown", "exclude", "from", "link", "parents"},
	"FROM":        {"platform"},
	"HEALTHCHECK": {"interval", "retries", "start-interval", "start-period", "timeout"},
	"RUN":         {"device", "mount", "network", "security"},
}

// explainFlagError makes BuildKit's "unknown flag" error say what to use
// instead: its suggestion spelt as a flag, or else the flags the
// instruction takes.
func explainFlagError(msg, source string) string {
	rest, ok := strings.CutPrefix(msg, "unknown flag: ")
	if !ok {
		return msg
	}
	flag, suggestion, hasSuggestion := strings.Cut(rest, " (did you mean ")
	if hasSuggestion {
		return "unknown flag: " + flag + " (did you mean --" + strings.TrimPrefix(suggestion, "--")
	}
	words := strings.Fields(source)
	if len(words) > 1 && strings.EqualFold(words[0], "ONBUILD") {
		words = words[1:]
	}
	if len(words) == 0 || strings.Contains(flag, " ") {
		return msg
	}
	kw := strings.ToUpper(words[0])
	flags := instructionFlags[kw]
	if len(flags) == 0 {
		return fmt.Sprintf("%s (%s takes no flags)", msg, kw)
	}
	return fmt.Sprintf("%s (%s takes --%s)", msg, kw, strings.Join(flags, ", --"))
}

// unsupported is the error for Dockerfile features kiln does not build yet.
func (c *compiler) unsupported(line int, what string) *Error {
	return c.errorf(line, "%s is not supported yet", what)
}

// withSuggestion appends BuildKit's " (did you mean X?)" when one of
// options is close enough to val (its util/suggest: an edit distance below
// 3), compared with or without case as BuildKit compares at the same place.
func withSuggestion(msg, val string, options []string, caseSensitive bool) string {
	return suggest.WrapError(errors.New(msg), val, options, caseSensitive).Error()
}
