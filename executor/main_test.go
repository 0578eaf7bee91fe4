package executor_test

import (
	"os"
	"testing"

	"github.com/kiln-build/kiln/executor"
)

// The test binary is also the executor's re-exec target.
func TestMain(m *testing.M) {
	executor.Init()
	os.Exit(m.Run())
}
