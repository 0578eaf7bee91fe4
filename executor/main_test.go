//go:build linux

package executor_test

import (
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/executor"
)

// The test binary is also the executor's re-exec target.
func TestMain(m *testing.M) {
	executor.Init()
	if os.Getenv(exeProbeEnv) == "1" {
		exeProbe()
	}
	os.Exit(m.Run())
}

// exeProbeEnv makes the test binary, when a container runs it through
// /proc/self/exe (see TestCVE_2019_5736), report whether it could write
// the file it was started from, instead of running tests.
const exeProbeEnv = "KILN_TEST_EXE_PROBE"

func exeProbe() {
	var st unix.Statfs_t
	if err := unix.Statfs("/proc/self/exe", &st); err != nil {
		fmt.Println("statfs:", err)
		os.Exit(1)
	}
	fmt.Printf("readonly=%v\n", st.Flags&unix.ST_RDONLY != 0)
	f, err := os.OpenFile("/proc/self/exe", os.O_WRONLY, 0)
	if err == nil {
		f.Close()
		fmt.Println("write-open=ok")
	} else {
		fmt.Println("write-open=refused")
	}
	os.Exit(0)
}
