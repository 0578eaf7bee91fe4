package registry

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Config says how a Client reaches registries. The zero value is usable:
// docker's and podman's credential files, TLS everywhere but loopback.
type Config struct {
	// Insecure lists registry hosts (host or host:port) that may be
	// spoken to over plain HTTP; loopback hosts always may.
	Insecure []string
	// Mirrors maps a registry host ("docker.io") to mirror hosts tried, in
	// order, before it for pulls.
	Mirrors map[string][]string
	// Jobs bounds the layers transferred at once; 0 is the default.
	Jobs int
}

// Client makes references and go-containerregistry options for registries.
type Client struct {
	cfg      Config
	keychain authn.Keychain
}

// New returns a Client for cfg.
func New(cfg Config) *Client {
	return &Client{cfg: cfg, keychain: authn.DefaultKeychain}
}

// Default is a Client with the zero Config, for callers that were given
// none.
var Default = New(Config{})

// ParseReference parses ref as docker does (busybox →
// docker.io/library/busybox:latest), marking it plain HTTP when its host
// is loopback or listed as insecure.
func (c *Client) ParseReference(ref string) (name.Reference, error) {
	opts := []name.Option{name.WeakValidation}
	if host, _, ok := strings.Cut(ref, "/"); ok && c.insecure(host) {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return nil, fmt.Errorf("invalid image reference %q: %w", ref, err)
	}
	return r, nil
}

// insecure reports whether host may be spoken to over plain HTTP.
func (c *Client) insecure(host string) bool {
	if isLoopback(host) {
		return true
	}
	for _, h := range c.cfg.Insecure {
		if strings.EqualFold(h, host) {
			return true
		}
	}
	return false
}

// isLoopback reports whether a registry host (with or without a port) is
// a loopback name or address.
func isLoopback(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.Trim(h, "[]")
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Options are the go-containerregistry options for talking to ref's
// registry: its credentials, retries with backoff, ctx.
func (c *Client) Options(ctx context.Context, ref name.Reference) []remote.Option {
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(c.keychain),
		remote.WithRetryBackoff(remote.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 4}),
	}
	if c.cfg.Jobs > 0 {
		opts = append(opts, remote.WithJobs(c.cfg.Jobs))
	}
	return opts
}

// Image fetches ref for platform (an index is resolved to it).
func (c *Client) Image(ctx context.Context, ref name.Reference, platform v1.Platform) (v1.Image, error) {
	img, err := remote.Image(ref, append(c.Options(ctx, ref), remote.WithPlatform(platform))...)
	if err != nil {
		return nil, fmt.Errorf("pulling %s: %w", ref, err)
	}
	return img, nil
}

// Write pushes img to ref.
func (c *Client) Write(ctx context.Context, ref name.Reference, img v1.Image) error {
	if err := remote.Write(ref, img, c.Options(ctx, ref)...); err != nil {
		return fmt.Errorf("pushing %s: %w", ref, err)
	}
	return nil
}
