package imagediff

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Options say what counts as a difference.
type Options struct {
	// Timestamps compares times too: the config's and history's created,
	// file modification times. Without it two reproducible builds made
	// at different times compare equal.
	Timestamps bool
}

// Difference is one way the images differ: where (a field path, or
// "layer N: /path"), and the two values ("" for a side that has none).
type Difference struct {
	Where string
	A, B  string
}

func (d Difference) String() string {
	switch {
	case d.A == "":
		return fmt.Sprintf("%s: only in B: %s", d.Where, d.B)
	case d.B == "":
		return fmt.Sprintf("%s: only in A: %s", d.Where, d.A)
	}
	return fmt.Sprintf("%s: A %s, B %s", d.Where, d.A, d.B)
}

// Compare lists the differences between images a and b, manifest first,
// then config and history, then layers in order. Layer contents are
// streamed: only each file's metadata and digest are held.
func Compare(ctx context.Context, a, b v1.Image, o Options) ([]Difference, error) {
	var out []Difference
	ma, err := a.Manifest()
	if err != nil {
		return nil, fmt.Errorf("image A manifest: %w", err)
	}
	mb, err := b.Manifest()
	if err != nil {
		return nil, fmt.Errorf("image B manifest: %w", err)
	}
	add := func(where string, x, y any) {
		if !reflect.DeepEqual(x, y) {
			out = append(out, Difference{Where: where, A: show(x), B: show(y)})
		}
	}
	add("manifest.mediaType", string(ma.MediaType), string(mb.MediaType))
	add("manifest.config.mediaType", string(ma.Config.MediaType), string(mb.Config.MediaType))
	for _, k := range unionKeys(ma.Annotations, mb.Annotations) {
		if !o.Timestamps && k == "org.opencontainers.image.created" {
			continue
		}
		add("manifest.annotations."+k, ma.Annotations[k], mb.Annotations[k])
	}
	for i := range max(len(ma.Layers), len(mb.Layers)) {
		if i < len(ma.Layers) && i < len(mb.Layers) {
			add(fmt.Sprintf("manifest.layers[%d].mediaType", i), layerKind(ma.Layers[i].MediaType), layerKind(mb.Layers[i].MediaType))
		}
	}

	ca, err := a.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image A config: %w", err)
	}
	cb, err := b.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image B config: %w", err)
	}
	cfgDiffs, err := compareConfigs(ca, cb, o)
	if err != nil {
		return nil, err
	}
	out = append(out, cfgDiffs...)

	la, err := a.Layers()
	if err != nil {
		return nil, fmt.Errorf("image A layers: %w", err)
	}
	lb, err := b.Layers()
	if err != nil {
		return nil, fmt.Errorf("image B layers: %w", err)
	}
	for i := range max(len(la), len(lb)) {
		where := fmt.Sprintf("layer %d", i)
		switch {
		case i >= len(la):
			id, _ := lb[i].DiffID()
			out = append(out, Difference{Where: where, B: id.String()})
			continue
		case i >= len(lb):
			id, _ := la[i].DiffID()
			out = append(out, Difference{Where: where, A: id.String()})
			continue
		}
		ida, err := la[i].DiffID()
		if err != nil {
			return nil, fmt.Errorf("image A %s: %w", where, err)
		}
		idb, err := lb[i].DiffID()
		if err != nil {
			return nil, fmt.Errorf("image B %s: %w", where, err)
		}
		if ida == idb {
			continue // same content, whatever the compression
		}
		files, err := compareLayers(ctx, la[i], lb[i], where, o)
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			// Only what is ignored differs (times), or the order of entries.
			if o.Timestamps {
				files = []Difference{{Where: where + ": diffID", A: ida.String(), B: idb.String()}}
			}
		}
		out = append(out, files...)
	}
	return out, nil
}

// layerKind is a layer media type without its compression: a gzip and a
// zstd blob of one tar hold the same files (diffIDs are compared too).
func layerKind(mt types.MediaType) string {
	s := string(mt)
	for _, suffix := range []string{"+gzip", "+zstd", ".gzip"} {
		s = strings.TrimSuffix(s, suffix)
	}
	return s
}

// compareConfigs compares the configs field by field (as JSON), history
// entry by entry; rootfs is the layers' business.
func compareConfigs(a, b *v1.ConfigFile, o Options) ([]Difference, error) {
	norm := func(c *v1.ConfigFile) (map[string]any, error) {
		c = c.DeepCopy()
		c.RootFS = v1.RootFS{}
		if !o.Timestamps {
			c.Created = v1.Time{}
			for i := range c.History {
				c.History[i].Created = v1.Time{}
			}
		}
		history := c.History
		c.History = nil
		b, err := json.Marshal(c)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, err
		}
		delete(m, "rootfs")
		delete(m, "history")
		for i, h := range history {
			hb, _ := json.Marshal(h)
			var hm map[string]any
			_ = json.Unmarshal(hb, &hm)
			m[fmt.Sprintf("history[%d]", i)] = hm
		}
		return m, nil
	}
	ma, err := norm(a)
	if err != nil {
		return nil, fmt.Errorf("config A: %w", err)
	}
	mb, err := norm(b)
	if err != nil {
		return nil, fmt.Errorf("config B: %w", err)
	}
	var out []Difference
	diffJSON("config", ma, mb, &out)
	return out, nil
}

// diffJSON appends the differences between two decoded JSON values.
func diffJSON(where string, a, b any, out *[]Difference) {
	ma, okA := a.(map[string]any)
	mb, okB := b.(map[string]any)
	if okA && okB {
		keys := slices.Sorted(maps.Keys(ma))
		for k := range mb {
			if _, ok := ma[k]; !ok {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range slices.Compact(keys) {
			diffJSON(where+"."+k, ma[k], mb[k], out)
		}
		return
	}
	if !reflect.DeepEqual(a, b) {
		*out = append(*out, Difference{Where: where, A: showJSON(a), B: showJSON(b)})
	}
}

// entry is what a layer says of one path.
type entry struct {
	typ      byte
	mode     int64
	uid, gid int
	size     int64
	digest   string // sha256 of a regular file's content
	link     string
	xattrs   map[string]string
	mtime    int64
}

func readLayer(ctx context.Context, l v1.Layer) (map[string]entry, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	out := map[string]entry{}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		e := entry{typ: h.Typeflag, mode: h.Mode & 0o7777, uid: h.Uid, gid: h.Gid, size: h.Size, link: h.Linkname, mtime: h.ModTime.Unix()}
		for k, v := range h.PAXRecords {
			if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				if e.xattrs == nil {
					e.xattrs = map[string]string{}
				}
				e.xattrs[x] = v
			}
		}
		if h.Typeflag == tar.TypeReg {
			sum := sha256.New()
			if _, err := io.Copy(sum, tr); err != nil {
				return nil, err
			}
			e.digest = "sha256:" + hex.EncodeToString(sum.Sum(nil))
		}
		out["/"+strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")] = e
	}
}

func compareLayers(ctx context.Context, a, b v1.Layer, where string, o Options) ([]Difference, error) {
	fa, err := readLayer(ctx, a)
	if err != nil {
		return nil, fmt.Errorf("image A %s: %w", where, err)
	}
	fb, err := readLayer(ctx, b)
	if err != nil {
		return nil, fmt.Errorf("image B %s: %w", where, err)
	}
	var out []Difference
	for _, p := range unionKeys(fa, fb) {
		ea, inA := fa[p]
		eb, inB := fb[p]
		w := where + ": " + p
		switch {
		case !inA:
			out = append(out, Difference{Where: w, B: describe(eb)})
			continue
		case !inB:
			out = append(out, Difference{Where: w, A: describe(ea)})
			continue
		}
		field := func(name string, x, y any) {
			if !reflect.DeepEqual(x, y) {
				out = append(out, Difference{Where: w + ": " + name, A: show(x), B: show(y)})
			}
		}
		field("type", typeName(ea.typ), typeName(eb.typ))
		field("mode", fmt.Sprintf("%04o", ea.mode), fmt.Sprintf("%04o", eb.mode))
		field("uid", ea.uid, eb.uid)
		field("gid", ea.gid, eb.gid)
		field("size", ea.size, eb.size)
		field("content", ea.digest, eb.digest)
		field("link target", ea.link, eb.link)
		field("xattrs", fmt.Sprint(ea.xattrs), fmt.Sprint(eb.xattrs))
		if o.Timestamps {
			field("mtime", ea.mtime, eb.mtime)
		}
	}
	return out, nil
}

func describe(e entry) string {
	s := fmt.Sprintf("%s %04o %d:%d", typeName(e.typ), e.mode, e.uid, e.gid)
	if e.typ == tar.TypeReg {
		s += fmt.Sprintf(" %d bytes %s", e.size, e.digest)
	}
	if e.link != "" {
		s += " -> " + e.link
	}
	return s
}

func typeName(t byte) string {
	switch t {
	case tar.TypeReg:
		return "file"
	case tar.TypeDir:
		return "dir"
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeLink:
		return "hardlink"
	case tar.TypeChar:
		return "char device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "fifo"
	}
	return fmt.Sprintf("type %q", t)
}

func show(v any) string {
	if s, ok := v.(string); ok {
		if s == "" {
			return ""
		}
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprint(v)
}

func showJSON(v any) string {
	if v == nil {
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func unionKeys[V any](a, b map[string]V) []string {
	keys := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}
