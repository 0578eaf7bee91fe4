package ctxio

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReader(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	r := NewReader(ctx, strings.NewReader("hello, world"))
	b := make([]byte, 5)
	if n, err := r.Read(b); n != 5 || err != nil || r.N != 5 {
		t.Fatalf("Read = %d, %v (N %d)", n, err, r.N)
	}
	cancel()
	if n, err := r.Read(b); n != 0 || !errors.Is(err, context.Canceled) || r.N != 5 {
		t.Errorf("Read after cancel = %d, %v (N %d)", n, err, r.N)
	}
	// A whole copy counts every byte.
	all := NewReader(t.Context(), strings.NewReader("hello, world"))
	if n, err := io.Copy(io.Discard, all); n != 12 || err != nil || all.N != 12 {
		t.Errorf("Copy = %d, %v (N %d)", n, err, all.N)
	}
}

func TestWriter(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	var buf bytes.Buffer
	w := NewWriter(ctx, &buf)
	if _, err := io.WriteString(w, "hello"); err != nil || w.N != 5 {
		t.Fatalf("Write: %v (N %d)", err, w.N)
	}
	cancel()
	if n, err := io.WriteString(w, "more"); n != 0 || !errors.Is(err, context.Canceled) {
		t.Errorf("Write after cancel = %d, %v", n, err)
	}
	if buf.String() != "hello" || w.N != 5 {
		t.Errorf("wrote %q (N %d)", buf.String(), w.N)
	}
}
