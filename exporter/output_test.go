//go:build linux

package exporter

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseOutput(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Output
		wantErr string
	}{
		{in: "type=oci,dest=out.tar", want: Output{Type: "oci", Dest: "out.tar", Tar: true, Attrs: map[string]string{"dest": "out.tar"}}},
		{in: "type=docker,dest=x.tar", want: Output{Type: "docker", Dest: "x.tar", Tar: true, Attrs: map[string]string{"dest": "x.tar"}}},
		{in: "type=oci,dest=dir,tar=false", want: Output{Type: "oci", Dest: "dir", Attrs: map[string]string{"dest": "dir", "tar": "false"}}},
		{in: "type=oci,dest=-", want: Output{Type: "oci", Dest: "-", Tar: true, Attrs: map[string]string{"dest": "-"}}},
		{in: " TYPE=oci , Dest=a.tar,name=hello:1", want: Output{Type: "oci", Dest: "a.tar", Tar: true, Name: "hello:1", Attrs: map[string]string{"dest": "a.tar", "name": "hello:1"}}},
		{in: "type=local,dest=dir", want: Output{Type: "local", Dest: "dir", Attrs: map[string]string{"dest": "dir"}}},
		{in: "type=tar,dest=fs.tar", want: Output{Type: "tar", Dest: "fs.tar", Tar: true, Attrs: map[string]string{"dest": "fs.tar"}}},
		{in: "type=image", want: Output{Type: "image", Attrs: map[string]string{}}},
		{in: "type=image,name=hello:1,push=true", want: Output{Type: "image", Name: "hello:1", Attrs: map[string]string{"name": "hello:1", "push": "true"}}},
		{in: `type=image,"name=a:1,b:2"`, want: Output{Type: "image", Name: "a:1,b:2", Attrs: map[string]string{"name": "a:1,b:2"}}},
		{in: "type=registry,name=localhost:5000/x:1", want: Output{Type: "registry", Name: "localhost:5000/x:1", Attrs: map[string]string{"name": "localhost:5000/x:1"}}},
		{in: "out/dir", want: Output{Type: "local", Dest: "out/dir", Attrs: map[string]string{"dest": "out/dir"}}},
		{in: "-", want: Output{Type: "tar", Dest: "-", Tar: true, Attrs: map[string]string{"dest": "-"}}},
		{in: "", wantErr: "empty"},
		{in: "dest=x.tar", wantErr: "missing type="},
		{in: "type=zip,dest=x", wantErr: `unknown type "zip"`},
		{in: "type=oci", wantErr: "needs dest="},
		{in: "type=local", wantErr: "needs dest="},
		{in: "type=oci,dest=x,tar=maybe", wantErr: `tar="maybe"`},
		{in: "type=docker,dest=x,tar=false", wantErr: "only applies to type=oci"},
		{in: "type=oci,dest=-,tar=false", wantErr: "standard output"},
		{in: "type=local,dest=-", wantErr: "standard output"},
		{in: "type=registry", wantErr: "needs name="},
		{in: "type=oci,dest", wantErr: "not key=value"},
		{in: `type=oci,"dest=x`, wantErr: "quote"},
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
			if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", tc.want) {
				t.Errorf("ParseOutput(%q)\n got %+v\nwant %+v", tc.in, got, tc.want)
			}
		})
	}
}
