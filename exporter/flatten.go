//go:build linux

package exporter

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// flatten writes img's final filesystem to w as one tar: its layers merged
// from the top down, whiteouts and opaque directories applied, as
// go-containerregistry's mutate.Extract does, and hard links kept right:
// a link whose target an upper layer deleted or replaced becomes a copy of
// the file it was linked to (which a layer tar cannot express otherwise),
// as BuildKit's tar and local outputs give it.
func flatten(ctx context.Context, w io.Writer, img v1.Image) error {
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("reading layers: %w", err)
	}
	tw := tar.NewWriter(w)
	// What the layers above decided: a path they hold (a directory lets the
	// layers below add to it; anything else, or a whiteout, hides what is
	// below it), and the directories they made opaque.
	seen := map[string]decision{}
	opaque := map[string]bool{}
	hidden := func(name string) bool {
		if seen[name] != undecided {
			return true
		}
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			if opaque[dir] || seen[dir] == covered {
				return true
			}
		}
		return false
	}
	for i := len(layers) - 1; i >= 0; i-- {
		if err := ctx.Err(); err != nil {
			return err
		}
		targets, err := linkTargets(layers[i])
		if err != nil {
			return err
		}
		if err := flattenLayer(tw, layers[i], targets, seen, opaque, hidden); err != nil {
			return err
		}
	}
	return tw.Close()
}

type decision byte

const (
	undecided decision = iota
	directory          // a directory: lower layers' entries below it stay
	covered            // a file, link or whiteout: nothing below it stays
)

// linkTargets lists the names hard links of layer l point to (nil if none).
func linkTargets(l v1.Layer) (map[string]bool, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, fmt.Errorf("reading layer: %w", err)
	}
	defer rc.Close()
	var targets map[string]bool
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return targets, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading layer: %w", err)
		}
		if hdr.Typeflag == tar.TypeLink {
			if targets == nil {
				targets = map[string]bool{}
			}
			targets[cleanPath(hdr.Linkname)] = true
		}
	}
}

func cleanPath(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

// flattenLayer writes what of layer l no upper layer decided, then marks it.
func flattenLayer(tw *tar.Writer, l v1.Layer, targets map[string]bool, seen map[string]decision, opaque map[string]bool, hidden func(string) bool) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return fmt.Errorf("reading layer: %w", err)
	}
	defer rc.Close()
	type stashed struct {
		hdr  *tar.Header
		file *os.File // a hidden link target's data
	}
	stash := map[string]*stashed{}
	defer func() {
		for _, s := range stash {
			if s.file != nil {
				s.file.Close()
				os.Remove(s.file.Name())
			}
		}
	}()
	written := map[string]bool{}   // by this layer
	renamed := map[string]string{} // hidden target → the link written in its place
	decided := map[string]decision{}
	var opq []string
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading layer: %w", err)
		}
		name := cleanPath(hdr.Name)
		if name == "" {
			continue
		}
		dir, base := path.Split(name)
		dir = strings.TrimSuffix(dir, "/")
		if base == ".wh..wh..opq" {
			opq = append(opq, dir)
			continue
		}
		if strings.HasPrefix(base, ".wh.") {
			decided[path.Join(dir, strings.TrimPrefix(base, ".wh."))] = covered
			continue
		}
		if hidden(name) {
			if targets[name] && hdr.Typeflag == tar.TypeReg {
				f, err := os.CreateTemp("", "kiln-flatten-")
				if err != nil {
					return err
				}
				stash[name] = &stashed{hdr: hdr, file: f}
				if _, err := io.Copy(f, tr); err != nil {
					return fmt.Errorf("reading layer: %w", err)
				}
			}
			continue
		}
		decided[name] = covered
		if hdr.Typeflag == tar.TypeDir {
			decided[name] = directory
		}
		h := *hdr
		h.Name = name
		if hdr.Typeflag == tar.TypeDir {
			h.Name += "/"
		}
		var data io.Reader = tr
		if hdr.Typeflag == tar.TypeLink {
			target := cleanPath(hdr.Linkname)
			switch {
			case written[target]:
				h.Linkname = target
			case renamed[target] != "":
				h.Linkname = renamed[target]
			case stash[target] != nil:
				// The target is gone or replaced above: this name gets the
				// file (with the shared inode's metadata), and later links
				// to the same target link to this name.
				s := stash[target]
				h = *s.hdr
				h.Name = name
				if _, err := s.file.Seek(0, io.SeekStart); err != nil {
					return err
				}
				data = s.file
				renamed[target] = name
			default:
				h.Linkname = target
			}
		}
		if err := tw.WriteHeader(&h); err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := io.Copy(tw, data); err != nil {
				return fmt.Errorf("writing %s: %w", name, err)
			}
		}
		written[name] = true
	}
	// What this layer decides hides the same paths in the layers below.
	for n, d := range decided {
		seen[n] = d
	}
	for _, d := range opq {
		opaque[d] = true
	}
	return nil
}
