package main

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// Two builds at once on one store, each with a step that fails (exit 9) if
// it finds the other one inside the cache mount: sharing=locked must make
// the second wait, sharing=private must give it another directory.
func TestCacheMountSharingBetweenConcurrentBuilds(t *testing.T) {
	e := newEnv(t)
	for _, sharing := range []string{"locked", "private"} {
		t.Run(sharing, func(t *testing.T) {
			ce := *e
			ce.t = t
			step := func(who string) string {
				return fmt.Sprintf("ARG BASE\nFROM $BASE\nRUN --mount=type=cache,target=/c,id=conc-%s,sharing=%s "+
					"sh -c 'echo %s; test ! -e /c/busy || exit 9; touch /c/busy; sleep 2; rm /c/busy'\n", sharing, sharing, who)
			}
			var wg sync.WaitGroup
			res := make([]result, 2)
			for i, who := range []string{"first", "second"} {
				dir := ce.context(map[string]string{"Dockerfile": step(who)})
				wg.Add(1)
				go func() {
					defer wg.Done()
					res[i] = ce.kiln("", "build", "--progress=plain", "--build-arg", "BASE="+e.base, dir)
				}()
			}
			wg.Wait()
			for i, r := range res {
				if r.code != 0 {
					t.Errorf("build %d with sharing=%s: exit %d\n%s", i, sharing, r.code, r.stderr)
				}
				if strings.Contains(r.stderr, "CACHED [2/2]") {
					t.Errorf("build %d did not run its step:\n%s", i, r.stderr)
				}
			}
		})
	}
}
