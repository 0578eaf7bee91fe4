package registry

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/kiln-build/kiln/internal/atomicfile"
)

// DockerConfigPath is the docker config.json kiln login writes:
// $DOCKER_CONFIG/config.json, default ~/.docker/config.json.
func DockerConfigPath() (string, error) {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return filepath.Join(d, "config.json"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding docker's config.json: set DOCKER_CONFIG or HOME: %w", err)
	}
	return filepath.Join(home, ".docker", "config.json"), nil
}

// Verify checks user and password against host's registry as docker
// login does: the token exchange for a registry that answers with a
// Bearer challenge, then GET /v2/ with what it gave.
func (c *Client) Verify(ctx context.Context, host, user, password string) error {
	reg, err := c.registry(host)
	if err != nil {
		return err
	}
	rt, err := c.transport(reg.RegistryStr())
	if err != nil {
		return err
	}
	auth := authn.FromConfig(authn.AuthConfig{Username: user, Password: password})
	tr, err := transport.NewWithContext(ctx, reg, auth, rt, nil)
	if err != nil {
		return wrapError("login", host, host, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, reg.Scheme()+"://"+reg.RegistryStr()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return wrapError("login", host, host, err)
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		return wrapError("login", host, host, err)
	}
	return nil
}

// registry is host as a go-containerregistry registry, plain HTTP allowed
// when host may have it.
func (c *Client) registry(host string) (name.Registry, error) {
	opts := []name.Option{name.WeakValidation}
	if c.insecure(host) {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, opts...)
	if err != nil {
		return name.Registry{}, fmt.Errorf("invalid registry %q: %w", host, err)
	}
	return reg, nil
}

// Login verifies the credentials, then stores them as docker login does:
// in the credsStore (or the host's credHelpers entry) if config.json names
// one, else base64 in its "auths". It returns where they went.
func (c *Client) Login(ctx context.Context, host, user, password string) (string, error) {
	if user == "" || password == "" {
		return "", errors.New("login needs a username and a password")
	}
	if err := c.Verify(ctx, host, user, password); err != nil {
		return "", err
	}
	return StoreCredentials(ctx, host, user, password)
}

// StoreCredentials writes user and password for host where docker would.
func StoreCredentials(ctx context.Context, host, user, password string) (string, error) {
	path, err := DockerConfigPath()
	if err != nil {
		return "", err
	}
	return path, editDockerConfig(path, func(top map[string]json.RawMessage, auths map[string]json.RawMessage) error {
		key := configKey(host)
		if helper := credHelper(top, host); helper != "" {
			in, _ := json.Marshal(map[string]string{"ServerURL": key, "Username": user, "Secret": password})
			if err := runHelper(ctx, helper, "store", in); err != nil {
				return err
			}
			auths[key] = json.RawMessage("{}")
			return nil
		}
		entry, _ := json.Marshal(map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password))})
		auths[key] = entry
		return nil
	})
}

// Logout removes host's credentials from config.json (and its
// credentials helper); it reports whether there were any.
func Logout(ctx context.Context, host string) (bool, error) {
	path, err := DockerConfigPath()
	if err != nil {
		return false, err
	}
	found := false
	err = editDockerConfig(path, func(top map[string]json.RawMessage, auths map[string]json.RawMessage) error {
		for k := range auths {
			if normalizeKey(k) == normalizeKey(host) {
				delete(auths, k)
				found = true
			}
		}
		if helper := credHelper(top, host); helper != "" {
			if err := runHelper(ctx, helper, "erase", []byte(configKey(host))); err == nil {
				found = true
			}
		}
		return nil
	})
	return found, err
}

// configKey is the "auths" key docker writes for host.
func configKey(host string) string {
	if normalizeKey(host) == name.DefaultRegistry {
		return authn.DefaultAuthKey
	}
	return host
}

// credHelper is the credentials helper config.json names for host: its
// credHelpers entry, else credsStore.
func credHelper(top map[string]json.RawMessage, host string) string {
	var helpers map[string]string
	_ = json.Unmarshal(top["credHelpers"], &helpers)
	for k, v := range helpers {
		if normalizeKey(k) == normalizeKey(host) {
			return v
		}
	}
	var store string
	_ = json.Unmarshal(top["credsStore"], &store)
	return store
}

// runHelper runs docker-credential-HELPER ACTION with in on its stdin.
func runHelper(ctx context.Context, helper, action string, in []byte) error {
	cmd := exec.CommandContext(ctx, "docker-credential-"+helper, action)
	cmd.Stdin = bytes.NewReader(in)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("credentials helper docker-credential-%s %s: %w: %s", helper, action, err, strings.TrimSpace(out.String()))
	}
	return nil
}

// editDockerConfig rewrites config.json at path through edit, keeping
// every key it does not touch; the write is atomic and the file 0600.
func editDockerConfig(path string, edit func(top, auths map[string]json.RawMessage) error) error {
	top := map[string]json.RawMessage{}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("reading %s: %w", path, err)
	case len(bytes.TrimSpace(b)) > 0:
		if err := json.Unmarshal(b, &top); err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
	}
	auths := map[string]json.RawMessage{}
	if raw, ok := top["auths"]; ok {
		if err := json.Unmarshal(raw, &auths); err != nil {
			return fmt.Errorf("reading %s: auths: %w", path, err)
		}
	}
	if err := edit(top, auths); err != nil {
		return err
	}
	ab, err := json.Marshal(auths)
	if err != nil {
		return err
	}
	top["auths"] = ab
	out, err := json.MarshalIndent(top, "", "\t")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	err = atomicfile.WriteFile(path, atomicfile.Options{Sync: true, Perm: 0o600}, func(w io.Writer) error {
		_, err := w.Write(append(out, '\n'))
		return err
	})
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
