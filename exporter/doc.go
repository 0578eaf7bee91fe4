// Package exporter writes images out of kiln's store where --output says
// (Export, ExportImage): a name in the store, a push to a registry, an OCI
// image layout (a directory or a tar), a docker-archive tar or the plain
// filesystem, with buildx's options (compression, media types, annotations,
// rewrite-timestamp), and says what it wrote (Result, for --metadata-file).
// It parses the --output flag and reads archives back for `kiln load`. It
// imports no kiln package but leaves: the store comes in as the small
// Images and Names interfaces.
package exporter
