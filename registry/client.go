package registry

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
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
	// Jobs bounds the layers transferred at once; 0 is the default (4).
	Jobs int
	// CertsDirs are the certs.d roots (DIR/HOST/ca.crt, DIR/HOST/*.cert
	// and *.key); none: $KILN_CERTS_D, else DefaultCertsDirs.
	CertsDirs []string
	// Timeout bounds the wait for a response and for more bytes of one;
	// 0: $KILN_REGISTRY_TIMEOUT, else a minute.
	Timeout time.Duration
	// Retries is how many times a failed request is tried again (5xx,
	// 429, resets, timeouts); 0: $KILN_REGISTRY_RETRIES, else 4;
	// negative: none.
	Retries int
}

// Client makes references and go-containerregistry options for registries.
type Client struct {
	cfg      Config
	keychain authn.Keychain

	mu         sync.Mutex
	transports map[string]http.RoundTripper // by registry host
}

// New returns a Client for cfg.
func New(cfg Config) *Client {
	return &Client{cfg: cfg, keychain: Keychain()}
}

// Default is a Client with the zero Config, for callers that were given
// none; cmd replaces it once at start with SetDefault.
var Default = New(Config{})

// SetDefault makes Default a Client for cfg. It is meant to be called
// once, before any pull or push.
func SetDefault(cfg Config) {
	Default = New(cfg)
}

// Jobs is how many layers may be transferred at once.
func (c *Client) Jobs() int {
	if c.cfg.Jobs > 0 {
		return c.cfg.Jobs
	}
	return 4
}

// Retries is how many times a failed transfer is tried again: the
// config's, else $KILN_REGISTRY_RETRIES, else 4.
func (c *Client) Retries() int {
	switch {
	case c.cfg.Retries > 0:
		return c.cfg.Retries
	case c.cfg.Retries < 0:
		return 0
	}
	if n, err := strconv.Atoi(os.Getenv("KILN_REGISTRY_RETRIES")); err == nil && n >= 0 {
		return n
	}
	return 4
}

// PullError is err, a failure to pull ref, as an *Error that says what to
// do (for callers that read the blobs of what Fetch returned).
func PullError(ref name.Reference, err error) error {
	return wrapError("pull", ref.Context().RegistryStr(), ref.String(), err)
}

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
// registry: its credentials, its TLS files, retries with backoff, ctx.
func (c *Client) Options(ctx context.Context, ref name.Reference) []remote.Option {
	opts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(c.keychain),
	}
	// Backoff counts the first try as a step.
	opts = append(opts, remote.WithRetryBackoff(remote.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: c.Retries() + 1}),
		remote.WithRetryStatusCodes(http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
			http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout))
	if t, err := c.transport(ref.Context().RegistryStr()); err == nil {
		opts = append(opts, remote.WithTransport(t))
	}
	return append(opts, remote.WithJobs(c.Jobs()))
}

// checkTLS is the error of a host whose certs.d files are unusable (the
// Options would otherwise fall back to the system pool silently).
func (c *Client) checkTLS(ref name.Reference) error {
	_, err := c.transport(ref.Context().RegistryStr())
	return err
}

// Image fetches ref for platform (an index is resolved to it).
func (c *Client) Image(ctx context.Context, ref name.Reference, platform v1.Platform) (v1.Image, error) {
	img, _, err := c.Fetch(ctx, ref, platform)
	return img, err
}

// Fetch is Image that also returns the digest ref resolved to at the
// registry (an index's own digest for a multi-platform image, as docker
// records in RepoDigests). Mirrors of ref's registry are tried first, in
// order; one that fails is passed over.
func (c *Client) Fetch(ctx context.Context, ref name.Reference, platform v1.Platform) (v1.Image, v1.Hash, error) {
	for _, m := range c.mirrorsOf(ref) {
		img, h, err := c.fetch(ctx, m, platform)
		if err == nil {
			return img, h, nil
		}
		if ctx.Err() != nil {
			return nil, v1.Hash{}, ctx.Err()
		}
	}
	img, h, err := c.fetch(ctx, ref, platform)
	if err != nil {
		return nil, v1.Hash{}, wrapError("pull", ref.Context().RegistryStr(), ref.String(), err)
	}
	return img, h, nil
}

// PlatformError is an index that has no image for the platform asked for.
type PlatformError struct {
	Ref       string
	Want      v1.Platform
	Available []string
}

func (e *PlatformError) Error() string {
	return fmt.Sprintf("%s has no image for platform %s; it has %s (choose one with --platform)", e.Ref, e.Want.String(), strings.Join(e.Available, ", "))
}

func (c *Client) fetch(ctx context.Context, ref name.Reference, platform v1.Platform) (v1.Image, v1.Hash, error) {
	if err := c.checkTLS(ref); err != nil {
		return nil, v1.Hash{}, err
	}
	opts := c.Options(ctx, ref)
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		return nil, v1.Hash{}, err
	}
	var img v1.Image
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, v1.Hash{}, err
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, v1.Hash{}, err
		}
		var avail []string
		for _, m := range im.Manifests {
			if m.Platform == nil || m.Platform.OS == "unknown" {
				continue // attestations and the like
			}
			if m.Platform.Satisfies(platform) {
				if img, err = idx.Image(m.Digest); err != nil {
					return nil, v1.Hash{}, err
				}
				break
			}
			if p := m.Platform.String(); !slices.Contains(avail, p) {
				avail = append(avail, p)
			}
		}
		if img == nil {
			return nil, v1.Hash{}, &PlatformError{Ref: ref.String(), Want: platform, Available: avail}
		}
	} else if img, err = desc.Image(); err != nil {
		// A single image is taken whatever its platform, as podman and
		// BuildKit take it (they warn: see kiln pull).
		return nil, v1.Hash{}, err
	}
	if fn := progressOf(ctx); fn != nil {
		img = progressImage{Image: img, fn: fn}
	}
	return img, desc.Digest, nil
}

// mirrorsOf are ref moved to each mirror configured for its registry.
func (c *Client) mirrorsOf(ref name.Reference) []name.Reference {
	reg := ref.Context().RegistryStr()
	var hosts []string
	for k, v := range c.cfg.Mirrors {
		if normalizeKey(k) == normalizeKey(reg) {
			hosts = append(hosts, v...)
		}
	}
	var out []name.Reference
	for _, h := range hosts {
		h = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(h, "https://"), "http://"), "/")
		r, err := c.ParseReference(h + "/" + ref.Context().RepositoryStr() + refSuffix(ref))
		if err == nil {
			out = append(out, r)
		}
	}
	return out
}

// refSuffix is ":tag" or "@digest".
func refSuffix(ref name.Reference) string {
	if d, ok := ref.(name.Digest); ok {
		return "@" + d.DigestStr()
	}
	return ":" + ref.Identifier()
}

// Write pushes img to ref. Blobs the registry has are not uploaded again
// (a HEAD first); progress goes where WithProgress said.
func (c *Client) Write(ctx context.Context, ref name.Reference, img v1.Image) error {
	if err := c.checkTLS(ref); err != nil {
		return wrapError("push", ref.Context().RegistryStr(), ref.String(), err)
	}
	opts := c.Options(ctx, ref)
	wait := func() {}
	if fn := progressOf(ctx); fn != nil {
		var ch chan v1.Update
		ch, wait = pushProgress(fn, ref.String())
		opts = append(opts, remote.WithProgress(ch))
	}
	src, _ := c.mountSource(ctx, ref)
	if blobs := c.blobSources(ctx, ref); src != nil || len(blobs) > 0 {
		img = mountImage{Image: img, src: src, blobs: blobs}
	}
	err := remote.Write(ref, img, opts...)
	wait()
	return wrapError("push", ref.Context().RegistryStr(), ref.String(), err)
}
