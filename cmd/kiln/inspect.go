//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/template"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/digest"
	"github.com/kiln-build/kiln/imageref"
	"github.com/kiln-build/kiln/store"
)

// imageInspect is one image as `docker image inspect` prints it.
type imageInspect struct {
	Id            string // docker's spelling
	RepoTags      []string
	RepoDigests   []string
	Parent        string
	Comment       string
	Created       string
	DockerVersion string
	Author        string
	Config        map[string]any
	Architecture  string
	Variant       string `json:",omitempty"`
	Os            string
	OsVersion     string `json:",omitempty"`
	Size          int64
	RootFS        struct {
		Type   string
		Layers []string
	}
	Metadata struct {
		LastTagTime string
	}
}

func newInspectCmd(g *globalFlags) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect IMAGE...",
		Short: "Show images of the local store as JSON (docker image inspect's format)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, err := g.store()
			if err != nil {
				return err
			}
			var tmpl *template.Template
			if format != "" {
				if tmpl, err = parseFormat(format); err != nil {
					return err
				}
			}
			out := []imageInspect{}
			var missing []string
			for _, a := range args {
				ii, err := inspectImage(ctx, st, a)
				if store.IsNotFound(err) {
					missing = append(missing, a)
					continue
				}
				if err != nil {
					return err
				}
				out = append(out, ii)
			}
			if tmpl != nil {
				for _, ii := range out {
					var b bytes.Buffer
					if err := tmpl.Execute(&b, ii); err != nil {
						return fmt.Errorf("--format: %w", err)
					}
					fmt.Println(b.String())
				}
			} else {
				b, err := json.MarshalIndent(out, "", "    ")
				if err != nil {
					return err
				}
				fmt.Println(string(b))
			}
			if len(missing) > 0 {
				return fmt.Errorf("no such image: %s", strings.Join(missing, ", "))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Go template for each image (as docker: {{.Id}}, {{json .Config}})")
	return cmd
}

// parseFormat parses a docker --format template, with docker's functions.
func parseFormat(f string) (*template.Template, error) {
	funcs := template.FuncMap{
		"json": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
		"join":  strings.Join,
		"split": strings.Split,
		"lower": strings.ToLower,
		"upper": strings.ToUpper,
		"title": func(s string) string {
			if s == "" {
				return s
			}
			return strings.ToUpper(s[:1]) + s[1:]
		},
	}
	t, err := template.New("format").Funcs(funcs).Parse(f)
	if err != nil {
		return nil, fmt.Errorf("--format %q: %w", f, err)
	}
	return t, nil
}

// inspectImage gathers what docker shows of the image ref names.
func inspectImage(ctx context.Context, st *store.Store, ref string) (imageInspect, error) {
	var ii imageInspect
	rec, err := st.Names().Get(ctx, ref)
	if err != nil {
		return ii, err
	}
	id, err := st.Images().ID(ctx, rec.Digest)
	if err != nil {
		return ii, err
	}
	layers, cfg, err := st.Images().Layers(ctx, rec.Digest)
	if err != nil {
		return ii, err
	}
	raw, err := st.Blobs().Read(ctx, id)
	if err != nil {
		return ii, err
	}
	var rawCfg struct {
		Config        map[string]any `json:"config"`
		Comment       string         `json:"comment"`
		DockerVersion string         `json:"docker_version"`
	}
	if err := json.Unmarshal(raw, &rawCfg); err != nil {
		return ii, fmt.Errorf("config of %s: %w", ref, err)
	}
	ii.Id = string(id)
	ii.Config = rawCfg.Config
	if ii.Config == nil {
		ii.Config = map[string]any{}
	}
	ii.Comment, ii.DockerVersion = rawCfg.Comment, rawCfg.DockerVersion
	ii.Created = cfg.Created.UTC().Format(time.RFC3339Nano)
	ii.Author = cfg.Author
	ii.Architecture, ii.Variant, ii.Os, ii.OsVersion = cfg.Architecture, cfg.Variant, cfg.OS, cfg.OSVersion
	for _, l := range layers {
		ii.Size += l.Size
	}
	ii.RootFS.Type = "layers"
	ii.RootFS.Layers = []string{}
	for _, d := range cfg.RootFS.DiffIDs {
		ii.RootFS.Layers = append(ii.RootFS.Layers, d.String())
	}
	ii.RepoTags, ii.Metadata.LastTagTime = tagsOf(ctx, st, id)
	ii.RepoDigests = []string{}
	rds, err := st.Images().RepoDigests(ctx, rec.Digest)
	if err != nil {
		return ii, err
	}
	for _, rd := range rds {
		ii.RepoDigests = append(ii.RepoDigests, imageref.Familiar(rd))
	}
	return ii, nil
}

// tagsOf are the names of the store whose image has ID id, and when the
// last of them was given.
func tagsOf(ctx context.Context, st *store.Store, id digest.Digest) ([]string, string) {
	tags := []string{}
	var last time.Time
	recs, err := st.Names().List(ctx)
	if err != nil {
		return tags, ""
	}
	for _, r := range recs {
		if rid, err := st.Images().ID(ctx, r.Digest); err == nil && rid == id {
			tags = append(tags, imageref.Familiar(r.Name))
			if r.Created.After(last) {
				last = r.Created
			}
		}
	}
	if last.IsZero() {
		return tags, ""
	}
	return tags, last.UTC().Format(time.RFC3339Nano)
}
