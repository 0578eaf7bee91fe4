//go:build linux

package store

import (
	"encoding/json"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/digest"
)

// ImageKey is the key Records.LookupImage uses for cfg (timestamps
// ignored) over layers: a rebuild with the same config over the same
// layers finds the image the last one made.
func ImageKey(cfg *v1.ConfigFile, layers []Layer, extras ...ConfigExtras) (digest.Digest, error) {
	c := *cfg
	c.Created = v1.Time{}
	c.History = append([]v1.History(nil), cfg.History...)
	for i := range c.History {
		c.History[i].Created = v1.Time{}
	}
	var x *ConfigExtras // omitted when empty: keys made before extras existed stay
	for _, e := range extras {
		if e != (ConfigExtras{}) {
			x = &e
		}
	}
	b, err := json.Marshal(struct {
		Config *v1.ConfigFile
		Layers []Layer
		Extras *ConfigExtras `json:",omitempty"`
	}{&c, layers, x})
	if err != nil {
		return "", err
	}
	return digest.FromBytes(b), nil
}

// ConfigExtras are image config fields that go-containerregistry's
// v1.ConfigFile has no place for.
type ConfigExtras struct {
	// HealthStartInterval is config.Healthcheck.StartInterval (HEALTHCHECK
	// --start-interval), in nanoseconds as Docker encodes durations.
	HealthStartInterval time.Duration
}

// encodeConfig is cfg's JSON with the extras (the last non-zero one) added.
func encodeConfig(cfg *v1.ConfigFile, extras []ConfigExtras) ([]byte, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	var x ConfigExtras
	for _, e := range extras {
		if e != (ConfigExtras{}) {
			x = e
		}
	}
	if x.HealthStartInterval == 0 || cfg.Config.Healthcheck == nil {
		return b, nil
	}
	// Into the encoded healthcheck, keeping every other byte as it was.
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, err
	}
	var conf map[string]json.RawMessage
	if err := json.Unmarshal(top["config"], &conf); err != nil {
		return nil, err
	}
	var hc map[string]json.RawMessage
	if err := json.Unmarshal(conf["Healthcheck"], &hc); err != nil {
		return nil, err
	}
	hc["StartInterval"] = json.RawMessage(strconv.FormatInt(int64(x.HealthStartInterval), 10))
	if conf["Healthcheck"], err = json.Marshal(hc); err != nil {
		return nil, err
	}
	if top["config"], err = json.Marshal(conf); err != nil {
		return nil, err
	}
	return json.Marshal(top)
}
