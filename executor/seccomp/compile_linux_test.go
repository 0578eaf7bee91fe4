package seccomp

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const x86_64Audit, i386Audit = 0xc000003e, 0x40000003

func uptr(v uint) *uint { return &v }

// profile is an ERRNO-by-default profile covering x86_64 and x86.
func profile(rules ...specs.LinuxSyscall) *specs.LinuxSeccomp {
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86},
		Syscalls:      rules,
	}
}

func sys(action specs.LinuxSeccompAction, names []string, args ...specs.LinuxSeccompArg) specs.LinuxSyscall {
	return specs.LinuxSyscall{Names: names, Action: action, Args: args}
}

func arg(i uint, op specs.LinuxSeccompOperator, v uint64) specs.LinuxSeccompArg {
	return specs.LinuxSeccompArg{Index: i, Op: op, Value: v}
}

func TestActions(t *testing.T) {
	cases := []struct {
		act   specs.LinuxSeccompAction
		errno *uint
		want  uint32
	}{
		{specs.ActAllow, nil, allow},
		{specs.ActErrno, nil, eperm},
		{specs.ActErrno, uptr(uint(unix.EACCES)), unix.SECCOMP_RET_ERRNO | uint32(unix.EACCES)},
		{specs.ActKill, nil, unix.SECCOMP_RET_KILL_THREAD},
		{specs.ActKillThread, nil, unix.SECCOMP_RET_KILL_THREAD},
		{specs.ActKillProcess, nil, unix.SECCOMP_RET_KILL_PROCESS},
		{specs.ActTrap, nil, unix.SECCOMP_RET_TRAP},
		{specs.ActTrace, nil, unix.SECCOMP_RET_TRACE | uint32(unix.EPERM)},
		{specs.ActTrace, uptr(7), unix.SECCOMP_RET_TRACE | 7},
		{specs.ActLog, nil, unix.SECCOMP_RET_LOG},
	}
	for _, c := range cases {
		t.Run(string(c.act), func(t *testing.T) {
			rule := sys(c.act, []string{"write"})
			rule.ErrnoRet = c.errno
			p := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{rule}}
			if c.act == specs.ActAllow {
				p.DefaultAction = specs.ActErrno
			}
			m := compileFor(t, p, "amd64")
			if got := m.run(t, call{arch: x86_64Audit, nr: 1}); got != c.want {
				t.Errorf("rule: got %#x, want %#x", got, c.want)
			}
			// the same action as the default, with defaultErrnoRet
			def := &specs.LinuxSeccomp{DefaultAction: c.act, DefaultErrnoRet: c.errno}
			m = compileFor(t, def, "amd64")
			if got := m.run(t, call{arch: x86_64Audit, nr: 1}); got != c.want {
				t.Errorf("default: got %#x, want %#x", got, c.want)
			}
		})
	}
	// defaultErrnoRet is for the default action only, as runc.
	p := profile(sys(specs.ActErrno, []string{"write"}))
	p.DefaultErrnoRet = uptr(uint(unix.ENOSYS))
	m := compileFor(t, p, "amd64")
	if got := m.run(t, call{arch: x86_64Audit, nr: 1}); got != eperm {
		t.Errorf("ERRNO rule without errnoRet: got %s, want EPERM", retName(got))
	}
	if got := m.run(t, call{arch: x86_64Audit, nr: 2}); got != enosys {
		t.Errorf("default with defaultErrnoRet 38: got %s, want ENOSYS", retName(got))
	}
}

func TestFlags(t *testing.T) {
	cases := []struct {
		flags []specs.LinuxSeccompFlag
		want  uint
	}{
		{nil, unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW},
		{[]specs.LinuxSeccompFlag{}, unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW},
		{[]specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog}, unix.SECCOMP_FILTER_FLAG_LOG},
		{[]specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow}, unix.SECCOMP_FILTER_FLAG_LOG | unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW},
		{[]specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_TSYNC"}, 0},
		{[]specs.LinuxSeccompFlag{specs.LinuxSeccompFlagWaitKillableRecv}, 0},
	}
	for _, c := range cases {
		p := profile()
		p.Flags = c.flags
		f, err := compile(p, "amd64")
		if err != nil {
			t.Fatal(err)
		}
		if f.Flags != c.want {
			t.Errorf("flags %v: got %#x, want %#x", c.flags, f.Flags, c.want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	bad := func(edit func(p *specs.LinuxSeccomp)) *specs.LinuxSeccomp {
		p := profile(sys(specs.ActAllow, []string{"read", "write"}, arg(0, specs.OpEqualTo, 1)))
		edit(p)
		return p
	}
	cases := []struct {
		p    *specs.LinuxSeccomp
		want string
	}{
		{nil, "no profile"},
		{bad(func(p *specs.LinuxSeccomp) { p.DefaultAction = "" }), "no defaultAction"},
		{bad(func(p *specs.LinuxSeccomp) { p.DefaultAction = "SCMP_ACT_FOO" }), `defaultAction: unknown action "SCMP_ACT_FOO"`},
		{bad(func(p *specs.LinuxSeccomp) { p.DefaultAction = specs.ActNotify }), "SCMP_ACT_NOTIFY is not supported"},
		{bad(func(p *specs.LinuxSeccomp) { p.Syscalls[0].Action = "X" }), `syscall "read" (and 1 more): unknown action "X"`},
		{bad(func(p *specs.LinuxSeccomp) { p.Syscalls[0].Action = specs.ActNotify }), `syscall "read" (and 1 more): SCMP_ACT_NOTIFY`},
		{bad(func(p *specs.LinuxSeccomp) { p.Syscalls[0].Args[0].Op = "SCMP_CMP_FOO" }), `argument 0: unknown op "SCMP_CMP_FOO"`},
		{bad(func(p *specs.LinuxSeccomp) { p.Syscalls[0].Args[0].Index = 6 }), "argument index 6"},
		{bad(func(p *specs.LinuxSeccomp) { p.Architectures = append(p.Architectures, "SCMP_ARCH_FOO") }), `unknown architecture "SCMP_ARCH_FOO"`},
		{bad(func(p *specs.LinuxSeccomp) { p.Flags = []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_FOO"} }), `unknown flag "SECCOMP_FILTER_FLAG_FOO"`},
		{bad(func(p *specs.LinuxSeccomp) {
			p.Syscalls[0].Action = specs.ActErrno
			p.Syscalls[0].ErrnoRet = uptr(70000)
		}), "errnoRet 70000"},
		{bad(func(p *specs.LinuxSeccomp) { p.Syscalls[0].Names = nil }), "syscalls[0]: no names"},
		{bad(func(p *specs.LinuxSeccomp) { p.Syscalls[0].Names = []string{""} }), "empty syscall name"},
		{bad(func(p *specs.LinuxSeccomp) { p.ListenerPath = "/run/agent.sock" }), "listenerPath"},
		{bad(func(p *specs.LinuxSeccomp) {
			r := p.Syscalls[0]
			r.Action, r.Names = specs.ActKill, []string{"write"}
			p.Syscalls = append(p.Syscalls, r)
		}), `syscall "write" on SCMP_ARCH_X86_64: two rules compare the same arguments but have different actions`},
	}
	for _, c := range cases {
		_, err := compile(c.p, "amd64")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got error %v, want one containing %q", err, c.want)
		}
	}
	if _, err := compile(profile(), "ppc64le"); err == nil || !strings.Contains(err.Error(), "ppc64le") {
		t.Errorf("unsupported native arch: got %v", err)
	}
	if _, err := Compile(nil); err == nil || !strings.HasPrefix(err.Error(), "seccomp profile: ") {
		t.Errorf("Compile(nil): got %v, want a seccomp profile error", err)
	}
}

func TestLoad(t *testing.T) {
	f, err := Load([]byte(`{
		"defaultAction": "SCMP_ACT_ERRNO",
		"archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
		            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
		"syscalls": [
			{"names": ["read", "no_such_syscall"], "action": "SCMP_ACT_ALLOW"},
			{"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
			{"name": "write", "action": "SCMP_ACT_ALLOW"}
		]}`), []string{"CAP_CHOWN"})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Syscalls) != 2 || f.Syscalls[1].Names[0] != "write" {
		t.Errorf("resolved rules %+v, want read and write without mount", f.Syscalls)
	}
	if len(f.Architectures) != 2 {
		t.Errorf("architectures %v, want the native arch and its sub-arch", f.Architectures)
	}
	cases := []struct{ json, want string }{
		{`{`, "seccomp profile: "},
		{`{}`, "empty"},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [null]}`, "syscalls[0] is null"},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOPE"}]}`, `syscall "read": unknown action "SCMP_ACT_NOPE"`},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["x86"]}`, `unknown architecture "x86"`},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"name": "read", "names": ["read"], "action": "SCMP_ACT_ALLOW"}]}`, "both 'name' and 'names'"},
		{`{"syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}`, "no defaultAction"},
	}
	for _, c := range cases {
		_, err := Load([]byte(c.json), nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Load(%s): got %v, want an error containing %q", c.json, err, c.want)
		}
	}
}

func TestNamesPerABI(t *testing.T) {
	// chown32 exists on x86 only; no_such_syscall nowhere.
	m := compileFor(t, profile(sys(specs.ActAllow, []string{"no_such_syscall", "chown32", "read"})), "amd64")
	cases := []struct {
		arch, nr, want uint32
	}{
		{i386Audit, sysnr(t, specs.ArchX86, "chown32"), allow},
		{i386Audit, sysnr(t, specs.ArchX86, "read"), allow},
		{x86_64Audit, sysnr(t, specs.ArchX86_64, "read"), allow},
		{i386Audit, sysnr(t, specs.ArchX86, "chown"), eperm},
		{x86_64Audit, 1, enosys}, // above read, the only x86_64 name
		{i386Audit, 213, enosys}, // above chown32
	}
	for _, c := range cases {
		if got := m.run(t, call{arch: c.arch, nr: c.nr}); got != c.want {
			t.Errorf("arch %#x nr %d: got %s, want %s", c.arch, c.nr, retName(got), retName(c.want))
		}
	}
}

func TestArchCoverage(t *testing.T) {
	readOnly := func(arches ...specs.Arch) *specs.LinuxSeccomp {
		p := profile(sys(specs.ActAllow, []string{"read"}))
		p.Architectures = arches
		return p
	}
	cases := []struct {
		name     string
		p        *specs.LinuxSeccomp
		goarch   string
		arch, nr uint32
		want     uint32
	}{
		// libseccomp: an x86_64 filter without x32 kills x32 calls but
		// not -1, which tracers use to skip a call.
		{"x32 call, no x32", readOnly(specs.ArchX86_64), "amd64", x86_64Audit, x32Bit, kill},
		{"-1, no x32", readOnly(specs.ArchX86_64), "amd64", x86_64Audit, 0xffffffff, eperm},
		{"x86_64 below x32 bit", readOnly(specs.ArchX86_64), "amd64", x86_64Audit, x32Bit - 1, enosys},
		{"x86 not listed", readOnly(specs.ArchX86_64), "amd64", i386Audit, 3, kill},
		{"native always covered", readOnly(), "amd64", x86_64Audit, 0, allow},
		{"x32 read", readOnly(specs.ArchX32), "amd64", x86_64Audit, x32Bit, allow},
		{"x32 only: x86_64 call", readOnly(specs.ArchX32), "386", x86_64Audit, 0, kill},
		{"x32 only: x32 read", readOnly(specs.ArchX32), "386", x86_64Audit, x32Bit, allow},
		{"x86 native", readOnly(), "386", i386Audit, 3, allow},
		{"arch without a table", readOnly(specs.ArchPPC64LE), "amd64", 0xc0000015, 3, kill},
		{"arm sub-arch of amd64", readOnly(specs.ArchARM), "amd64", 0x40000028, 3, allow},
	}
	for _, c := range cases {
		m := compileFor(t, c.p, c.goarch)
		if got := m.run(t, call{arch: c.arch, nr: c.nr}); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, retName(got), retName(c.want))
		}
	}
}

func TestNoStub(t *testing.T) {
	cases := []struct {
		name string
		p    *specs.LinuxSeccomp
		want uint32 // for a number above every name
	}{
		{"allow default", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{sys(specs.ActErrno, []string{"mount"})}}, allow},
		{"log default", &specs.LinuxSeccomp{DefaultAction: specs.ActLog, Syscalls: []specs.LinuxSyscall{sys(specs.ActErrno, []string{"mount"})}}, unix.SECCOMP_RET_LOG},
		{"no names at all", &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}, eperm},
		{"kill default", &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess, Syscalls: []specs.LinuxSyscall{sys(specs.ActAllow, []string{"read"})}}, enosys},
	}
	for _, c := range cases {
		m := compileFor(t, c.p, "amd64")
		if got := m.run(t, call{arch: x86_64Audit, nr: 1000}); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, retName(got), retName(c.want))
		}
	}
}

// TestSocketcallMux checks libseccomp's x86 rule: a rule on socket(2) also
// covers socketcall(SYS_SOCKET, …).
func TestSocketcallMux(t *testing.T) {
	m := compileFor(t, profile(
		sys(specs.ActAllow, []string{"socket"}, arg(0, specs.OpEqualTo, unix.AF_INET)),
		sys(specs.ActAllow, []string{"shmget"}),
	), "amd64")
	socket, socketcall, ipc := sysnr(t, specs.ArchX86, "socket"), sysnr(t, specs.ArchX86, "socketcall"), sysnr(t, specs.ArchX86, "ipc")
	cases := []struct {
		nr   uint32
		arg0 uint64
		want uint32
	}{
		{socket, unix.AF_INET, allow},
		{socket, unix.AF_UNIX, eperm},
		{socketcall, 1, allow}, // SYS_SOCKET; its domain is behind a pointer
		{socketcall, 2, eperm}, // SYS_BIND
		{ipc, 23, allow},       // SHMGET
		{ipc, 21, eperm},       // SHMAT
	}
	for _, c := range cases {
		if got := m.run(t, call{arch: i386Audit, nr: c.nr, args: [maxArgs]uint64{c.arg0}}); got != c.want {
			t.Errorf("i386 nr %d(%d): got %s, want %s", c.nr, c.arg0, retName(got), retName(c.want))
		}
	}
	// x86_64 has no multiplexers
	if got := m.run(t, call{arch: x86_64Audit, nr: sysnr(t, specs.ArchX86_64, "socket"), args: [maxArgs]uint64{unix.AF_INET}}); got != allow {
		t.Errorf("x86_64 socket(AF_INET): got %s", retName(got))
	}
}

// TestLongJumps builds programs whose jumps are far beyond the 255 a
// conditional jump reaches, and one over the kernel's size limit.
func TestLongJumps(t *testing.T) {
	var rules []specs.LinuxSyscall
	// two conditions per rule, so no run of equalities shortens them
	for i := range 300 {
		rules = append(rules, sys(specs.ActAllow, []string{"read"}, arg(0, specs.OpEqualTo, uint64(3*i)), arg(1, specs.OpNotEqual, 7)))
	}
	rules = append(rules, sys(specs.ActAllow, []string{"write"}, arg(0, specs.OpLessThan, 900), arg(1, specs.OpMaskedEqual, 0)))
	rules = append(rules, sys(specs.ActAllow, []string{"futex", "getpid"}))
	m := compileFor(t, profile(rules...), "amd64")
	if len(m.prog) < 3000 {
		t.Fatalf("program has only %d instructions", len(m.prog))
	}
	far := 0
	for _, ins := range m.prog {
		if ins.Code == opJa {
			far++
		}
	}
	if far == 0 {
		t.Error("no jump needed a JA: the test does not test long jumps")
	}
	for _, name := range []string{"read", "write"} {
		nr := sysnr(t, specs.ArchX86_64, name)
		for i := range uint64(1000) {
			want := eperm
			if i%3 == 0 && i < 900 || name == "write" && i < 900 {
				want = allow
			}
			if got := m.run(t, call{arch: x86_64Audit, nr: nr, args: [maxArgs]uint64{i}}); got != want {
				t.Fatalf("%s(%d): got %s, want %s", name, i, retName(got), retName(want))
			}
			if got := m.run(t, call{arch: x86_64Audit, nr: nr, args: [maxArgs]uint64{i, 7}}); name == "read" && got != eperm {
				t.Fatalf("read(%d, 7): got %s, want EPERM", i, retName(got))
			}
		}
	}
	for _, name := range []string{"futex", "getpid"} {
		if got := m.run(t, call{arch: i386Audit, nr: sysnr(t, specs.ArchX86, name)}); got != allow {
			t.Errorf("i386 %s: got %s", name, retName(got))
		}
	}
	for i := range 600 {
		rules = append(rules, sys(specs.ActAllow, []string{"close"}, arg(0, specs.OpEqualTo, uint64(i)), arg(1, specs.OpNotEqual, 7)))
	}
	_, err := compile(profile(rules...), "amd64")
	if err == nil || !strings.Contains(err.Error(), "4096") {
		t.Errorf("oversized program: got %v, want an error naming the 4096 limit", err)
	}
}

func TestFilterJSON(t *testing.T) {
	p, err := Default(dockerCaps)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var back Filter
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*f, back) {
		t.Error("filter changed through JSON")
	}
	t.Logf("%d instructions, %d bytes of JSON", len(f.Program), len(b))
}

func TestValidate(t *testing.T) {
	ret := unix.SockFilter{Code: opRet}
	ld := func(k uint32) unix.SockFilter { return unix.SockFilter{Code: opLdAbs, K: k} }
	cases := []struct {
		prog []unix.SockFilter
		want string
	}{
		{nil, "empty"},
		{[]unix.SockFilter{ld(0)}, "past the end"},
		{[]unix.SockFilter{ld(2), ret}, "offset 2"},
		{[]unix.SockFilter{ld(64), ret}, "offset 64"},
		{[]unix.SockFilter{{Code: opJa, K: 1}, ret}, "past the end"},
		{[]unix.SockFilter{{Code: opJeq, Jt: 0, Jf: 1}, ret}, "past the end"},
		{[]unix.SockFilter{{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_IND}, ret}, "opcode"},
		{make([]unix.SockFilter, 4097), "4097 instructions"},
	}
	for i, c := range cases {
		err := validate(c.prog)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("case %d: got %v, want an error containing %q", i, err, c.want)
		}
	}
	if err := validate([]unix.SockFilter{ld(60), {Code: opJeq, Jt: 1}, ret, ret}); err != nil {
		t.Errorf("valid program: %v", err)
	}
	if err := (&Filter{}).Install(); err == nil {
		t.Error("Install of an empty filter succeeded")
	}
}
