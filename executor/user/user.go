package user

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
)

// Identity is who a process runs as.
type Identity struct {
	UID, GID uint32
	Groups   []uint32 // supplementary, from /etc/group membership
	Home     string
}

// Errors wrapped by Lookup and LookupChown, with the same text as runc's.
var (
	ErrNoPasswdEntries = errors.New("no matching entries in passwd file")
	ErrNoGroupEntries  = errors.New("no matching entries in group file")
)

const defaultHome = "/"

type passwdEntry struct {
	name     string
	uid, gid uint32
	home     string
}

type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

// Lookup resolves a Dockerfile USER value inside the rootfs directory root.
// "" is root (0:0, no supplementary groups). "name" or "uid" takes uid,
// primary gid and home from passwd (a numeric uid not in passwd gets gid 0)
// plus the supplementary groups listing the user by name. "user:group" uses
// only that group, given as a name (must exist) or a gid.
func Lookup(root, spec string) (Identity, error) {
	if spec == "" {
		spec = "0" // root, with its passwd entry's home and groups if it has one
	}
	userArg, groupArg, _ := strings.Cut(spec, ":")
	users, err := readPasswd(root)
	if err != nil {
		return Identity{}, err
	}
	id := Identity{Home: defaultHome}
	var matched string
	if userArg == "" {
		// Like runc: an empty user part means the current (root) user.
		userArg = "0"
	}
	if u, ok := findUser(users, userArg); ok {
		matched = u.name
		id.UID, id.GID, id.Home = u.uid, u.gid, u.home
		if id.Home == "" {
			id.Home = defaultHome
		}
	} else {
		n, numErr := parseID(userArg)
		if numErr != nil {
			return Identity{}, fmt.Errorf("unable to find user %s: %w", userArg, ErrNoPasswdEntries)
		}
		id.UID = n
	}

	if groupArg == "" && matched == "" {
		return id, nil
	}
	groups, err := readGroup(root)
	if err != nil {
		return Identity{}, err
	}
	if groupArg != "" {
		gid, err := resolveGroup(groups, groupArg)
		if err != nil {
			return Identity{}, err
		}
		id.GID = gid
		return id, nil
	}
	for _, g := range groups {
		for _, m := range g.members {
			if m == matched {
				id.Groups = append(id.Groups, g.gid)
				break
			}
		}
	}
	return id, nil
}

// LookupChown resolves a COPY/ADD --chown value in the destination rootfs
// root. It differs from Lookup in that a user given alone gets gid = uid
// when numeric and its primary gid when a name, and there are no
// supplementary groups. As in BuildKit (llbsolver/ops readUser), a name
// that is not in the file, or a file that is missing, resolves to 0 (a
// group name to the user's gid) rather than failing the build.
func LookupChown(root, spec string) (uid, gid uint32, err error) {
	if spec == "" {
		return 0, 0, nil
	}
	userArg, groupArg, _ := strings.Cut(spec, ":")
	if userArg != "" {
		if n, numErr := parseID(userArg); numErr == nil {
			uid, gid = n, n
		} else {
			users, err := readPasswd(root)
			if err != nil && !errors.Is(err, ErrNoPasswdEntries) {
				return 0, 0, err
			}
			if u, ok := findUser(users, userArg); ok {
				uid, gid = u.uid, u.gid
			}
		}
	}
	if groupArg != "" {
		if n, numErr := parseID(groupArg); numErr == nil {
			return uid, n, nil
		}
		groups, err := readGroup(root)
		if err != nil && !errors.Is(err, ErrNoGroupEntries) {
			return 0, 0, err
		}
		if g, err := resolveGroup(groups, groupArg); err == nil {
			gid = g
		}
	}
	return uid, gid, nil
}

// findUser returns the first passwd entry matching arg: by uid when arg is
// numeric (as runc does), else by name.
func findUser(users []passwdEntry, arg string) (passwdEntry, bool) {
	n, numErr := parseID(arg)
	for _, u := range users {
		if (numErr == nil && u.uid == n) || (numErr != nil && u.name == arg) {
			return u, true
		}
	}
	return passwdEntry{}, false
}

func resolveGroup(groups []groupEntry, arg string) (uint32, error) {
	n, numErr := parseID(arg)
	for _, g := range groups {
		if (numErr == nil && g.gid == n) || (numErr != nil && g.name == arg) {
			return g.gid, nil
		}
	}
	if numErr != nil {
		return 0, fmt.Errorf("unable to find group %s: %w", arg, ErrNoGroupEntries)
	}
	return n, nil
}

// parseID parses a decimal id in runc's valid range [0, 2^31-1].
func parseID(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 31)
	if err != nil {
		return 0, err
	}
	return uint32(n), nil
}

func readPasswd(root string) ([]passwdEntry, error) {
	var out []passwdEntry
	err := readDBFile(root, "/etc/passwd", func(f []string) {
		// name:password:uid:gid:gecos:home:shell
		if len(f) < 4 {
			return
		}
		uid, err1 := parseID(f[2])
		gid, err2 := parseID(f[3])
		if err1 != nil || err2 != nil {
			return
		}
		e := passwdEntry{name: f[0], uid: uid, gid: gid}
		if len(f) > 5 {
			e.home = f[5]
		}
		out = append(out, e)
	})
	return out, err
}

func readGroup(root string) ([]groupEntry, error) {
	var out []groupEntry
	err := readDBFile(root, "/etc/group", func(f []string) {
		// name:password:gid:member,member
		if len(f) < 3 {
			return
		}
		gid, err := parseID(f[2])
		if err != nil {
			return
		}
		e := groupEntry{name: f[0], gid: gid}
		if len(f) > 3 && f[3] != "" {
			e.members = strings.Split(f[3], ",")
		}
		out = append(out, e)
	})
	return out, err
}

// readDBFile calls fn with the colon-separated fields of each non-empty,
// non-comment line of path inside root. A missing file reads as empty.
func readDBFile(root, path string, fn func([]string)) error {
	if root == "" {
		return fmt.Errorf("reading %s: no root filesystem given", path)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return fmt.Errorf("resolving root %s: %w", root, err)
	}
	p, err := securejoin.SecureJoin(abs, path)
	if err != nil {
		return fmt.Errorf("resolving %s in %s: %w", path, root, err)
	}
	// SecureJoin resolved every symlink; O_NOFOLLOW refuses one swapped in
	// since, and O_NONBLOCK keeps a FIFO planted by the image from hanging us.
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if securejoin.IsNotExist(err) {
			return nil
		}
		return fmt.Errorf("opening %s in %s: %w", path, root, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s in %s: %w", path, root, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("reading %s in %s: not a regular file", path, root)
	}
	return parseDB(f, fn)
}

func parseDB(r io.Reader, fn func([]string)) error {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		fn(strings.Split(line, ":"))
	}
	if err := s.Err(); err != nil {
		return fmt.Errorf("parsing user database: %w", err)
	}
	return nil
}
