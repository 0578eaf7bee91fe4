// Package layer converts between snapshot directories in overlayfs format and
// OCI layer tars, and compresses and decompresses layer blobs.
//
// A snapshot is a directory as an overlay upper dir leaves it: a deleted path
// is a character device 0/0 and a directory that hides everything below it
// carries the xattr trusted.overlay.opaque="y". In a layer tar the same facts
// are ".wh.<name>" and "<dir>/.wh..wh..opq" entries (OCI image-spec, layer.md).
package layer
