//go:build linux

package cache

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kiln-build/kiln/digest"
)

// LockKey excludes across store handles (each its own open file, as two
// processes would have), lets other keys through, and gives up when ctx
// is cancelled.
func TestLockKey(t *testing.T) {
	root := t.TempDir()
	a, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	key := digest.FromBytes([]byte("step"))
	unlock, err := a.LockKey(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	// Another key is free (keys whose first hex digits differ).
	other := digest.FromBytes([]byte("other step"))
	if other.Hex()[:3] == key.Hex()[:3] {
		t.Fatal("pick another key")
	}
	u2, err := b.LockKey(t.Context(), other)
	if err != nil {
		t.Fatal(err)
	}
	u2()

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := b.LockKey(ctx, key); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("LockKey on a held key: %v, want the ctx's error", err)
	}

	var got atomic.Bool
	done := make(chan error)
	go func() {
		u, err := b.LockKey(t.Context(), key)
		if err == nil {
			got.Store(true)
			u()
		}
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	if got.Load() {
		t.Fatal("the key was locked twice")
	}
	unlock()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiter never got the key after unlock")
	}
	if _, err := a.LockKey(t.Context(), "sha256:../../x"); err == nil {
		t.Error("a malformed key was accepted")
	}
}
