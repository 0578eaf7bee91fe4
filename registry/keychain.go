package registry

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// Keychain is where kiln finds credentials, first match wins: docker's
// ($DOCKER_CONFIG/config.json, default ~/.docker/config.json: auths,
// credsStore, credHelpers, as go-containerregistry reads them), then
// podman's auth files in podman's order (PodmanAuthFiles).
func Keychain() authn.Keychain {
	return authn.NewMultiKeychain(authn.DefaultKeychain, podmanKeychain{})
}

// PodmanAuthFiles are the auth.json files podman and skopeo read, in
// their order: $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json,
// $XDG_CONFIG_HOME (default ~/.config)/containers/auth.json.
func PodmanAuthFiles() []string {
	var out []string
	if f := os.Getenv("REGISTRY_AUTH_FILE"); f != "" {
		out = append(out, f)
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		out = append(out, filepath.Join(d, "containers", "auth.json"))
	}
	cfg := os.Getenv("XDG_CONFIG_HOME")
	if cfg == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cfg = filepath.Join(home, ".config")
		}
	}
	if cfg != "" {
		out = append(out, filepath.Join(cfg, "containers", "auth.json"))
	}
	return out
}

// podmanKeychain reads podman's auth files on every lookup (a login by
// another process is seen at once).
type podmanKeychain struct{}

func (podmanKeychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	for _, f := range PodmanAuthFiles() {
		b, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", f, err)
		}
		auths, err := ParseAuths(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if cfg, ok := auths.Lookup(target); ok {
			return authn.FromConfig(cfg), nil
		}
	}
	return authn.Anonymous, nil
}

// Auths are the "auths" of a docker config.json or a containers
// auth.json, by normalized key (host, or host/repository).
type Auths map[string]authn.AuthConfig

// ParseAuths decodes the "auths" object of a docker or podman credentials
// file. An entry's "auth" is base64(user:password); it wins over
// "username"/"password" as in docker.
func ParseAuths(b []byte) (Auths, error) {
	var file struct {
		Auths map[string]struct {
			Auth          string `json:"auth"`
			Username      string `json:"username"`
			Password      string `json:"password"`
			IdentityToken string `json:"identitytoken"`
			RegistryToken string `json:"registrytoken"`
		} `json:"auths"`
	}
	if err := json.Unmarshal(b, &file); err != nil {
		return nil, fmt.Errorf("parsing credentials: %w", err)
	}
	out := Auths{}
	for k, v := range file.Auths {
		cfg := authn.AuthConfig{Username: v.Username, Password: v.Password, IdentityToken: v.IdentityToken, RegistryToken: v.RegistryToken}
		if v.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v.Auth))
			if err != nil {
				return nil, fmt.Errorf("credentials for %q: auth is not base64: %w", k, err)
			}
			user, pass, ok := strings.Cut(string(raw), ":")
			if !ok {
				return nil, fmt.Errorf("credentials for %q: auth is not base64(user:password)", k)
			}
			cfg.Username, cfg.Password = user, pass
		}
		out[normalizeKey(k)] = cfg
	}
	return out, nil
}

// Lookup finds target's credentials: the repository's own entry first
// (podman allows them), then its registry's.
func (a Auths) Lookup(target authn.Resource) (authn.AuthConfig, bool) {
	keys := []string{normalizeKey(target.String()), normalizeKey(target.RegistryStr())}
	for _, k := range keys {
		if cfg, ok := a[k]; ok && cfg != (authn.AuthConfig{}) {
			return cfg, true
		}
	}
	return authn.AuthConfig{}, false
}

// normalizeKey turns the keys docker and podman write ("https://host/v1/",
// "host", "docker.io") into one form: host[/repository], with Docker Hub's
// names as go-containerregistry spells its registry.
func normalizeKey(k string) string {
	for {
		n := strings.TrimPrefix(strings.TrimPrefix(k, "https://"), "http://")
		n = strings.TrimSuffix(strings.TrimSuffix(strings.TrimRight(n, "/"), "/v1"), "/v2")
		if n == k {
			break
		}
		k = n
	}
	host, rest, _ := strings.Cut(k, "/")
	switch strings.ToLower(host) {
	case "docker.io", "registry-1.docker.io", "index.docker.io":
		host = name.DefaultRegistry
	}
	if rest == "" {
		return host
	}
	return host + "/" + rest
}
