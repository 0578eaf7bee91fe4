//go:build linux

package busybox

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kiln-build/kiln/containerenv"
)

// DefaultPath is where Debian's busybox-static installs busybox.
const DefaultPath = "/bin/busybox"

// created is every file's mtime and the image's creation time: fixed, so
// the same busybox binary always gives the same image digest.
var created = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Image builds a linux busybox base image from the static busybox at
// busyboxPath (DefaultPath if ""): one layer with /bin/busybox, a symlink in
// /bin for every applet, /usr/bin/env, the usual top-level directories and
// root and user (1000:1000) accounts. The architecture is the binary's
// (amd64 on this project's machines).
func Image(busyboxPath string) (v1.Image, error) {
	if busyboxPath == "" {
		busyboxPath = DefaultPath
	}
	arch, err := checkBinary(busyboxPath)
	if err != nil {
		return nil, err
	}
	applets, version, err := describe(busyboxPath)
	if err != nil {
		return nil, err
	}
	entries := rootfs(applets)
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(writeRootfs(pw, entries, busyboxPath)) }()
		return pr, nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("busybox layer: %w", err)
	}

	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: "kiln-busybox: " + version,
			Comment:   "busybox base image built from the host's static busybox",
		},
	})
	if err != nil {
		return nil, fmt.Errorf("busybox image: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("busybox image: %w", err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", arch
	cfg.Created = v1.Time{Time: created}
	cfg.Config.Env = []string{"PATH=" + containerenv.DefaultPath}
	cfg.Config.Cmd = []string{"sh"}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("busybox image: %w", err)
	}
	return img, nil
}

// checkBinary makes sure p is a static Linux ELF binary and returns its
// architecture in OCI spelling.
func checkBinary(p string) (string, error) {
	f, err := elf.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("no busybox at %s: install a static one with `apt-get install busybox-static`", p)
	}
	if err != nil {
		return "", fmt.Errorf("busybox %s: %w", p, err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return "", fmt.Errorf("busybox %s is dynamically linked and would not run in an empty image: `apt-get install busybox-static`", p)
		}
	}
	switch f.Machine {
	case elf.EM_X86_64:
		return "amd64", nil
	case elf.EM_AARCH64:
		return "arm64", nil
	case elf.EM_386:
		return "386", nil
	case elf.EM_RISCV:
		return "riscv64", nil
	}
	return "", fmt.Errorf("busybox %s: unsupported machine %s", p, f.Machine)
}

// describe runs busybox for its applets and version line.
func describe(p string) ([]string, string, error) {
	out, err := exec.Command(p, "--list").Output()
	if err != nil {
		return nil, "", fmt.Errorf("running %s --list: %w", p, err)
	}
	var applets []string
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" && !strings.Contains(a, "/") {
			applets = append(applets, a)
		}
	}
	// Without arguments busybox prints its help, and exits 1 on some builds.
	help, _ := exec.Command(p).CombinedOutput()
	version, _, _ := strings.Cut(string(help), "\n")
	if !strings.HasPrefix(version, "BusyBox") {
		return nil, "", fmt.Errorf("%s does not look like busybox: %q", p, version)
	}
	return applets, strings.TrimSpace(version), nil
}

type entry struct {
	hdr  tar.Header
	data []byte // contents of small files
	host bool   // contents are the busybox binary
}

func dir(name string, mode int64, uid int) entry {
	return entry{hdr: tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: mode, Uid: uid, Gid: uid}}
}

func file(name, content string) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(content))}, data: []byte(content)}
}

func symlink(name, target string) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}}
}

// rootfs lists the layer's entries in lexical order.
func rootfs(applets []string) []entry {
	es := []entry{
		dir("bin", 0o755, 0),
		{hdr: tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755}, host: true},
		dir("dev", 0o755, 0),
		dir("etc", 0o755, 0),
		file("etc/group", "root:x:0:\nuser:x:1000:\n"),
		file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n"),
		dir("home", 0o755, 0),
		dir("home/user", 0o755, 1000),
		dir("proc", 0o555, 0),
		dir("root", 0o700, 0),
		dir("sys", 0o555, 0),
		dir("tmp", 0o1777, 0),
		dir("usr", 0o755, 0),
		dir("usr/bin", 0o755, 0),
		symlink("usr/bin/env", "/bin/busybox"), // for #!/usr/bin/env scripts
		dir("var", 0o755, 0),
	}
	seen := map[string]bool{"busybox": true}
	for _, a := range append(applets, "sh") {
		if !seen[a] {
			seen[a] = true
			es = append(es, symlink("bin/"+a, "busybox"))
		}
	}
	sort.SliceStable(es, func(i, j int) bool { return es[i].hdr.Name < es[j].hdr.Name })
	return es
}

func writeRootfs(w io.Writer, entries []entry, busyboxPath string) error {
	tw := tar.NewWriter(w)
	for _, e := range entries {
		hdr := e.hdr
		hdr.ModTime = created
		hdr.Format = tar.FormatPAX
		var body io.Reader = bytes.NewReader(e.data)
		if e.host {
			f, err := os.Open(busyboxPath)
			if err != nil {
				return err
			}
			defer f.Close()
			fi, err := f.Stat()
			if err != nil {
				return err
			}
			hdr.Size, body = fi.Size(), f
		}
		if err := tw.WriteHeader(&hdr); err != nil {
			return fmt.Errorf("busybox layer %s: %w", hdr.Name, err)
		}
		if _, err := io.CopyN(tw, body, hdr.Size); err != nil {
			return fmt.Errorf("busybox layer %s: %w", hdr.Name, err)
		}
	}
	return tw.Close()
}
