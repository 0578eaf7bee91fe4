package executor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/containerenv"
	"github.com/kiln-build/kiln/executor/user"
)

// defaultPath is used to find the program when the env has no PATH.
const defaultPath = containerenv.DefaultPath

// runChild sets up the container around itself and execs the user's
// program. It returns only on a setup failure.
func runChild(s *spec) error {
	unix.Umask(0o022)
	// Only fds 0-2 may reach the user's program.
	_ = unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC) // best effort: Go opens its fds CLOEXEC anyway
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	rootfs := s.Mountpoint
	if err := mountOverlay(rootfs, s.Root); err != nil {
		return err
	}
	if s.Loopback {
		if err := loopbackUp(); err != nil {
			return err
		}
	}
	// Mount only on directories and files that already exist, so that no
	// mount point ever shows up in the upper dir.
	procOK, err := mountProc(rootfs)
	if err != nil {
		return err
	}
	if err := mountDev(rootfs); err != nil {
		return err
	}
	sysOK, err := mountSys(rootfs)
	if err != nil {
		return err
	}
	if err := maskPaths(rootfs, procOK, sysOK); err != nil {
		return err
	}
	created, err := extraMounts(rootfs, s.Mounts)
	if err != nil {
		return err
	}
	if err := pivotRoot(rootfs); err != nil {
		return err
	}
	if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
		return fmt.Errorf("sethostname %q: %w", s.Hostname, err)
	}
	id, err := user.Lookup("/", s.User)
	if err != nil {
		return fmt.Errorf("user %q: %w", s.User, err)
	}
	cwd := s.Cwd
	if cwd == "" {
		cwd = "/"
	}
	cwd = filepath.Join("/", cwd)
	if err := os.MkdirAll(cwd, 0o755); err != nil {
		return fmt.Errorf("creating working directory: %w", err)
	}
	if err := unix.Chdir(cwd); err != nil {
		return fmt.Errorf("chdir to working directory %s: %w", cwd, err)
	}
	// The working directory must be inside the container's root: a leaked
	// fd to a host directory (WORKDIR /proc/self/fd/N, runc's
	// CVE-2024-21626) would show as "(unreachable)/..." here.
	if wd, err := unix.Getwd(); err != nil || !strings.HasPrefix(wd, "/") {
		return fmt.Errorf("working directory %s is outside the container's root filesystem", cwd)
	}
	if s.NoNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("setting no_new_privs: %w", err)
		}
	}
	// Before the capabilities go: without no_new_privs, loading a filter
	// needs CAP_SYS_ADMIN (runc orders it the same way). Everything left
	// to do until exec is allowed by docker's profile.
	if s.Seccomp != nil {
		if err := s.Seccomp.Install(); err != nil {
			return err
		}
	}
	if err := dropCapabilities(); err != nil {
		return err
	}
	if err := setCredentials(id); err != nil {
		return err
	}
	// Changing credentials clears the parent-death signal; the container
	// must still die with kiln.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("setting parent-death signal: %w", err)
	}
	report(status{Started: true, Stubs: created})

	// From here on, failures are the program's, reported like a shell does.
	name := s.Args[0]
	env := withHome(s.Env, id.Home)
	path, err := lookPath(name, env)
	if err == nil {
		err = syscall.Exec(path, s.Args, env)
	}
	fmt.Fprintf(os.Stderr, "exec: %s: %v\n", name, err)
	if errors.Is(err, errNotFound) || errors.Is(err, unix.ENOENT) {
		os.Exit(127)
	}
	os.Exit(126)
	return nil
}

var errNotFound = errors.New("not found")

// lookPath finds name in the PATH of env like a shell would, as the current
// (already switched) user.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := defaultPath
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := dir + "/" + name
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && unix.Access(p, unix.X_OK) == nil {
			return p, nil
		}
	}
	return "", errNotFound
}

func setCredentials(id user.Identity) error {
	// The primary gid leads the supplementary groups, as BuildKit's
	// executor has it (ensureAdditionalGids): `id` shows groups=GID,...
	groups := []int{int(id.GID)}
	for _, g := range id.Groups {
		if g != id.GID {
			groups = append(groups, int(g))
		}
	}
	// syscall's versions apply to every thread of the process.
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("setgroups %v: %w", groups, err)
	}
	if err := syscall.Setgid(int(id.GID)); err != nil {
		return fmt.Errorf("setgid %d: %w", id.GID, err)
	}
	if err := syscall.Setuid(int(id.UID)); err != nil {
		return fmt.Errorf("setuid %d: %w", id.UID, err)
	}
	return nil
}

// isDir reports whether p is a directory and not a symlink to one: a
// symlink in the image must never redirect a mount.
func isDir(p string) bool {
	st, err := os.Lstat(p)
	return err == nil && st.IsDir()
}

func mountProc(rootfs string) (bool, error) {
	target := filepath.Join(rootfs, "proc")
	if !isDir(target) {
		return false, nil
	}
	if err := unix.Mount("proc", target, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return false, fmt.Errorf("mount proc: %w", err)
	}
	return true, nil
}

func mountSys(rootfs string) (bool, error) {
	target := filepath.Join(rootfs, "sys")
	if !isDir(target) {
		return false, nil
	}
	err := unix.Mount("sysfs", target, "sysfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
	if errors.Is(err, unix.EPERM) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("mount sysfs: %w", err)
	}
	return true, nil
}

// mountDev puts a minimal /dev on a tmpfs: a few host devices bind-mounted,
// a private devpts, /dev/shm and the usual symlinks.
func mountDev(rootfs string) error {
	dev := filepath.Join(rootfs, "dev")
	if !isDir(dev) {
		return nil
	}
	// nodev: a node made here with mknod is unusable; the allowed devices
	// are bind mounts of the host's, which keep their own mount's flags.
	if err := unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_STRICTATIME, "mode=755,size=65536k"); err != nil {
		return fmt.Errorf("mount tmpfs on /dev: %w", err)
	}
	for _, name := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		target := filepath.Join(dev, name)
		f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o666)
		if err != nil {
			return fmt.Errorf("creating /dev/%s: %w", name, err)
		}
		f.Close()
		if err := unix.Mount("/dev/"+name, target, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind /dev/%s: %w", name, err)
		}
	}
	pts := filepath.Join(dev, "pts")
	if err := os.Mkdir(pts, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("devpts", pts, "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5"); err != nil {
		return fmt.Errorf("mount devpts: %w", err)
	}
	shm := filepath.Join(dev, "shm")
	if err := os.Mkdir(shm, 0o1777); err != nil {
		return err
	}
	if err := unix.Mount("shm", shm, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777,size=65536k"); err != nil {
		return fmt.Errorf("mount /dev/shm: %w", err)
	}
	mq := filepath.Join(dev, "mqueue")
	if err := os.Mkdir(mq, 0o755); err != nil {
		return err
	}
	// The IPC namespace is new, so its mqueue fs is private; not essential.
	_ = unix.Mount("mqueue", mq, "mqueue", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
	for name, target := range map[string]string{
		"ptmx":   "pts/ptmx",
		"fd":     "/proc/self/fd",
		"stdin":  "/proc/self/fd/0",
		"stdout": "/proc/self/fd/1",
		"stderr": "/proc/self/fd/2",
	} {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil {
			return err
		}
	}
	return nil
}

// maskPaths hides host information in /proc and /sys the way Docker does.
func maskPaths(rootfs string, proc, sys bool) error {
	var masked, readonly []string
	if proc {
		masked = append(masked, "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
			"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi")
		readonly = append(readonly, "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
	}
	if sys {
		masked = append(masked, "/sys/firmware", "/sys/devices/virtual/powercap")
	}
	for _, p := range masked {
		target := filepath.Join(rootfs, p)
		st, err := os.Lstat(target)
		if err != nil {
			continue
		}
		if st.IsDir() {
			err = unix.Mount("tmpfs", target, "tmpfs", unix.MS_RDONLY|unix.MS_NODEV|unix.MS_NOSUID|unix.MS_NOEXEC, "size=0")
		} else {
			err = unix.Mount("/dev/null", target, "", unix.MS_BIND, "")
		}
		if err != nil {
			return fmt.Errorf("masking %s: %w", p, err)
		}
	}
	for _, p := range readonly {
		target := filepath.Join(rootfs, p)
		if _, err := os.Lstat(target); err != nil {
			continue
		}
		if err := bindReadOnly(target, target); err != nil {
			return fmt.Errorf("making %s read-only: %w", p, err)
		}
	}
	return nil
}

// hostFileMounts are the read-only binds every container gets, as with
// BuildKit: the generated /etc/hosts and the host's /etc/resolv.conf. They
// are mounted like RUN mounts, so a stub made for them leaves no trace.
func hostFileMounts(hosts string) []Mount {
	ms := []Mount{{Type: "bind", Source: hosts, Target: "/etc/hosts", ReadOnly: true, Optional: true}}
	if fi, err := os.Stat("/etc/resolv.conf"); err == nil && fi.Mode().IsRegular() {
		ms = append(ms, Mount{Type: "bind", Source: "/etc/resolv.conf", Target: "/etc/resolv.conf", ReadOnly: true, Optional: true})
	}
	return ms
}

// pivotRoot makes rootfs the root and detaches the host's tree, falling back
// to MS_MOVE+chroot where pivot_root is impossible (e.g. on an initramfs).
// pivot_root(".", ".") needs no put_old directory in the rootfs.
func pivotRoot(rootfs string) error {
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /: %w", err)
	}
	defer unix.Close(oldroot)
	if err := unix.Chdir(rootfs); err != nil {
		return fmt.Errorf("chdir to rootfs: %w", err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		if err := unix.Mount(rootfs, "/", "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("pivot_root failed and so did moving the rootfs to /: %w", err)
		}
		if err := unix.Chroot("."); err != nil {
			return fmt.Errorf("chroot: %w", err)
		}
		return unix.Chdir("/")
	}
	// The old root is now stacked under the new one; detach it.
	if err := unix.Fchdir(oldroot); err != nil {
		return fmt.Errorf("fchdir to old root: %w", err)
	}
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("making old root a slave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmounting old root: %w", err)
	}
	return unix.Chdir("/")
}

func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket for loopback setup: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("get lo flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	return nil
}

// withHome adds HOME from the user's passwd entry ("/" without one) unless
// env sets it, as docker does for RUN steps and containers.
func withHome(env []string, home string) []string {
	for _, e := range env {
		if strings.HasPrefix(e, "HOME=") {
			return env
		}
	}
	if home == "" {
		home = "/"
	}
	return append(env[:len(env):len(env)], "HOME="+home)
}
