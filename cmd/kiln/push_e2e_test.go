package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPushPullProgressOnTerminal: on a terminal, pull and push redraw a
// bar per transfer with bytes and rate; elsewhere they print plain lines.
func TestPushPullProgressOnTerminal(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	run := func(args ...string) string {
		m, s := openPTY(t)
		defer m.Close()
		cmd := e.command(context.Background(), args...)
		cmd.Stderr = s
		var out bytes.Buffer
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		s.Close()
		var screen bytes.Buffer
		done := make(chan error)
		go func() {
			_, err := io.Copy(&screen, m)
			done <- err
		}()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("kiln %v: %v\n%s", args, err, screen.String())
		}
		if err := <-done; err != nil && !errors.Is(err, unix.EIO) {
			t.Fatal(err)
		}
		return screen.String()
	}
	got := run("pull", e.base)
	for _, want := range []string{"\x1b[2K", "pull ", "done ", "MB"} {
		if !strings.Contains(got, want) {
			t.Errorf("pull on a terminal lacks %q:\n%q", want, got)
		}
	}
	got = run("push", e.base, e.reg+"/progress-test/busybox:1")
	for _, want := range []string{"\x1b[2K", "push " + e.reg + "/progress-test/busybox:1", "done "} {
		if !strings.Contains(got, want) {
			t.Errorf("push on a terminal lacks %q:\n%q", want, got)
		}
	}
	r := e.mustKiln("pull", "--progress=plain", e.base)
	if !strings.Contains(r.stderr, ": already exists") || strings.Contains(r.stderr, "\x1b[") {
		t.Errorf("plain pull progress:\n%q", r.stderr)
	}
}
