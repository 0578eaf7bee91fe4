//go:build linux

package fscopy

import "testing"

func TestParseChmod(t *testing.T) {
	tests := []struct {
		spec string
		in   uint32
		dir  bool
		want uint32
	}{
		{"0755", 0o600, false, 0o755},
		{"4755", 0o600, false, 0o4755},
		{"644", 0o4777, false, 0o644},
		{"+x", 0o644, false, 0o755},
		{"u+x", 0o644, false, 0o744},
		{"go=rX", 0o700, false, 0o755},
		{"go=rX", 0o600, false, 0o644},
		{"go=rX", 0o700, true, 0o755},
		{"a=rX", 0o600, true, 0o555},
		{"u=rwX,go=rX", 0o600, false, 0o644},
		{"g=u", 0o640, false, 0o660},
		{"o-rwx", 0o777, false, 0o770},
		{"u+s,g+s", 0o755, false, 0o6755},
		{"+t", 0o777, true, 0o1777},
		{"u-s", 0o4755, false, 0o755},
		{"u=rw,g=r,o=", 0o777, false, 0o640},
		{"u+x-w", 0o644, false, 0o544},
		{"ug+w,o-r", 0o444, false, 0o660},
		{"a=", 0o777, false, 0},
	}
	for _, tc := range tests {
		f, err := parseChmod(tc.spec)
		if err != nil {
			t.Errorf("parseChmod(%q): %v", tc.spec, err)
			continue
		}
		if got := f(tc.in, tc.dir); got != tc.want {
			t.Errorf("parseChmod(%q)(%o, dir=%v) = %o, want %o", tc.spec, tc.in, tc.dir, got, tc.want)
		}
	}
	for _, bad := range []string{"", "10000", "u", "u+q", "x+r", "u+r,", "0o755"} {
		if _, err := parseChmod(bad); err == nil {
			t.Errorf("parseChmod(%q): want an error", bad)
		}
	}
}
