// Package seccomp gives every RUN step and container docker's default
// seccomp filter (or a profile in docker's JSON format), compiled to a
// classic BPF program in pure Go and installed with seccomp(2).
//
// Use: in the parent, Default (or Load) resolves the profile for the
// process's capabilities, arch and kernel, and Compile turns it into a
// Filter, once per kiln process. The Filter goes to the re-executed child as
// JSON; the child, after its mounts and pivot_root and before it drops
// capabilities, calls Install on the thread that will exec.
//
// Why not libseccomp-golang, as runc does: it is cgo, and kiln is a static
// binary with no cgo that cross-compiles with GOOS/GOARCH alone and
// re-executes itself (/proc/self/exe) in a fresh root with no dynamic loader
// and no libseccomp.so to load. Resolving the profile is moby's own code
// (github.com/moby/profiles/seccomp); syscall numbers come from
// github.com/elastic/go-seccomp-bpf/arch (Linux 6.15 tables); this package
// compiles the rules.
//
// What the program does, following libseccomp and runc:
//
//   - It loads seccomp_data.arch and compares it with each covered audit
//     arch, the native one first: x86_64 (with the x86 and x32 ABIs of
//     docker's profile) or aarch64 (with arm). Any other arch gets
//     libseccomp's default bad-arch action, SCMP_ACT_KILL (kill the thread),
//     which docker and runc keep. x32 shares x86_64's audit arch; its calls
//     carry bit 30 (__X32_SYSCALL_BIT). As libseccomp does, an x86_64-only
//     filter kills x32 calls, and an x32-only one x86_64 calls.
//   - It then loads the syscall number and does a binary search over the
//     number space, split into runs of numbers with the same outcome, so a
//     call costs about log2(runs) comparisons, not a scan of every name.
//   - Numbers above the highest one the profile names on an ABI return
//     ENOSYS instead of the default action, as runc's patchbpf stub does, so
//     a libc newer than the profile falls back (unless the default action is
//     ALLOW, LOG or TRACE, where runc adds no stub).
//   - Argument comparisons are on 64-bit values, high word then low word.
//     On x86, x32 and arm only the low 32 bits are compared, as libseccomp
//     does for its 32-bit arches. MASKED_EQ compares arg&value with
//     valueTwo&value; conditions of one rule are ANDed and rules are ORed.
//
// Rule semantics where docker's JSON leaves room, as runc and libseccomp
// resolve them:
//
//   - A rule whose action equals the default action is dropped (runc skips
//     it; libseccomp refuses it).
//   - A rule comparing one argument twice becomes one rule per comparison
//     (runc; the default profile's socket rules are written around it).
//   - The first unconditional rule for a syscall wins over all others.
//   - Conditional rules are tried in profile order, the first match wins.
//     Rules with identical comparisons and different actions are an error,
//     as libseccomp's EEXIST. (When different comparisons with different
//     actions both match, libseccomp picks by its internal tree order.)
//   - ERRNO and TRACE return the rule's errnoRet, else EPERM;
//     defaultErrnoRet applies to the default action only (runc, OCI spec).
//   - Names an ABI lacks are skipped on that ABI. On x86, rules on socket
//     and SysV IPC calls also cover socketcall(2) and ipc(2) with argument 0
//     set to the call number, as libseccomp does.
//   - No flags means SECCOMP_FILTER_FLAG_SPEC_ALLOW, runc's default. TSYNC
//     and WAIT_KILLABLE_RECV are accepted and have no effect here.
//   - SCMP_ACT_NOTIFY is refused: kiln has no notify agent.
package seccomp
