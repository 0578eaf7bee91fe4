//go:build linux

package exporter

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kiln-build/kiln/layer"
)

func TestParseOutput(t *testing.T) {
	gz := layer.Codec{Kind: layer.Gzip}
	for _, tc := range []struct {
		in      string
		want    Output
		wantErr string
	}{
		{in: "type=oci,dest=out.tar", want: Output{Type: "oci", Dest: "out.tar", Tar: true, Codec: gz}},
		{in: "type=docker,dest=x.tar", want: Output{Type: "docker", Dest: "x.tar", Tar: true, Codec: gz, DockerTypes: true}},
		{in: "type=docker,dest=x.tar,oci-mediatypes=true", want: Output{Type: "docker", Dest: "x.tar", Tar: true, Codec: gz}},
		{in: "type=oci,dest=dir,tar=false", want: Output{Type: "oci", Dest: "dir", Codec: gz}},
		{in: "type=oci,dest=-", want: Output{Type: "oci", Dest: "-", Tar: true, Codec: gz}},
		{in: " TYPE=oci , Dest=a.tar,name=hello:1", want: Output{Type: "oci", Dest: "a.tar", Tar: true, Name: "hello:1", Names: []string{"hello:1"}, Codec: gz}},
		{in: "type=local,dest=dir", want: Output{Type: "local", Dest: "dir", Codec: gz}},
		{in: "type=tar,dest=fs.tar", want: Output{Type: "tar", Dest: "fs.tar", Tar: true, Codec: gz}},
		{in: "type=image", want: Output{Type: "image", Codec: gz}},
		{in: "type=image,name=hello:1,push=true", want: Output{Type: "image", Name: "hello:1", Names: []string{"hello:1"}, Push: true, Codec: gz}},
		{in: `type=image,"name=a:1,b:2"`, want: Output{Type: "image", Name: "a:1", Names: []string{"a:1", "b:2"}, Codec: gz}},
		{in: "type=registry,name=localhost:5000/x:1", want: Output{Type: "registry", Name: "localhost:5000/x:1", Names: []string{"localhost:5000/x:1"}, Push: true, Codec: gz}},
		{in: "type=oci,dest=o.tar,compression=zstd,compression-level=19,force-compression=true", want: Output{Type: "oci", Dest: "o.tar", Tar: true, Codec: layer.Codec{Kind: layer.Zstd, Level: 19}, ForceCompression: true}},
		{in: "type=docker,dest=o.tar,compression=zstd", want: Output{Type: "docker", Dest: "o.tar", Tar: true, Codec: layer.Codec{Kind: layer.Zstd}}},
		{in: "type=oci,dest=o.tar,compression=uncompressed,oci-mediatypes=false,rewrite-timestamp=true", want: Output{Type: "oci", Dest: "o.tar", Tar: true, Codec: layer.Codec{Kind: layer.Uncompressed}, DockerTypes: true, RewriteTimestamp: true}},
		{in: "type=oci,dest=o.tar,annotation.org.Example=1,annotation-index.i=2,annotation-manifest-descriptor.d=3,annotation-manifest.m=4", want: Output{Type: "oci", Dest: "o.tar", Tar: true, Codec: gz, Annotations: map[string]map[string]string{
			"manifest": {"org.Example": "1", "m": "4"}, "index": {"i": "2"}, "manifest-descriptor": {"d": "3"}}}},
		{in: "out/dir", want: Output{Type: "local", Dest: "out/dir"}},
		{in: "-", want: Output{Type: "tar", Dest: "-", Tar: true}},
		{in: "", wantErr: "empty"},
		{in: "dest=x.tar", wantErr: "missing type="},
		{in: "type=zip,dest=x", wantErr: `unknown type "zip"`},
		{in: "type=oci", wantErr: "needs dest="},
		{in: "type=local", wantErr: "needs dest="},
		{in: "type=oci,dest=x,tar=maybe", wantErr: `tar="maybe"`},
		{in: "type=docker,dest=x,tar=false", wantErr: `unknown key "tar" for type=docker (valid: dest, name,`},
		{in: "type=local,dest=x,compression=zstd", wantErr: `unknown key "compression" for type=local (valid: dest)`},
		{in: "type=image,colour=red", wantErr: `unknown key "colour"`},
		{in: "type=oci,dest=-,tar=false", wantErr: "standard output"},
		{in: "type=local,dest=-", wantErr: "standard output"},
		{in: "type=registry", wantErr: "needs name="},
		{in: "type=oci,dest", wantErr: "not key=value"},
		{in: `type=oci,"dest=x`, wantErr: "quote"},
		{in: "type=oci,dest=x,compression=lz4", wantErr: `compression="lz4"`},
		{in: "type=oci,dest=x,compression=gzip,compression-level=10", wantErr: "gzip compression-level 10"},
		{in: "type=oci,dest=x,compression-level=high", wantErr: `compression-level="high"`},
		{in: "type=oci,dest=x,compression=zstd,oci-mediatypes=false", wantErr: "needs oci-mediatypes=true"},
		{in: "type=oci,dest=x,dest=y", wantErr: "given twice"},
		{in: "type=oci,dest=x,push=yes", wantErr: `push="yes"`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseOutput(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseOutput(%q) = %+v, %v; want an error containing %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseOutput(%q): %v", tc.in, err)
			}
			got.Attrs = nil // the raw pairs; the fields are what matters
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tc.want) {
				t.Errorf("ParseOutput(%q)\n got %+v\nwant %+v", tc.in, got, tc.want)
			}
		})
	}
}

// FuzzParseOutput: whatever the input, ParseOutput returns an error or an
// output that is complete for its type.
func FuzzParseOutput(f *testing.F) {
	for _, s := range []string{"type=oci,dest=o.tar", `type=image,"name=a,b",push=true`, "type=docker,dest=-,compression=zstd,compression-level=3",
		"type=oci,dest=d,tar=false,annotation.a=b", "-", "dir", "type=registry,name=x,rewrite-timestamp=true,force-compression=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := ParseOutput(s)
		if err != nil {
			return
		}
		if _, ok := keys[o.Type]; !ok {
			t.Fatalf("ParseOutput(%q) gave type %q", s, o.Type)
		}
		if (o.Type == TypeOCI || o.Type == TypeDocker || o.Type == TypeLocal || o.Type == TypeTar) && o.Dest == "" {
			t.Fatalf("ParseOutput(%q) gave type=%s without dest", s, o.Type)
		}
		if o.Type == TypeRegistry && len(o.Names) == 0 {
			t.Fatalf("ParseOutput(%q) gave type=registry without a name", s)
		}
		if err := o.Codec.Validate(); o.IsImage() && err != nil {
			t.Fatalf("ParseOutput(%q) gave codec %v: %v", s, o.Codec, err)
		}
		if o.DockerTypes && o.Codec.Kind == layer.Zstd {
			t.Fatalf("ParseOutput(%q) gave zstd with docker media types", s)
		}
	})
}
