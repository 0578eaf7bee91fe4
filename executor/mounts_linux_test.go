package executor_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/executor"
)

// The mount points a RUN's mounts need, and the parents made for them, are
// gone from the layer afterwards when they are still empty (BuildKit's
// MountStubsCleaner); what the process wrote beside them stays.
func TestRunMountStubs(t *testing.T) {
	requireRoot(t)
	root := baseRootfs(t)
	host := t.TempDir()
	secret := filepath.Join(host, "secret")
	writeFile(t, secret, "s3cret", 0o400)
	bindDir := filepath.Join(host, "tools")
	writeFile(t, filepath.Join(bindDir, "tool"), "t", 0o755)
	mounts := []executor.Mount{
		{Type: "tmpfs", Target: "/var/cache/apt"},                                 // /var and /var/cache are made for it
		{Type: "bind", Source: secret, Target: "/run/secrets/id", ReadOnly: true}, // a file stub and two dirs
		{Type: "bind", Source: bindDir, Target: "/opt/tools", ReadOnly: true},
		{Type: "tmpfs", Target: "/tmp/scratch"}, // /tmp exists: only the stub goes
		{Type: "tmpfs", Target: "/srv/keep/m"},  // the process writes into /srv/keep: it stays
		{Type: "tmpfs", Target: "/etc"},         // exists in the base: nothing to remove
	}
	p := executor.Process{Args: []string{"sh", "-c",
		"cat /run/secrets/id >/dev/null && test -x /opt/tools/tool && echo x > /var/cache/apt/in-tmpfs && " +
			"echo kept > /srv/keep/file && mkdir -p /opt/made && echo y > /opt/made/f"}}
	if _, stderr, err := run(t, root, p, executor.Options{Mounts: mounts}); err != nil {
		t.Fatalf("Run: %v (stderr %q)", err, stderr)
	}
	got := tree(t, root.Upper)
	want := []string{
		"opt dir 0755 0:0",
		"opt/made dir 0755 0:0",
		`opt/made/f file 0644 0:0 "y\n"`,
		"srv dir 0755 0:0",
		"srv/keep dir 0755 0:0",
		`srv/keep/file file 0644 0:0 "kept\n"`,
		// /tmp and /etc, copied up by overlayfs for the stubs made in them
		// (/tmp/scratch, the /etc/hosts every container gets), are back as
		// they were below, so they are not in the layer either.
	}
	if d := diffLines(want, got); d != "" {
		t.Errorf("upper dir after the run (-want +got):\n%s", d)
	}
	for _, gone := range []string{"var", "run", "tmp", "etc", "srv/keep/m", "opt/tools"} {
		if _, err := os.Lstat(filepath.Join(root.Upper, gone)); err == nil {
			t.Errorf("mount stub %s is still in the layer", gone)
		}
	}
	if strings.Contains(strings.Join(got, "\n"), "s3cret") {
		t.Error("the secret reached the layer")
	}
}
