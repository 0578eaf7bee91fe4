//go:build linux

package fscopy

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Copying a file is mostly kernel work (create, data, metadata), and a COPY
// of a big context is tens of thousands of them, so regular files are
// copied by a few goroutines while the walk goes on. The result does not
// depend on their order: each file is its own path, a path written twice is
// waited for before the second write, hard-linked files are copied in walk
// order, and a directory's mode and times are set once all its children
// exist (creating an entry changes the directory's mtime).

// maxCopiers bounds the files copied at once.
func maxCopiers() int { return min(max(runtime.NumCPU(), 2), 8) }

// pool runs file copies for one Copy.
type pool struct {
	sem      chan struct{}
	inflight sync.WaitGroup

	mu  sync.Mutex
	err error
}

func newPool(n int) *pool { return &pool{sem: make(chan struct{}, n)} }

// failed is the first error any copy returned.
func (p *pool) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *pool) fail(err error) {
	if err == nil {
		return
	}
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
}

// wait waits for every copy started so far and returns the first error.
func (p *pool) wait() error {
	p.inflight.Wait()
	return p.failed()
}

// spawn runs job on its own goroutine once a slot is free. dir, if not
// nil, is the created directory the job writes into: its metadata is set
// (by finish) only after the job is done.
func (c *copier) spawn(dir *node, job func() error) {
	p := c.pool
	p.sem <- struct{}{}
	p.inflight.Add(1)
	if dir != nil {
		atomic.AddInt32(&dir.refs, 1)
	}
	go func() {
		defer p.inflight.Done()
		if p.failed() == nil {
			p.fail(job())
		}
		<-p.sem
		if dir != nil {
			c.release(dir)
		}
	}()
}

// release drops one reference to the created directory n; the last one
// sets its mode and times.
func (c *copier) release(n *node) {
	if atomic.AddInt32(&n.refs, -1) == 0 {
		c.pool.fail(c.finish(n))
	}
}

// settle makes sure no copy to dst is still running: a path written twice
// (two sources, same name) gets the later source, as when copying in order.
func (c *copier) settle(dst string) error {
	if !c.written[dst] {
		return c.pool.failed()
	}
	return c.pool.wait()
}
