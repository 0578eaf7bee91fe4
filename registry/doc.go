// Package registry is how kiln talks to OCI registries: the references it
// accepts, the credentials it sends (as docker and podman read them), when
// it speaks plain HTTP or trusts a CA, which mirrors it tries, and how it
// retries. Everything that pulls or pushes (the store's pulls, the
// exporter's pushes, the build cache) takes its go-containerregistry
// options from a Client.
package registry
