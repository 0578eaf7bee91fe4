// Package exporter writes images out of kiln's store where --output says
// (Export): a name in the store, a push to a registry, an OCI image layout
// (a directory or a tar), a docker-archive tar or the plain filesystem. It
// parses the --output flag and reads archives back for `kiln load`. It
// imports no kiln package but leaves: the store comes in as the small
// Images and Names interfaces.
package exporter
