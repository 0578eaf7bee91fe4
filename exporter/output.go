//go:build linux

package exporter

import (
	"encoding/csv"
	"errors"
	"fmt"
	"strconv"
	"strings"
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
	Dest  string // a path, or "-" for standard output; "" for image and registry
	Tar   bool   // whether Dest is a tar (false: a directory)
	Name  string // image name, from name=
	Attrs map[string]string
}

// ParseOutput parses an --output (-o) value in docker buildx syntax:
// comma-separated key=value pairs with a type ("type=oci,dest=out.tar",
// "type=oci,dest=dir,tar=false", "type=docker,dest=x.tar", "type=local,dest=dir",
// "type=tar,dest=fs.tar", "type=image,name=hello:1", "type=registry,name=host/x:1"),
// a bare path (= type=local,dest=PATH) or "-" (= type=tar,dest=-). Values
// holding commas can be quoted as in CSV. Attrs holds every pair but type.
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
	fields, err := csv.NewReader(strings.NewReader(s)).Read()
	if err != nil {
		return Output{}, fmt.Errorf("--output %q: %w", s, err)
	}
	out := Output{Attrs: map[string]string{}}
	tar := ""
	for _, f := range fields {
		k, v, ok := strings.Cut(strings.TrimSpace(f), "=")
		if !ok {
			return Output{}, fmt.Errorf("--output %q: %q is not key=value", s, f)
		}
		k = strings.ToLower(strings.TrimSpace(k))
		switch k {
		case "type":
			out.Type = v
			continue
		case "dest":
			out.Dest = v
		case "name":
			out.Name = v
		case "tar":
			tar = v
		}
		out.Attrs[k] = v
	}
	if err := out.check(tar); err != nil {
		return Output{}, fmt.Errorf("--output %q: %w", s, err)
	}
	return out, nil
}

func (o *Output) check(tar string) error {
	switch o.Type {
	case "":
		return errors.New("missing type= (one of image, registry, oci, docker, local, tar)")
	case TypeImage:
	case TypeRegistry:
		if o.Name == "" {
			return errors.New("type=registry needs name=")
		}
	case TypeOCI, TypeDocker, TypeTar:
		o.Tar = true
	case TypeLocal:
	default:
		return fmt.Errorf("unknown type %q (want one of image, registry, oci, docker, local, tar)", o.Type)
	}
	if tar != "" {
		b, err := strconv.ParseBool(tar)
		if err != nil {
			return fmt.Errorf("tar=%q: %w", tar, err)
		}
		if o.Type != TypeOCI {
			return fmt.Errorf("tar= only applies to type=oci")
		}
		o.Tar = b
	}
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
