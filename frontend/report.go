package frontend

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/linter"
)

// Warning is one build-check violation, or (with no Rule) another thing
// worth saying about the Dockerfile, such as unused build args.
type Warning struct {
	Rule        string // "StageNameCasing"
	Description string // the rule's one-line description
	URL         string // the rule's documentation
	Message     string // "Stage name 'Build' should be lowercase"
	Line        int    // 1-based; 0 when it belongs to no line
	EndLine     int    // the instruction's last line

	src *source
}

// String reads as in BuildKit's build output:
// "StageNameCasing: Stage name 'Build' should be lowercase (line 2)".
func (w Warning) String() string {
	if w.Rule == "" {
		return w.Message
	}
	return linter.LintFormatShort(w.Rule, w.Message, w.Line)
}

// Snippet is the Dockerfile around the warning's lines, as BuildKit prints
// it; "" when it has no line.
func (w Warning) Snippet() string { return w.src.snippet(w.Line, w.EndLine) }

// Snippet is what to print before the error line: the Dockerfile around
// the offending instruction, as BuildKit prints it ("Dockerfile:3", a few
// lines with ">>>" marking it), or, for a failed build check, the report
// of every violation. It is "" when the error belongs to no line.
func (e *Error) Snippet() string {
	if len(e.Warnings) > 0 {
		return CheckReport(e.Warnings)
	}
	return e.src.snippet(e.Line, e.EndLine)
}

// source is a Dockerfile's name and lines, for snippets.
type source struct {
	file  string
	lines []string
}

func (c *compiler) source() *source {
	if c.src == nil {
		c.src = &source{file: c.o.Filename, lines: c.lines}
	}
	return c.src
}

// snippet renders lines start..end as BuildKit's errdefs.Source.Print
// does: up to two lines of context either side (more for one line), the
// range marked with ">>>".
func (s *source) snippet(start, end int) string {
	if s == nil || start < 1 || start > len(s.lines) {
		return ""
	}
	end = min(max(end, start), len(s.lines))
	pad := 2
	if end == start {
		pad = 4
	}
	from, to := start, end
	for p := 0; p < pad; p++ {
		if from > 1 {
			from--
			p++
		}
		if to != len(s.lines) {
			to++
			p++
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s:%d\n--------------------\n", s.file, start)
	for i := from; i <= to; i++ {
		mark := "   "
		if i >= start && i <= end {
			mark = ">>>"
		}
		fmt.Fprintf(&sb, " %3d | %s %s\n", i, mark, s.lines[i-1])
	}
	sb.WriteString("--------------------\n")
	return sb.String()
}

// sortWarnings orders violations by line, then rule, then message; the
// warnings that are no rule keep their order, after them.
func sortWarnings(ws []Warning) []Warning {
	out := slices.Clone(ws)
	slices.SortStableFunc(out, func(a, b Warning) int {
		if (a.Rule == "") != (b.Rule == "") {
			if a.Rule == "" {
				return 1
			}
			return -1
		}
		if a.Rule == "" {
			return 0
		}
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Rule, b.Rule), cmp.Compare(a.Message, b.Message))
	})
	return out
}

// WarningSummary is the build output's account of the warnings, as BuildKit's:
// " 2 warnings found (...):" and then " - Rule: message (line N)" each.
// It is empty without warnings.
func WarningSummary(ws []Warning) []string {
	if len(ws) == 0 {
		return nil
	}
	noun := "warnings"
	if len(ws) == 1 {
		noun = "warning"
	}
	out := []string{fmt.Sprintf(" %d %s found (use kiln build --check for details):", len(ws), noun)}
	for _, w := range ws {
		out = append(out, " - "+w.String())
	}
	return out
}

// CheckReport is `kiln build --check`'s report, as `docker build --check`
// prints it: a count, then each violation with its rule's URL, message and
// the Dockerfile around it. Warnings that are no rule are left out.
func CheckReport(ws []Warning) string {
	var rules []Warning
	for _, w := range ws {
		if w.Rule != "" {
			rules = append(rules, w)
		}
	}
	switch len(rules) {
	case 0:
		return "Check complete, no warnings found.\n"
	case 1:
		return "Check complete, 1 warning has been found!\n" + detail(rules[0])
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "Check complete, %d warnings have been found!\n", len(rules))
	for _, w := range rules {
		sb.WriteString(detail(w))
	}
	return sb.String()
}

func detail(w Warning) string {
	head := "\nWARNING: " + w.Rule
	if w.URL != "" {
		head += " - " + w.URL
	}
	return head + "\n" + w.Message + "\n" + w.Snippet()
}
