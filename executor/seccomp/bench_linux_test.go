package seccomp

import "testing"

// BenchmarkFilter runs calls through the default filter in x/net/bpf's VM
// and reports how many BPF instructions each executes (insns/op), the cost
// the kernel pays per syscall.
func BenchmarkFilter(b *testing.B) {
	m, _ := defaultMachine(b, dockerCaps)
	native := abiFor(nativeABI[nativeGOARCH])
	for _, c := range []struct {
		name string
		arg0 uint64
	}{
		{"read", 0}, {"futex", 0}, {"clone", forkFlags}, {"socket", 10 /* AF_INET6 */},
		{"kexec_load", 0}, // rare, refused
		{"clone3", 0},     // refused with ENOSYS
	} {
		nr, ok := native.nr(c.name)
		if !ok {
			continue
		}
		cl := call{arch: native.audit, nr: nr, args: [maxArgs]uint64{c.arg0}}
		_, steps, err := interpret(m.prog, cl)
		if err != nil {
			b.Fatal(err)
		}
		in := cl.vmInput()
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := m.vm.Run(in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(steps), "insns/op")
		})
	}
}

// BenchmarkCompileDefault is what one kiln process pays once: resolving
// docker's default profile (moby's code) and compiling it.
func BenchmarkCompileDefault(b *testing.B) {
	b.Run("resolve", func(b *testing.B) {
		for b.Loop() {
			if _, err := Default(dockerCaps); err != nil {
				b.Fatal(err)
			}
		}
	})
	p, err := Default(dockerCaps)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("compile", func(b *testing.B) {
		for b.Loop() {
			if _, err := Compile(p); err != nil {
				b.Fatal(err)
			}
		}
	})
}
