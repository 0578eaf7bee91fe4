package registry

import (
	"context"
	"io"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Event is progress of one transfer: a pulled layer (ID its digest) or a
// whole push (ID the reference). Done is the last event of a transfer.
type Event struct {
	Op       string // "pull" or "push"
	ID       string
	Complete int64 // bytes so far
	Total    int64 // bytes in all; 0 if unknown
	Done     bool
	Exists   bool // nothing to transfer: the store or the registry has it
	Err      error
}

// ProgressFunc receives events, from several goroutines at once.
type ProgressFunc func(Event)

type progressKey struct{}

// WithProgress makes every pull and push done with ctx report to fn. The
// callers in between (the store, the exporter) need not know.
func WithProgress(ctx context.Context, fn ProgressFunc) context.Context {
	return context.WithValue(ctx, progressKey{}, fn)
}

// Report sends ev to ctx's progress function, if it has one (for steps
// of a transfer done outside this package, such as a layer the store
// already has).
func Report(ctx context.Context, ev Event) {
	if fn := progressOf(ctx); fn != nil {
		fn(ev)
	}
}

func progressOf(ctx context.Context) ProgressFunc {
	fn, _ := ctx.Value(progressKey{}).(ProgressFunc)
	return fn
}

// pushProgress relays go-containerregistry's updates for a push of id to
// fn until the channel closes; wait returns when it has.
func pushProgress(fn ProgressFunc, id string) (chan v1.Update, func()) {
	ch := make(chan v1.Update, 64)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var last v1.Update
		for u := range ch {
			if u.Error != nil {
				fn(Event{Op: "push", ID: id, Complete: last.Complete, Total: last.Total, Done: true, Err: u.Error})
				return
			}
			last = u
			fn(Event{Op: "push", ID: id, Complete: u.Complete, Total: u.Total})
		}
		fn(Event{Op: "push", ID: id, Complete: last.Complete, Total: last.Total, Done: true})
	}()
	return ch, wg.Wait
}

// progressImage reports the bytes read of its layers' blobs.
type progressImage struct {
	v1.Image
	fn ProgressFunc
}

func (p progressImage) Layers() ([]v1.Layer, error) {
	ls, err := p.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for i, l := range ls {
		out[i] = progressLayer{Layer: l, fn: p.fn}
	}
	return out, nil
}

func (p progressImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	l, err := p.Image.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	return progressLayer{Layer: l, fn: p.fn}, nil
}

type progressLayer struct {
	v1.Layer
	fn ProgressFunc
}

func (l progressLayer) Compressed() (io.ReadCloser, error) {
	rc, err := l.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	d, _ := l.Digest()
	size, _ := l.Size()
	return &countingReader{rc: rc, fn: l.fn, ev: Event{Op: "pull", ID: d.String(), Total: size}}, nil
}

// Descriptor keeps what go-containerregistry learns from the wrapped layer.
func (l progressLayer) Descriptor() (*v1.Descriptor, error) { return partial.Descriptor(l.Layer) }

func (l progressLayer) MediaType() (types.MediaType, error) { return l.Layer.MediaType() }

type countingReader struct {
	rc   io.ReadCloser
	fn   ProgressFunc
	ev   Event
	done bool
}

// reportEvery is how many bytes pass between two events of a layer.
const reportEvery = 256 << 10

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	before := c.ev.Complete
	c.ev.Complete += int64(n)
	if err != nil && !c.done {
		c.done = true
		c.ev.Done = true
		if err != io.EOF {
			c.ev.Err = err
		}
		c.fn(c.ev)
	} else if c.ev.Complete/reportEvery != before/reportEvery {
		c.fn(c.ev)
	}
	return n, err
}

func (c *countingReader) Close() error {
	if !c.done {
		c.done = true
		c.ev.Done = true
		c.fn(c.ev)
	}
	return c.rc.Close()
}
