// Device rules: which device nodes a step may open (docker's list), as
// v1 devices controller lines and as a cgroup v2 eBPF program.

package executor

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Device types and access bits in struct bpf_cgroup_dev_ctx's access_type
// (type in the low 16 bits, access in the high 16), from linux/bpf.h.
const (
	bpfDevBlock = 1
	bpfDevChar  = 2
	bpfAccMknod = 1
	bpfAccRead  = 2
	bpfAccWrite = 4
)

// deviceFilter assembles the cgroup v2 counterpart of the v1 device rules:
// a BPF_PROG_TYPE_CGROUP_DEVICE program that returns 1 (allow) for the
// accesses rules allow and 0 for everything else, as runc's devicefilter.
func deviceFilter(rules []deviceRule) asm.Instructions {
	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word),
		asm.And.Imm32(asm.R2, 0xffff), // type
		asm.LoadMem(asm.R3, asm.R1, 0, asm.Word),
		asm.RSh.Imm32(asm.R3, 16),                // access
		asm.LoadMem(asm.R4, asm.R1, 4, asm.Word), // major
		asm.LoadMem(asm.R5, asm.R1, 8, asm.Word), // minor
	}
	for i, r := range rules {
		next := "rule" + strconv.Itoa(i+1)
		kind := int32(bpfDevChar)
		if r.kind == 'b' {
			kind = bpfDevBlock
		}
		var acc int32
		for _, c := range r.access {
			acc |= map[rune]int32{'m': bpfAccMknod, 'r': bpfAccRead, 'w': bpfAccWrite}[c]
		}
		rule := asm.Instructions{
			asm.JNE.Imm(asm.R2, kind, next),
			// Any access bit the rule does not grant skips it.
			asm.Mov.Reg32(asm.R6, asm.R3),
			asm.And.Imm32(asm.R6, ^acc&0xffff),
			asm.JNE.Imm(asm.R6, 0, next),
		}
		if r.major >= 0 {
			rule = append(rule, asm.JNE.Imm(asm.R4, int32(r.major), next))
		}
		if r.minor >= 0 {
			rule = append(rule, asm.JNE.Imm(asm.R5, int32(r.minor), next))
		}
		rule = append(rule, asm.Mov.Imm(asm.R0, 1), asm.Return())
		if i > 0 {
			rule[0] = rule[0].WithSymbol("rule" + strconv.Itoa(i))
		}
		insns = append(insns, rule...)
	}
	insns = append(insns,
		asm.Mov.Imm(asm.R0, 0).WithSymbol("rule"+strconv.Itoa(len(rules))),
		asm.Return(),
	)
	return insns
}

// deviceProgram is loaded once per process (it costs half a millisecond)
// and attached to every step's cgroup; it is never closed.
var deviceProgram = sync.OnceValues(func() (*ebpf.Program, error) {
	return ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.CGroupDevice,
		License:      "Apache-2.0",
		Instructions: deviceFilter(allowedDevices),
	})
})

// attachDeviceFilter loads the device filter and attaches it to the
// cgroup2 directory dir. The attachment lives as long as the cgroup; other
// programs attached higher up (systemd's) still apply (BPF_F_ALLOW_MULTI).
func attachDeviceFilter(dir string) error {
	prog, err := deviceProgram()
	if err != nil {
		return fmt.Errorf("cgroup: loading the eBPF device filter: %w", err)
	}
	f, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("cgroup: %w", err)
	}
	defer f.Close()
	err = link.RawAttachProgram(link.RawAttachProgramOptions{
		Target:  int(f.Fd()),
		Program: prog,
		Attach:  ebpf.AttachCGroupDevice,
		Flags:   unix.BPF_F_ALLOW_MULTI,
	})
	if err != nil {
		return fmt.Errorf("cgroup: attaching the eBPF device filter to %s: %w", strings.TrimPrefix(dir, "/sys/fs/cgroup"), err)
	}
	return nil
}

// allowedDevices is docker's default device allow-list: a container may
// make any device node (images keep them as data) but open only these.
var allowedDevices = []deviceRule{
	{kind: 'c', major: -1, minor: -1, access: "m"},
	{kind: 'b', major: -1, minor: -1, access: "m"},
	{kind: 'c', major: 1, minor: 3, access: "rwm"},    // /dev/null
	{kind: 'c', major: 1, minor: 5, access: "rwm"},    // /dev/zero
	{kind: 'c', major: 1, minor: 7, access: "rwm"},    // /dev/full
	{kind: 'c', major: 1, minor: 8, access: "rwm"},    // /dev/random
	{kind: 'c', major: 1, minor: 9, access: "rwm"},    // /dev/urandom
	{kind: 'c', major: 5, minor: 0, access: "rwm"},    // /dev/tty
	{kind: 'c', major: 5, minor: 1, access: "rwm"},    // /dev/console
	{kind: 'c', major: 5, minor: 2, access: "rwm"},    // /dev/ptmx
	{kind: 'c', major: 136, minor: -1, access: "rwm"}, // /dev/pts/N
}

// deviceRule allows access ("r", "w", "m" for mknod) to devices of a kind
// ('c' or 'b'); -1 is any major or minor.
type deviceRule struct {
	kind         byte
	major, minor int64
	access       string
}

func (r deviceRule) String() string {
	num := func(n int64) string {
		if n < 0 {
			return "*"
		}
		return strconv.FormatInt(n, 10)
	}
	return fmt.Sprintf("%c %s:%s %s", r.kind, num(r.major), num(r.minor), r.access)
}

// writeV1DeviceRules denies every device, then allows the default list.
func writeV1DeviceRules(dir string) error {
	if err := writeCgroupFile(dir, "devices.deny", "a"); err != nil {
		return err
	}
	for _, r := range allowedDevices {
		if err := writeCgroupFile(dir, "devices.allow", r.String()); err != nil {
			return err
		}
	}
	return nil
}
