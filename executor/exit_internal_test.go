//go:build linux

package executor

import (
	"errors"
	"os/exec"
	"testing"
)

// TestExitErrorFromStatus checks real wait statuses map to shell-style codes.
func TestExitErrorFromStatus(t *testing.T) {
	tests := []struct {
		script string
		want   int
	}{
		{"exit 3", 3},
		{"kill -KILL $$", 137},
		{"kill -TERM $$", 143},
	}
	for _, tt := range tests {
		err := exec.Command("/bin/sh", "-c", tt.script).Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("%q: err = %v", tt.script, err)
		}
		if got := exitError(ee).Code; got != tt.want {
			t.Errorf("%q: code = %d, want %d", tt.script, got, tt.want)
		}
	}
}
