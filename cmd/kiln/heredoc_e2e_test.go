package main

import (
	"strings"
	"testing"
)

func TestHeredocs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := e.context(map[string]string{
		"Dockerfile": "ARG BASE\nFROM $BASE\nARG NAME=kiln\n" +
			"COPY <<EOF /etc/greeting\nhello $NAME\nEOF\n" +
			"COPY <<'EOF' /etc/literal\nhello $NAME\nEOF\n" +
			"COPY --chmod=0755 <<EOF /usr/local/bin/hi\n#!/bin/sh\necho hi from script\nEOF\n" +
			"RUN <<EOF\nset -e\necho one > /one\necho two > /two\nEOF\n" +
			"RUN <<EOF\n#!/bin/sh\necho \"shebang ran as $0\" > /shebang\nEOF\n" +
			"RUN <<-EOT\n\techo tabs stripped > /tabs\n\tEOT\n",
	})
	e.mustKiln("build", "-t", "heredoc", "--build-arg", "BASE="+e.base, dir)
	fs := files(t, e.image("heredoc"))
	want := map[string]string{
		"/etc/greeting": "hello kiln\n",
		"/etc/literal":  "hello $NAME\n",
		"/one":          "one\n",
		"/two":          "two\n",
		"/shebang":      "shebang ran as /dev/pipes/EOF\n",
		"/tabs":         "tabs stripped\n",
	}
	for p, w := range want {
		if got := fs[p].data; got != w {
			t.Errorf("%s = %q, want %q", p, got, w)
		}
	}
	if f := fs["/usr/local/bin/hi"]; f.hdr == nil || f.hdr.Mode&0o777 != 0o755 || !strings.Contains(f.data, "hi from script") {
		t.Errorf("/usr/local/bin/hi wrong: %+v", f.hdr)
	}
	for p := range fs {
		if strings.HasPrefix(p, "/dev/pipes") {
			t.Errorf("heredoc mount leaked into the image: %s", p)
		}
	}
	if r := e.mustKiln("run", "--rm", "heredoc", "hi"); r.stdout != "hi from script\n" {
		t.Errorf("run hi: %q", r.stdout)
	}
}
