//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/registry"
	"github.com/kiln-build/kiln/store"
)

func newPushCmd(g *globalFlags) *cobra.Command {
	var progress string
	cmd := &cobra.Command{
		Use:   "push IMAGE [REF]",
		Short: "Push an image of the local store to a registry (as REF if given)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, err := g.store()
			if err != nil {
				return err
			}
			rec, err := st.Names().Get(ctx, args[0])
			if err != nil {
				return err
			}
			target := args[0]
			if len(args) == 2 {
				target = args[1]
			}
			tp, err := newTransferProgress(progress)
			if err != nil {
				return err
			}
			d, size, err := pushImage(tp.context(ctx), st, rec.Digest, target)
			tp.close()
			if err != nil {
				return err
			}
			fmt.Printf("%s: digest: %s size: %d\n", target, d, size)
			return nil
		},
	}
	cmd.Flags().StringVar(&progress, "progress", "auto", "progress output: auto, tty, plain or quiet")
	return cmd
}

// pushImage pushes the stored image d to ref and records the repository
// digest; it returns the pushed manifest's digest and size.
func pushImage(ctx context.Context, st *store.Store, d digest.Digest, ref string) (digest.Digest, int, error) {
	r, err := registry.Default.ParseReference(ref)
	if err != nil {
		return "", 0, err
	}
	img, err := st.Images().Distributable(ctx, d)
	if err != nil {
		return "", 0, err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return "", 0, err
	}
	pctx, err := pushContext(ctx, st, d)
	if err != nil {
		return "", 0, err
	}
	if err := registry.Default.Write(pctx, r, img); err != nil {
		return "", 0, err
	}
	pushed := digest.FromBytes(raw)
	if err := st.Images().RecordRepoDigest(ctx, d, store.CanonicalRepo(r.Context())+"@"+string(pushed)); err != nil {
		return "", 0, err
	}
	return pushed, len(raw), nil
}

// pushContext is ctx with what lets a registry mount blobs instead of
// taking uploads for a push of the stored image d: the repositories it was
// pulled from or pushed to before (for all its blobs), and, for the layers
// of the store's images it was built on (their layers a prefix of its
// own), the repositories those came from.
func pushContext(ctx context.Context, st *store.Store, d digest.Digest) (context.Context, error) {
	repoOf := func(rd string) string { repo, _, _ := strings.Cut(rd, "@"); return repo }
	own, err := st.Images().RepoDigests(ctx, d)
	if err != nil {
		return nil, err
	}
	var repos []string
	for _, rd := range own {
		if r := repoOf(rd); !slices.Contains(repos, r) {
			repos = append(repos, r)
		}
	}
	layers, cfg, err := st.Images().Layers(ctx, d)
	if err != nil {
		return nil, err
	}
	recs, err := st.Names().List(ctx)
	if err != nil {
		return nil, err
	}
	blobs := map[string][]string{}
	for _, rec := range recs {
		if rec.Digest == d {
			continue
		}
		_, base, err := st.Images().Layers(ctx, rec.Digest)
		if err != nil {
			continue
		}
		ids := base.RootFS.DiffIDs
		if len(ids) == 0 || len(ids) > len(cfg.RootFS.DiffIDs) || !slices.Equal(ids, cfg.RootFS.DiffIDs[:len(ids)]) {
			continue
		}
		rds, err := st.Images().RepoDigests(ctx, rec.Digest)
		if err != nil {
			return nil, err
		}
		for _, rd := range rds {
			for _, l := range layers[:len(ids)] {
				if r := repoOf(rd); !slices.Contains(blobs[string(l.Digest)], r) {
					blobs[string(l.Digest)] = append(blobs[string(l.Digest)], r)
				}
			}
		}
	}
	return registry.WithBlobSources(registry.WithMountFrom(ctx, repos...), blobs), nil
}

// transferProgress shows pulls and pushes on stderr: bars with bytes and
// rate on a terminal, a line per transfer started and done otherwise.
type transferProgress struct {
	mode string // tty, plain, quiet
	out  io.Writer

	mu    sync.Mutex
	items map[string]*transfer
	order []string
	drawn int // lines of the last tty frame
	last  time.Time
}

type transfer struct {
	ev    registry.Event
	start time.Time
	end   time.Time
}

func newTransferProgress(mode string) (*transferProgress, error) {
	switch mode {
	case "auto":
		mode = "plain"
		if isTerminal(os.Stderr) {
			mode = "tty"
		}
	case "tty", "plain", "quiet":
	default:
		return nil, fmt.Errorf("--progress %q: use auto, tty, plain or quiet", mode)
	}
	return &transferProgress{mode: mode, out: os.Stderr, items: map[string]*transfer{}}, nil
}

// context is ctx with the registry's transfers reporting here.
func (p *transferProgress) context(ctx context.Context) context.Context {
	if p.mode == "quiet" {
		return ctx
	}
	return registry.WithProgress(ctx, p.event)
}

func (p *transferProgress) event(ev registry.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := ev.Op + " " + ev.ID
	t, ok := p.items[key]
	if !ok {
		t = &transfer{start: time.Now()}
		p.items[key] = t
		p.order = append(p.order, key)
		if p.mode == "plain" && ev.Exists {
			fmt.Fprintf(p.out, "%s %s: already exists\n", ev.Op, shortID(ev.ID))
		} else if p.mode == "plain" {
			fmt.Fprintf(p.out, "%s %s: started%s\n", ev.Op, shortID(ev.ID), sizeNote(ev.Total))
		}
	}
	if t.ev.Done {
		return
	}
	t.ev = ev
	if ev.Done {
		t.end = time.Now()
		if p.mode == "plain" && !ev.Exists {
			status := "done"
			if ev.Err != nil {
				status = "failed: " + ev.Err.Error()
			}
			fmt.Fprintf(p.out, "%s %s: %s, %s in %s (%s/s)\n", ev.Op, shortID(ev.ID), status,
				units.HumanSize(float64(ev.Complete)), t.end.Sub(t.start).Round(time.Millisecond), units.HumanSize(rate(ev.Complete, t.end.Sub(t.start))))
		}
	}
	if p.mode == "tty" && (ev.Done || time.Since(p.last) > 100*time.Millisecond) {
		p.draw()
	}
}

// draw redraws every transfer's bar in place.
func (p *transferProgress) draw() {
	p.last = time.Now()
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn)
	}
	width := terminalWidth(os.Stderr)
	for _, k := range p.order {
		t := p.items[k]
		end := time.Now()
		if t.ev.Done {
			end = t.end
		}
		bar := ""
		if t.ev.Total > 0 {
			const n = 30
			filled := int(min(t.ev.Complete, t.ev.Total) * n / t.ev.Total)
			bar = "[" + strings.Repeat("=", filled) + strings.Repeat(" ", n-filled) + "] "
		}
		status := fmt.Sprintf("%s%s/%s %s/s", bar, units.HumanSize(float64(t.ev.Complete)), units.HumanSize(float64(t.ev.Total)), units.HumanSize(rate(t.ev.Complete, end.Sub(t.start))))
		switch {
		case t.ev.Exists:
			status = "already exists"
		case t.ev.Err != nil:
			status = "failed"
		case t.ev.Done:
			status = "done " + units.HumanSize(float64(t.ev.Complete))
		}
		line := fmt.Sprintf("%s %s %s", t.ev.Op, shortID(t.ev.ID), status)
		if len(line) >= width {
			line = line[:width-1]
		}
		b.WriteString("\x1b[2K" + line + "\n")
	}
	p.drawn = len(p.order)
	_, _ = io.WriteString(p.out, b.String()) // progress is best effort
}

// close draws the last frame.
func (p *transferProgress) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode == "tty" && len(p.order) > 0 {
		p.draw()
	}
}

func rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func sizeNote(n int64) string {
	if n <= 0 {
		return ""
	}
	return ", " + units.HumanSize(float64(n))
}

// shortID shortens a digest as docker's progress does.
func shortID(id string) string {
	if h, ok := strings.CutPrefix(id, "sha256:"); ok && len(h) >= 12 {
		return h[:12]
	}
	return id
}
