package seccomp

import (
	"errors"
	"fmt"
	"slices"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The classic BPF instructions the programs use: all of them are in the
// kernel's seccomp_check_filter list.
const (
	opLdAbs = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	opAnd   = unix.BPF_ALU | unix.BPF_AND | unix.BPF_K
	opJa    = unix.BPF_JMP | unix.BPF_JA
	opJeq   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	opJgt   = unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K
	opJge   = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
	opJset  = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
	opRet   = unix.BPF_RET | unix.BPF_K
)

// Offsets in struct seccomp_data. Every supported arch is little-endian, so
// an argument's low word comes first.
const (
	offNr       = 0
	offArch     = 4
	offArgs     = 16
	seccompData = 64
)

// section is the code for one audit arch.
type section struct {
	audit uint32
	segs  []seg
}

// ref is a jump destination: an emitted instruction, or a return value that
// gets a ret instruction wherever one is needed.
type ref struct {
	at    int // index in emitter.rev
	ret   uint32
	isRet bool
}

func retRef(v uint32) ref { return ref{ret: v, isRet: true} }

// condReach is how far back in rev a conditional jump's destination may be
// when it is looked at: one slot of the 255 it can reach is kept for an
// instruction that resolving its other destination may add.
const condReach = 254

// emitter writes a program backwards, last instruction first, so that a
// jump's destination is always placed before the jump and its distance is
// known. A conditional jump reaches 255 instructions; past that it goes to a
// JA (32-bit reach) placed right behind it, or to a fresh copy of the ret it
// wants, which costs nothing at run time.
type emitter struct {
	rev  []unix.SockFilter
	rets map[uint32]int // return value → its latest ret in rev
}

func (e *emitter) emit(ins unix.SockFilter) ref {
	e.rev = append(e.rev, ins)
	at := len(e.rev) - 1
	if ins.Code == opRet {
		e.rets[ins.K] = at
	}
	return ref{at: at}
}

// near returns the index of an instruction that does r and that the next
// instruction emitted can reach with a conditional jump.
func (e *emitter) near(r ref) int {
	cur := len(e.rev)
	if r.isRet {
		if at, ok := e.rets[r.ret]; ok && cur-at-1 <= condReach {
			return at
		}
		return e.emit(unix.SockFilter{Code: opRet, K: r.ret}).at
	}
	if cur-r.at-1 <= condReach {
		return r.at
	}
	return e.emit(unix.SockFilter{Code: opJa, K: uint32(cur - r.at - 1)}).at
}

// jump emits a conditional jump to jt when it holds and to jf when not.
func (e *emitter) jump(code uint16, k uint32, jt, jf ref) ref {
	t := e.near(jt)
	f := e.near(jf)
	cur := len(e.rev)
	return e.emit(unix.SockFilter{Code: code, K: k, Jt: uint8(cur - t - 1), Jf: uint8(cur - f - 1)})
}

// stmt emits an instruction that falls through to next.
func (e *emitter) stmt(code uint16, k uint32, next ref) ref {
	last := len(e.rev) - 1
	switch {
	case !next.isRet && next.at == last:
	case next.isRet && e.rev[last].Code == opRet && e.rev[last].K == next.ret:
	case next.isRet:
		e.emit(unix.SockFilter{Code: opRet, K: next.ret})
	default:
		e.emit(unix.SockFilter{Code: opJa, K: uint32(len(e.rev) - next.at - 1)})
	}
	return e.emit(unix.SockFilter{Code: code, K: k})
}

// cond emits a test of one argument comparison going to t when it holds and
// to f when not. A 64-bit argument is two 32-bit words: the high word
// decides unless it equals the value's, then the low word does. On bits32
// ABIs only the low word is compared, as libseccomp does.
func (e *emitter) cond(c cond, bits32 bool, t, f ref) ref {
	lo := uint32(offArgs + 8*c.arg)
	hi := lo + 4
	if c.op == specs.OpMaskedEqual {
		next := e.masked(lo, uint32(c.mask), uint32(c.val), t, f)
		if bits32 {
			return next
		}
		return e.masked(hi, uint32(c.mask>>32), uint32(c.val>>32), next, f)
	}
	next := e.low(c.op, lo, uint32(c.val), t, f)
	if bits32 {
		return next
	}
	return e.high(c.op, hi, uint32(c.val>>32), next, t, f)
}

// masked tests word&m == v (v is already masked).
func (e *emitter) masked(off, m, v uint32, t, f ref) ref {
	switch {
	case m == 0:
		return t // nothing to compare in this word
	case v == 0:
		return e.stmt(opLdAbs, off, e.jump(opJset, m, f, t))
	case m == 0xffffffff:
		return e.stmt(opLdAbs, off, e.jump(opJeq, v, t, f))
	}
	return e.stmt(opLdAbs, off, e.stmt(opAnd, m, e.jump(opJeq, v, t, f)))
}

// low emits the comparison of the low (or only) word, which decides.
func (e *emitter) low(op specs.LinuxSeccompOperator, off, v uint32, t, f ref) ref {
	var j ref
	switch op {
	case specs.OpEqualTo:
		j = e.jump(opJeq, v, t, f)
	case specs.OpNotEqual:
		j = e.jump(opJeq, v, f, t)
	case specs.OpGreaterThan:
		j = e.jump(opJgt, v, t, f)
	case specs.OpGreaterEqual:
		j = e.jump(opJge, v, t, f)
	case specs.OpLessThan:
		j = e.jump(opJge, v, f, t)
	case specs.OpLessEqual:
		j = e.jump(opJgt, v, f, t)
	}
	return e.stmt(opLdAbs, off, j)
}

// high emits the high-word test in front of lo, the low-word test.
func (e *emitter) high(op specs.LinuxSeccompOperator, off, v uint32, lo, t, f ref) ref {
	var j ref
	switch op {
	case specs.OpEqualTo:
		j = e.jump(opJeq, v, lo, f)
	case specs.OpNotEqual:
		j = e.jump(opJeq, v, lo, t)
	default:
		// above and below: where the high word is greater or smaller
		above, below := t, f
		if op == specs.OpLessThan || op == specs.OpLessEqual {
			above, below = f, t
		}
		switch v {
		case 0: // not above means equal
			j = e.jump(opJgt, 0, above, lo)
		case 0xffffffff: // never above
			j = e.jump(opJeq, v, lo, below)
		default:
			j = e.jump(opJgt, v, above, e.jump(opJeq, v, lo, below))
		}
	}
	return e.stmt(opLdAbs, off, j)
}

// rules emits a syscall's conditional rules: each tried in order, the first
// that matches returns its action, and none matching returns def.
func (e *emitter) rules(s *sysRules, def uint32) ref {
	next := retRef(def)
	for end := len(s.rules); end > 0; {
		start := end - 1
		for start > 0 && sameEqual(s.rules[start-1], s.rules[end-1], s.bits32) {
			start--
		}
		if start < end-1 {
			next = e.equalRun(s.rules[start:end], s.bits32, next)
			end = start
			continue
		}
		r := s.rules[start]
		match := retRef(r.ret)
		for j := len(r.conds) - 1; j >= 0; j-- {
			match = e.cond(r.conds[j], s.bits32, match, next)
		}
		next, end = match, start
	}
	return next
}

// sameEqual reports whether a and b both test one argument for equality,
// the same argument with the same high word: a run of such rules (socket
// domains, personality values) loads the argument once. At most one of
// them matches (equal comparisons are merged), so their order is free.
func sameEqual(a, b rule, bits32 bool) bool {
	if len(a.conds) != 1 || len(b.conds) != 1 {
		return false
	}
	x, y := a.conds[0], b.conds[0]
	return x.op == specs.OpEqualTo && y.op == specs.OpEqualTo && x.arg == y.arg &&
		(bits32 || x.val>>32 == y.val>>32)
}

// equalRun emits: ld hi; jne H → f; ld lo; jeq v1 → ret1; …; jeq vn → retn
// else f.
func (e *emitter) equalRun(run []rule, bits32 bool, f ref) ref {
	chain := f
	for i := len(run) - 1; i >= 0; i-- {
		chain = e.jump(opJeq, uint32(run[i].conds[0].val), retRef(run[i].ret), chain)
	}
	c := run[0].conds[0]
	lo := uint32(offArgs + 8*c.arg)
	start := e.stmt(opLdAbs, lo, chain)
	if bits32 {
		return start
	}
	return e.stmt(opLdAbs, lo+4, e.jump(opJeq, uint32(c.val>>32), start, f))
}

// tree emits a binary search over segs (sorted by number; the accumulator
// holds the syscall number): ceil(log2(len)) comparisons to a leaf.
func (e *emitter) tree(segs []seg, def uint32) ref {
	if len(segs) == 1 {
		t := segs[0].t
		if t.rules == nil {
			return retRef(t.ret)
		}
		// a syscall's rules sit right behind the comparison leading there
		return e.rules(t.rules, def)
	}
	mid := len(segs) / 2
	right := e.tree(segs[mid:], def)
	left := e.tree(segs[:mid], def)
	return e.jump(opJge, segs[mid].lo, right, left)
}

// assemble lays out the program:
//
//	ld arch; jeq AUDIT_1 → S1; jeq AUDIT_2 → S2; …; ret bad-arch
//	S1: ld nr; binary search over S1's segments; conditional rules …
func assemble(def uint32, secs []section) []unix.SockFilter {
	e := &emitter{rets: make(map[uint32]int)}
	e.emit(unix.SockFilter{Code: opRet, K: def}) // a program must end in a ret
	starts := make([]ref, len(secs))
	for i := len(secs) - 1; i >= 0; i-- {
		starts[i] = e.stmt(opLdAbs, offNr, e.tree(secs[i].segs, def))
	}
	next := retRef(badArchRet)
	for i := len(secs) - 1; i >= 0; i-- {
		next = e.jump(opJeq, secs[i].audit, starts[i], next)
	}
	e.stmt(opLdAbs, offArch, next)
	slices.Reverse(e.rev)
	return e.rev
}

// validate checks what the kernel's checker does and a little more: a known
// instruction set, loads inside seccomp_data, every jump inside the program,
// and no path falling off its end, so every path ends in a ret.
func validate(prog []unix.SockFilter) error {
	n := uint64(len(prog))
	if n == 0 {
		return errors.New("empty program")
	}
	if n > unix.BPF_MAXINSNS {
		return fmt.Errorf("%d instructions, more than %d", n, unix.BPF_MAXINSNS)
	}
	for i, ins := range prog {
		next := uint64(i) + 1
		switch ins.Code {
		case opRet:
			continue
		case opLdAbs:
			if ins.K%4 != 0 || ins.K >= seccompData {
				return fmt.Errorf("instruction %d: load from offset %d of seccomp_data", i, ins.K)
			}
		case opAnd:
		case opJa:
			next += uint64(ins.K)
		case opJeq, opJgt, opJge, opJset:
			next += uint64(max(ins.Jt, ins.Jf))
		default:
			return fmt.Errorf("instruction %d: opcode %#x not allowed", i, ins.Code)
		}
		if next >= n {
			return fmt.Errorf("instruction %d: runs past the end of the program", i)
		}
	}
	return nil
}
