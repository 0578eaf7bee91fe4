//go:build linux

package exporter

import (
	"encoding/csv"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/kiln-build/kiln/layer"
)

// Output types ParseOutput knows.
const (
	TypeImage    = "image"    // the local image store (the default)
	TypeRegistry = "registry" // push to Name
	TypeOCI      = "oci"      // OCI image layout, as a tar or a directory
	TypeDocker   = "docker"   // docker-archive tar
	TypeLocal    = "local"    // the final filesystem, as files in Dest
	TypeTar      = "tar"      // the final filesystem, as one tar
)

// Output is a parsed --output value.
type Output struct {
	Type  string
	Dest  string   // a path, or "-" for standard output; "" for image and registry
	Tar   bool     // whether Dest is a tar (false: a directory)
	Name  string   // the first of Names: the name an archive gives the image
	Names []string // image names, from name= (a comma list)
	Push  bool     // push=true, or type=registry
	Attrs map[string]string

	// How the image leaves the machine (image types only).
	Codec            layer.Codec // compression= and compression-level=
	ForceCompression bool        // force-compression=true: base layers too
	DockerTypes      bool        // oci-mediatypes=false (the default of type=docker)
	RewriteTimestamp bool        // rewrite-timestamp=true: clamp file times to SOURCE_DATE_EPOCH
	// Annotations by where they go: "manifest", "index" (an OCI layout's
	// index.json), "manifest-descriptor" (the manifest's entry there).
	Annotations map[string]map[string]string
}

// Where annotations go, as buildx names them.
const (
	AnnotateManifest   = "manifest"
	AnnotateIndex      = "index"
	AnnotateDescriptor = "manifest-descriptor"
)

// keys are the keys each type takes besides type=.
var (
	imageKeys = []string{"name", "push", "compression", "compression-level", "force-compression", "oci-mediatypes", "rewrite-timestamp", "annotation.KEY", "annotation-manifest.KEY", "annotation-index.KEY", "annotation-manifest-descriptor.KEY"}
	keys      = map[string][]string{
		TypeImage:    imageKeys,
		TypeRegistry: imageKeys,
		TypeOCI:      append([]string{"dest", "tar"}, imageKeys...),
		TypeDocker:   append([]string{"dest"}, imageKeys...),
		TypeLocal:    {"dest"},
		TypeTar:      {"dest"},
	}
	typeNames = "image, registry, oci, docker, local, tar"
)

// ParseOutput parses an --output (-o) value in docker buildx syntax:
// comma-separated key=value pairs with a type ("type=oci,dest=out.tar",
// "type=oci,dest=dir,tar=false", "type=docker,dest=x.tar", "type=local,dest=dir",
// "type=tar,dest=fs.tar", "type=image,name=hello:1", "type=registry,name=host/x:1"),
// a bare path (= type=local,dest=PATH) or "-" (= type=tar,dest=-). Values
// holding commas are quoted as in CSV (`"name=a:1,b:1"`). Attrs holds every
// pair but type. A key the type does not take is an error that lists the
// ones it does.
func ParseOutput(s string) (Output, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Output{}, errors.New("empty --output value")
	}
	if s == "-" {
		return Output{Type: TypeTar, Dest: "-", Tar: true, Attrs: map[string]string{"dest": "-"}}, nil
	}
	if !strings.Contains(s, "=") {
		return Output{Type: TypeLocal, Dest: s, Attrs: map[string]string{"dest": s}}, nil
	}
	r := csv.NewReader(strings.NewReader(s))
	r.TrimLeadingSpace = true
	fields, err := r.Read()
	if err != nil {
		return Output{}, fmt.Errorf("--output %q: %w", s, err)
	}
	out := Output{Attrs: map[string]string{}}
	for _, f := range fields {
		k, v, ok := strings.Cut(strings.TrimSpace(f), "=")
		if !ok {
			return Output{}, fmt.Errorf("--output %q: %q is not key=value", s, f)
		}
		k = strings.TrimSpace(k)
		if where, key, ok := strings.Cut(k, "."); ok && strings.HasPrefix(strings.ToLower(where), "annotation") {
			k = strings.ToLower(where) + "." + key // annotation keys keep their case
		} else {
			k = strings.ToLower(k)
		}
		if k == "type" {
			out.Type = v
			continue
		}
		if _, dup := out.Attrs[k]; dup {
			return Output{}, fmt.Errorf("--output %q: %s= given twice", s, k)
		}
		out.Attrs[k] = v
	}
	if err := out.check(); err != nil {
		return Output{}, fmt.Errorf("--output %q: %w", s, err)
	}
	return out, nil
}

func (o *Output) check() error {
	valid, ok := keys[o.Type]
	switch {
	case o.Type == "":
		return fmt.Errorf("missing type= (one of %s)", typeNames)
	case !ok:
		return fmt.Errorf("unknown type %q (want one of %s)", o.Type, typeNames)
	}
	for _, k := range slices.Sorted(maps.Keys(o.Attrs)) {
		if !slices.Contains(valid, k) && !slices.Contains(valid, annotationKey(k)) {
			return fmt.Errorf("unknown key %q for type=%s (valid: %s)", k, o.Type, strings.Join(valid, ", "))
		}
	}
	o.Dest = o.Attrs["dest"]
	o.Tar = o.Type == TypeOCI || o.Type == TypeDocker || o.Type == TypeTar
	o.DockerTypes = o.Type == TypeDocker
	o.Codec = layer.Codec{Kind: layer.Gzip}
	var err error
	bools := []struct {
		key string
		to  *bool
	}{{"tar", &o.Tar}, {"push", &o.Push}, {"force-compression", &o.ForceCompression}, {"rewrite-timestamp", &o.RewriteTimestamp}}
	for _, b := range bools {
		if v, ok := o.Attrs[b.key]; ok {
			if *b.to, err = strconv.ParseBool(v); err != nil {
				return fmt.Errorf("%s=%q: want true or false", b.key, v)
			}
		}
	}
	if v, ok := o.Attrs["oci-mediatypes"]; ok {
		oci, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("oci-mediatypes=%q: want true or false", v)
		}
		o.DockerTypes = !oci
	}
	if err := o.parseCompression(); err != nil {
		return err
	}
	if o.Type == TypeRegistry {
		o.Push = true
	}
	if v := o.Attrs["name"]; v != "" {
		for _, n := range strings.Split(v, ",") {
			if n = strings.TrimSpace(n); n != "" {
				o.Names = append(o.Names, n)
			}
		}
	}
	if len(o.Names) > 0 {
		o.Name = o.Names[0]
	}
	if o.Push && len(o.Names) == 0 && o.Type == TypeRegistry {
		return errors.New("type=registry needs name=")
	}
	o.parseAnnotations()
	switch o.Type {
	case TypeOCI, TypeDocker, TypeLocal, TypeTar:
		if o.Dest == "" {
			return fmt.Errorf("type=%s needs dest=", o.Type)
		}
		if o.Dest == "-" && !o.Tar {
			return fmt.Errorf("type=%s,tar=false cannot write to standard output", o.Type)
		}
	}
	return nil
}

func (o *Output) parseCompression() error {
	if v, ok := o.Attrs["compression"]; ok {
		switch v {
		case "gzip":
			o.Codec.Kind = layer.Gzip
		case "zstd":
			o.Codec.Kind = layer.Zstd
		case "uncompressed":
			o.Codec.Kind = layer.Uncompressed
		default:
			return fmt.Errorf("compression=%q: want gzip, zstd or uncompressed", v)
		}
	}
	if v, ok := o.Attrs["compression-level"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("compression-level=%q: want a number", v)
		}
		o.Codec.Level = n
	}
	if err := o.Codec.Validate(); err != nil {
		return err
	}
	if o.Codec.Kind == layer.Zstd && o.DockerTypes {
		if o.Attrs["oci-mediatypes"] != "" {
			return errors.New("compression=zstd needs oci-mediatypes=true: docker media types have no zstd")
		}
		o.DockerTypes = false // as BuildKit: zstd implies OCI types
	}
	return nil
}

// parseAnnotations sorts the annotation keys by where they go.
func (o *Output) parseAnnotations() {
	for k, v := range o.Attrs {
		where, key, ok := strings.Cut(k, ".")
		if !ok || key == "" {
			continue
		}
		switch where {
		case "annotation", "annotation-manifest":
			o.Annotate(AnnotateManifest, key, v)
		case "annotation-index":
			o.Annotate(AnnotateIndex, key, v)
		case "annotation-manifest-descriptor":
			o.Annotate(AnnotateDescriptor, key, v)
		}
	}
}

// Annotate adds annotation key=value where says (AnnotateManifest, ...).
func (o *Output) Annotate(where, key, value string) {
	if o.Annotations == nil {
		o.Annotations = map[string]map[string]string{}
	}
	if o.Annotations[where] == nil {
		o.Annotations[where] = map[string]string{}
	}
	o.Annotations[where][key] = value
}

// IsImage says whether the output is an image (as opposed to a filesystem).
func (o *Output) IsImage() bool { return o.Type != TypeLocal && o.Type != TypeTar }

// annotationKey is the generic form of an annotation key
// ("annotation.org.x" → "annotation.KEY"), k itself otherwise.
func annotationKey(k string) string {
	where, key, ok := strings.Cut(k, ".")
	if !ok || key == "" || !strings.HasPrefix(where, "annotation") {
		return k
	}
	return where + ".KEY"
}
