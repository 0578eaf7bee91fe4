//go:build linux

package exporter

import (
	"encoding/json"
	"fmt"
	"maps"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// retype is img with the media types of one family, docker's (schema 2)
// or OCI's, and annotations added to its manifest. Blobs are not touched:
// a media type names how the bytes are read, and gzip is gzip in both.
func retype(img v1.Image, docker bool, annotations map[string]string) (v1.Image, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("reading the manifest: %w", err)
	}
	m = m.DeepCopy()
	m.MediaType, m.Config.MediaType = types.OCIManifestSchema1, types.OCIConfigJSON
	if docker {
		m.MediaType, m.Config.MediaType = types.DockerManifestSchema2, types.DockerConfigJSON
	}
	byDigest := map[v1.Hash]types.MediaType{}
	for i, l := range m.Layers {
		mt, err := layerType(l.MediaType, docker)
		if err != nil {
			return nil, err
		}
		m.Layers[i].MediaType = mt
		byDigest[l.Digest] = mt
	}
	if len(annotations) > 0 {
		if m.Annotations == nil {
			m.Annotations = map[string]string{}
		}
		maps.Copy(m.Annotations, annotations)
	}
	if docker && len(m.Annotations) > 0 {
		return nil, fmt.Errorf("annotations need OCI media types (oci-mediatypes=true): docker's manifest has none")
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding the manifest: %w", err)
	}
	return partial.CompressedToImage(&typedImage{img: img, m: m, raw: raw, types: byDigest})
}

// layerType is the media type of the family asked for of a layer of type mt.
func layerType(mt types.MediaType, docker bool) (types.MediaType, error) {
	switch mt {
	case types.OCILayer, types.DockerLayer:
		if docker {
			return types.DockerLayer, nil
		}
		return types.OCILayer, nil
	case types.OCIUncompressedLayer, types.DockerUncompressedLayer:
		if docker {
			return types.DockerUncompressedLayer, nil
		}
		return types.OCIUncompressedLayer, nil
	case types.OCILayerZStd:
		if docker {
			return "", fmt.Errorf("a zstd layer needs OCI media types (oci-mediatypes=true): docker's have no zstd")
		}
		return mt, nil
	case types.DockerForeignLayer, types.OCIRestrictedLayer:
		if docker {
			return types.DockerForeignLayer, nil
		}
		return types.OCIRestrictedLayer, nil
	}
	return mt, nil
}

type typedImage struct {
	img   v1.Image
	m     *v1.Manifest
	raw   []byte
	types map[v1.Hash]types.MediaType
}

func (t *typedImage) RawConfigFile() ([]byte, error)      { return t.img.RawConfigFile() }
func (t *typedImage) RawManifest() ([]byte, error)        { return t.raw, nil }
func (t *typedImage) MediaType() (types.MediaType, error) { return t.m.MediaType, nil }

func (t *typedImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	l, err := t.img.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	return typedLayer{Layer: l, mt: t.types[h]}, nil
}

type typedLayer struct {
	v1.Layer
	mt types.MediaType
}

func (l typedLayer) MediaType() (types.MediaType, error) { return l.mt, nil }
