//go:build linux

// Command kiln-registry serves an in-memory OCI registry on the loopback
// interface holding a busybox image (made from Debian's busybox-static),
// so benchmarks and demos need no internet. It runs until killed.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/kiln-build/kiln/internal/busybox"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:5000", "address to listen on")
	flag.Parse()
	if err := run(*addr); err != nil {
		fmt.Fprintf(os.Stderr, "kiln-registry: %v\n", err)
		os.Exit(1)
	}
}

func run(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	img, err := busybox.Image("")
	if err != nil {
		return fmt.Errorf("making the busybox image: %w", err)
	}
	if err := busybox.Push(context.Background(), img, l.Addr().String()+"/busybox:latest"); err != nil {
		return err
	}
	fmt.Printf("serving %s/busybox:latest\n", l.Addr())
	return <-errc
}
