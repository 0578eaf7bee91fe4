package seccomp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Return values the tests expect.
const (
	allow  = unix.SECCOMP_RET_ALLOW
	eperm  = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	enosys = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	kill   = unix.SECCOMP_RET_KILL_THREAD
)

// dockerCaps is docker's default bounding set.
var dockerCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// call is a synthetic struct seccomp_data.
type call struct {
	arch uint32
	nr   uint32
	args [maxArgs]uint64
}

// word is the 32-bit word at off of the little-endian seccomp_data, as the
// kernel's BPF_LD|BPF_W|BPF_ABS sees it.
func (c call) word(off uint32) uint32 {
	switch {
	case off == offNr:
		return c.nr
	case off == offArch:
		return c.arch
	case off >= offArgs && off < seccompData:
		a := c.args[(off-offArgs)/8]
		if off%8 == 4 {
			return uint32(a >> 32)
		}
		return uint32(a)
	}
	return 0 // instruction_pointer
}

// vmInput lays c out for x/net/bpf's VM, which loads words big-endian:
// every word sits at its seccomp_data offset in big-endian byte order.
func (c call) vmInput() []byte {
	b := make([]byte, seccompData)
	for off := uint32(0); off < seccompData; off += 4 {
		binary.BigEndian.PutUint32(b[off:], c.word(off))
	}
	return b
}

// interpret runs prog on c and counts the instructions it executes. It
// knows only the instructions the compiler emits.
func interpret(prog []unix.SockFilter, c call) (ret uint32, steps int, err error) {
	var a uint32
	skip := func(cond bool, ins unix.SockFilter) int {
		if cond {
			return int(ins.Jt)
		}
		return int(ins.Jf)
	}
	for pc := 0; pc < len(prog); pc++ {
		ins := prog[pc]
		steps++
		switch ins.Code {
		case opLdAbs:
			a = c.word(ins.K)
		case opAnd:
			a &= ins.K
		case opJa:
			pc += int(ins.K)
		case opJeq:
			pc += skip(a == ins.K, ins)
		case opJgt:
			pc += skip(a > ins.K, ins)
		case opJge:
			pc += skip(a >= ins.K, ins)
		case opJset:
			pc += skip(a&ins.K != 0, ins)
		case opRet:
			return ins.K, steps, nil
		default:
			return 0, steps, fmt.Errorf("pc %d: opcode %#x", pc, ins.Code)
		}
	}
	return 0, steps, errors.New("fell off the end")
}

// machine runs one program in x/net/bpf's VM and in interpret.
type machine struct {
	prog []unix.SockFilter
	vm   *bpf.VM
}

func newMachine(t testing.TB, f *Filter) *machine {
	t.Helper()
	raw := make([]bpf.RawInstruction, len(f.Program))
	for i, ins := range f.Program {
		raw[i] = bpf.RawInstruction{Op: ins.Code, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	insns, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("x/net/bpf cannot decode the program")
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatalf("x/net/bpf refuses the program: %v", err)
	}
	return &machine{prog: f.Program, vm: vm}
}

// run returns what the program answers to c; both interpreters must agree.
func (m *machine) run(t testing.TB, c call) uint32 {
	t.Helper()
	got, err := m.vm.Run(c.vmInput())
	if err != nil {
		t.Fatalf("vm: %v", err)
	}
	ret, _, err := interpret(m.prog, c)
	if err != nil {
		t.Fatalf("interpret: %v", err)
	}
	if uint32(got) != ret {
		t.Fatalf("vm returned %#x, interpreter %#x for %+v", uint32(got), ret, c)
	}
	return ret
}

// compileFor compiles p for goarch and fails the test on error.
func compileFor(t testing.TB, p *specs.LinuxSeccomp, goarch string) *machine {
	t.Helper()
	f, err := compile(p, goarch)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return newMachine(t, f)
}

// sysnr is name's number on spec's ABI.
func sysnr(t testing.TB, spec specs.Arch, name string) uint32 {
	t.Helper()
	nr, ok := abiFor(spec).nr(name)
	if !ok {
		t.Fatalf("%s has no syscall %q", spec, name)
	}
	return nr
}

func retName(r uint32) string {
	switch r & unix.SECCOMP_RET_ACTION_FULL {
	case unix.SECCOMP_RET_ALLOW:
		return "ALLOW"
	case unix.SECCOMP_RET_ERRNO:
		return fmt.Sprintf("ERRNO(%d)", r&unix.SECCOMP_RET_DATA)
	case unix.SECCOMP_RET_KILL_THREAD:
		return "KILL_THREAD"
	}
	return fmt.Sprintf("%#x", r)
}
