package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestProgressRawJSONAndQuiet(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := e.context(map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\nRUN echo hello; echo warn >&2\n"})
	r := e.mustKiln("build", "--progress=rawjson", "-t", "j:1", "--build-arg", "BASE="+e.base, dir)
	status := map[string]int{}
	var logs []map[string]any
	var summary map[string]any
	for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("rawjson line %q: %v", l, err)
		}
		switch ev["type"] {
		case "vertex":
			status[ev["status"].(string)]++
		case "log":
			logs = append(logs, ev)
		case "summary":
			summary = ev
		}
	}
	if status["started"] != 2 || status["done"] != 2 {
		t.Errorf("vertex events %v", status)
	}
	streams := map[string]any{}
	for _, l := range logs {
		streams[l["line"].(string)] = l["stream"]
	}
	if streams["hello"] != "stdout" || streams["warn"] != "stderr" {
		t.Errorf("log events %v", logs)
	}
	if summary == nil || summary["executed"].(float64) != 2 || summary["bytesAdded"].(float64) <= 0 {
		t.Errorf("summary %v", summary)
	}
	q := e.mustKiln("build", "--progress=quiet", "--build-arg", "BASE="+e.base, dir)
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`).MatchString(q.stdout) || q.stderr != "" {
		t.Errorf("quiet: stdout %q stderr %q", q.stdout, q.stderr)
	}
	p := e.mustKiln("build", "--progress=plain", "--build-arg", "BASE="+e.base, dir)
	if !regexp.MustCompile(`build finished in [0-9.]+s: 0 steps run, 2 cached, 0B added`).MatchString(p.stderr) {
		t.Errorf("plain summary:\n%s", p.stderr)
	}
}

func TestFailingStepKeepsItsWholeLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := e.context(map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\nRUN echo ok\nRUN for i in $(seq 1 300); do echo line $i; done; echo bad >&2; exit 9\n"})
	r := e.kiln("", "build", "--progress=plain", "--build-arg", "BASE="+e.base, dir)
	if r.code != 9 {
		t.Fatalf("exit code %d, want the step's 9\n%s", r.code, r.stderr)
	}
	msg := r.stderr[strings.Index(r.stderr, "ERROR: Dockerfile"):]
	for _, want := range []string{"Dockerfile:4", "exit code: 9", "line 300", "bad", "full log: "} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "line 100\n") {
		t.Errorf("the error report is not a tail:\n%s", msg)
	}
	path := strings.TrimSpace(msg[strings.Index(msg, "full log: ")+len("full log: "):])
	if !strings.HasPrefix(path, e.root) {
		t.Fatalf("log %q is not in the store %s", path, e.root)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 300; i++ {
		if !bytes.Contains(b, []byte("line "+strconv.Itoa(i)+"\n")) {
			t.Fatalf("log lacks line %d", i)
		}
	}
	// The logs go with a prune of everything.
	e.mustKiln("prune", "--all", "-f")
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("log survived prune --all: %v", err)
	}
}

func TestTraceShowsParallelStages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := e.context(map[string]string{"Dockerfile": `ARG BASE
FROM $BASE AS a
RUN sleep 1; echo a > /a
FROM $BASE AS b
RUN sleep 1; echo b > /b
FROM $BASE
COPY --from=a /a /a
COPY --from=b /b /b
`})
	trace := e.t.TempDir() + "/trace.json"
	e.mustKiln("build", "--progress=plain", "--jobs", "2", "--trace", trace, "--build-arg", "BASE="+e.base, dir)
	raw, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		TraceEvents []struct {
			Name, Cat, Ph string
			Ts, Dur       int64
			Pid, Tid      int
			Args          map[string]any
		} `json:"traceEvents"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	type span struct {
		tid      int
		from, to int64
	}
	queued, ran := map[string]bool{}, map[string]span{}
	for _, ev := range f.TraceEvents {
		switch ev.Cat {
		case "queued":
			queued[ev.Name] = true
		case "running":
			ran[ev.Name] = span{ev.Tid, ev.Ts, ev.Ts + ev.Dur}
			if in, _ := ev.Args["inputs"].([]any); ev.Args["key"] == "" || (strings.Contains(ev.Name, "RUN") && len(in) != 1) {
				t.Errorf("running event without key or inputs: %+v", ev)
			}
		}
	}
	// FROM (once per stage), two RUNs, two COPYs.
	if len(queued) < 5 || len(ran) < 5 {
		t.Errorf("queued %v\nran %v", queued, ran)
	}
	var a, b span
	for name, s := range ran {
		switch {
		case strings.Contains(name, "echo a"):
			a = s
		case strings.Contains(name, "echo b"):
			b = s
		}
	}
	if a.to == 0 || b.to == 0 {
		t.Fatalf("RUN steps missing from the trace: %v", ran)
	}
	if a.tid == b.tid || a.from >= b.to || b.from >= a.to {
		t.Errorf("the two stages did not run in parallel on two slots: a=%+v b=%+v", a, b)
	}
}

// openPTY returns a pseudo-terminal's master and slave.
func openPTY(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}

func TestAutoProgressOnTerminalIsTTY(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dir := e.context(map[string]string{"Dockerfile": "ARG BASE\nFROM $BASE\nRUN for i in 1 2 3 4 5 6; do echo tick $i; sleep 0.1; done\n"})
	m, s := openPTY(t)
	defer m.Close()
	cmd := e.command(context.Background(), "build", "--build-arg", "BASE="+e.base, dir)
	cmd.Stderr = s
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	var screen bytes.Buffer
	done := make(chan error)
	go func() {
		_, err := io.Copy(&screen, m)
		done <- err
	}()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("build: %v", err)
	}
	if err := <-done; err != nil && !errors.Is(err, unix.EIO) {
		t.Fatal(err)
	}
	got := screen.String()
	if !strings.Contains(got, "\x1b[") {
		t.Errorf("no redraws on a terminal:\n%q", got)
	}
	for _, want := range []string{"  > tick", "DONE", "build finished in"} {
		if !strings.Contains(got, want) {
			t.Errorf("tty output lacks %q:\n%q", want, got)
		}
	}
}
