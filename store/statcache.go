//go:build linux

package store

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/kiln-build/kiln/internal/atomicfile"
)

// racyWindow is how close to its hashing a file's last change may be
// before the recorded sum is distrusted: file timestamps come from a
// coarse clock, so a write in the same tick as the hash could leave every
// stat field unchanged. Git calls this the racy-git problem.
const racyWindow = 2 * time.Second

// StatCache remembers the sha256 of files by their stat data (device,
// inode, size, mtime, ctime), so an unchanged build context is a stat walk
// rather than a read of every byte. It persists in the store.
type StatCache struct {
	path    string
	oldPath string // the previous format's file, removed on save
	tmp     string

	mu      sync.Mutex
	entries map[string]statEntry
	dirty   bool
}

type statEntry struct {
	Dev, Ino     uint64
	Size         int64
	Mtime, Ctime int64 // ns
	Hashed       int64 // ns, when Sum was computed
	Sum          string
}

// The file is statCacheMagic, then per entry: the path and the sum as
// uvarint length + bytes, and the six numbers as varints. It is read whole
// on every build that copies from a context (tens of thousands of entries
// for a big one), so it is a flat format that decodes without reflection,
// into strings that share one allocation.
const statCacheMagic = "kiln-statcache-1\n"

// loadStatCache reads the stat cache at path (an unreadable one starts
// empty).
func loadStatCache(path, oldPath, tmp string) *StatCache {
	c := &StatCache{path: path, oldPath: oldPath, tmp: tmp, entries: map[string]statEntry{}}
	b, err := os.ReadFile(c.path)
	if err != nil {
		return c
	}
	if entries, err := decodeStatCache(b); err == nil {
		c.entries = entries
	}
	return c
}

func decodeStatCache(b []byte) (map[string]statEntry, error) {
	if len(b) < len(statCacheMagic) || string(b[:len(statCacheMagic)]) != statCacheMagic {
		return nil, errors.New("not a stat cache")
	}
	all := string(b) // one copy; every path and sum is a substring of it
	i := len(statCacheMagic)
	bad := errors.New("corrupt stat cache")
	str := func() (string, error) {
		n, k := binary.Uvarint(b[i:])
		if k <= 0 || n > uint64(len(b)-i-k) {
			return "", bad
		}
		i += k
		s := all[i : i+int(n)]
		i += int(n)
		return s, nil
	}
	num := func() (int64, error) {
		v, k := binary.Varint(b[i:])
		if k <= 0 {
			return 0, bad
		}
		i += k
		return v, nil
	}
	count, k := binary.Uvarint(b[i:])
	if k <= 0 || count > uint64(len(b)) {
		return nil, bad
	}
	i += k
	out := make(map[string]statEntry, count)
	for range count {
		p, err := str()
		if err != nil {
			return nil, err
		}
		var e statEntry
		var v [6]int64
		for j := range v {
			if v[j], err = num(); err != nil {
				return nil, err
			}
		}
		e.Dev, e.Ino, e.Size, e.Mtime, e.Ctime, e.Hashed = uint64(v[0]), uint64(v[1]), v[2], v[3], v[4], v[5]
		if e.Sum, err = str(); err != nil {
			return nil, err
		}
		out[p] = e
	}
	if i != len(b) {
		return nil, bad
	}
	return out, nil
}

func encodeStatCache(w io.Writer, entries map[string]statEntry) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	bw.WriteString(statCacheMagic)
	var buf [binary.MaxVarintLen64]byte
	uv := func(v uint64) { bw.Write(buf[:binary.PutUvarint(buf[:], v)]) }
	sv := func(v int64) { bw.Write(buf[:binary.PutVarint(buf[:], v)]) }
	uv(uint64(len(entries)))
	for p, e := range entries {
		uv(uint64(len(p)))
		bw.WriteString(p)
		for _, v := range []int64{int64(e.Dev), int64(e.Ino), e.Size, e.Mtime, e.Ctime, e.Hashed} {
			sv(v)
		}
		uv(uint64(len(e.Sum)))
		bw.WriteString(e.Sum)
	}
	return bw.Flush()
}

// Sum returns the sha256 (hex) of the regular file at path, whose Lstat
// result is fi, calling hash only when the cache cannot vouch for it.
func (c *StatCache) Sum(path string, fi os.FileInfo, hash func() (string, error)) (string, error) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return hash()
	}
	e := statEntry{
		Dev: uint64(st.Dev), Ino: st.Ino, Size: fi.Size(),
		Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(),
	}
	c.mu.Lock()
	old, found := c.entries[path]
	c.mu.Unlock()
	if found && old.Dev == e.Dev && old.Ino == e.Ino && old.Size == e.Size &&
		old.Mtime == e.Mtime && old.Ctime == e.Ctime &&
		max(e.Mtime, e.Ctime)+int64(racyWindow) < old.Hashed {
		return old.Sum, nil
	}
	e.Hashed = time.Now().UnixNano()
	sum, err := hash()
	if err != nil {
		return "", err
	}
	e.Sum = sum
	c.mu.Lock()
	c.entries[path] = e
	c.dirty = true
	c.mu.Unlock()
	return sum, nil
}

// Save writes the cache back if it changed (atomically: concurrent builds
// may each save; the last one wins, and any version is correct).
func (c *StatCache) Save() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dirty {
		return nil
	}
	err := atomicfile.WriteFile(c.path, atomicfile.Options{TempDir: c.tmp}, func(w io.Writer) error {
		return encodeStatCache(w, c.entries)
	})
	if err != nil {
		return fmt.Errorf("saving stat cache: %w", err)
	}
	os.Remove(c.oldPath)
	c.dirty = false
	return nil
}
