package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"reflect"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// How the differential check compares two images: the config fields a
// Dockerfile sets, and the flattened file trees.

// compareConfigs compares the fields a Dockerfile sets; created, history,
// rootfs digests and buildah's own io.buildah.version label are volatile or
// tool-specific. The layer count compares the diff IDs: both leave
// metadata-only steps out of rootfs.
func compareConfigs(k, b *v1.ConfigFile) []difference {
	var out []difference
	eq := func(field string, kv, bv any) {
		if !reflect.DeepEqual(kv, bv) {
			out = append(out, difference{"config." + field, fmt.Sprintf("kiln %s, buildah %s", show(kv), show(bv))})
		}
	}
	kc, bc := k.Config, b.Config
	eq("Env", nilIfEmpty(kc.Env), nilIfEmpty(bc.Env))
	eq("Cmd", nilIfEmpty(kc.Cmd), nilIfEmpty(bc.Cmd))
	eq("Entrypoint", nilIfEmpty(kc.Entrypoint), nilIfEmpty(bc.Entrypoint))
	eq("User", kc.User, bc.User)
	eq("WorkingDir", kc.WorkingDir, bc.WorkingDir)
	eq("Labels", labels(kc.Labels), labels(bc.Labels))
	eq("ExposedPorts", keys(kc.ExposedPorts), keys(bc.ExposedPorts))
	eq("Volumes", keys(kc.Volumes), keys(bc.Volumes))
	eq("StopSignal", kc.StopSignal, bc.StopSignal)
	eq("Healthcheck", kc.Healthcheck, bc.Healthcheck)
	eq("Shell", nilIfEmpty(kc.Shell), nilIfEmpty(bc.Shell))
	eq("OnBuild", nilIfEmpty(kc.OnBuild), nilIfEmpty(bc.OnBuild))
	eq("Author", k.Author, b.Author)
	eq("Platform", k.OS+"/"+k.Architecture, b.OS+"/"+b.Architecture)
	if kn, bn := len(k.RootFS.DiffIDs), len(b.RootFS.DiffIDs); kn != bn {
		out = append(out, difference{"layers", fmt.Sprintf("kiln %d layers, buildah %d", kn, bn)})
	}
	return out
}

func labels(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if k != "io.buildah.version" {
			out[k] = v
		}
	}
	return out
}

func show(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// compareTrees compares every path of the two flattened trees by type,
// permission bits, owner, content digest and link target; never mtimes.
func compareTrees(k, b map[string]node, ignored *[]string) []difference {
	paths := map[string]bool{}
	for p := range k {
		paths[p] = true
	}
	for p := range b {
		paths[p] = true
	}
	sorted := make([]string, 0, len(paths))
	for p := range paths {
		sorted = append(sorted, p)
	}
	sort.Strings(sorted)
	var out []difference
	for _, p := range sorted {
		kn, kok := k[p]
		bn, bok := b[p]
		if !kok && isBuildahStub(p, bn, b) {
			*ignored = append(*ignored, p)
			continue
		}
		ks, bs := "absent", "absent"
		if kok {
			ks = kn.String()
		}
		if bok {
			bs = bn.String()
		}
		if ks != bs {
			out = append(out, difference{p, fmt.Sprintf("kiln %s, buildah %s", ks, bs)})
		}
	}
	return out
}

func isBuildahStub(p string, n node, tree map[string]node) bool {
	if typ, ok := buildahStubs[p]; !ok || n.typ != typ || n.size != 0 {
		return false
	}
	return !hasBelow(tree, p) // an empty mount point, not a real /run
}

// node is what the comparison sees of one path.
type node struct {
	typ        byte // tar type flag, '0' for any regular file
	mode       int64
	uid, gid   int
	size       int64
	sum, text  string // content digest; the content too when short text
	link       string // symlink target; hard link target as an image path
	whiteout   bool   // in a layer: removes the path from the layers below
	opaqueMark bool   // in a layer: hides the lower layers' entries under the path
}

func (n node) String() string {
	s := fmt.Sprintf("type %c mode %04o owner %d:%d", n.typ, n.mode, n.uid, n.gid)
	switch n.typ {
	case '0':
		s += fmt.Sprintf(" size %d sha256:%s", n.size, n.sum)
		if n.text != "" {
			s += fmt.Sprintf(" %q", n.text) // readable in the report
		}
	case '1', '2':
		s += " -> " + n.link
	}
	return s
}

// layerCache parses each layer once, by diff ID: the base layer, the same
// in every image of both builders, is then read only once.
type layerCache struct {
	mu     sync.Mutex
	layers map[v1.Hash][]layerEntry
}

type layerEntry struct {
	path string
	node
}

// tree flattens img's layers: whiteouts and opaque markers hide only what
// the layers below hold, a non-directory replaces what was under its path.
func (c *layerCache) tree(img v1.Image) (map[string]node, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	// The config's diff IDs: asking a compressed layer decompresses it.
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	if len(cfg.RootFS.DiffIDs) != len(layers) {
		return nil, fmt.Errorf("%d layers but %d diff IDs", len(layers), len(cfg.RootFS.DiffIDs))
	}
	tree := map[string]node{}
	for i, l := range layers {
		es, err := c.entries(cfg.RootFS.DiffIDs[i], l)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			if e.whiteout {
				delete(tree, e.path)
			}
			if e.whiteout || e.opaqueMark {
				removeBelow(tree, e.path)
			}
		}
		for _, e := range es {
			if e.whiteout || e.opaqueMark {
				continue
			}
			if old, ok := tree[e.path]; ok && old.typ == '5' && e.typ != '5' {
				removeBelow(tree, e.path)
			}
			tree[e.path] = e.node
		}
	}
	return tree, nil
}

func (c *layerCache) entries(id v1.Hash, l v1.Layer) ([]layerEntry, error) {
	c.mu.Lock()
	es, ok := c.layers[id]
	c.mu.Unlock()
	if ok {
		return es, nil
	}
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", id, err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", id, err)
		}
		p := imagePath(h.Name)
		dir, base := path.Split(p)
		switch {
		case base == ".wh..wh..opq":
			es = append(es, layerEntry{path.Clean(dir), node{opaqueMark: true}})
		case strings.HasPrefix(base, ".wh."):
			es = append(es, layerEntry{dir + strings.TrimPrefix(base, ".wh."), node{whiteout: true}})
		default:
			n := node{typ: fileType(h.Typeflag), mode: h.Mode & 0o7777, uid: h.Uid, gid: h.Gid, link: h.Linkname}
			if n.typ == '1' {
				n.link = imagePath(h.Linkname)
			}
			if n.typ == '0' {
				sum := sha256.New()
				var head bytes.Buffer
				size, err := io.Copy(io.MultiWriter(sum, &limitWriter{&head, 65}), tr)
				if err != nil {
					return nil, fmt.Errorf("layer %s: %s: %w", id, h.Name, err)
				}
				n.size, n.sum = size, hex.EncodeToString(sum.Sum(nil)[:6])
				if size <= 64 && utf8.Valid(head.Bytes()) {
					n.text = head.String()
				}
			}
			es = append(es, layerEntry{p, n})
		}
	}
	c.mu.Lock()
	c.layers[id] = es
	c.mu.Unlock()
	return es, nil
}

// imagePath is a tar entry name as an absolute, clean path.
func imagePath(name string) string { return path.Clean("/" + name) }

func removeBelow(tree map[string]node, p string) {
	for q := range tree {
		if strings.HasPrefix(q, strings.TrimSuffix(p, "/")+"/") {
			delete(tree, q)
		}
	}
}

func hasBelow(tree map[string]node, p string) bool {
	for q := range tree {
		if strings.HasPrefix(q, p+"/") {
			return true
		}
	}
	return false
}

// limitWriter keeps the first n bytes written to it.
type limitWriter struct {
	b *bytes.Buffer
	n int
}

func (w *limitWriter) Write(p []byte) (int, error) {
	if room := w.n - w.b.Len(); room > 0 {
		w.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// fileType folds the old regular-file flags into the current one.
func fileType(t byte) byte {
	if t == '\x00' || t == '7' {
		return '0'
	}
	return t
}
