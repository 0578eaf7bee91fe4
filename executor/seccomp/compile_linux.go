package seccomp

import (
	"cmp"
	"errors"
	"fmt"
	"runtime"
	"slices"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Filter is a compiled seccomp program and the flags to load it with. It is
// plain data so the parent can compile once and hand it to the re-executed
// child as JSON.
type Filter struct {
	Program []unix.SockFilter `json:"program"`
	Flags   uint              `json:"flags,omitempty"`
}

// badArchRet is what a call from an ABI the filter does not cover gets:
// libseccomp's default SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL (kill the
// thread), which docker and runc leave unchanged.
const badArchRet = unix.SECCOMP_RET_KILL_THREAD

const enosysRet = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)

// nativeGOARCH is the arch Compile builds for; tests compile for others.
const nativeGOARCH = runtime.GOARCH

// maxArgs is the number of syscall arguments in seccomp_data.
const maxArgs = 6

// Compile turns a resolved profile (from Default or Load) into a BPF program
// for this binary's arch and the profile's other architectures.
func Compile(p *specs.LinuxSeccomp) (*Filter, error) {
	f, err := compile(p, nativeGOARCH)
	if err != nil {
		return nil, fmt.Errorf("seccomp profile: %w", err)
	}
	return f, nil
}

// cond is one argument comparison. For SCMP_CMP_MASKED_EQ, mask is the
// profile's value and val its valueTwo.
type cond struct {
	arg       uint
	op        specs.LinuxSeccompOperator
	val, mask uint64
}

// rule is a conjunction of conditions and the return value when all hold.
type rule struct {
	conds []cond
	ret   uint32
}

// specRule is one validated entry of the profile's syscalls list. sets has
// several conjunctions when runc would split the entry (see newSpecRule).
type specRule struct {
	names []string
	ret   uint32
	sets  [][]cond
}

// plan is a validated profile, independent of any ABI.
type plan struct {
	defRet uint32
	stub   bool // unknown-newer syscalls get ENOSYS (runc's patchbpf)
	flags  uint
	rules  []specRule
}

func newPlan(p *specs.LinuxSeccomp) (*plan, error) {
	if p == nil {
		return nil, errors.New("no profile")
	}
	if p.DefaultAction == "" {
		return nil, errors.New("no defaultAction")
	}
	def, err := actionRet(p.DefaultAction, p.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("defaultAction: %w", err)
	}
	pl := &plan{defRet: def}
	// runc's patchbpf skips the ENOSYS stub for permissive defaults: a
	// tracer handles new syscalls itself and LOG/ALLOW let them through.
	switch p.DefaultAction {
	case specs.ActAllow, specs.ActLog, specs.ActTrace:
	default:
		pl.stub = true
	}
	if pl.flags, err = filterFlags(p); err != nil {
		return nil, err
	}
	for i, s := range p.Syscalls {
		r, err := newSpecRule(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ruleName(i, s.Names), err)
		}
		pl.rules = append(pl.rules, r)
	}
	return pl, nil
}

func ruleName(i int, names []string) string {
	switch len(names) {
	case 0:
		return fmt.Sprintf("syscalls[%d]", i)
	case 1:
		return fmt.Sprintf("syscall %q", names[0])
	}
	return fmt.Sprintf("syscall %q (and %d more)", names[0], len(names)-1)
}

// actionRet maps a profile action to its SECCOMP_RET_* value, with errno as
// the data of ERRNO and TRACE (EPERM when unset, as runc and the runtime
// spec say).
func actionRet(a specs.LinuxSeccompAction, errno *uint) (uint32, error) {
	data := uint32(unix.EPERM)
	if errno != nil {
		if *errno > unix.SECCOMP_RET_DATA {
			return 0, fmt.Errorf("errnoRet %d does not fit the 16 bits of SECCOMP_RET_DATA", *errno)
		}
		data = uint32(*errno)
	}
	switch a {
	case specs.ActAllow:
		return unix.SECCOMP_RET_ALLOW, nil
	case specs.ActErrno:
		return unix.SECCOMP_RET_ERRNO | data, nil
	case specs.ActKill, specs.ActKillThread:
		return unix.SECCOMP_RET_KILL_THREAD, nil
	case specs.ActKillProcess:
		return unix.SECCOMP_RET_KILL_PROCESS, nil
	case specs.ActTrap:
		return unix.SECCOMP_RET_TRAP, nil
	case specs.ActTrace:
		return unix.SECCOMP_RET_TRACE | data, nil
	case specs.ActLog:
		return unix.SECCOMP_RET_LOG, nil
	case specs.ActNotify:
		return 0, errors.New("SCMP_ACT_NOTIFY is not supported: kiln runs no seccomp notify agent")
	case "":
		return 0, errors.New("no action")
	}
	return 0, fmt.Errorf("unknown action %q", a)
}

// filterFlags maps the profile's flags to SECCOMP_FILTER_FLAG_* bits.
func filterFlags(p *specs.LinuxSeccomp) (uint, error) {
	if p.ListenerPath != "" {
		return 0, errors.New("listenerPath: seccomp notify is not supported")
	}
	// runc sets SPEC_ALLOW when the spec has no flags; docker's config.json
	// drops an empty list, so an empty list means the same here.
	if len(p.Flags) == 0 {
		return unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW, nil
	}
	var f uint
	for _, fl := range p.Flags {
		switch fl {
		case specs.LinuxSeccompFlagLog:
			f |= unix.SECCOMP_FILTER_FLAG_LOG
		case specs.LinuxSeccompFlagSpecAllow:
			f |= unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW
		case specs.LinuxSeccompFlagWaitKillableRecv:
			// Only means something with a notify listener, which kiln
			// never asks for; libseccomp drops it then too.
		case "SECCOMP_FILTER_FLAG_TSYNC":
			// runc accepts and ignores it. The filter goes on the thread
			// that execs, and execve leaves only that thread.
		default:
			return 0, fmt.Errorf("unknown flag %q", fl)
		}
	}
	return f, nil
}

func newSpecRule(s specs.LinuxSyscall) (specRule, error) {
	if len(s.Names) == 0 {
		return specRule{}, errors.New("no names")
	}
	for _, n := range s.Names {
		if n == "" {
			return specRule{}, errors.New("empty syscall name")
		}
	}
	ret, err := actionRet(s.Action, s.ErrnoRet)
	if err != nil {
		return specRule{}, err
	}
	r := specRule{names: s.Names, ret: ret}
	var conds []cond
	var seen [maxArgs]bool
	repeated := false
	for _, a := range s.Args {
		if a.Index >= maxArgs {
			return specRule{}, fmt.Errorf("argument index %d: syscalls have %d arguments", a.Index, maxArgs)
		}
		c := cond{arg: a.Index, op: a.Op, val: a.Value}
		switch a.Op {
		case specs.OpMaskedEqual:
			c.mask, c.val = a.Value, a.ValueTwo
		case specs.OpEqualTo, specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual,
			specs.OpGreaterThan, specs.OpGreaterEqual:
		default:
			return specRule{}, fmt.Errorf("argument %d: unknown op %q", a.Index, a.Op)
		}
		repeated = repeated || seen[a.Index]
		seen[a.Index] = true
		conds = append(conds, c)
	}
	// libseccomp takes one comparison per argument in a rule, so runc turns
	// an entry comparing one argument twice into one rule per comparison
	// (OR, not AND; see runc issue 2735).
	if repeated {
		for _, c := range conds {
			r.sets = append(r.sets, []cond{c})
		}
	} else {
		r.sets = [][]cond{conds}
	}
	return r, nil
}

// sysRules is what one syscall number does on one ABI.
type sysRules struct {
	always bool   // an unconditional rule: ret, and rules are ignored
	ret    uint32 // when always
	rules  []rule // tried in order; the first match wins, else the default
	bits32 bool   // the ABI compares low words only
}

// table resolves the plan for one ABI: syscall number → rules, and the
// highest number any profile name has there (the ENOSYS stub's bound).
func (pl *plan) table(a *abi) (m map[uint32]*sysRules, maxNr uint32, hasMax bool, err error) {
	m = make(map[uint32]*sysRules, len(syscallTables()[a.spec]))
	add := func(name string, nr uint32, set []cond, ret uint32) error {
		if err := addRule(m, a, nr, set, ret); err != nil {
			return fmt.Errorf("syscall %q on %s: %w", name, a.spec, err)
		}
		return nil
	}
	for _, r := range pl.rules {
		for _, name := range r.names {
			nr, ok := a.nr(name)
			if ok && (!hasMax || nr > maxNr) {
				maxNr, hasMax = nr, true
			}
			// libseccomp refuses a rule with the default action and runc
			// skips it, so it neither counts nor overrides others.
			if r.ret == pl.defRet {
				continue
			}
			if a.mux {
				if err := pl.addMuxed(a, name, r, add); err != nil {
					return nil, 0, false, err
				}
			}
			if !ok {
				continue // libseccomp skips names an arch lacks
			}
			for _, set := range r.sets {
				if err := add(name, nr, set, r.ret); err != nil {
					return nil, 0, false, err
				}
			}
		}
	}
	return m, maxNr, hasMax, nil
}

// addMuxed adds libseccomp's extra rule on socketcall(2) or ipc(2) for a
// rule on one of the calls they multiplex: the same rule with argument 0
// replaced by the call number (the real arguments sit behind a pointer).
func (pl *plan) addMuxed(a *abi, name string, r specRule, add func(string, uint32, []cond, uint32) error) error {
	mux, call := "socketcall", socketCalls[name]
	if call == 0 {
		mux, call = "ipc", ipcCalls[name]
	}
	nr, ok := a.nr(mux)
	if call == 0 || !ok {
		return nil
	}
	for _, set := range r.sets {
		muxed := []cond{{arg: 0, op: specs.OpEqualTo, val: call}}
		for _, c := range set {
			if c.arg != 0 {
				muxed = append(muxed, c)
			}
		}
		if err := add(mux, nr, muxed, r.ret); err != nil {
			return err
		}
	}
	return nil
}

// addRule merges one rule into m the way libseccomp's db_rule_add does: the
// first unconditional rule of a syscall wins over every other rule, and two
// rules with the same comparisons but different actions are an error.
func addRule(m map[uint32]*sysRules, a *abi, nr uint32, set []cond, ret uint32) error {
	var conds []cond
	for _, c := range set {
		if a.bits32 {
			// libseccomp: "implicitly strips off the upper 32 bit"
			c.val &= 0xffffffff
			c.mask &= 0xffffffff
		}
		if c.op == specs.OpMaskedEqual {
			if c.mask == 0 {
				continue // always true; libseccomp drops it too
			}
			c.val &= c.mask // libseccomp masks the datum
		}
		conds = append(conds, c)
	}
	slices.SortFunc(conds, func(x, y cond) int {
		return cmp.Or(cmp.Compare(x.arg, y.arg), cmp.Compare(x.op, y.op),
			cmp.Compare(x.val, y.val), cmp.Compare(x.mask, y.mask))
	})
	s := m[nr]
	if s == nil {
		s = &sysRules{bits32: a.bits32}
		m[nr] = s
	}
	switch {
	case s.always:
	case len(conds) == 0:
		s.always, s.ret, s.rules = true, ret, nil
	default:
		for _, o := range s.rules {
			if slices.Equal(o.conds, conds) {
				if o.ret != ret {
					return errors.New("two rules compare the same arguments but have different actions")
				}
				return nil
			}
		}
		s.rules = append(s.rules, rule{conds: conds, ret: ret})
	}
	return nil
}

// target is where a syscall number leads: a return value, or the
// conditional rules of one syscall.
type target struct {
	ret   uint32
	rules *sysRules // nil: return ret
}

// seg maps the syscall numbers from lo up to the next seg's lo to t.
type seg struct {
	lo uint32
	t  target
}

// segments partitions the 32-bit syscall-number space of one audit arch.
// x86_64 and x32 share an audit arch and split the space at x32Bit.
func (pl *plan) segments(group []*abi) ([]seg, error) {
	var x64, x32 bool
	for _, a := range group {
		x64 = x64 || a.spec == specs.ArchX86_64
		x32 = x32 || a.spec == specs.ArchX32
	}
	var out []seg
	put := func(lo uint32, t target) {
		if n := len(out); n > 0 && out[n-1].t == t {
			return
		}
		out = append(out, seg{lo, t})
	}
	if x32 && !x64 {
		// libseccomp sends x86_64 calls to the bad-arch action.
		put(0, target{ret: badArchRet})
	}
	for _, a := range group {
		lo, hi := uint32(0), uint32(0xffffffff)
		switch a.spec {
		case specs.ArchX86_64:
			hi = x32Bit - 1
		case specs.ArchX32:
			lo = x32Bit
		}
		m, maxNr, hasMax, err := pl.table(a)
		if err != nil {
			return nil, err
		}
		nrs := make([]uint32, 0, len(m))
		for nr := range m {
			nrs = append(nrs, nr)
		}
		slices.Sort(nrs)
		next := uint64(lo) // next number not yet covered
		for _, nr := range nrs {
			if uint64(nr) > next {
				put(uint32(next), target{ret: pl.defRet})
			}
			s := m[nr]
			if s.always {
				put(nr, target{ret: s.ret})
			} else {
				put(nr, target{rules: s})
			}
			next = uint64(nr) + 1
		}
		// runc's patchbpf: numbers above the highest the profile names
		// are newer than the profile, so say ENOSYS and libc falls back.
		end := uint64(hi)
		if pl.stub && hasMax {
			end = uint64(maxNr)
			if n := len(nrs); n > 0 {
				end = max(end, uint64(nrs[n-1])) // a socketcall(2) rule of a muxed name
			}
		}
		if next <= end {
			put(uint32(next), target{ret: pl.defRet})
		}
		if end < uint64(hi) {
			put(uint32(end+1), target{ret: enosysRet})
		}
	}
	if x64 && !x32 {
		// libseccomp sends x32 calls to the bad-arch action, except -1,
		// which a tracer uses to skip a call.
		put(x32Bit, target{ret: badArchRet})
		put(0xffffffff, target{ret: pl.defRet})
	}
	return out, nil
}

// groups orders the ABIs by audit arch, keeping the first ABI's arch first.
func groups(abis []*abi) [][]*abi {
	var out [][]*abi
	for _, a := range abis {
		i := slices.IndexFunc(out, func(g []*abi) bool { return g[0].audit == a.audit })
		if i < 0 {
			out = append(out, []*abi{a})
			continue
		}
		out[i] = append(out[i], a)
		slices.SortFunc(out[i], func(x, y *abi) int { return cmp.Compare(x.nrBit, y.nrBit) })
	}
	return out
}

func compile(p *specs.LinuxSeccomp, goarch string) (*Filter, error) {
	pl, err := newPlan(p)
	if err != nil {
		return nil, err
	}
	list, err := filterABIs(p, goarch)
	if err != nil {
		return nil, err
	}
	var sections []section
	for _, g := range groups(list) {
		segs, err := pl.segments(g)
		if err != nil {
			return nil, err
		}
		sections = append(sections, section{audit: g[0].audit, segs: segs})
	}
	prog := assemble(pl.defRet, sections)
	if len(prog) > unix.BPF_MAXINSNS {
		return nil, fmt.Errorf("compiled program has %d instructions, more than the kernel's %d", len(prog), unix.BPF_MAXINSNS)
	}
	if err := validate(prog); err != nil {
		return nil, fmt.Errorf("internal error: %w", err)
	}
	return &Filter{Program: prog, Flags: pl.flags}, nil
}
