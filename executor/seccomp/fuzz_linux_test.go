package seccomp

import (
	"encoding/binary"
	"testing"
)

// FuzzCompile feeds profile JSON through Load and compile for every
// supported GOARCH: nothing may panic, and every program must be valid
// (at most 4096 instructions, jumps in range, every path ending in a ret)
// and give the same answers in x/net/bpf's VM and in interpret.
func FuzzCompile(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Load(data, dockerCaps)
		if err != nil {
			return
		}
		// argument values come from the input too, to reach the conditions
		var args [maxArgs]uint64
		for i := range args {
			if len(data) >= 8*(i+1) {
				args[i] = binary.LittleEndian.Uint64(data[8*i:])
			}
		}
		for _, goarch := range []string{"amd64", "386", "arm64", "arm"} {
			fl, err := compile(p, goarch)
			if err != nil {
				continue
			}
			if err := validate(fl.Program); err != nil {
				t.Fatalf("%s: invalid program: %v", goarch, err)
			}
			m := newMachine(t, fl)
			for _, a := range abis {
				for _, nr := range []uint32{0, 3, 41, 63, 102, 165, 435, 1000, 0xf0005, x32Bit, x32Bit | 512, 0xffffffff} {
					m.run(t, call{arch: a.audit, nr: nr, args: args})
				}
			}
			m.run(t, call{arch: 0x12345678, nr: 0})
		}
	})
}
