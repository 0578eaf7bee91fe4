# kiln: `make demo` builds and runs the example; `make test` runs the tests.
GO      ?= go
BIN     := bin
export PATH := $(PATH):/usr/local/go/bin

.PHONY: all build deps demo ci-demo test test-short vet bench clean

all: build

build:
	$(GO) build -o $(BIN)/kiln ./cmd/kiln
	$(GO) build -o $(BIN)/kiln-busybox ./cmd/kiln-busybox

# Installs what kiln and its tests use from Debian (needs root, or sudo).
deps:
	@bash .ci/deps.sh

# Builds examples/hello on a busybox base made from Debian's busybox-static
# (no registry or internet needed) into the default store, then runs it.
demo: deps build
	$(BIN)/kiln-busybox -o $(BIN)/busybox.tar
	$(BIN)/kiln load -i $(BIN)/busybox.tar
	$(BIN)/kiln build -t hello:latest examples/hello
	$(BIN)/kiln images
	$(BIN)/kiln run --rm hello:latest

# Plays docs/ci.md's pipeline against a loopback docker-registry with
# htpasswd auth: two CI jobs in two empty stores, the second reusing the
# first one's registry cache and running no step (needs root).
ci-demo: deps build
	bash .ci/ci-demo.sh

# The linters gate the tree: gofmt, go vet, go mod tidy, staticcheck and
# dead code (functions nothing reaches, tests included) must all be clean.
TOOLS = $(shell $(GO) env GOPATH)/bin
vet:
	@bash .ci/deps.sh tools
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './.git/*')); \
		if [ -n "$$out" ]; then echo "gofmt -l: not formatted:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) mod tidy -diff
	$(TOOLS)/staticcheck ./...
	@out=$$($(TOOLS)/deadcode -test ./...); \
		if [ -n "$$out" ]; then echo "deadcode -test: unreachable functions:"; echo "$$out"; exit 1; fi

test: deps vet
	$(GO) test -race -count=1 -timeout 20m ./...

test-short: vet
	$(GO) test -short -count=1 ./...

bench: build
	bash .ci/bench.sh

clean:
	rm -rf $(BIN)
