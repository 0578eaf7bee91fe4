package seccomp

import (
	"fmt"
	"slices"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const (
	nsFlags    = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP
	forkFlags  = uint64(unix.SIGCHLD)
	threadFlag = unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_THREAD |
		unix.CLONE_SYSVSEM | unix.CLONE_SETTLS | unix.CLONE_PARENT_SETTID | unix.CLONE_CHILD_CLEARTID
)

// sysCase is one syscall and the answer a filter should give it. on limits
// it to ABIs comparing 64-bit ("64") or 32-bit ("32") arguments; names an
// ABI lacks are skipped there.
type sysCase struct {
	name string
	args [maxArgs]uint64
	want uint32
	on   string
}

func (c sysCase) String() string { return fmt.Sprintf("%s%x", c.name, c.args[:2]) }

// checkABIs runs cases against m on every ABI of p (and the native one).
func checkABIs(t *testing.T, m *machine, p *specs.LinuxSeccomp, goarch string, cases []sysCase) {
	t.Helper()
	list, err := filterABIs(p, goarch)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range list {
		ran := 0
		for _, c := range cases {
			nr, ok := a.nr(c.name)
			if !ok || (c.on == "64" && a.bits32) || (c.on == "32" && !a.bits32) {
				continue
			}
			ran++
			if got := m.run(t, call{arch: a.audit, nr: nr, args: c.args}); got != c.want {
				t.Errorf("%s %v: got %s, want %s", a.spec, c, retName(got), retName(c.want))
			}
		}
		if ran < len(cases)/2 {
			t.Errorf("%s: only %d of %d cases apply", a.spec, ran, len(cases))
		}
	}
}

func kernelAtLeast(t *testing.T, major, minor int) bool {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		t.Fatal(err)
	}
	var ma, mi int
	if _, err := fmt.Sscanf(unix.ByteSliceToString(uts.Release[:]), "%d.%d", &ma, &mi); err != nil {
		t.Fatal(err)
	}
	return ma > major || ma == major && mi >= minor
}

func defaultMachine(t testing.TB, caps []string) (*machine, *specs.LinuxSeccomp) {
	t.Helper()
	p, err := Default(caps)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	return newMachine(t, f), p
}

func TestDefaultProfile(t *testing.T) {
	m, p := defaultMachine(t, dockerCaps)
	// The profile allows ptrace only from Linux 4.8, whose seccomp runs
	// again after a tracer changed the call.
	ptrace := eperm
	if kernelAtLeast(t, 4, 8) {
		ptrace = allow
	}
	a := func(v ...uint64) (r [maxArgs]uint64) { copy(r[:], v); return r }
	cases := []sysCase{
		{name: "read", want: allow},
		{name: "write", want: allow},
		{name: "futex", want: allow},
		{name: "execve", want: allow},
		{name: "exit_group", want: allow},
		{name: "capset", want: allow},
		{name: "capget", want: allow},
		{name: "prctl", want: allow},
		{name: "setuid", want: allow},
		{name: "setgid", want: allow},
		{name: "setgroups", want: allow},
		{name: "chroot", want: allow}, // CAP_SYS_CHROOT is a docker default
		{name: "ptrace", want: ptrace},
		{name: "mount", want: eperm},
		{name: "umount2", want: eperm},
		{name: "unshare", args: a(unix.CLONE_NEWUSER), want: eperm},
		{name: "setns", want: eperm},
		{name: "keyctl", want: eperm},
		{name: "add_key", want: eperm},
		{name: "request_key", want: eperm},
		{name: "bpf", want: eperm},
		{name: "kexec_load", want: eperm},
		{name: "open_by_handle_at", want: eperm},
		{name: "reboot", want: eperm},
		{name: "swapon", want: eperm},
		{name: "init_module", want: eperm},
		{name: "kcmp", want: eperm},
		{name: "clone", args: a(forkFlags), want: allow},
		{name: "clone", args: a(threadFlag), want: allow},
		{name: "clone", args: a(unix.CLONE_VM | unix.CLONE_VFORK | forkFlags | unix.CLONE_PIDFD), want: allow},
		{name: "clone", args: a(unix.CLONE_NEWUSER), want: eperm},
		{name: "clone", args: a(unix.CLONE_NEWNS | forkFlags), want: eperm},
		{name: "clone", args: a(unix.CLONE_NEWNET | threadFlag), want: eperm},
		// The mask's high word is 0, so no high bits matter (libseccomp
		// skips that half of MASKED_EQ).
		{name: "clone", args: a(1<<40 | forkFlags), want: allow},
		{name: "clone3", want: enosys},
		{name: "personality", args: a(0), want: allow},
		{name: "personality", args: a(0x0008), want: allow},
		{name: "personality", args: a(0x20000), want: allow},
		{name: "personality", args: a(0x20008), want: allow},
		{name: "personality", args: a(0xffffffff), want: allow},
		{name: "personality", args: a(0x0040000), want: eperm}, // ADDR_NO_RANDOMIZE
		{name: "personality", args: a(1<<32 | 8), want: eperm, on: "64"},
		{name: "personality", args: a(1<<32 | 8), want: allow, on: "32"},
		{name: "socket", args: a(unix.AF_UNIX), want: allow},
		{name: "socket", args: a(unix.AF_INET), want: allow},
		{name: "socket", args: a(unix.AF_INET6), want: allow},
		{name: "socket", args: a(unix.AF_NETLINK), want: allow},
		{name: "socket", args: a(unix.AF_PACKET), want: allow},
		{name: "socket", args: a(unix.AF_UNSPEC), want: allow}, // in the profile's range; the kernel refuses it
		{name: "socket", args: a(unix.AF_AX25), want: eperm},
		{name: "socket", args: a(unix.AF_ALG), want: eperm},
		{name: "socket", args: a(unix.AF_VSOCK), want: eperm},
		{name: "socket", args: a(1<<32 | unix.AF_INET), want: eperm, on: "64"},
		{name: "socketcall", want: allow},
		{name: "ipc", want: allow},
	}
	checkABIs(t, m, p, nativeGOARCH, cases)

	list, _ := filterABIs(p, nativeGOARCH)
	for _, ab := range list {
		top := uint32(0)
		for _, s := range p.Syscalls {
			for _, n := range s.Names {
				if nr, ok := ab.nr(n); ok {
					top = max(top, nr)
				}
			}
		}
		for _, nr := range []uint32{top + 1, top + 100, ab.nrBit | 0x3fffffff} {
			if got := m.run(t, call{arch: ab.audit, nr: nr}); got != enosys {
				t.Errorf("%s: nr %#x above the profile's highest (%#x): got %s, want ENOSYS", ab.spec, nr, top, retName(got))
			}
		}
	}
	for _, arch := range []uint32{0, 0x12345678, 0xc0000015 /* ppc64le */, 0x80000016 /* s390x */} {
		if got := m.run(t, call{arch: arch}); got != kill {
			t.Errorf("audit arch %#x: got %s, want the bad-arch action KILL_THREAD", arch, retName(got))
		}
	}
}

func TestDefaultProfileAMD64Numbers(t *testing.T) {
	if nativeGOARCH != "amd64" {
		t.Skip("checks the resolved amd64 profile")
	}
	m, p := defaultMachine(t, dockerCaps)
	if want := []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}; !slices.Equal(p.Architectures, want) {
		t.Fatalf("architectures %v, want %v", p.Architectures, want)
	}
	const x86_64, i386 = 0xc000003e, 0x40000003
	cases := []struct {
		what     string
		arch, nr uint32
		want     uint32
	}{
		{"x86_64 read", x86_64, 0, allow},
		{"x86_64 mount", x86_64, 165, eperm},
		{"x86_64 clone3", x86_64, 435, enosys},
		{"x86_64 arch_prctl", x86_64, 158, allow},
		{"i386 read", i386, 3, allow},
		{"i386 chown32", i386, 212, allow},
		{"i386 socketcall", i386, 102, allow},
		{"i386 mount", i386, 21, eperm},
		{"x32 read", x86_64, x32Bit, allow}, // read is 0
		{"x32 rt_sigaction", x86_64, x32Bit | 512, allow},
		{"x32 x86_64-only rt_sigaction", x86_64, x32Bit | 13, eperm},
		{"x32 mount", x86_64, x32Bit | 165, eperm},
		{"x32 above x32 table", x86_64, x32Bit | 548, enosys},
		{"x86_64 -1, seen as x32", x86_64, 0xffffffff, enosys},
		{"x86_64 between tables", x86_64, 1000, enosys},
	}
	for _, c := range cases {
		if got := m.run(t, call{arch: c.arch, nr: c.nr}); got != c.want {
			t.Errorf("%s: got %s, want %s", c.what, retName(got), retName(c.want))
		}
	}
}

func TestDefaultProfileCaps(t *testing.T) {
	a := func(v ...uint64) (r [maxArgs]uint64) { copy(r[:], v); return r }
	cases := []struct {
		name  string
		caps  []string
		cases []sysCase
	}{
		{"docker caps and CAP_SYS_ADMIN", append(slices.Clone(dockerCaps), "CAP_SYS_ADMIN"), []sysCase{
			{name: "mount", want: allow},
			{name: "umount2", want: allow},
			{name: "unshare", args: a(unix.CLONE_NEWUSER), want: allow},
			{name: "setns", want: allow},
			{name: "clone", args: a(unix.CLONE_NEWUSER | forkFlags), want: allow},
			{name: "clone3", want: allow},
			{name: "kexec_load", want: eperm},
		}},
		{"no caps", nil, []sysCase{
			{name: "chroot", want: eperm},
			{name: "read", want: allow},
			{name: "clone", args: a(forkFlags), want: allow},
		}},
		{"other caps", []string{"CAP_DAC_READ_SEARCH", "CAP_SYS_PTRACE", "CAP_SYS_BOOT", "CAP_SYS_MODULE"}, []sysCase{
			{name: "open_by_handle_at", want: allow},
			{name: "kcmp", want: allow},
			{name: "ptrace", want: allow},
			{name: "reboot", want: allow},
			{name: "init_module", want: allow},
			{name: "mount", want: eperm},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, p := defaultMachine(t, c.caps)
			checkABIs(t, m, p, nativeGOARCH, c.cases)
		})
	}
}

// TestARM64 compiles the default rules as an arm64 kiln would: aarch64
// native with the arm sub-arch.
func TestARM64(t *testing.T) {
	p, err := Default(dockerCaps)
	if err != nil {
		t.Fatal(err)
	}
	p.Architectures = []specs.Arch{specs.ArchAARCH64, specs.ArchARM}
	m := compileFor(t, p, "arm64")
	a := func(v ...uint64) (r [maxArgs]uint64) { copy(r[:], v); return r }
	checkABIs(t, m, p, "arm64", []sysCase{
		{name: "read", want: allow},
		{name: "futex", want: allow},
		{name: "execve", want: allow},
		{name: "mount", want: eperm},
		{name: "clone", args: a(forkFlags), want: allow},
		{name: "clone", args: a(unix.CLONE_NEWUSER), want: eperm},
		{name: "clone3", want: enosys},
		{name: "kexec_load", want: eperm},
	})
	const aarch64, arm = 0xc00000b7, 0x40000028
	for _, c := range []struct {
		arch, nr, want uint32
	}{
		{aarch64, 63, allow},    // read
		{aarch64, 1000, enosys}, // above the table
		{arm, 3, allow},         // read
		{0xc000003e, 0, kill},   // x86_64 is not covered
	} {
		if got := m.run(t, call{arch: c.arch, nr: c.nr}); got != c.want {
			t.Errorf("arch %#x nr %d: got %s, want %s", c.arch, c.nr, retName(got), retName(c.want))
		}
	}
}

// TestDefaultProgramCost pins the size and dispatch cost of the default
// filter so a change that makes it slower shows up.
func TestDefaultProgramCost(t *testing.T) {
	m, _ := defaultMachine(t, dockerCaps)
	native := abiFor(nativeABI[nativeGOARCH])
	t.Logf("default profile: %d instructions", len(m.prog))
	if len(m.prog) > 1200 {
		t.Errorf("default program has %d instructions, want at most 1200", len(m.prog))
	}
	for _, c := range []struct {
		name  string
		most  int
		args0 uint64
	}{
		{"read", 14, 0}, {"futex", 14, 0}, {"mmap", 14, 0}, {"kexec_load", 14, 0},
		{"clone", 18, forkFlags}, {"clone3", 14, 0},
	} {
		nr, ok := native.nr(c.name)
		if !ok {
			continue
		}
		_, steps, err := interpret(m.prog, call{arch: native.audit, nr: nr, args: [maxArgs]uint64{c.args0}})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d instructions", c.name, steps)
		if steps > c.most {
			t.Errorf("%s runs %d instructions, want at most %d", c.name, steps, c.most)
		}
	}
}
