//go:build linux

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/exporter"
	"github.com/kiln-build/kiln/internal/atomicfile"
	"github.com/kiln-build/kiln/registry"
	"github.com/kiln-build/kiln/store"
)

// outputFlags are the build flags about what the build writes out:
// --output's companions as docker buildx has them.
type outputFlags struct {
	push         bool
	annotations  []string
	labels       []string
	iidFile      string
	metadataFile string
}

func (o *outputFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.BoolVar(&o.push, "push", false, "push the image to the registry of each -t name (= --output type=registry)")
	fl.StringArrayVar(&o.annotations, "annotation", nil, `add an annotation to the image manifest: "KEY=VALUE", or "index:KEY=VALUE", "manifest-descriptor:KEY=VALUE"`)
	fl.StringArrayVar(&o.labels, "label", nil, `set a label in the image config ("KEY=VALUE")`)
	fl.StringVar(&o.iidFile, "iidfile", "", "write the image ID (its config digest) to FILE")
	fl.StringVar(&o.metadataFile, "metadata-file", "", "write the build's result as JSON to FILE (containerimage.digest, ... as buildx)")
}

// parseOutputs turns --output, --push and --annotation into the outputs
// the build exports to, in order.
func parseOutputs(vals []string, o *outputFlags, tags []string) ([]exporter.Output, error) {
	var outs []exporter.Output
	for _, v := range vals {
		out, err := exporter.ParseOutput(v)
		if err != nil {
			return nil, err
		}
		outs = append(outs, out)
	}
	if o.push {
		if len(tags) == 0 {
			return nil, errors.New("--push needs a name to push to: give -t NAME")
		}
		out, err := exporter.ParseOutput("type=registry,name=" + csvQuote(strings.Join(tags, ",")))
		if err != nil {
			return nil, fmt.Errorf("--push: %w", err)
		}
		outs = append(outs, out)
	}
	stdout := 0
	for i := range outs {
		for _, a := range o.annotations {
			where, kv := exporter.AnnotateManifest, a
			if w, rest, ok := strings.Cut(a, ":"); ok && !strings.Contains(w, "=") {
				switch w {
				case exporter.AnnotateManifest, exporter.AnnotateIndex, exporter.AnnotateDescriptor:
					where, kv = w, rest
				default:
					return nil, fmt.Errorf("--annotation %q: unknown type %q (use manifest, index or manifest-descriptor)", a, w)
				}
			}
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("--annotation %q: expected KEY=VALUE", a)
			}
			// Docker's manifest has no annotations: outputs with its
			// media types (type=docker) do without the flag's.
			if outs[i].IsImage() && !outs[i].DockerTypes {
				outs[i].Annotate(where, k, v)
			}
		}
		if outs[i].Dest == "-" {
			stdout++
		}
	}
	if stdout > 1 {
		return nil, errors.New("--output: only one output can be written to standard output (dest=-)")
	}
	if stdout == 1 && isTerminal(os.Stdout) {
		return nil, errors.New("--output dest=-: standard output is a terminal; redirect it to a file or a pipe, or give dest=FILE")
	}
	return outs, nil
}

// csvQuote quotes s as one CSV field, as --output's values are read.
func csvQuote(s string) string {
	if !strings.ContainsAny(s, `,"`) {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// parseLabels reads --label KEY=VALUE values.
func parseLabels(vals []string) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range vals {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--label %q: expected KEY=VALUE", v)
		}
		out[k] = val
	}
	return out, nil
}

// applyLabels sets labels in cfg, over the Dockerfile's LABELs (as docker).
func applyLabels(cfg *v1.ConfigFile, labels map[string]string) {
	if len(labels) == 0 {
		return
	}
	l := make(map[string]string, len(cfg.Config.Labels)+len(labels))
	for k, v := range cfg.Config.Labels {
		l[k] = v
	}
	for k, v := range labels {
		l[k] = v
	}
	cfg.Config.Labels = l
}

// exportAll exports the built image manifest to every output, then writes
// --iidfile and --metadata-file from the first image output (the stored
// image when there is none).
func exportAll(ctx context.Context, st *store.Store, manifest digest.Digest, outs []exporter.Output, name string, epoch *time.Time, o *outputFlags, progress *buildProgress) error {
	var first *exporter.Result
	var allNames []string
	for _, out := range outs {
		if len(out.Names) == 0 && name != "" {
			out.Names, out.Name = []string{name}, name
		}
		start := time.Now()
		ectx := ctx
		if out.Push || out.Type == exporter.TypeRegistry || out.Attrs["push"] == "true" {
			var err error
			if ectx, err = pushContext(ctx, st, manifest); err != nil { // mounts instead of uploads, as kiln push
				return err
			}
		}
		res, err := exporter.ExportImage(ectx, st.Images(), st.Names(), manifest, out, epoch, os.Stdout)
		if err != nil {
			return err
		}
		switch {
		case out.Dest != "":
			progress.Printf("exporting to %s (%s) done\n", out.Dest, out.Type)
		case out.Push:
			for _, n := range out.Names {
				// docker's RepoDigests, as kiln push records them.
				if r, err := registry.Default.ParseReference(n); err == nil {
					if err := st.Images().RecordRepoDigest(ctx, res.Stored, store.CanonicalRepo(r.Context())+"@"+res.Descriptor.Digest.String()); err != nil {
						return err
					}
				}
				progress.Printf("pushing %s: digest: %s size: %d, %s done\n", canonical(n), res.Descriptor.Digest,
					res.Descriptor.Size, time.Since(start).Round(time.Millisecond))
			}
		}
		if out.IsImage() && first == nil {
			first = &res
		}
		allNames = append(allNames, res.Names...)
	}
	if o.iidFile == "" && o.metadataFile == "" {
		return nil
	}
	if len(outs) == 0 && name != "" {
		allNames = []string{name} // the -t name the store gave it
	}
	if first == nil {
		img, err := st.Images().Get(ctx, manifest)
		if err != nil {
			return err
		}
		res, err := exporter.Describe(img)
		if err != nil {
			return err
		}
		first = &res
	}
	if o.iidFile != "" {
		if err := atomicfile.WriteFile(o.iidFile, atomicfile.Options{Perm: 0o644}, func(w io.Writer) error {
			_, err := io.WriteString(w, first.Config.String())
			return err
		}); err != nil {
			return fmt.Errorf("--iidfile: %w", err)
		}
	}
	if o.metadataFile != "" {
		md := map[string]any{
			"containerimage.digest":        first.Descriptor.Digest.String(),
			"containerimage.config.digest": first.Config.String(),
			"containerimage.descriptor":    first.Descriptor,
		}
		if len(allNames) > 0 {
			md["image.name"] = strings.Join(dedupe(allNames), ",")
		}
		b, err := json.MarshalIndent(md, "", "  ")
		if err != nil {
			return err
		}
		if err := atomicfile.WriteFile(o.metadataFile, atomicfile.Options{Perm: 0o644}, func(w io.Writer) error {
			_, err := w.Write(append(b, '\n'))
			return err
		}); err != nil {
			return fmt.Errorf("--metadata-file: %w", err)
		}
	}
	return nil
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
