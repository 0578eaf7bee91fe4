package executor

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// cgroupParent names the directory, under kiln's own cgroup in each
// hierarchy, that holds one cgroup per running step or container.
const cgroupParent = "kiln"

// cgroup is one process tree's cgroup in every hierarchy kiln uses: the v1
// devices controller (device rules), pids and memory (limits), and the
// unified hierarchy (an eBPF device filter and cgroup.kill). On this
// machine's hybrid layout all of them exist; on a pure v2 host only the
// unified one does and carries everything.
type cgroup struct {
	dirs    []string // every directory made, one per hierarchy
	unified string   // the cgroup2 directory, or ""
}

// hierarchy is one mounted cgroup hierarchy and kiln's place in it.
type hierarchy struct {
	v2          bool
	controllers []string // v1 only
	own         string   // the directory of kiln's own cgroup
}

// newCgroup makes a fresh cgroup named after a random id in every
// hierarchy that matters, applies the device allow-list and lim, and
// returns it. Nothing is left behind on failure.
func newCgroup(lim Limits) (*cgroup, error) {
	hs, err := hierarchies()
	if err != nil {
		return nil, err
	}
	return newCgroupIn(hs, lim)
}

func newCgroupIn(hs []hierarchy, lim Limits) (*cgroup, error) {
	sweepOnce.Do(func() { sweepStale(hs) })
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	name := hex.EncodeToString(b[:])
	cg := &cgroup{}
	ok := false
	defer func() {
		if !ok {
			cg.remove()
		}
	}()
	// A controller bound to a v1 hierarchy is not in the unified one (the
	// hybrid layout): each limit goes where its controller is.
	v1 := map[string]bool{}
	for _, h := range hs {
		for _, c := range h.controllers {
			v1[c] = true
		}
	}
	var v2need []string
	if lim.Pids > 0 && !v1["pids"] {
		v2need = append(v2need, "pids")
	}
	if lim.Memory > 0 && !v1["memory"] {
		v2need = append(v2need, "memory")
	}
	// One device mechanism is enough: the eBPF filter where there is a
	// unified hierarchy (on a hybrid host it applies alongside v1), the
	// v1 devices controller otherwise. Each costs a cgroup migration.
	hasV2 := false
	for _, h := range hs {
		hasV2 = hasV2 || h.v2
	}
	devices := false
	for _, h := range hs {
		want := h.v2 || (h.has("devices") && !hasV2) || (h.has("pids") && lim.Pids > 0) || (h.has("memory") && lim.Memory > 0)
		if !want {
			continue
		}
		dir := filepath.Join(h.own, cgroupParent, name)
		if h.v2 {
			if err := enableV2Controllers(h.own, v2need); err != nil {
				return nil, err
			}
			v2need = nil
		}
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return nil, fmt.Errorf("cgroup: %w", err)
		}
		if err := os.Mkdir(dir, 0o755); err != nil {
			return nil, fmt.Errorf("cgroup: %w", err)
		}
		cg.dirs = append(cg.dirs, dir)
		switch {
		case h.v2:
			cg.unified = dir
			if err := attachDeviceFilter(dir); err != nil {
				return nil, err
			}
			devices = true
			if err := applyLimits(dir, lim, true, !v1["pids"], !v1["memory"]); err != nil {
				return nil, err
			}
		default:
			if h.has("devices") && !hasV2 {
				if err := writeV1DeviceRules(dir); err != nil {
					return nil, err
				}
				devices = true
			}
			if err := applyLimits(dir, lim, false, h.has("pids"), h.has("memory")); err != nil {
				return nil, err
			}
		}
	}
	if len(v2need) > 0 {
		return nil, fmt.Errorf("cgroup: the %s controller is not mounted, so the %s limit in config.json cannot be applied", v2need[0], v2need[0])
	}
	if !devices {
		return nil, errors.New("cgroup: neither the v1 devices controller nor a cgroup2 hierarchy is mounted, so device access cannot be restricted")
	}
	ok = true
	return cg, nil
}

func (h hierarchy) has(c string) bool {
	for _, x := range h.controllers {
		if x == c {
			return true
		}
	}
	return false
}

// hierarchies lists the mounted cgroup hierarchies with kiln's own cgroup
// directory in each, from /proc/self/mountinfo and /proc/self/cgroup.
func hierarchies() ([]hierarchy, error) {
	own, err := ownCgroups()
	if err != nil {
		return nil, err
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	defer f.Close()
	var hs []hierarchy
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent maj:min root mountpoint opts [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 {
			continue
		}
		root, mnt := unescapeMountinfo(pf[3]), unescapeMountinfo(pf[4])
		var h hierarchy
		var key string
		switch qf[0] {
		case "cgroup2":
			h.v2, key = true, ""
		case "cgroup":
			for _, o := range strings.Split(qf[2], ",") {
				switch o {
				case "devices", "pids", "memory":
					h.controllers = append(h.controllers, o)
				}
			}
			if len(h.controllers) == 0 {
				continue
			}
			key = strings.Join(h.controllers, ",")
		default:
			continue
		}
		if seen[key] {
			continue // the same hierarchy mounted twice
		}
		p, ok := own[key]
		if !ok {
			continue
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || strings.HasPrefix(rel, "..") {
			rel = "." // our cgroup is outside what this mount shows: use its top
		}
		seen[key] = true
		h.own = filepath.Join(mnt, rel)
		hs = append(hs, h)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cgroup: reading mountinfo: %w", err)
	}
	return hs, nil
}

// ownCgroups maps the controller list of each v1 hierarchy (the same text
// as in mountinfo's super options, e.g. "devices"), and "" for cgroup2,
// to kiln's own cgroup path in it.
func ownCgroups() (map[string]string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	out := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var ctrls []string
		for _, c := range strings.Split(parts[1], ",") {
			switch c {
			case "devices", "pids", "memory":
				ctrls = append(ctrls, c)
			}
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			out[""] = parts[2]
		case len(ctrls) > 0:
			out[strings.Join(ctrls, ",")] = parts[2]
		}
	}
	return out, nil
}

// unescapeMountinfo undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// applyLimits writes lim into dir's control files; v2 names them
// differently from v1.
func applyLimits(dir string, lim Limits, v2, pids, memory bool) error {
	if lim.Pids > 0 && pids {
		if err := writeCgroupFile(dir, "pids.max", strconv.FormatInt(lim.Pids, 10)); err != nil {
			return err
		}
	}
	if lim.Memory > 0 && memory {
		v := strconv.FormatInt(lim.Memory, 10)
		if v2 {
			if err := writeCgroupFile(dir, "memory.max", v); err != nil {
				return err
			}
			// Without this, swap would let the step use more than the limit.
			if _, err := os.Stat(filepath.Join(dir, "memory.swap.max")); err == nil {
				return writeCgroupFile(dir, "memory.swap.max", "0")
			}
			return nil
		}
		if err := writeCgroupFile(dir, "memory.limit_in_bytes", v); err != nil {
			return err
		}
		if _, err := os.Stat(filepath.Join(dir, "memory.memsw.limit_in_bytes")); err == nil {
			return writeCgroupFile(dir, "memory.memsw.limit_in_bytes", v)
		}
	}
	return nil
}

// enableV2Controllers makes the controllers in need available to the
// cgroups under own/kiln. A v2 cgroup can hand controllers to its children
// only if it holds no process itself (unless it is the root), so this
// fails when kiln runs in a non-root cgroup that does not delegate them:
// then the limit cannot be honoured, and the error says so.
func enableV2Controllers(own string, need []string) error {
	if len(need) == 0 {
		return nil
	}
	parent := filepath.Join(own, cgroupParent)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("cgroup: %w", err)
	}
	for _, dir := range []string{own, parent} {
		avail, _ := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
		have, _ := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
		for _, c := range need {
			if !hasWord(string(avail), c) {
				return fmt.Errorf("cgroup: the %s limit in config.json needs the %s controller, which cgroup %s does not have (it is not delegated to it)", c, c, dir)
			}
			if hasWord(string(have), c) {
				continue
			}
			if err := writeCgroupFile(dir, "cgroup.subtree_control", "+"+c); err != nil {
				return fmt.Errorf("the %s limit needs the %s controller, which cgroup %s cannot hand to kiln's cgroups while kiln's own process is in it (run kiln in a cgroup that delegates it, e.g. `systemd-run --scope -p Delegate=yes`): %w", c, c, dir, err)
			}
		}
	}
	return nil
}

func hasWord(list, w string) bool {
	for _, f := range strings.Fields(list) {
		if f == w {
			return true
		}
	}
	return false
}

func writeCgroupFile(dir, name, value string) error {
	p := filepath.Join(dir, name)
	f, err := os.OpenFile(p, os.O_WRONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("cgroup: %w", err)
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cgroup: writing %q to %s: %w", value, p, err)
	}
	return nil
}

// add moves process pid (all its threads) into every hierarchy's cgroup.
func (cg *cgroup) add(pid int) error { return addTo(cg.dirs, pid) }

// addV1 moves pid into the v1 cgroups only, for a process started in the
// unified one.
func (cg *cgroup) addV1(pid int) error {
	var v1 []string
	for _, d := range cg.dirs {
		if d != cg.unified {
			v1 = append(v1, d)
		}
	}
	return addTo(v1, pid)
}

func addTo(dirs []string, pid int) error {
	for _, dir := range dirs {
		if err := writeCgroupFile(dir, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	return nil
}

// oomKills is how many processes the kernel's OOM killer killed in the
// cgroup (v1 memory.oom_control, v2 memory.events).
func (cg *cgroup) oomKills() int {
	n := 0
	for _, dir := range cg.dirs {
		for _, file := range []string{"memory.oom_control", "memory.events"} {
			b, err := os.ReadFile(filepath.Join(dir, file))
			if err != nil {
				continue
			}
			for _, l := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(l, "oom_kill "); ok {
					k, _ := strconv.Atoi(strings.TrimSpace(v))
					n += k
				}
			}
		}
	}
	return n
}

var sweepOnce sync.Once

// staleAge is how old an empty step cgroup must be to count as left by a
// kiln that was killed: a live one is filled within milliseconds.
const staleAge = time.Minute

// sweepStale removes the empty step cgroups a killed kiln left behind.
func sweepStale(hs []hierarchy) {
	for _, h := range hs {
		parent := filepath.Join(h.own, cgroupParent)
		ents, err := os.ReadDir(parent)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if !e.IsDir() {
				continue
			}
			dir := filepath.Join(parent, e.Name())
			fi, err := e.Info()
			if err != nil || time.Since(fi.ModTime()) < staleAge {
				continue
			}
			if procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs")); err == nil && len(strings.TrimSpace(string(procs))) == 0 {
				_ = unix.Rmdir(dir) // another kiln may be sweeping too
			}
		}
	}
}

// pids lists the processes still in the cgroup.
func (cg *cgroup) pids() []int {
	var out []int
	for _, dir := range cg.dirs {
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	return out
}

// kill kills every process in the cgroup and waits (briefly) until it is
// empty: with cgroup.kill where the kernel has it, else one by one.
func (cg *cgroup) kill() {
	if cg.unified != "" {
		if writeCgroupFile(cg.unified, "cgroup.kill", "1") == nil {
			cg.waitEmpty()
			return
		}
	}
	for range 100 {
		ps := cg.pids()
		if len(ps) == 0 {
			return
		}
		for _, p := range ps {
			_ = syscall.Kill(p, syscall.SIGKILL) // it may be gone already
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (cg *cgroup) waitEmpty() {
	for range 200 {
		if len(cg.pids()) == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// remove kills what is left and deletes the cgroup directories. A cgroup
// whose last process is still exiting refuses rmdir (EBUSY) for a moment.
func (cg *cgroup) remove() error {
	if cg == nil {
		return nil
	}
	cg.kill()
	var errs []error
	for _, dir := range cg.dirs {
		var err error
		for range 100 {
			err = unix.Rmdir(dir)
			if err == nil || errors.Is(err, fs.ErrNotExist) {
				err = nil
				break
			}
			if !errors.Is(err, unix.EBUSY) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("cgroup: removing %s: %w", dir, err))
		}
	}
	cg.dirs = nil
	return errors.Join(errs...)
}
