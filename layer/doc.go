// Package layer is the layer format: it converts between snapshot
// directories in overlayfs format and OCI layer tars, compresses and
// decompresses layer blobs (and the archives ADD extracts), and extracts
// tars inside their root, within Limits. The store and the exporter both
// use it, and so does COPY's archive extraction; it is a leaf.
//
// A snapshot is a directory as an overlay upper dir leaves it: a deleted path
// is a character device 0/0 and a directory that hides everything below it
// carries the xattr trusted.overlay.opaque="y". In a layer tar the same facts
// are ".wh.<name>" and "<dir>/.wh..wh..opq" entries (OCI image-spec, layer.md).
package layer
