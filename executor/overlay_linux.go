package executor

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// overlay is one overlayfs mount. An empty Upper means read-only.
type overlay struct {
	Lowers []string `json:"lowers"` // bottom first, as in Rootfs
	Upper  string   `json:"upper,omitempty"`
	Work   string   `json:"work,omitempty"`
}

// overlayFeatures keep the upper dir a plain diff: no redirect xattrs for
// renamed dirs, no metadata-only copy-ups, no index dir entries.
var overlayFeatures = []string{"redirect_dir=off", "metacopy=off", "index=off"}

var errOptionsTooLong = errors.New("overlay mount options longer than one page")

// dedupeLowers drops every occurrence of a layer dir but the topmost.
// The same layer can sit twice in a chain (two steps that made identical
// diffs), and overlayfs refuses a lower dir it already has (ELOOP). The
// stack is unchanged by it: the top copy shadows all the lower one shows.
func dedupeLowers(lowers []string) []string {
	seen := make(map[string]bool, len(lowers))
	out := make([]string, 0, len(lowers))
	for i := len(lowers) - 1; i >= 0; i-- { // top first
		if p := filepath.Clean(lowers[i]); !seen[p] {
			seen[p] = true
			out = append(out, lowers[i])
		}
	}
	slices.Reverse(out)
	return out
}

// overlayData returns the mount(2) data string for o and the directory the
// mount must be done from: when absolute lower paths do not fit in a page,
// they are made relative to their common parent (containerd's trick).
func overlayData(o overlay, limit int) (data, dir string, err error) {
	if len(o.Lowers) == 0 {
		return "", "", errors.New("overlay needs at least one lower dir")
	}
	build := func(base string) string {
		rel := func(p string) string {
			if base == "" {
				return p
			}
			if r, err := filepath.Rel(base, p); err == nil && len(r) < len(p) {
				return r
			}
			return p
		}
		var b strings.Builder
		b.WriteString("lowerdir=")
		for i := len(o.Lowers) - 1; i >= 0; i-- { // overlay wants the top layer first
			b.WriteString(escapeOverlayPath(rel(o.Lowers[i])))
			if i > 0 {
				b.WriteByte(':')
			}
		}
		if o.Upper != "" {
			b.WriteString(",upperdir=" + escapeOverlayPath(rel(o.Upper)))
			b.WriteString(",workdir=" + escapeOverlayPath(rel(o.Work)))
		}
		for _, f := range overlayFeatures {
			b.WriteString("," + f)
		}
		return b.String()
	}
	// The kernel copies at most one page of mount data, NUL included.
	if data = build(""); len(data) < limit {
		return data, "", nil
	}
	dir = commonDir(o.Lowers)
	if dir != "/" {
		if data = build(dir); len(data) < limit {
			return data, dir, nil
		}
	}
	return "", "", fmt.Errorf("%w: %d bytes for %d layers even relative to %s", errOptionsTooLong, len(data), len(o.Lowers), dir)
}

// escapeOverlayPath escapes the characters overlayfs splits its options on.
func escapeOverlayPath(p string) string {
	if !strings.ContainsAny(p, `\:,`) {
		return p
	}
	var b strings.Builder
	for _, r := range p {
		if r == '\\' || r == ':' || r == ',' {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// commonDir is the deepest directory containing every path in paths.
func commonDir(paths []string) string {
	common := strings.Split(filepath.Clean(paths[0]), "/")
	for _, p := range paths[1:] {
		parts := strings.Split(filepath.Clean(p), "/")
		n := 0
		for n < len(common) && n < len(parts) && common[n] == parts[n] {
			n++
		}
		common = common[:n]
	}
	// A path that is itself the common prefix still needs its parent as base
	// only if that makes names shorter; "." works fine as a lower name.
	d := strings.Join(common, "/")
	if d == "" {
		return "/"
	}
	return d
}

// mountOverlay mounts o on target. It must run in the child: it may chdir.
func mountOverlay(target string, o overlay) error {
	o.Lowers = dedupeLowers(o.Lowers)
	// nodev: device nodes in layers are data, never usable (see mountOne).
	flags := uintptr(unix.MS_NODEV)
	if o.Upper == "" {
		flags = unix.MS_RDONLY
	}
	data, dir, err := overlayData(o, unix.Getpagesize())
	if errors.Is(err, errOptionsTooLong) {
		// The new mount API takes one lower per call, with no length limit.
		if ferr := mountOverlayFsconfig(target, o); ferr != nil {
			return fmt.Errorf("%w; fsconfig fallback: %w", err, ferr)
		}
		return nil
	}
	if err != nil {
		return err
	}
	if dir != "" {
		if err := unix.Chdir(dir); err != nil {
			return fmt.Errorf("chdir to common lower parent %s: %w", dir, err)
		}
		defer unix.Chdir("/") // only shortens later relative paths
	}
	if err := unix.Mount("overlay", target, "overlay", flags, data); err != nil {
		return fmt.Errorf("mount overlay of %d layers (upper %q) on %s: %w", len(o.Lowers), o.Upper, target, err)
	}
	return nil
}

func mountOverlayFsconfig(target string, o overlay) error {
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen overlay: %w", err)
	}
	defer unix.Close(fd)
	set := func(k, v string) error {
		if err := unix.FsconfigSetString(fd, k, v); err != nil {
			return fmt.Errorf("overlay option %s=%s: %w%s", k, v, err, fsLog(fd))
		}
		return nil
	}
	for i := len(o.Lowers) - 1; i >= 0; i-- {
		if err := set("lowerdir+", o.Lowers[i]); err != nil {
			return err
		}
	}
	if o.Upper != "" {
		if err := set("upperdir", o.Upper); err != nil {
			return err
		}
		if err := set("workdir", o.Work); err != nil {
			return err
		}
	}
	for _, f := range overlayFeatures {
		k, v, _ := strings.Cut(f, "=")
		if err := set(k, v); err != nil {
			return err
		}
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return fmt.Errorf("create overlay of %d layers: %w%s", len(o.Lowers), err, fsLog(fd))
	}
	attr := unix.MOUNT_ATTR_NODEV
	if o.Upper == "" {
		attr |= unix.MOUNT_ATTR_RDONLY
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, attr)
	if err != nil {
		return fmt.Errorf("fsmount overlay: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move overlay mount to %s: %w", target, err)
	}
	return nil
}

// fsLog returns the kernel's messages queued on an fs context, if any.
func fsLog(fd int) string {
	var msgs []string
	buf := make([]byte, 1024)
	for {
		n, err := unix.Read(fd, buf)
		if err != nil || n <= 0 {
			break
		}
		msgs = append(msgs, strings.TrimSpace(string(buf[:n])))
	}
	if len(msgs) == 0 {
		return ""
	}
	return " (" + strings.Join(msgs, "; ") + ")"
}

// bindReadOnly bind-mounts src (and what is mounted below it) on target,
// read-only and nodev.
func bindReadOnly(src, target string) error {
	if err := bindAt(src, target, true); err != nil {
		return fmt.Errorf("bind %s on %s: %w", src, target, err)
	}
	return nil
}

// bindAt bind-mounts src (recursively) on target, nodev and, if ro,
// read-only. The attributes are set on the detached copy before it is
// attached, so the bind is never visible writable or with devices, and
// no flag of the mounts below changes but those (unlike a remount).
// Either path may be a /proc/self/fd link; both are followed.
func bindAt(src, target string, ro bool) error {
	tree, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return fmt.Errorf("open_tree: %w%s", err, oldKernel(err))
	}
	defer unix.Close(tree)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_NODEV}
	if ro {
		attr.Attr_set |= unix.MOUNT_ATTR_RDONLY
	}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
		return fmt.Errorf("mount_setattr: %w%s", err, oldKernel(err))
	}
	if err := unix.MoveMount(tree, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_SYMLINKS); err != nil {
		return fmt.Errorf("move_mount: %w", err)
	}
	return nil
}

func oldKernel(err error) string {
	if errors.Is(err, unix.ENOSYS) {
		return " (kiln needs Linux 5.12 or later)"
	}
	return ""
}
