package seccomp

import (
	"encoding/json"
	"errors"
	"fmt"

	mobyseccomp "github.com/moby/profiles/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// Default returns docker's default profile (moby's profiles/seccomp)
// resolved for a process whose bounding set is caps (names like
// "CAP_CHOWN") on this host's arch and kernel: rules whose includes or
// excludes name caps, arches or a minimum kernel are kept or dropped.
func Default(caps []string) (*specs.LinuxSeccomp, error) {
	p, err := mobyseccomp.GetDefaultProfile(specFor(caps))
	if err != nil {
		return nil, fmt.Errorf("seccomp default profile: %w", err)
	}
	return p, nil
}

// Load parses a profile in docker's JSON format (what `docker run
// --security-opt seccomp=PROFILE.json` takes) and resolves it like Default.
// It also checks actions, ops, argument indexes, errnos, flags and arches,
// so most bad profiles fail here; Compile still refuses conflicting rules
// and programs over the kernel's size limit.
// A profile with neither defaultAction nor syscalls, which docker takes to
// mean no filter, is an error: not filtering is the caller's decision.
func Load(profile []byte, caps []string) (*specs.LinuxSeccomp, error) {
	// moby's resolver dereferences every entry of syscalls: refuse null ones.
	var raw mobyseccomp.Seccomp
	if err := json.Unmarshal(profile, &raw); err != nil {
		return nil, fmt.Errorf("seccomp profile: %w", err)
	}
	for i, s := range raw.Syscalls {
		if s == nil {
			return nil, fmt.Errorf("seccomp profile: syscalls[%d] is null", i)
		}
	}
	p, err := mobyseccomp.LoadProfile(string(profile), specFor(caps))
	if err != nil {
		return nil, fmt.Errorf("seccomp profile: %w", err)
	}
	if p == nil {
		return nil, errors.New("seccomp profile: empty: no defaultAction and no syscalls")
	}
	if _, err := newPlan(p); err != nil {
		return nil, fmt.Errorf("seccomp profile: %w", err)
	}
	if _, err := filterABIs(p, nativeGOARCH); err != nil {
		return nil, fmt.Errorf("seccomp profile: %w", err)
	}
	return p, nil
}

// specFor is the part of an OCI spec moby's resolver reads.
func specFor(caps []string) *specs.Spec {
	return &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}}
}
