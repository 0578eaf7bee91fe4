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
	"io"
	"os"
	"os/signal"

	"github.com/kiln-build/kiln/exporter"
	"github.com/kiln-build/kiln/internal/atomicfile"
	"github.com/kiln-build/kiln/internal/busybox"
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
	if err := atomicfile.WriteFile(out, atomicfile.Options{Perm: 0o644}, func(w io.Writer) error {
		return exporter.WriteOCIArchive(ctx, w, img, ref)
	}); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(os.Stderr, "wrote %s (%s) to %s\n", ref, digest, out)
	return err
}
