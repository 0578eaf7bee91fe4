//go:build linux

package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/digest"
)

// Containers are the containers of `kiln run`: each a directory
// containers/<id>/ with its record (state.json) and its writable layer
// (upper/, work/). GC keeps a container's image.
type Containers struct {
	dir string
	tmp string

	images *Images
	layers *Layers
}

// Container is a container's record: the image it came from, its writable
// layer (Dir/upper) and its state.
type Container struct {
	ID       string        `json:"id"`
	Name     string        `json:"name"`
	Image    string        `json:"image"`
	Digest   digest.Digest `json:"digest"` // image manifest
	Command  []string      `json:"command"`
	Created  time.Time     `json:"created"`
	Status   string        `json:"status"` // created, running, exited
	ExitCode int           `json:"exitCode"`
	Finished time.Time     `json:"finished,omitempty"`
	Pid      int           `json:"pid,omitempty"`
}

// Dir is where container id keeps its upper and work dirs.
func (cs *Containers) Dir(id string) string { return filepath.Join(cs.dir, id) }

// Create makes c's directory and record; it fills in ID (and a Name when
// empty).
func (cs *Containers) Create(ctx context.Context, c *Container) error {
	if c.Name != "" {
		if _, err := cs.Get(ctx, c.Name); err == nil {
			return fmt.Errorf("the container name %q is already in use", c.Name)
		}
	}
	c.ID = randomID() + randomID()[:32]
	if c.Name == "" {
		c.Name = "kiln_" + c.ID[:12]
	}
	c.Created = time.Now().UTC()
	c.Status = "created"
	dir := cs.Dir(c.ID)
	for _, d := range []string{dir, filepath.Join(dir, "upper"), filepath.Join(dir, "work")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return fmt.Errorf("creating container %s: %w", c.Name, err)
		}
	}
	return cs.Save(ctx, c)
}

// Save writes c's record, durably.
func (cs *Containers) Save(ctx context.Context, c *Container) error {
	return writeJSON(cs.tmp, filepath.Join(cs.Dir(c.ID), "state.json"), c, durable)
}

// List returns the containers, newest first.
func (cs *Containers) List(ctx context.Context) ([]Container, error) {
	ents, err := os.ReadDir(cs.dir)
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	var out []Container
	for _, e := range ents {
		var c Container
		if readJSON(filepath.Join(cs.dir, e.Name(), "state.json"), &c) == nil {
			if c.Status == "running" && c.Pid > 0 && !alive(c.Pid) {
				c.Status = "exited" // its kiln process died without recording the end
			}
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

func alive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	return p.Signal(syscall.Signal(0)) == nil
}

// Get finds a container by name, ID or ID prefix (4 or more digits); it
// wraps ErrNotFound if none matches.
func (cs *Containers) Get(ctx context.Context, ref string) (Container, error) {
	all, err := cs.List(ctx)
	if err != nil {
		return Container{}, err
	}
	for _, c := range all {
		if c.Name == ref || c.ID == ref || (len(ref) >= 4 && strings.HasPrefix(c.ID, ref)) {
			return c, nil
		}
	}
	return Container{}, fmt.Errorf("container %s: %w", ref, ErrNotFound)
}

// Remove deletes container id and its writable layer.
func (cs *Containers) Remove(ctx context.Context, id string) error {
	if id == "" || strings.ContainsAny(id, "/.") {
		return fmt.Errorf("invalid container id %q", id)
	}
	// Rename first so a half-removed container never looks like a live one.
	tmp := filepath.Join(cs.tmp, "rm-"+id)
	if err := os.Rename(cs.Dir(id), tmp); err != nil {
		return fmt.Errorf("removing container %s: %w", id, err)
	}
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("removing container %s: %w", id, err)
	}
	return nil
}

// ContainerCommit is what `kiln commit` records of a container's change.
type ContainerCommit struct {
	Author  string // the image's author and the history entry's, if set
	Message string // the history entry's comment
}

// Commit makes an image of the stopped container ref (name, ID or ID
// prefix): its image with the container's writable layer added on top
// and a history entry for it, created now. It returns the new image's
// manifest digest; the container and its image stay as they are.
func (cs *Containers) Commit(ctx context.Context, ref string, o ContainerCommit) (digest.Digest, error) {
	c, err := cs.Get(ctx, ref)
	if err != nil {
		return "", err
	}
	if c.Status == "running" {
		return "", fmt.Errorf("container %s is running: kiln commits only stopped containers", ref)
	}
	layers, cfg, err := cs.images.Layers(ctx, c.Digest)
	if err != nil {
		return "", fmt.Errorf("the image of container %s: %w", ref, err)
	}
	l, err := cs.layers.CopyIn(ctx, filepath.Join(cs.Dir(c.ID), "upper"))
	if err != nil {
		return "", err
	}
	now := time.Now().UTC()
	nc := *cfg
	nc.History = append(append([]v1.History(nil), cfg.History...), v1.History{
		Created:   v1.Time{Time: now},
		CreatedBy: fmt.Sprintf("%v", c.Command),
		Author:    o.Author,
		Comment:   o.Message,
	})
	if o.Author != "" {
		nc.Author = o.Author
	}
	nc.Created = v1.Time{Time: now}
	return cs.images.Commit(ctx, &nc, append(layers, l))
}
