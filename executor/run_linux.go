package executor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/docker/go-units"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/executor/fscopy"
	"github.com/kiln-build/kiln/executor/seccomp"
)

// reexecEnv marks a re-executed kiln binary as an executor child; its value
// is the child's mode.
const reexecEnv = "_KILN_EXECUTOR_CHILD"

const (
	modeRun   = "run"
	modeApply = "apply"
)

// Child fds: the spec comes in on specFd, setup errors go out on statusFd.
const (
	specFd   = 3
	statusFd = 4
)

// spec is everything the child needs, sent as JSON on specFd.
type spec struct {
	Mountpoint string  `json:"mountpoint"`
	Root       overlay `json:"root"`

	// run
	Args     []string `json:"args,omitempty"`
	Env      []string `json:"env,omitempty"`
	Cwd      string   `json:"cwd,omitempty"`
	User     string   `json:"user,omitempty"`
	Hostname string   `json:"hostname,omitempty"`
	Loopback bool     `json:"loopback,omitempty"` // new network namespace: bring lo up
	Mounts   []Mount  `json:"mounts,omitempty"`
	// Seccomp is installed just before capabilities are dropped; nil = none.
	Seccomp    *seccomp.Filter `json:"seccomp,omitempty"`
	NoNewPrivs bool            `json:"noNewPrivs,omitempty"`

	// apply
	Op       *FileOp `json:"op,omitempty"`
	SrcMount string  `json:"srcMount,omitempty"` // where the copy source gets mounted, or the source dir itself
}

// status is one message from the child on statusFd.
type status struct {
	Error   string `json:"error,omitempty"`
	Kind    string `json:"kind,omitempty"`    // which typed error Error is, to rebuild it in the parent
	Source  string `json:"source,omitempty"`  // NotFoundError.Source
	Pattern string `json:"pattern,omitempty"` // NotFoundError.ExcludedBy
	Started bool   `json:"started,omitempty"` // run: the child is about to exec the user's program
	// Stubs are the mount points the child had to create; the parent
	// removes those still empty from the upper dir afterwards.
	Stubs stubs `json:"stubs,omitempty"`
	Done  bool  `json:"done,omitempty"` // apply: the operation succeeded
}

// Run mounts root, starts p in new mount, pid, uts and ipc namespaces (and a
// network namespace for Network "none") and waits for it. Cancelling ctx kills
// the process tree and Run returns ctx.Err(). A non-zero exit comes back as
// *ExitError.
func Run(ctx context.Context, root Rootfs, p Process, opts Options) error {
	if len(p.Args) == 0 {
		return errors.New("executor: run: no command")
	}
	if err := root.check(); err != nil {
		return fmt.Errorf("executor: run: %w", err)
	}
	flags := uintptr(unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC)
	switch opts.Network {
	case "", "host":
	case "none":
		flags |= unix.CLONE_NEWNET
	default:
		return fmt.Errorf("executor: run: unknown network mode %q", opts.Network)
	}
	hostname := opts.Hostname
	if hostname == "" {
		hostname = DefaultHostname
	}
	dirs, err := newTempDirs(root, false)
	if err != nil {
		return fmt.Errorf("executor: run: %w", err)
	}
	defer dirs.remove()
	hosts, err := dirs.hostsFile(hostname)
	if err != nil {
		return fmt.Errorf("executor: run: %w", err)
	}
	s := &spec{
		Mountpoint: dirs.mountpoint,
		Root:       dirs.root,
		Args:       p.Args,
		Env:        p.Env,
		Cwd:        p.Cwd,
		User:       p.User,
		Hostname:   hostname,
		Loopback:   flags&unix.CLONE_NEWNET != 0,
		Mounts:     append(hostFileMounts(hosts), opts.Mounts...),
		NoNewPrivs: opts.NoNewPrivileges,
	}
	// The seccomp filter is compiled while the cgroup is made and the
	// child starts; the child reads its spec, and so does anything at all,
	// only once both are in place.
	filterErr := make(chan error, 1)
	go func() {
		var err error
		s.Seccomp, err = filterFor(opts)
		filterErr <- err
	}()
	// Its own cgroup carries the device rules and the limits, and lets the
	// whole process tree be killed at once. The child is born in the
	// unified one (clone3 CLONE_INTO_CGROUP): moving a running process
	// costs an RCU grace period, milliseconds on an idle machine.
	cg, err := newCgroup(opts.Limits)
	if err != nil {
		<-filterErr
		return fmt.Errorf("executor: run: %w", err)
	}
	prepare := func(pid int) error {
		if err := cg.addV1(pid); err != nil {
			return err
		}
		return <-filterErr
	}
	ch := child{mode: modeRun, spec: s, cloneflags: flags, cgroup: cg.unified, prepare: prepare, stdin: p.Stdin, stdout: p.Stdout, stderr: p.Stderr}
	st, werr := ch.run(ctx)
	oom := cg.oomKills() > 0
	if err := cg.remove(); err != nil && werr == nil && ctx.Err() == nil {
		werr = err
	}
	removeStubs(root.Upper, root.Lowers, st.Stubs)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if st.Error != "" {
		return fmt.Errorf("executor: setting up container for %q: %s", p.Args[0], st.Error)
	}
	if werr == nil {
		return nil
	}
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		if !st.Started {
			return fmt.Errorf("executor: container setup process failed: %w", werr)
		}
		xe := exitError(ee)
		if oom {
			xe.Reason = fmt.Sprintf("out of memory: the kernel killed a process at the memory limit of %s", units.BytesSize(float64(opts.Limits.Memory)))
		}
		return xe
	}
	return fmt.Errorf("executor: run %q: %w", p.Args[0], werr)
}

// Apply runs op over root's overlay in a child process with a private mount
// namespace. Errors from the child come back with their message intact.
func Apply(ctx context.Context, root Rootfs, op FileOp) error {
	if (op.Copy == nil) == (op.Mkdir == nil) {
		return errors.New("executor: apply: exactly one of Copy and Mkdir must be set")
	}
	if err := root.check(); err != nil {
		return fmt.Errorf("executor: apply: %w", err)
	}
	src := op.Copy != nil && op.Copy.SrcDir == ""
	dirs, err := newTempDirs(root, src)
	if err != nil {
		return fmt.Errorf("executor: apply: %w", err)
	}
	defer dirs.remove()
	s := &spec{Mountpoint: dirs.mountpoint, Root: dirs.root, Op: &op}
	if op.Copy != nil {
		s.SrcMount = op.Copy.SrcDir
		if src {
			s.SrcMount = dirs.src
			if len(op.Copy.SrcLowers) == 0 {
				s.SrcMount = dirs.empty
			}
		}
	}
	var stderr bytes.Buffer
	ch := child{mode: modeApply, spec: s, cloneflags: unix.CLONE_NEWNS, stderr: &stderr}
	st, werr := ch.run(ctx)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if st.Error != "" {
		return st.err()
	}
	if werr != nil {
		msg := bytes.TrimSpace(stderr.Bytes())
		if len(msg) > 2048 {
			msg = msg[len(msg)-2048:]
		}
		return fmt.Errorf("executor: apply child failed: %w: %s", werr, msg)
	}
	if !st.Done {
		return errors.New("executor: apply child exited without reporting a result")
	}
	return nil
}

func (r Rootfs) check() error {
	if r.Upper == "" || r.Work == "" {
		return errors.New("rootfs needs both an upper and a work dir")
	}
	return nil
}

// exitError turns a finished process's status into *ExitError.
func exitError(ee *exec.ExitError) *ExitError {
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return &ExitError{Code: 128 + int(ws.Signal())}
	}
	return &ExitError{Code: ee.ExitCode()}
}

// tempDirs are the host directories a child needs besides the caller's.
type tempDirs struct {
	base, mountpoint, src, empty string
	hosts                        string // a generated /etc/hosts, if any
	root                         overlay
}

// DefaultHostname is a RUN step's host name, as BuildKit's sandbox has it.
const DefaultHostname = "buildkitsandbox"

// hostsFile writes the container's /etc/hosts, as BuildKit makes it: the
// host name on the loopback address.
func (d *tempDirs) hostsFile(hostname string) (string, error) {
	p := filepath.Join(d.base, "hosts")
	content := fmt.Sprintf("127.0.0.1\tlocalhost %s\n::1\tlocalhost ip6-localhost ip6-loopback\n", hostname)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		return "", fmt.Errorf("writing /etc/hosts: %w", err)
	}
	d.hosts = p
	return p, nil
}

// tempPrefix starts the name of every executor temp dir; the pid after it
// tells a live kiln's dirs from those a killed one left.
const tempPrefix = "kiln-exec-"

var sweepTempOnce sync.Once

// sweepTemp removes the temp dirs of kiln processes that are gone (killed
// before their deferred cleanup ran), as remove does: entry by entry,
// never recursively. Their mounts died with their mount namespaces.
func sweepTemp() {
	ents, err := os.ReadDir(os.TempDir())
	if err != nil {
		return
	}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), tempPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid <= 0 || pid == os.Getpid() || !errors.Is(unix.Kill(pid, 0), unix.ESRCH) {
			continue
		}
		base := filepath.Join(os.TempDir(), e.Name())
		d := &tempDirs{base: base, mountpoint: filepath.Join(base, "root"), src: filepath.Join(base, "src"),
			empty: filepath.Join(base, "empty"), hosts: filepath.Join(base, "hosts")}
		d.remove()
	}
}

func newTempDirs(root Rootfs, src bool) (*tempDirs, error) {
	sweepTempOnce.Do(sweepTemp)
	base, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", tempPrefix, os.Getpid()))
	if err != nil {
		return nil, err
	}
	d := &tempDirs{base: base, mountpoint: filepath.Join(base, "root"), empty: filepath.Join(base, "empty")}
	dirs := []string{d.mountpoint, d.empty}
	if src {
		d.src = filepath.Join(base, "src")
		dirs = append(dirs, d.src)
	}
	for _, dir := range dirs {
		if err := os.Mkdir(dir, 0o700); err != nil {
			d.remove()
			return nil, err
		}
	}
	d.root = overlay{Lowers: absAll(root.Lowers), Upper: abs(root.Upper), Work: abs(root.Work)}
	if len(d.root.Lowers) == 0 {
		d.root.Lowers = []string{d.empty}
	}
	return d, nil
}

// remove deletes the temp dirs one by one, never recursively: should a mount
// somehow still sit on one, removing it fails instead of deleting its content.
func (d *tempDirs) remove() {
	for _, dir := range []string{d.hosts, d.mountpoint, d.src, d.empty, d.base} {
		if dir != "" {
			os.Remove(dir)
		}
	}
}

func abs(p string) string {
	if p == "" {
		return ""
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func absAll(ps []string) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = abs(p)
	}
	return out
}

// child is one re-executed kiln process.
type child struct {
	mode       string
	spec       *spec
	cloneflags uintptr
	// prepare, if set, runs once the child has started and before it gets
	// its spec: the child does nothing until then.
	prepare        func(pid int) error
	cgroup         string // a cgroup2 directory to start the child in, or ""
	stdin          io.Reader
	stdout, stderr io.Writer
}

// run starts the child, feeds it its spec, waits for it and returns the last
// status it reported and the wait error.
func (c child) run(ctx context.Context) (status, error) {
	specR, specW, err := os.Pipe()
	if err != nil {
		return status{}, err
	}
	defer specR.Close()
	defer specW.Close()
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return status{}, err
	}
	defer statusR.Close()
	defer statusW.Close()

	exe, err := selfExe()
	if err != nil {
		return status{}, err
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Args = []string{"kiln-executor-" + c.mode}
	// Under the race detector a child that exits would sleep a second first.
	cmd.Env = []string{reexecEnv + "=" + c.mode, "GORACE=" + strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0")}
	cmd.Dir = "/"
	// exec.Cmd would make Wait wait for a Stdin reader that may never
	// return; copy it here instead and drop the copy when the process ends.
	var stdinW *os.File
	switch in := c.stdin.(type) {
	case nil:
	case *os.File:
		cmd.Stdin = in
	default:
		r, w, err := os.Pipe()
		if err != nil {
			return status{}, err
		}
		defer r.Close()
		defer w.Close()
		cmd.Stdin, stdinW = r, w
	}
	if c.stdout != nil {
		cmd.Stdout = c.stdout
	}
	if c.stderr != nil {
		cmd.Stderr = c.stderr
	}
	cmd.ExtraFiles = []*os.File{specR, statusW} // fds 3 and 4
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: c.cloneflags, Pdeathsig: syscall.SIGKILL}
	if c.cgroup != "" {
		dir, err := os.Open(c.cgroup)
		if err != nil {
			return status{}, fmt.Errorf("cgroup: %w", err)
		}
		defer dir.Close()
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(dir.Fd())
	}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGKILL) }
	// Only a lost process could keep stdout and stderr open after the
	// container's init died; do not wait forever for it.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return status{}, fmt.Errorf("starting executor child: %w", err)
	}
	specR.Close()
	statusW.Close()
	if c.prepare != nil {
		if err := c.prepare(cmd.Process.Pid); err != nil {
			_ = cmd.Process.Kill()
			specW.Close()
			_ = cmd.Wait()
			return status{}, err
		}
	}
	if stdinW != nil {
		cmd.Stdin.(*os.File).Close()
		go func() {
			// Fails once the process is gone and stdinW is closed; a
			// reader that blocks forever leaks only this goroutine.
			_, _ = io.Copy(stdinW, c.stdin)
			stdinW.Close()
		}()
	}

	writeErr := make(chan error, 1)
	go func() {
		err := json.NewEncoder(specW).Encode(c.spec)
		specW.Close()
		writeErr <- err
	}()
	statusCh := make(chan status, 1)
	go func() {
		var last status
		sc := bufio.NewScanner(statusR)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			var s status
			if json.Unmarshal(sc.Bytes(), &s) == nil {
				if s.Error != "" || s.Started || s.Done {
					last = s
				}
			}
		}
		statusCh <- last
	}()
	werr := cmd.Wait()
	if stdinW != nil {
		stdinW.Close()
	}
	// The status pipe is CLOEXEC in the child, so it is closed by now
	// unless the child is still alive, which Wait rules out.
	st := <-statusCh
	if err := <-writeErr; err != nil && werr == nil && st.Error == "" {
		return st, fmt.Errorf("sending spec to executor child: %w", err)
	}
	return st, werr
}

// Typed errors of fscopy that survive the trip from the apply child.
const (
	kindNotFound   = "notfound"
	kindDestNotDir = "destnotdir"
)

// errorStatus describes err for the parent.
func errorStatus(err error) status {
	st := status{Error: err.Error()}
	var nf *fscopy.NotFoundError
	switch {
	case errors.As(err, &nf) && nf.Error() == st.Error:
		st.Kind, st.Source, st.Pattern = kindNotFound, nf.Source, nf.ExcludedBy
	case errors.Is(err, fscopy.ErrDestNotDir) && fscopy.ErrDestNotDir.Error() == st.Error:
		st.Kind = kindDestNotDir
	}
	return st
}

// err rebuilds the child's error with its exact message, typed when possible.
func (st status) err() error {
	switch st.Kind {
	case kindNotFound:
		if e := (&fscopy.NotFoundError{Source: st.Source, ExcludedBy: st.Pattern}); e.Error() == st.Error {
			return e
		}
	case kindDestNotDir:
		return fscopy.ErrDestNotDir
	}
	return errors.New(st.Error)
}
