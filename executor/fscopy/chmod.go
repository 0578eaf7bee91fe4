//go:build linux

package fscopy

import (
	"fmt"
	"strconv"
	"strings"
)

// parseChmod parses a COPY --chmod value: octal up to 07777, or symbolic
// chmod(1) clauses like "u+x,go=rX" or "g=u" (no umask is applied when the
// "who" part is omitted, as in BuildKit). The result maps a file's mode
// bits (perm + setuid/setgid/sticky) to the new ones.
func parseChmod(s string) (func(mode uint32, dir bool) uint32, error) {
	if n, err := strconv.ParseUint(s, 8, 32); err == nil {
		if n > 0o7777 {
			return nil, fmt.Errorf("invalid chmod %q: must be between 0 and 07777", s)
		}
		return func(uint32, bool) uint32 { return uint32(n) }, nil
	}
	var clauses []clause
	for _, cs := range strings.Split(s, ",") {
		c, err := parseClause(cs)
		if err != nil {
			return nil, fmt.Errorf("invalid chmod %q: %w", s, err)
		}
		clauses = append(clauses, c)
	}
	return func(m uint32, dir bool) uint32 {
		for _, c := range clauses {
			m = c.apply(m, dir)
		}
		return m
	}, nil
}

type action struct {
	op    byte   // '+', '-' or '='
	perms string // subset of "rwxXst"
	copy  byte   // 'u', 'g' or 'o' to copy that class's bits, else 0
}

type clause struct {
	who     uint32 // mask of the classes' rwx bits: u 0700, g 0070, o 0007
	whoSet  bool
	actions []action
}

func parseClause(s string) (clause, error) {
	var c clause
	i := 0
	for ; i < len(s) && strings.IndexByte("ugoa", s[i]) >= 0; i++ {
		c.whoSet = true
		switch s[i] {
		case 'u':
			c.who |= 0o700
		case 'g':
			c.who |= 0o070
		case 'o':
			c.who |= 0o007
		case 'a':
			c.who |= 0o777
		}
	}
	if !c.whoSet {
		c.who = 0o777
	}
	if i == len(s) {
		return c, fmt.Errorf("clause %q has no operator", s)
	}
	for i < len(s) {
		op := s[i]
		if op != '+' && op != '-' && op != '=' {
			return c, fmt.Errorf("unexpected %q in clause %q", op, s)
		}
		i++
		a := action{op: op}
		if i < len(s) && strings.IndexByte("ugo", s[i]) >= 0 {
			a.copy = s[i]
			i++
		} else {
			j := i
			for ; i < len(s) && strings.IndexByte("rwxXst", s[i]) >= 0; i++ {
			}
			a.perms = s[j:i]
		}
		c.actions = append(c.actions, a)
	}
	return c, nil
}

func (c clause) apply(m uint32, dir bool) uint32 {
	for _, a := range c.actions {
		var bits uint32
		if a.copy != 0 {
			shift := map[byte]uint{'u': 6, 'g': 3, 'o': 0}[a.copy]
			b := (m >> shift) & 7
			bits = (b<<6 | b<<3 | b) & c.who
		}
		for _, p := range []byte(a.perms) {
			switch p {
			case 'r':
				bits |= 0o444 & c.who
			case 'w':
				bits |= 0o222 & c.who
			case 'x':
				bits |= 0o111 & c.who
			case 'X':
				if dir || m&0o111 != 0 {
					bits |= 0o111 & c.who
				}
			case 's':
				if c.who&0o700 != 0 {
					bits |= 0o4000
				}
				if c.who&0o070 != 0 {
					bits |= 0o2000
				}
			case 't':
				if c.who&0o007 != 0 {
					bits |= 0o1000
				}
			}
		}
		switch a.op {
		case '+':
			m |= bits
		case '-':
			m &^= bits
		case '=':
			clear := c.who
			if c.who&0o700 != 0 {
				clear |= 0o4000
			}
			if c.who&0o070 != 0 {
				clear |= 0o2000
			}
			if c.who&0o007 != 0 {
				clear |= 0o1000
			}
			// chmod(1) keeps setuid/setgid on directories unless named.
			if dir {
				clear &^= 0o6000
			}
			m = m&^clear | bits
		}
	}
	return m
}
