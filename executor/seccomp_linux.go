package executor

import (
	"crypto/sha256"
	"sync"

	"github.com/kiln-build/kiln/executor/seccomp"
)

// defaultFilter is docker's default profile compiled for defaultCaps,
// once per process.
var defaultFilter = sync.OnceValues(func() (*seccomp.Filter, error) {
	p, err := seccomp.Default(defaultCapNames())
	if err != nil {
		return nil, err
	}
	return seccomp.Compile(p)
})

// profileFilters caches compiled custom profiles by content.
var profileFilters sync.Map // [32]byte → *seccomp.Filter

// filterFor compiles the filter opts ask for; nil means none.
func filterFor(opts Options) (*seccomp.Filter, error) {
	switch {
	case opts.SeccompUnconfined:
		return nil, nil
	case opts.Seccomp == nil:
		return defaultFilter()
	}
	key := sha256.Sum256(opts.Seccomp)
	if f, ok := profileFilters.Load(key); ok {
		return f.(*seccomp.Filter), nil
	}
	p, err := seccomp.Load(opts.Seccomp, defaultCapNames())
	if err != nil {
		return nil, err
	}
	f, err := seccomp.Compile(p)
	if err != nil {
		return nil, err
	}
	profileFilters.Store(key, f)
	return f, nil
}
