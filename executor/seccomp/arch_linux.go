package seccomp

import (
	"fmt"
	"sync"

	"github.com/elastic/go-seccomp-bpf/arch"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// x32Bit is __X32_SYSCALL_BIT: x32 processes run under the x86_64 audit
// arch and tell the kernel their ABI by setting this bit in the syscall
// number.
const x32Bit = 0x40000000

// abi is one system-call ABI a filter can cover.
type abi struct {
	spec  specs.Arch
	audit uint32
	// nrBit is ORed into every syscall number of the ABI (x32Bit for x32).
	nrBit uint32
	// bits32 compares arguments on their low 32 bits only, as libseccomp
	// does for its ARCH_SIZE_32 arches (x86, x32, arm).
	bits32 bool
	// mux is set where libseccomp also filters the socketcall(2) and ipc(2)
	// multiplexers for rules on the socket and SysV IPC calls (x86 only).
	mux  bool
	info *arch.Info
}

// abis are the ABIs kiln has syscall tables for (go-seccomp-bpf's arch
// package). The audit arch values are the kernel's AUDIT_ARCH_* constants.
var abis = []*abi{
	{spec: specs.ArchX86_64, audit: 0xc000003e, info: arch.X86_64},
	{spec: specs.ArchX86, audit: 0x40000003, bits32: true, mux: true, info: arch.I386},
	{spec: specs.ArchX32, audit: 0xc000003e, nrBit: x32Bit, bits32: true, info: arch.X32},
	{spec: specs.ArchAARCH64, audit: 0xc00000b7, info: arch.AARCH64},
	{spec: specs.ArchARM, audit: 0x40000028, bits32: true, info: arch.ARM},
}

// nativeABI maps GOARCH to the ABI a kiln binary runs under.
var nativeABI = map[string]specs.Arch{
	"amd64": specs.ArchX86_64,
	"386":   specs.ArchX86,
	"arm64": specs.ArchAARCH64,
	"arm":   specs.ArchARM,
}

// knownArches are every SCMP_ARCH_* name the runtime spec defines. A profile
// may list ones kiln has no table for: those get the bad-arch action, which
// is harmless as their processes cannot run on a kernel of the arches above.
var knownArches = map[specs.Arch]bool{
	specs.ArchX86: true, specs.ArchX86_64: true, specs.ArchX32: true,
	specs.ArchARM: true, specs.ArchAARCH64: true,
	specs.ArchMIPS: true, specs.ArchMIPS64: true, specs.ArchMIPS64N32: true,
	specs.ArchMIPSEL: true, specs.ArchMIPSEL64: true, specs.ArchMIPSEL64N32: true,
	specs.ArchPPC: true, specs.ArchPPC64: true, specs.ArchPPC64LE: true,
	specs.ArchS390: true, specs.ArchS390X: true,
	specs.ArchPARISC: true, specs.ArchPARISC64: true,
	specs.ArchRISCV64: true, specs.ArchLOONGARCH64: true,
	specs.ArchM68K: true, specs.ArchSH: true, specs.ArchSHEB: true,
}

func abiFor(a specs.Arch) *abi {
	for _, x := range abis {
		if x.spec == a {
			return x
		}
	}
	return nil
}

var syscallTables = sync.OnceValue(func() map[specs.Arch]map[string]uint32 {
	m := make(map[specs.Arch]map[string]uint32, len(abis))
	for _, a := range abis {
		t := make(map[string]uint32, len(a.info.SyscallNumbers))
		for nr, name := range a.info.SyscallNumbers {
			// x32 lists some names twice: the x86_64 number, which the
			// kernel refuses from x32, and the x32 one from 512 up. Keep
			// the higher, as libseccomp's table does; arch.Info's own
			// inverted map picks one at random.
			if old, ok := t[name]; !ok || uint32(nr) > old {
				t[name] = uint32(nr)
			}
		}
		m[a.spec] = t
	}
	return m
})

// nr returns the syscall number of name on a, with the ABI bit set.
func (a *abi) nr(name string) (uint32, bool) {
	n, ok := syscallTables()[a.spec][name]
	return n | a.nrBit, ok
}

// filterABIs returns the ABIs a filter covers: the native one first (so its
// calls take the first arch comparison), then the profile's, in order.
// libseccomp and runc always include the native arch as well.
func filterABIs(p *specs.LinuxSeccomp, goarch string) ([]*abi, error) {
	native, ok := nativeABI[goarch]
	if !ok {
		return nil, fmt.Errorf("no syscall table for GOARCH %s", goarch)
	}
	out := []*abi{abiFor(native)}
	for _, s := range p.Architectures {
		if !knownArches[s] {
			return nil, fmt.Errorf("unknown architecture %q", s)
		}
		a := abiFor(s)
		if a == nil {
			continue
		}
		dup := false
		for _, o := range out {
			dup = dup || o == a
		}
		if !dup {
			out = append(out, a)
		}
	}
	return out, nil
}

// Call numbers of the socketcall(2) and ipc(2) multiplexers (SYS_SOCKET in
// linux/net.h, SEMOP in linux/ipc.h), for the ABIs with mux set.
var (
	socketCalls = map[string]uint64{
		"socket": 1, "bind": 2, "connect": 3, "listen": 4, "accept": 5,
		"getsockname": 6, "getpeername": 7, "socketpair": 8, "send": 9,
		"recv": 10, "sendto": 11, "recvfrom": 12, "shutdown": 13,
		"setsockopt": 14, "getsockopt": 15, "sendmsg": 16, "recvmsg": 17,
		"accept4": 18, "recvmmsg": 19, "sendmmsg": 20,
	}
	ipcCalls = map[string]uint64{
		"semop": 1, "semget": 2, "semctl": 3, "semtimedop": 4,
		"msgsnd": 11, "msgrcv": 12, "msgget": 13, "msgctl": 14,
		"shmat": 21, "shmdt": 22, "shmget": 23, "shmctl": 24,
	}
)
