package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// rawConfig is the parts of an image config JSON that go-containerregistry's
// v1.ConfigFile does not decode.
type rawConfig struct {
	Created string `json:"created"`
	Config  struct {
		Healthcheck map[string]any `json:"Healthcheck"`
	} `json:"config"`
	History []struct {
		Created string `json:"created"`
	} `json:"history"`
}

func (e *env) rawConfig(ref string) rawConfig {
	e.t.Helper()
	b, err := e.image(ref).RawConfigFile()
	if err != nil {
		e.t.Fatal(err)
	}
	var c rawConfig
	if err := json.Unmarshal(b, &c); err != nil {
		e.t.Fatal(err)
	}
	return c
}

func TestHealthcheckStartIntervalInConfig(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := e.context(map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\n" +
		"HEALTHCHECK --interval=5s --start-period=1m --start-interval=2s --retries=4 CMD true\n"})
	if r := e.kiln("", "build", "-t", "hc:1", "--build-arg", "BASE="+e.base, ctx); r.code != 0 {
		t.Fatalf("build: %s", r.stderr)
	}
	hc := e.rawConfig("hc:1").Config.Healthcheck
	want := map[string]float64{"Interval": 5e9, "StartPeriod": 60e9, "StartInterval": 2e9, "Retries": 4}
	for k, v := range want {
		if hc[k] != v {
			t.Errorf("Healthcheck.%s = %v, want %v (all: %v)", k, hc[k], v, hc)
		}
	}
	if test, _ := hc["Test"].([]any); len(test) != 2 || test[0] != "CMD-SHELL" {
		t.Errorf("Healthcheck.Test = %v", hc["Test"])
	}

	// An image built on it keeps it (read from the base's raw config).
	child := e.context(map[string]string{"Dockerfile": "FROM hc:1\nLABEL child=1\n"})
	if r := e.kiln("", "build", "-t", "hc:child", child); r.code != 0 {
		t.Fatalf("build on hc:1: %s", r.stderr)
	}
	if got := e.rawConfig("hc:child").Config.Healthcheck["StartInterval"]; got != 2e9 {
		t.Errorf("inherited StartInterval = %v, want 2e9", got)
	}

	// Without --start-interval there is no key, and the image is another.
	ctx2 := e.context(map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\n" +
		"HEALTHCHECK --interval=5s --start-period=1m --retries=4 CMD true\n"})
	if r := e.kiln("", "build", "-t", "hc:2", "--build-arg", "BASE="+e.base, ctx2); r.code != 0 {
		t.Fatalf("build: %s", r.stderr)
	}
	if _, ok := e.rawConfig("hc:2").Config.Healthcheck["StartInterval"]; ok {
		t.Error("StartInterval written without --start-interval")
	}
}

func TestSourceDateEpochBuildArg(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := e.context(map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\nRUN echo x > /x\nENV A=b\n"})
	build := func(tag string, args ...string) result {
		return e.kiln("", append([]string{"build", "--progress=plain", "-t", tag, "--build-arg", "BASE=" + e.base}, append(args, ctx)...)...)
	}
	r := build("sde:1", "--build-arg", "SOURCE_DATE_EPOCH=1700000000")
	if r.code != 0 {
		t.Fatalf("build: %s", r.stderr)
	}
	if strings.Contains(r.stderr, "SOURCE_DATE_EPOCH") {
		t.Errorf("SOURCE_DATE_EPOCH reported as an unused build arg:\n%s", r.stderr)
	}
	c := e.rawConfig("sde:1")
	want := time.Unix(1700000000, 0).UTC().Format(time.RFC3339)
	if c.Created != want {
		t.Errorf("created = %q, want %q", c.Created, want)
	}
	n := len(c.History)
	for _, h := range c.History[n-2:] { // this build's RUN and ENV
		if h.Created != want {
			t.Errorf("history created = %q, want %q", h.Created, want)
		}
	}
	id1, _ := e.image("sde:1").ConfigName()
	if r := build("sde:2", "--build-arg", "SOURCE_DATE_EPOCH=1700000000"); r.code != 0 {
		t.Fatalf("rebuild: %s", r.stderr)
	}
	if id2, _ := e.image("sde:2").ConfigName(); id1 != id2 {
		t.Errorf("same epoch, different image IDs %s and %s", id1, id2)
	}
	r = build("sde:3", "--build-arg", "SOURCE_DATE_EPOCH=yesterday")
	if r.code == 0 || !strings.Contains(r.stderr, `SOURCE_DATE_EPOCH="yesterday" (from --build-arg) is not a Unix time`) {
		t.Errorf("bad epoch: exit %d\n%s", r.code, r.stderr)
	}
}
