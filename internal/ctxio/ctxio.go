package ctxio

import (
	"context"
	"io"
)

// Reader reads from an io.Reader until its context is done.
type Reader struct {
	ctx context.Context
	r   io.Reader
	N   int64 // bytes read so far
}

// NewReader returns a Reader of r that fails with ctx's error once ctx is
// done.
func NewReader(ctx context.Context, r io.Reader) *Reader { return &Reader{ctx: ctx, r: r} }

func (r *Reader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := r.r.Read(p)
	r.N += int64(n)
	return n, err
}

// Writer writes to an io.Writer until its context is done.
type Writer struct {
	ctx context.Context
	w   io.Writer
	N   int64 // bytes written so far
}

// NewWriter returns a Writer to w that fails with ctx's error once ctx is
// done.
func NewWriter(ctx context.Context, w io.Writer) *Writer { return &Writer{ctx: ctx, w: w} }

func (w *Writer) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := w.w.Write(p)
	w.N += int64(n)
	return n, err
}
