package executor

import (
	"errors"
	"fmt"
	"slices"

	"golang.org/x/sys/unix"
)

// defaultCaps is Docker's default capability set; a root process in the
// container gets these and no others.
var defaultCaps = map[int]string{
	unix.CAP_CHOWN:            "CAP_CHOWN",
	unix.CAP_DAC_OVERRIDE:     "CAP_DAC_OVERRIDE",
	unix.CAP_FSETID:           "CAP_FSETID",
	unix.CAP_FOWNER:           "CAP_FOWNER",
	unix.CAP_MKNOD:            "CAP_MKNOD",
	unix.CAP_NET_RAW:          "CAP_NET_RAW",
	unix.CAP_SETGID:           "CAP_SETGID",
	unix.CAP_SETUID:           "CAP_SETUID",
	unix.CAP_SETFCAP:          "CAP_SETFCAP",
	unix.CAP_SETPCAP:          "CAP_SETPCAP",
	unix.CAP_NET_BIND_SERVICE: "CAP_NET_BIND_SERVICE",
	unix.CAP_SYS_CHROOT:       "CAP_SYS_CHROOT",
	unix.CAP_KILL:             "CAP_KILL",
	unix.CAP_AUDIT_WRITE:      "CAP_AUDIT_WRITE",
}

// defaultCapNames lists defaultCaps by name, for resolving a seccomp
// profile's per-capability rules.
func defaultCapNames() []string {
	names := make([]string, 0, len(defaultCaps))
	for _, n := range defaultCaps {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// dropCapabilities limits what the program gets at exec to defaultCaps.
// Capabilities are per thread: this must run on the thread that execs.
func dropCapabilities() error {
	for c := 0; c < 64; c++ {
		if _, ok := defaultCaps[c]; ok {
			continue
		}
		err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0)
		if errors.Is(err, unix.EINVAL) { // past the kernel's last capability
			break
		}
		if err != nil {
			return fmt.Errorf("dropping capability %d from the bounding set: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("clearing ambient capabilities: %w", err)
	}
	// Inheritable capabilities survive exec outside the bounding set.
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	data[0].Inheritable, data[1].Inheritable = 0, 0
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}
