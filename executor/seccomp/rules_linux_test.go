package seccomp

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// holds is the reference semantics of one comparison: 64-bit unsigned, or
// on the low 32 bits for a 32-bit ABI, as libseccomp.
func holds(op specs.LinuxSeccompOperator, a, v, v2 uint64, bits32 bool) bool {
	if bits32 {
		a, v, v2 = a&0xffffffff, v&0xffffffff, v2&0xffffffff
	}
	switch op {
	case specs.OpEqualTo:
		return a == v
	case specs.OpNotEqual:
		return a != v
	case specs.OpLessThan:
		return a < v
	case specs.OpLessEqual:
		return a <= v
	case specs.OpGreaterThan:
		return a > v
	case specs.OpGreaterEqual:
		return a >= v
	case specs.OpMaskedEqual:
		return a&v == v2&v
	}
	panic(op)
}

// edgeValues differ from each other in the high word, the low word or both.
var edgeValues = []uint64{
	0, 1, 5, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff,
	1 << 32, 1<<32 | 5, 5 << 32, 5<<32 | 5, 5<<32 | 0xffffffff,
	0x7fffffff_ffffffff, 0x80000000_00000000, 0xffffffff_00000000, 0xffffffff_ffffffff,
}

func TestCompareOps(t *testing.T) {
	ops := []specs.LinuxSeccompOperator{
		specs.OpEqualTo, specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual,
		specs.OpGreaterThan, specs.OpGreaterEqual,
	}
	var probes []uint64
	for _, v := range edgeValues {
		probes = append(probes, v-1, v, v+1, v^1<<32)
	}
	abis := []struct {
		audit  uint32
		bits32 bool
	}{{x86_64Audit, false}, {i386Audit, true}}
	for _, op := range ops {
		for _, v := range edgeValues {
			// argument 5 sits at the end of seccomp_data
			m := compileFor(t, profile(sys(specs.ActAllow, []string{"read"}, arg(5, op, v))), "amd64")
			for _, ab := range abis {
				nr := uint32(0)
				if ab.bits32 {
					nr = 3
				}
				for _, a := range probes {
					want := eperm
					if holds(op, a, v, 0, ab.bits32) {
						want = allow
					}
					if got := m.run(t, call{arch: ab.audit, nr: nr, args: [maxArgs]uint64{5: a}}); got != want {
						t.Errorf("%s %#x on %#x (32-bit %v): got %s, want %s", op, v, a, ab.bits32, retName(got), retName(want))
					}
				}
			}
		}
	}
}

func TestMaskedEqual(t *testing.T) {
	masks := []uint64{1, 0xff, 0xffffffff, 1 << 32, 0xff00000000, 0xffffffff_00000000, 0xffffffff_ffffffff, 0x80000000_00000001}
	for _, mask := range masks {
		for _, v2 := range edgeValues {
			a := specs.LinuxSeccompArg{Index: 1, Op: specs.OpMaskedEqual, Value: mask, ValueTwo: v2}
			m := compileFor(t, profile(sys(specs.ActAllow, []string{"read"}, a)), "amd64")
			for _, x := range edgeValues {
				for _, ab := range []struct {
					audit, nr uint32
					bits32    bool
				}{{x86_64Audit, 0, false}, {i386Audit, 3, true}} {
					want := eperm
					if holds(specs.OpMaskedEqual, x, mask, v2, ab.bits32) {
						want = allow
					}
					if got := m.run(t, call{arch: ab.audit, nr: ab.nr, args: [maxArgs]uint64{1: x}}); got != want {
						t.Errorf("arg %#x & %#x == %#x (32-bit %v): got %s, want %s", x, mask, v2, ab.bits32, retName(got), retName(want))
					}
				}
			}
		}
	}
}

// rulesCase is a profile of rules on read(2) and what read answers for
// some first three arguments.
type rulesCase struct {
	name  string
	rules []specs.LinuxSyscall
	args  [][3]uint64
	want  []uint32
}

func TestRuleCombination(t *testing.T) {
	read := []string{"read"}
	eq := func(i uint, v uint64) specs.LinuxSeccompArg { return arg(i, specs.OpEqualTo, v) }
	errno := func(n uint, args ...specs.LinuxSeccompArg) specs.LinuxSyscall {
		s := sys(specs.ActErrno, read, args...)
		s.ErrnoRet = uptr(n)
		return s
	}
	e5 := unix.SECCOMP_RET_ERRNO | uint32(5)
	cases := []rulesCase{
		{"args of one rule are ANDed", []specs.LinuxSyscall{
			sys(specs.ActAllow, read, eq(0, 1), arg(2, specs.OpGreaterThan, 10)),
		}, [][3]uint64{{1, 0, 11}, {1, 0, 10}, {2, 0, 11}, {1, 1 << 32, 1 << 32}}, []uint32{allow, eperm, eperm, allow}},
		{"one argument twice in a rule is ORed, as runc", []specs.LinuxSyscall{
			sys(specs.ActAllow, read, eq(0, 1), eq(0, 2)),
		}, [][3]uint64{{1}, {2}, {3}}, []uint32{allow, allow, eperm}},
		{"rules are ORed", []specs.LinuxSyscall{
			sys(specs.ActAllow, read, eq(0, 1)), sys(specs.ActAllow, read, eq(0, 7)),
		}, [][3]uint64{{1}, {7}, {3}}, []uint32{allow, allow, eperm}},
		{"first matching rule wins", []specs.LinuxSyscall{
			errno(5, eq(0, 1)), sys(specs.ActAllow, read, arg(0, specs.OpLessThan, 10)),
		}, [][3]uint64{{1}, {2}, {10}}, []uint32{e5, allow, eperm}},
		{"unconditional after conditional wins", []specs.LinuxSyscall{
			errno(5, eq(0, 1)), sys(specs.ActAllow, read),
		}, [][3]uint64{{1}, {2}}, []uint32{allow, allow}},
		{"unconditional before conditional wins", []specs.LinuxSyscall{
			sys(specs.ActAllow, read), errno(5, eq(0, 1)),
		}, [][3]uint64{{1}, {2}}, []uint32{allow, allow}},
		{"first unconditional wins", []specs.LinuxSyscall{
			errno(5), sys(specs.ActAllow, read),
		}, [][3]uint64{{1}}, []uint32{e5}},
		{"a rule with the default action is dropped", []specs.LinuxSyscall{
			sys(specs.ActErrno, read), sys(specs.ActAllow, read, eq(0, 1)),
		}, [][3]uint64{{1}, {2}}, []uint32{allow, eperm}},
		{"same conditions and action twice", []specs.LinuxSyscall{
			sys(specs.ActAllow, read, eq(0, 1)), sys(specs.ActAllow, read, eq(0, 1)),
		}, [][3]uint64{{1}, {2}}, []uint32{allow, eperm}},
		{"masked-equal with an empty mask is always true", []specs.LinuxSyscall{
			sys(specs.ActAllow, read, specs.LinuxSeccompArg{Index: 0, Op: specs.OpMaskedEqual, Value: 0, ValueTwo: 3}),
		}, [][3]uint64{{1}, {1 << 40}}, []uint32{allow, allow}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := compileFor(t, profile(c.rules...), "amd64")
			for i, a := range c.args {
				got := m.run(t, call{arch: x86_64Audit, nr: 0, args: [maxArgs]uint64{a[0], a[1], a[2]}})
				if got != c.want[i] {
					t.Errorf("read(%#x, %#x, %#x): got %s, want %s", a[0], a[1], a[2], retName(got), retName(c.want[i]))
				}
			}
		})
	}
}

// TestRandomRules compares compiled programs with a direct reading of the
// rule semantics (first unconditional rule wins, else the first matching
// conditional rule, rules with the default action dropped) on random rule
// sets built to share arguments, values and high words.
func TestRandomRules(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pool := []uint64{0, 1, 2, 3, 1 << 32, 1<<32 | 1, 1<<32 | 2, 0xffffffff, 0xffffffff_00000001}
	ops := []specs.LinuxSeccompOperator{
		specs.OpEqualTo, specs.OpEqualTo, specs.OpEqualTo, specs.OpNotEqual, specs.OpLessThan,
		specs.OpLessEqual, specs.OpGreaterThan, specs.OpGreaterEqual, specs.OpMaskedEqual,
	}
	actions := []struct {
		act   specs.LinuxSeccompAction
		errno *uint
	}{{specs.ActAllow, nil}, {specs.ActErrno, uptr(5)}, {specs.ActErrno, nil}, {specs.ActKillProcess, nil}}
	pick := func() uint64 { return pool[rng.IntN(len(pool))] }
	compiled := 0
	for range 400 {
		var rules []specs.LinuxSyscall
		for range 1 + rng.IntN(8) {
			a := actions[rng.IntN(len(actions))]
			r := sys(a.act, []string{"read"})
			r.ErrnoRet = a.errno
			n := rng.IntN(3)
			if n == 0 && rng.IntN(4) != 0 {
				n = 1 // unconditional rules hide the rest: keep them rare
			}
			for i := range n {
				c := specs.LinuxSeccompArg{Index: uint(i), Op: ops[rng.IntN(len(ops))], Value: pick(), ValueTwo: pick()}
				if c.Op == specs.OpMaskedEqual && c.Value&0xffffffff == 0 {
					c.Value |= 1 // an empty (low) mask would make the rule unconditional
				}
				r.Args = append(r.Args, c)
			}
			rules = append(rules, r)
		}
		for _, ab := range []struct {
			audit, nr uint32
			bits32    bool
			goarch    string
		}{{x86_64Audit, 0, false, "amd64"}, {i386Audit, 3, true, "386"}} {
			p := profile(rules...)
			p.Architectures = nil
			f, err := compile(p, ab.goarch)
			if err != nil {
				if !strings.Contains(err.Error(), "different actions") {
					t.Fatal(err)
				}
				continue
			}
			compiled++
			m := newMachine(t, f)
			for range 30 {
				args := [maxArgs]uint64{pick() ^ uint64(rng.IntN(2)), pick()}
				want := referenceRules(rules, eperm, args, ab.bits32)
				if got := m.run(t, call{arch: ab.audit, nr: ab.nr, args: args}); got != want {
					t.Fatalf("rules %+v\nread(%#x, %#x) on %s: got %s, want %s", rules, args[0], args[1], ab.goarch, retName(got), retName(want))
				}
			}
		}
	}
	if compiled < 400 {
		t.Errorf("only %d of 800 random profiles compiled", compiled)
	}
}

func referenceRules(rules []specs.LinuxSyscall, def uint32, args [maxArgs]uint64, bits32 bool) uint32 {
	var live []specs.LinuxSyscall
	for _, r := range rules {
		ret, _ := actionRet(r.Action, r.ErrnoRet)
		if ret == def {
			continue
		}
		if len(r.Args) == 0 {
			return ret
		}
		live = append(live, r)
	}
	for _, r := range live {
		all := true
		for _, a := range r.Args {
			all = all && holds(a.Op, args[a.Index], a.Value, a.ValueTwo, bits32)
		}
		if all {
			ret, _ := actionRet(r.Action, r.ErrnoRet)
			return ret
		}
	}
	return def
}
