//go:build linux

package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	v1tarball "github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/exporter"
	"github.com/kiln-build/kiln/imageref"
	"github.com/kiln-build/kiln/internal/atomicfile"
	"github.com/kiln-build/kiln/internal/ctxio"
)

func newSaveCmd(g *globalFlags) *cobra.Command {
	var output, format string
	cmd := &cobra.Command{
		Use:   "save -o FILE IMAGE...",
		Short: "Write images from the store to one OCI archive or docker-archive tar",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if format != "oci" && format != "docker" {
				return fmt.Errorf("--format %q: use oci or docker", format)
			}
			st, err := g.store()
			if err != nil {
				return err
			}
			if len(args) == 1 {
				rec, err := st.Names().Get(ctx, args[0])
				if err != nil {
					return err
				}
				return exporter.Export(ctx, st.Images(), st.Names(), rec.Digest, exporter.Output{Type: format, Dest: output, Tar: true, Name: args[0]}, os.Stdout)
			}
			var imgs []namedImage
			for _, a := range args {
				rec, err := st.Names().Get(ctx, a)
				if err != nil {
					return err
				}
				img, err := st.Images().Distributable(ctx, rec.Digest)
				if err != nil {
					return err
				}
				ref, err := name.NewTag(a, name.WeakValidation)
				if err != nil {
					return fmt.Errorf("saving %s: a name with a tag is needed in an archive of several images: %w", a, err)
				}
				imgs = append(imgs, namedImage{ref: ref, img: img})
			}
			write := writeMultiOCI
			if format == "docker" {
				write = writeMultiDocker
			}
			if output == "-" {
				return write(ctx, os.Stdout, imgs)
			}
			err = atomicfile.WriteFile(output, atomicfile.Options{TempDir: filepath.Dir(output), Perm: 0o644}, func(w io.Writer) error {
				return write(ctx, w, imgs)
			})
			if err != nil {
				return fmt.Errorf("saving to %s: %w", output, err)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "file to write (- for stdout)")
	cmd.Flags().StringVar(&format, "format", "oci", "archive format: oci or docker")
	_ = cmd.MarkFlagRequired("output")
	return cmd
}

type namedImage struct {
	ref name.Tag
	img v1.Image
}

// writeMultiDocker writes a docker-archive (docker save) of several images,
// each layer once.
func writeMultiDocker(ctx context.Context, w io.Writer, imgs []namedImage) error {
	m := map[name.Reference]v1.Image{}
	for _, ni := range imgs {
		m[ni.ref] = ni.img
	}
	return v1tarball.MultiRefWrite(m, ctxio.NewWriter(ctx, w))
}

// writeMultiOCI writes a tar of an OCI image layout holding several
// images, named in index.json as the single-image archives are; each blob
// is written once, streamed.
func writeMultiOCI(ctx context.Context, w io.Writer, imgs []namedImage) error {
	tw := tar.NewWriter(ctxio.NewWriter(ctx, w))
	put := func(p string, size int64, r io.Reader) error {
		if err := tw.WriteHeader(&tar.Header{Name: p, Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := io.Copy(tw, r)
		return err
	}
	putBytes := func(p string, b []byte) error { return put(p, int64(len(b)), bytes.NewReader(b)) }
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
			return err
		}
	}
	if err := putBytes("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	seen := map[v1.Hash]bool{}
	var descs []v1.Descriptor
	for _, ni := range imgs {
		layers, err := ni.img.Layers()
		if err != nil {
			return err
		}
		for _, l := range layers {
			h, err := l.Digest()
			if err != nil {
				return err
			}
			size, err := l.Size()
			if err != nil {
				return err
			}
			if seen[h] {
				continue
			}
			seen[h] = true
			rc, err := l.Compressed()
			if err != nil {
				return err
			}
			err = put("blobs/sha256/"+h.Hex, size, rc)
			rc.Close()
			if err != nil {
				return fmt.Errorf("layer %s: %w", h, err)
			}
		}
		cfgName, err := ni.img.ConfigName()
		if err != nil {
			return err
		}
		cfg, err := ni.img.RawConfigFile()
		if err != nil {
			return err
		}
		mb, err := ni.img.RawManifest()
		if err != nil {
			return err
		}
		h, err := ni.img.Digest()
		if err != nil {
			return err
		}
		for _, b := range []struct {
			h v1.Hash
			b []byte
		}{{cfgName, cfg}, {h, mb}} {
			if !seen[b.h] {
				seen[b.h] = true
				if err := putBytes("blobs/sha256/"+b.h.Hex, b.b); err != nil {
					return err
				}
			}
		}
		mt, err := ni.img.MediaType()
		if err != nil {
			return err
		}
		desc := v1.Descriptor{MediaType: mt, Digest: h, Size: int64(len(mb)), Annotations: map[string]string{
			"org.opencontainers.image.ref.name": ni.ref.TagStr(),
			"io.containerd.image.name":          imageref.Canonical(ni.ref),
		}}
		if cf, err := ni.img.ConfigFile(); err == nil && cf.OS != "" {
			desc.Platform = &v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
		}
		descs = append(descs, desc)
	}
	index, err := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: descs})
	if err != nil {
		return err
	}
	if err := putBytes("index.json", index); err != nil {
		return err
	}
	return tw.Close()
}
