//go:build linux

// Command kiln-busybox writes a busybox base image, built from the host's
// static busybox, as an OCI archive: the demo loads it into kiln's store.
//
//	kiln-busybox -o busybox.tar [-busybox /bin/busybox] [-name busybox:latest]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"

	"github.com/kiln-build/kiln/exporter"
	"github.com/kiln-build/kiln/exporter/busybox"
)

func main() {
	out := flag.String("o", "", `output file ("-" for standard output)`)
	bin := flag.String("busybox", busybox.DefaultPath, "static busybox binary to build from")
	ref := flag.String("name", "busybox:latest", "image name recorded in the archive")
	flag.Parse()
	if *out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: kiln-busybox -o FILE [-busybox PATH] [-name NAME]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *out, *bin, *ref); err != nil {
		fmt.Fprintln(os.Stderr, "kiln-busybox:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out, bin, ref string) error {
	img, err := busybox.Image(bin)
	if err != nil {
		return err
	}
	if out == "-" {
		return exporter.WriteOCIArchive(ctx, os.Stdout, img, ref)
	}
	f, err := os.CreateTemp(filepath.Dir(out), ".kiln-busybox-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	err = exporter.WriteOCIArchive(ctx, f, img, ref)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err != nil {
		return err
	}
	if err := os.Rename(f.Name(), out); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(os.Stderr, "wrote %s (%s) to %s\n", ref, digest, out)
	return err
}
